// The Porter stemmer exactly as NLTK's PorterStemmer() runs it (mode NLTK_EXTENSIONS: Porter's 1980 algorithm plus
// NLTK's irregular forms and rule changes), which rouge-score's ROUGE uses with use_stemmer=True; checked word for
// word against NLTK over the public-domain corpus (tests/data/rouge/porter_nltk.json).
#pragma once
#include <string>

namespace headscope {

// `word` in lower case ASCII letters and digits (ROUGE's tokens).
std::string porter_stem(const std::string& word);

}  // namespace headscope
