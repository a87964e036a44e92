#!/usr/bin/env python3
"""Writes tests/data/rouge/rouge1_recall.json: ROUGE-1 recall of (reference, prediction) pairs by the rouge-score
package (Google's, the one Wu et al.'s retrieval_head_detection.py uses: RougeScorer(['rouge1'], use_stemmer=True),
score(reference, prediction).recall), for headscope's rouge1_recall (analysis/retrieval.h).

The pairs: the three needles of the reference against answers a small model gives (exact, partial, paraphrased,
wrong, empty), and strings that exercise its tokenizer and stemmer (case, punctuation, digits, plurals and verb
forms, words of 3 characters or fewer, which it does not stem).

    pip install rouge-score==0.1.2     # (nltk comes with it)
    python3 tests/reference/make_rouge_refs.py
"""
import json
from pathlib import Path

from rouge_score import rouge_scorer

PAIRS = [
    ("records were once again broken, and in some cases smashed, for greenhouse gas levels, surface temperatures, ocean heat and acidification.",
     "Records were once again broken, and in some cases smashed, for greenhouse gas levels, surface temperatures, ocean heat and acidification."),
    ("records were once again broken, and in some cases smashed, for greenhouse gas levels, surface temperatures, ocean heat and acidification.",
     "The report shows that greenhouse gas levels broke records."),
    ("take a walk in Chaoyang Park and have a cup of Espresso in the evening",
     "The best thing to do in Beijing is to take a walk in Chaoyang Park and have a cup of Espresso in the evening."),
    ("take a walk in Chaoyang Park and have a cup of Espresso in the evening", "Walking in parks; drinking espressos."),
    ("take a walk in Chaoyang Park and have a cup of Espresso in the evening", "I do not know."),
    ("Because he is a mean person and also he can't ride a horse or dive a car.",
     "Mr Green is disliked because he is mean and can't ride horses."),
    ("Because he is a mean person and also he can't ride a horse or dive a car.", ""),
    ("the running dogs were happily jumping over fences", "a dog runs and jumps over the fence happily"),
    ("connections connected connecting connection", "connect"),
    ("generalization generously generated", "generate generous general"),
    ("QZ7W3X", "QZ7W3X\n"),
    ("QZ7W3X", "qz7w3x is the code"),
    ("314159", "The secret code is 314159."),
    ("caresses ponies ties caress cats", "caress pony tie cat"),
    ("agreed plastered motoring sing", "agree plaster motor sing"),
    ("the the the cat", "the cat"),
    ("Élan naïve café", "elan naive cafe"),
    ("hopping hoping happy happiness", "hop hope happi"),
    ("relational conditional rational valenci hesitanci", "relate condition rational valence hesitance"),
    ("generously generous generation generator", "generous general generate"),
    ("dying lying tying skies news innings", "die lie tie sky new inning"),
    ("happily happiness happier happiest", "happy happi"),
    ("organization organizer organizing organs", "organ organize"),
    ("electrical electricity electrician electric", "electric"),
    ("university universe universal", "univers"),
    ("running runner runs ran", "run"),
    ("abilities ability able ably", "abl"),
    ("temperatures temperature temperate", "temperatur temper"),
    ("acidification acidify acidic", "acid"),
    ("greenhouse greenhouses", "greenhous"),
    ("smashed smashing smashes", "smash"),
    ("disliked dislikes disliking", "dislik dislike"),
    ("evening evenings evenly", "even"),
    ("espresso espressos", "espresso"),
    ("horses horse horsing", "hors"),
    ("broken breaking breaks broke", "break broke"),
    ("walked walking walks", "walk"),
    ("national nationally nationality nations", "nation"),
    ("feed feeding feeds fed agreement agreed", "feed agre"),
]


def stems(dest: Path) -> None:
    """NLTK's PorterStemmer() (the stemmer rouge-score uses) on every distinct word of more than 3 characters in the
    public-domain corpus, plus words that exercise its special cases."""
    import re

    from nltk.stem import porter

    text = (Path(__file__).resolve().parents[2] / "datasets" / "text" / "public_domain.txt").read_text().lower()
    words = set(w for w in re.split(r"[^a-z0-9]+", text) if len(w) > 3)
    words |= {"skies", "dying", "lying", "tying", "news", "innings", "outings", "cannings", "proceed", "exceed", "succeed",
              "ties", "died", "cried", "hopping", "filing", "failing", "conditional", "rationally", "hopefulli", "archaeology",
              "theology", "geology", "analogi", "spry", "play", "happy", "sky", "agreed", "feed", "bled", "sized", "fizzed"}
    stemmer = porter.PorterStemmer()
    table = {w: stemmer.stem(w) for w in sorted(words)}
    (dest / "porter_nltk.json").write_text(json.dumps(table, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {dest / 'porter_nltk.json'} ({len(table)} words)")


def main() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    out = [{"reference": r, "prediction": p, "recall": scorer.score(r, p)["rouge1"].recall} for r, p in PAIRS]
    dest = Path(__file__).resolve().parents[1] / "data" / "rouge" / "rouge1_recall.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"generator": "rouge-score 0.1.2, RougeScorer(['rouge1'], use_stemmer=True)", "pairs": out}, indent=1) + "\n")
    print(f"wrote {dest} ({len(out)} pairs)")
    stems(dest.parent)


if __name__ == "__main__":
    main()
