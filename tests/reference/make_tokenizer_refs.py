"""Generate Python reference data for headscope's C++ tokenizer parity tests.

Python is used only to produce reference token ids; the C++ tokenizer is tested against the files
this script writes:

    tests/data/tokenizer/corpus.json       list of tricky strings (the CORPUS below, in order)
    tests/data/tokenizer/gpt2.json         GPT-2 byte-level BPE (encoder.json + vocab.bpe)
    tests/data/tokenizer/qwen3.json        Qwen3 tokenizer.json
    tests/data/tokenizer/smollm2.json      SmolLM2-135M-Instruct GGUF (gpt2 model, pre=smollm)
    tests/data/tokenizer/stories260k.json  stories260K GGUF (llama / SentencePiece-style vocab)

Every case is encoded with add_special_tokens=False (no BOS/EOS added), while special/added tokens
that appear literally in the text are recognised the way the HF `tokenizers` library does by default.

Rerun (from the repository root):

    /opt/refvenv/bin/python tests/reference/make_tokenizer_refs.py

The venv needs `tokenizers`, `transformers`, `gguf`, `numpy` (and optionally `llama-cpp-python`
for the llama.cpp cross-check; `torch` is NOT required -- see _import_transformers). Inputs:

    /work/shared/tokenizers/gpt2/{encoder.json,vocab.bpe}
    /work/shared/tokenizers/qwen3/tokenizer.json
    ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf
    /work/shared/models/stories260K/stories260K.gguf

Options: --no-llamacpp skips the llama.cpp cross-check; --out DIR writes somewhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import types
import unicodedata
from importlib import metadata as importlib_metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "tokenizer"

GPT2_DIR = Path("/work/shared/tokenizers/gpt2")
QWEN3_JSON = Path("/work/shared/tokenizers/qwen3/tokenizer.json")
SMOLLM2_GGUF = Path(os.path.expanduser("~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf"))
STORIES_GGUF = Path("/work/shared/models/stories260K/stories260K.gguf")

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


# --------------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------------

def make_gpt2():
    import tokenizers
    from tokenizers import AddedToken

    tok = tokenizers.ByteLevelBPETokenizer(str(GPT2_DIR / "encoder.json"), str(GPT2_DIR / "vocab.bpe"))
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
        t2 = GPT2Tokenizer(vocab=str(GPT2_DIR / "encoder.json"), merges=str(GPT2_DIR / "vocab.bpe"))
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
    return encode, source, special, [cross] if cross else []


def make_qwen3():
    from tokenizers import Tokenizer

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
    return encode, source, special, []


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
            ("transformers GGUF conversion", lambda s: hf.encode(s, add_special_tokens=False))
        )
    source += "; encode(text, add_special_tokens=False); tokenizers %s, transformers %s, gguf %s" % (
        _version("tokenizers"),
        _version("transformers"),
        _version("gguf"),
    )
    if llamacpp is not None:
        crosses.append(llamacpp(SMOLLM2_GGUF))
    special = {
        "bos": fields.get("tokenizer.ggml.bos_token_id"),
        "eos": fields.get("tokenizer.ggml.eos_token_id"),
        "add_bos": bool(fields.get("tokenizer.ggml.add_bos_token", False)),
    }
    # transformers agrees with the GGUF on these
    assert hf.bos_token_id == special["bos"] and hf.eos_token_id == special["eos"]
    assert bool(getattr(hf, "add_bos_token", False)) == special["add_bos"]
    return encode, source, special, crosses, notes


def make_stories(llamacpp):
    fields = _gguf_fields(STORIES_GGUF)
    assert fields["tokenizer.ggml.model"] == "llama"
    hf, notes = _hf_from_gguf(STORIES_GGUF)
    tok = hf.backend_tokenizer
    js = json.loads(tok.to_str())

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    source = (
        "transformers AutoTokenizer.from_pretrained(dir, gguf_file='stories260K.gguf') GGUF conversion -> HF tokenizers "
        "BPE(byte_fallback=True, merges derived from scores) with pre_tokenizer %s, normalizer %s; "
        "encode(text, add_special_tokens=False) on the backend tokenizer; special.add_bos is transformers' default for "
        "a llama vocab without tokenizer.ggml.add_bos_token (same as llama.cpp); cases carry 'ids_llamacpp' where "
        "llama.cpp's tokenize differs; %s; tokenizers %s, transformers %s, gguf %s"
        % (
            json.dumps(js["pre_tokenizer"]),
            json.dumps(js["normalizer"]),
            "; ".join(notes),
            _version("tokenizers"),
            _version("transformers"),
            _version("gguf"),
        )
    )
    bos = fields.get("tokenizer.ggml.bos_token_id")
    eos = fields.get("tokenizer.ggml.eos_token_id")
    assert hf.bos_token_id == bos and hf.eos_token_id == eos
    special = {"bos": bos, "eos": eos, "add_bos": bool(getattr(hf, "add_bos_token"))}
    crosses = []
    if llamacpp is not None:
        crosses.append(llamacpp(STORIES_GGUF))
    return encode, source, special, crosses


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
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    corpus = build_corpus()
    validate_corpus(corpus)
    n = dump(args.out / "corpus.json", corpus, compact=False)
    print("corpus.json: %d strings, %d bytes" % (len(corpus), n))

    llamacpp = None if args.no_llamacpp else make_llamacpp_factory()
    env = "python %s" % platform.python_version()

    jobs = {}
    enc, src, special, crosses = make_gpt2()
    jobs["gpt2"] = (enc, src, special, crosses)
    enc, src, special, crosses = make_qwen3()
    jobs["qwen3"] = (enc, src, special, crosses)
    enc, src, special, crosses, _ = make_smollm2(llamacpp)
    jobs["smollm2"] = (enc, src, special, crosses)
    jobs["stories260k"] = make_stories(llamacpp)

    report = {}
    for name, (encode, source, special, crosses) in jobs.items():
        cases = []
        disagreements = {label: [] for label, _ in crosses}
        for text in corpus:
            ids = [int(i) for i in encode(text)]
            case = {"text": text, "ids": ids}
            for label, other in crosses:
                other_ids = [int(i) for i in other(text)]
                if other_ids != ids:
                    disagreements[label].append((text, ids, other_ids))
                    if label.startswith("llama.cpp"):
                        # kept in the file: llama.cpp is what a GGUF-based runtime usually matches
                        case["ids_llamacpp"] = other_ids
            cases.append(case)
        obj = {
            "tokenizer": name,
            "source": source + "; " + env,
            "add_special_tokens": False,
            "special": special,
            "cases": cases,
        }
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
