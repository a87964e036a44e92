// Tokenizer implementation (see tokenizer.h). Pipeline for encode:
//   added/special tokens split out of the raw text -> normalizer (NFC, or SentencePiece's ▁ escaping)
//   -> pre-tokenizer regex splits (PCRE2, Unicode classes) -> byte-level mapping -> BPE merges or
//   SentencePiece score merges -> ids (byte fallback to <0xXX> tokens where a vocabulary has them).
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "core/text.h"
#include "model/gguf.h"

namespace headscope {
namespace {

const char* const kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kSpmSpace = "\xE2\x96\x81";  // U+2581 '▁'

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) s += static_cast<char>(cp);
  else if (cp < 0x800) s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
  else if (cp < 0x10000)
    s += static_cast<char>(0xE0 | (cp >> 12)), s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
        s += static_cast<char>(0x80 | (cp & 0x3F));
  else
    s += static_cast<char>(0xF0 | (cp >> 18)), s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), s += static_cast<char>(0x80 | (cp & 0x3F));
}

// Length of the UTF-8 sequence starting at s[i] (1 for a stray byte, so callers always advance).
size_t utf8_len(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return std::min(n, s.size() - i);
}

// GPT-2's reversible byte <-> printable-unicode mapping.
struct ByteMap {
  std::string to_char[256];
  std::unordered_map<uint32_t, uint8_t> to_byte;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? b : 256 + n++;
      append_utf8(to_char[b], cp);
      to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

struct Regex {
  pcre2_code* code = nullptr;
  std::string pattern;
  explicit Regex(const std::string& p) : pattern(p) {
    int err;
    PCRE2_SIZE off;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof buf);
      throw Error("tokenizer pre-tokenizer regex does not compile at offset " + std::to_string(off) + ": " +
                  reinterpret_cast<char*>(buf));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  }
  Regex(Regex&& o) noexcept : code(o.code), pattern(std::move(o.pattern)) { o.code = nullptr; }
  ~Regex() { pcre2_code_free(code); }
};

// HF "Isolated" split: matches and the gaps between them both become pieces. `s` is valid UTF-8 (encode checks
// it once): PCRE2 would otherwise check the whole subject again at every match, quadratic in the text's length.
void split_isolated(const Regex& re, const std::string& s, std::vector<std::string>& out) {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re.code, nullptr);
  size_t pos = 0, last = 0;
  while (pos <= s.size()) {
    int rc = pcre2_match(re.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: step over one character
      if (b >= s.size()) break;
      pos = b + utf8_len(s, b);
      continue;
    }
    if (b > last) out.push_back(s.substr(last, b - last));
    out.push_back(s.substr(b, e - b));
    last = pos = e;
  }
  if (last < s.size()) out.push_back(s.substr(last));
  pcre2_match_data_free(md);
}

std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), s.size(), &out,
                        static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return s;
  std::string r(reinterpret_cast<char*>(out), n);
  free(out);
  return r;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t p = 0;
  while ((p = s.find(from, p)) != std::string::npos) s.replace(p, from.size(), to), p += to.size();
  return s;
}

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

}  // namespace

