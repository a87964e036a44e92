"""Paths to the committed test fixtures for the reference scripts in this folder.

Fixtures committed compressed (tests/data/**/*.tar.xz) are unpacked into a temporary folder on first use, the
way CMake unpacks them into the build tree for the C++ tests. Files that scripts/setup.sh downloads live in the
model cache: $HEADSCOPE_MODEL_DIR, default ~/.cache/headscope.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
MODEL_DIR = Path(os.environ.get("HEADSCOPE_MODEL_DIR") or Path.home() / ".cache" / "headscope")

_unpacked: dict[Path, Path] = {}


def unpacked(archive: str) -> Path:
    """The folder holding the files of tests/data/<archive> (a .tar.xz), unpacked once per process."""
    src = DATA / archive
    if src not in _unpacked:
        dest = Path(tempfile.mkdtemp(prefix="headscope-fixture-"))
        atexit.register(shutil.rmtree, dest, True)
        with tarfile.open(src, "r:xz") as tar:
            tar.extractall(dest, filter="data")
        _unpacked[src] = dest
    return _unpacked[src]


def stories260k_gguf() -> Path:
    """stories260K.gguf (karpathy/tinyllamas, MIT), committed as tests/data/models/stories260K/*.tar.xz."""
    return unpacked("models/stories260K/stories260K.gguf.tar.xz") / "stories260K.gguf"


def gpt2_tokenizer_dir() -> Path:
    """GPT-2's encoder.json and vocab.bpe (openai/gpt-2, MIT), committed as tests/data/tokenizer/gpt2/*.tar.xz."""
    return unpacked("tokenizer/gpt2/gpt2-tokenizer.tar.xz")


def qwen3_tokenizer_json() -> Path:
    """Qwen3's tokenizer.json as setup downloads it into the model cache."""
    return MODEL_DIR / "qwen3-tokenizer.json"


def smollm2_gguf() -> Path:
    return MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"