struct Tokenizer::Impl {
  enum Kind { BPE, SPM } kind = BPE;
  bool byte_level = true;        // symbols are GPT-2's byte-mapped characters
  bool byte_fallback = false;    // characters missing from the vocabulary become <0xXX> tokens
  bool ignore_merges = false;    // HF: a word that is itself a token skips the merges
  bool nfc = false;
  bool add_prefix_space = false; // byte-level: prepend ' ' to the text
  bool spm_prefix = false;       // SentencePiece's add_dummy_prefix: '▁' prepended to each text run
  std::vector<std::string> pieces;
  std::unordered_map<std::string, int32_t> piece_id;
  std::vector<float> scores;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (left, right) -> (rank, merged)
  std::vector<std::pair<std::string, int32_t>> added;               // content, id (longest first)
  std::vector<uint8_t> is_added;
  std::vector<Regex> splits;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false;
  std::string chat_template;
  int32_t byte_token[256];
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  void finish(const std::string& where) {
    piece_id.clear();
    piece_id.reserve(pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i) piece_id.emplace(pieces[i], static_cast<int32_t>(i));
    is_added.assign(pieces.size(), 0);
    for (auto& [s, id] : added) {
      if (id < 0 || id >= static_cast<int32_t>(pieces.size())) throw Error(where + ": added token id out of range");
      is_added[id] = 1;
    }
    std::stable_sort(added.begin(), added.end(), [](auto& a, auto& b) { return a.first.size() > b.first.size(); });
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = piece_id.find(name);
      byte_token[b] = it == piece_id.end() ? -1 : it->second;
    }
  }

  int32_t id_of(const std::string& piece) const {
    auto it = piece_id.find(piece);
    return it == piece_id.end() ? -1 : it->second;
  }

  // Initial symbols of a word: one per (byte-mapped) character, with byte fallback.
  void initial_symbols(const std::string& word, std::vector<int32_t>& ids, std::vector<std::string>& texts) const {
    for (size_t i = 0; i < word.size();) {
      size_t n = utf8_len(word, i);
      std::string ch = word.substr(i, n);
      i += n;
      int32_t id = id_of(ch);
      if (id >= 0) {
        ids.push_back(id), texts.push_back(ch);
      } else if (byte_fallback && byte_token[static_cast<uint8_t>(ch[0])] >= 0) {
        for (unsigned char c : ch) ids.push_back(byte_token[c]), texts.push_back(std::string(1, static_cast<char>(c)));
      } else if (unk >= 0) {
        ids.push_back(unk), texts.push_back(ch);
      } else {
        throw Error("tokenizer: the character '" + ch + "' has no token and the vocabulary has no byte fallback");
      }
    }
  }

  // BPE: repeatedly merge the adjacent pair of lowest rank (leftmost on ties).
  std::vector<int32_t> bpe(const std::string& word) const {
    if (ignore_merges) {
      int32_t id = id_of(word);
      if (id >= 0) return {id};
    }
    std::vector<int32_t> ids;
    std::vector<std::string> texts;
    initial_symbols(word, ids, texts);
    const int n = static_cast<int>(ids.size());
    std::vector<int> prev(n), next(n);
    for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
    using Cand = std::tuple<int32_t, int, int32_t, int32_t>;  // rank, left position, left id, right id
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto push = [&](int l) {
      if (l < 0 || next[l] < 0) return;
      int r = next[l];
      auto it = merges.find(pair_key(ids[l], ids[r]));
      if (it != merges.end()) heap.emplace(it->second.first, l, ids[l], ids[r]);
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      auto [rank, l, lid, rid] = heap.top();
      heap.pop();
      int r = next[l];
      if (ids[l] != lid || r < 0 || ids[r] != rid) continue;  // stale
      ids[l] = merges.at(pair_key(lid, rid)).second;
      ids[r] = -1;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      push(prev[l]);
      push(l);
    }
    std::vector<int32_t> out;
    for (int i = 0; n > 0 && i >= 0; i = next[i]) out.push_back(ids[i]);
    return out;
  }

  // SentencePiece (llama.cpp's SPM): merge the adjacent pair whose concatenation is the highest-scoring
  // vocabulary piece (leftmost on ties); unmatched characters fall back to byte tokens.
  std::vector<int32_t> spm(const std::string& text) const {
    struct Sym { int prev, next; size_t off, len; };
    std::vector<Sym> sym;
    for (size_t i = 0; i < text.size();) {
      size_t n = utf8_len(text, i);
      sym.push_back({static_cast<int>(sym.size()) - 1, -1, i, n});
      i += n;
    }
    for (size_t i = 0; i + 1 < sym.size(); ++i) sym[i].next = static_cast<int>(i + 1);
    using Cand = std::tuple<float, int, int, size_t>;  // score, -left, left, merged length
    std::priority_queue<Cand> heap;
    auto push = [&](int l) {
      if (l < 0 || sym[l].next < 0) return;
      const Sym &a = sym[l], &b = sym[a.next];
      int32_t id = id_of(text.substr(a.off, a.len + b.len));
      if (id >= 0) heap.emplace(scores[id], -l, l, a.len + b.len);
    };
    for (size_t i = 0; i + 1 < sym.size(); ++i) push(static_cast<int>(i));
    while (!heap.empty()) {
      auto [score, negl, l, len] = heap.top();
      heap.pop();
      Sym& a = sym[l];
      if (a.len == 0 || a.next < 0 || a.len + sym[a.next].len != len) continue;  // stale
      Sym& b = sym[a.next];
      a.len += b.len;
      b.len = 0;
      a.next = b.next;
      if (a.next >= 0) sym[a.next].prev = l;
      push(a.prev);
      push(l);
    }
    std::vector<int32_t> out;
    for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
      std::string piece = text.substr(sym[i].off, sym[i].len);
      int32_t id = id_of(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (unsigned char c : piece) {
        if (byte_token[c] >= 0) out.push_back(byte_token[c]);
        else if (unk >= 0) out.push_back(unk);
        else throw Error("tokenizer: no token for byte " + std::to_string(c) + " and no unknown token");
      }
    }
    return out;
  }

  void encode_text(std::string text, bool first_run, std::vector<int32_t>& out) const {
    if (nfc) text = headscope::nfc(text);
    if (kind == SPM) {
      // SentencePiece: every space becomes '▁', and with add_dummy_prefix one '▁' is prepended to the text (also
      // when it starts with a space, so " a" is "▁▁a"). Special tokens in the text split it into runs; each run
      // gets the prefix, as llama.cpp does (SentencePiece itself does not parse special tokens).
      text = (spm_prefix ? kSpmSpace : "") + replace_all(text, " ", kSpmSpace);
      auto ids = spm(text);
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
    if (add_prefix_space && first_run && (text.empty() || text[0] != ' ')) text = " " + text;
    std::vector<std::string> words{text}, next;
    for (const Regex& re : splits) {
      next.clear();
      for (auto& w : words) split_isolated(re, w, next);
      words.swap(next);
    }
    for (auto& w : words) {
      std::string mapped;
      if (byte_level)
        for (unsigned char c : w) mapped += byte_map().to_char[c];
      else
        mapped = w;
      {
        std::lock_guard<std::mutex> lk(cache_mu);
        auto it = cache.find(mapped);
        if (it != cache.end()) {
          out.insert(out.end(), it->second.begin(), it->second.end());
          continue;
        }
      }
      auto ids = bpe(mapped);
      out.insert(out.end(), ids.begin(), ids.end());
      std::lock_guard<std::mutex> lk(cache_mu);
      if (cache.size() > 100000) cache.clear();
      cache.emplace(std::move(mapped), std::move(ids));
    }
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special) const {
  if (const size_t bad = utf8_error_offset(text); bad != std::string::npos)
    throw Error("the text is not valid UTF-8 (bad byte at offset " + std::to_string(bad) + ")");
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  if (add_special && m.add_bos && m.bos >= 0) out.push_back(m.bos);
  size_t start = 0, i = 0;
  bool first = true;
  while (i < text.size()) {
    int32_t hit = -1;
    size_t hit_len = 0;
    for (auto& [content, id] : m.added)
      if (!content.empty() && text.compare(i, content.size(), content) == 0) {
        hit = id, hit_len = content.size();
        break;  // `added` is sorted longest first
      }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (i > start) m.encode_text(text.substr(start, i - start), first, out), first = false;
    out.push_back(hit);
    first = false;
    i += hit_len;
    start = i;
  }
  if (start < text.size()) m.encode_text(text.substr(start), first, out);
  return out;
}

std::string Tokenizer::token_text(int32_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= static_cast<int32_t>(m.pieces.size())) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  const std::string& p = m.pieces[id];
  if (m.is_added[id]) return p;
  if (m.kind == Impl::SPM || !m.byte_level) {
    if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>')
      return std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16)));
    return replace_all(p, kSpmSpace, " ");
  }
  std::string out;
  for (size_t i = 0; i < p.size();) {
    utf8proc_int32_t cp;
    auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(p.data() + i), p.size() - i, &cp);
    if (n <= 0) { out += p[i++]; continue; }
    auto it = byte_map().to_byte.find(static_cast<uint32_t>(cp));
    if (it != byte_map().to_byte.end()) out += static_cast<char>(it->second);
    else out.append(p, i, n);
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::string out;
  // SentencePiece prepended a '▁' to each text run (at the start and after each special token): drop it again.
  const bool dummy_prefix = m.kind == Impl::SPM && m.spm_prefix;
  bool strip_next = dummy_prefix;
  for (int32_t id : ids) {
    std::string t = token_text(id);
    if (m.is_added[id]) {
      strip_next = dummy_prefix;
    } else {
      if (strip_next && !t.empty() && t[0] == ' ') t.erase(0, 1);
      strip_next = false;
    }
    out += t;
  }
  return out;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->pieces.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::is_special(int32_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= static_cast<int32_t>(m.pieces.size())) return false;
  return m.is_added[id] || id == m.bos || id == m.eos;
}
std::string Tokenizer::kind() const { return impl_->kind == Impl::SPM ? "spm" : "bpe"; }

namespace {

void add_merge(Tokenizer::Impl& m, const std::string& a, const std::string& b, int32_t rank, const std::string& where) {
  int32_t ia = m.id_of(a), ib = m.id_of(b), ab = m.id_of(a + b);
  if (ia < 0 || ib < 0 || ab < 0) return;  // HF skips merges whose parts are not tokens as well
  m.merges.emplace(pair_key(ia, ib), std::make_pair(rank, ab));
}

void walk_pre_tokenizer(const nlohmann::json& p, Tokenizer::Impl& m, const std::string& where) {
  if (p.is_null()) return;
  std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (auto& q : p.at("pretokenizers")) walk_pre_tokenizer(q, m, where);
  } else if (type == "ByteLevel") {
    m.byte_level = true;
    m.add_prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) m.splits.emplace_back(kGpt2Regex);
  } else if (type == "Split") {
    if (p.value("invert", false) || p.value("behavior", "Isolated") != "Isolated")
      throw Error(where + ": Split pre-tokenizer with behavior '" + p.value("behavior", "") + "' is not supported");
    auto& pat = p.at("pattern");
    if (pat.contains("Regex")) m.splits.emplace_back(pat["Regex"].get<std::string>());
    else {
      std::string lit = pat.at("String"), esc;
      for (char c : lit) esc += std::strchr("\\^$.|?*+()[]{}", c) ? std::string("\\") + c : std::string(1, c);
      m.splits.emplace_back(esc);
    }
  } else if (type == "Digits") {
    m.splits.emplace_back(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+");
  } else {
    throw Error(where + ": pre-tokenizer '" + type + "' is not supported (supported: ByteLevel, Split, Digits, Sequence)");
  }
}

void walk_normalizer(const nlohmann::json& n, Tokenizer::Impl& m, const std::string& where) {
  if (n.is_null()) return;
  std::string type = n.value("type", "");
  if (type == "Sequence") for (auto& q : n.at("normalizers")) walk_normalizer(q, m, where);
  else if (type == "NFC") m.nfc = true;
  else throw Error(where + ": normalizer '" + type + "' is not supported (supported: NFC)");
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json(const nlohmann::json& j, const std::string& where) {
  auto m = std::make_unique<Impl>();
  try {
    auto& model = j.at("model");
    if (model.value("type", "BPE") != "BPE")
      throw Error(where + ": tokenizer model '" + model.value("type", "") + "' is not supported (supported: BPE)");
    if (!model.value("continuing_subword_prefix", nlohmann::json()).is_null() && model.value("continuing_subword_prefix", std::string()) != "")
      throw Error(where + ": BPE continuing_subword_prefix is not supported");
    m->byte_level = false;
    m->byte_fallback = model.value("byte_fallback", false);
    m->ignore_merges = model.value("ignore_merges", false);
    auto& vocab = model.at("vocab");
    int32_t max_id = -1;
    for (auto& [piece, id] : vocab.items()) max_id = std::max(max_id, id.get<int32_t>());
    for (auto& t : j.value("added_tokens", nlohmann::json::array())) max_id = std::max(max_id, t.at("id").get<int32_t>());
    m->pieces.assign(max_id + 1, std::string());
    for (auto& [piece, id] : vocab.items()) m->pieces[id.get<int32_t>()] = piece;
    for (auto& t : j.value("added_tokens", nlohmann::json::array())) {
      m->pieces[t.at("id").get<int32_t>()] = t.at("content").get<std::string>();
      m->added.emplace_back(t.at("content").get<std::string>(), t.at("id").get<int32_t>());
    }
    m->finish(where);
    int32_t rank = 0;
    for (auto& mg : model.at("merges")) {
      if (mg.is_string()) {
        std::string s = mg;
        size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) throw Error(where + ": malformed merge '" + s + "'");
        add_merge(*m, s.substr(0, sp), s.substr(sp + 1), rank++, where);
      } else {
        add_merge(*m, mg.at(0).get<std::string>(), mg.at(1).get<std::string>(), rank++, where);
      }
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) m->unk = m->id_of(model["unk_token"]);
    walk_normalizer(j.value("normalizer", nlohmann::json()), *m, where);
    walk_pre_tokenizer(j.value("pre_tokenizer", nlohmann::json()), *m, where);
    // BOS from a TemplateProcessing post-processor that starts with a special token.
    auto pp = j.value("post_processor", nlohmann::json());
    if (pp.is_object() && pp.value("type", "") == "TemplateProcessing" && !pp["single"].empty() &&
        pp["single"][0].contains("SpecialToken")) {
      m->bos = m->id_of(pp["single"][0]["SpecialToken"]["id"].get<std::string>());
      m->add_bos = m->bos >= 0;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed tokenizer.json (" + e.what() + ")");
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(m)));
}

std::unique_ptr<Tokenizer> Tokenizer::from_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe) {
  std::ifstream ej(encoder_json);
  if (!ej) throw Error(encoder_json + ": cannot open");
  nlohmann::json enc = nlohmann::json::parse(ej, nullptr, false);
  if (enc.is_discarded() || !enc.is_object()) throw Error(encoder_json + ": not a JSON object of token -> id");
  std::ifstream vb(vocab_bpe);
  if (!vb) throw Error(vocab_bpe + ": cannot open");
  nlohmann::json merges = nlohmann::json::array();
  std::string line;
  while (std::getline(vb, line)) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    merges.push_back(line);
  }
  nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", enc}, {"merges", merges}}},
                      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                      {"added_tokens", nlohmann::json::array()}};
  if (enc.contains("<|endoftext|>"))
    j["added_tokens"].push_back({{"id", enc["<|endoftext|>"]}, {"content", "<|endoftext|>"}, {"special", true}});
  auto t = from_hf_json(j, encoder_json);
  t->impl_->bos = t->impl_->eos = t->impl_->id_of("<|endoftext|>");
  return t;
}

const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
void Tokenizer::set_chat_template(const std::string& t) { impl_->chat_template = t; }

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& g) {
  auto m = std::make_unique<Impl>();
  const std::string where = g.name;
  const std::string model = g.get_str("tokenizer.ggml.model");
  if (!g.has("tokenizer.ggml.tokens") || !g.metadata["tokenizer.ggml.tokens"].is_array())
    throw Error(where + ": GGUF has no tokenizer.ggml.tokens");
  const auto& toks = g.metadata["tokenizer.ggml.tokens"];
  m->pieces.reserve(toks.size());
  for (auto& t : toks) {
    if (!t.is_string()) throw Error(where + ": tokenizer.ggml.tokens holds a non-string");
    m->pieces.push_back(t.get<std::string>());
  }
  std::vector<int32_t> types(m->pieces.size(), 1);
  if (g.has("tokenizer.ggml.token_type")) {
    const auto& tt = g.metadata["tokenizer.ggml.token_type"];
    if (!tt.is_array() || tt.size() != m->pieces.size()) throw Error(where + ": tokenizer.ggml.token_type has the wrong length");
    for (size_t i = 0; i < tt.size(); ++i) {
      if (!tt[i].is_number_integer()) throw Error(where + ": tokenizer.ggml.token_type holds a non-integer");
      types[i] = tt[i].get<int32_t>();
    }
  }
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == 2 || types[i] == 3 || types[i] == 4)  // unknown, control, user-defined: matched in text
      m->added.emplace_back(m->pieces[i], static_cast<int32_t>(i));
  if (g.has("tokenizer.chat_template") && g.metadata["tokenizer.chat_template"].is_string())
    m->chat_template = g.metadata["tokenizer.chat_template"].get<std::string>();
  m->bos = static_cast<int32_t>(g.get_int("tokenizer.ggml.bos_token_id", -1));
  m->eos = static_cast<int32_t>(g.get_int("tokenizer.ggml.eos_token_id", -1));
  m->unk = static_cast<int32_t>(g.get_int("tokenizer.ggml.unknown_token_id", -1));
  const int64_t n = static_cast<int64_t>(m->pieces.size());
  for (int32_t* id : {&m->bos, &m->eos, &m->unk})
    if (*id >= n) *id = -1;
  if (model == "llama") {
    m->kind = Impl::SPM;
    m->byte_level = false;
    m->spm_prefix = g.get_bool("tokenizer.ggml.add_space_prefix", true);
    m->add_bos = g.get_bool("tokenizer.ggml.add_bos_token", true);
    if (!g.has("tokenizer.ggml.scores")) throw Error(where + ": a llama (SentencePiece) vocabulary needs tokenizer.ggml.scores");
    const auto& sc = g.metadata["tokenizer.ggml.scores"];
    if (!sc.is_array() || sc.size() != m->pieces.size()) throw Error(where + ": tokenizer.ggml.scores has the wrong length");
    for (auto& s : sc) {
      if (!s.is_number()) throw Error(where + ": tokenizer.ggml.scores holds a non-number");
      m->scores.push_back(s.get<float>());
    }
    m->finish(where);
  } else if (model == "gpt2") {
    m->kind = Impl::BPE;
    m->byte_level = true;
    m->add_bos = g.get_bool("tokenizer.ggml.add_bos_token", false);
    m->finish(where);
    if (!g.has("tokenizer.ggml.merges") || !g.metadata["tokenizer.ggml.merges"].is_array())
      throw Error(where + ": a gpt2 (BPE) vocabulary needs tokenizer.ggml.merges (an array of strings)");
    int32_t rank = 0;
    for (auto& mg : g.metadata["tokenizer.ggml.merges"]) {
      if (!mg.is_string()) throw Error(where + ": tokenizer.ggml.merges holds a non-string");
      std::string s = mg.get<std::string>();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw Error(where + ": malformed merge '" + s + "'");
      add_merge(*m, s.substr(0, sp), s.substr(sp + 1), rank++, where);
    }
    std::string pre = g.has("tokenizer.ggml.pre") ? g.get_str("tokenizer.ggml.pre") : "default";
    if (pre == "default" || pre == "gpt2" || pre == "gpt-2") m->splits.emplace_back(kGpt2Regex);
    else if (pre == "smollm") m->splits.emplace_back("\\p{N}"), m->splits.emplace_back(kGpt2Regex);
    else if (pre == "qwen2") m->splits.emplace_back(kQwen2Regex), m->nfc = true;
    else if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3") m->splits.emplace_back(kLlama3Regex), m->ignore_merges = true;
    else throw Error(where + ": GGUF pre-tokenizer '" + pre + "' is not supported (supported: default, gpt2, smollm, qwen2, llama-bpe)");
  } else {
    throw Error(where + ": tokenizer model '" + model + "' is not supported (supported: gpt2, llama)");
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(m)));
}

}  // namespace headscope
