"""Make the reference data for tests/test_dequant.cpp (GGUF dequantisation, model/dequant.cpp).

The expected values come from the PyPI `gguf` package's `gguf.quants.dequantize`, an
implementation independent of headscope's C++ code.

Writes into tests/data/quant/:

  <TYPE>.blocks  raw quantised bytes, little-endian, exactly as they sit in a GGUF file.
                 For block types (Q4_0, Q4_1, Q8_0: 64 blocks; Q4_K, Q5_K, Q6_K: 24 blocks)
                 the bytes are random except the fp16 scale fields (d, and m / dmin where
                 the type has one), which are set to finite values: ordinary weight-sized
                 scales of both signs plus +0, -0, fp16 subnormals, tiny and large ones
                 (up to 65504). F32 / F16 / BF16 hold 2048 values each: specials (+-0,
                 subnormals, +-inf, NaNs with payloads incl. signalling, largest finite)
                 followed by random bit patterns.
  <TYPE>.f32     the expected float32 values (little-endian) from gguf.quants.dequantize
                 of <TYPE>.blocks, one per element, same order.
  real_tensors.json
                 for every tensor of two real checkpoints
                   ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf (Q4_1, Q8_0, F32)
                   tests/data/models/stories260K/stories260K.gguf.tar.xz (F32)
                 one line per tensor with: name, type (gguf name), type_code, shape (GGUF
                 order, ne[0] first), n_elements, offset (absolute file offset of the
                 tensor's data), raw_sha256 (sha256 of its n_bytes raw bytes) and sha256
                 (sha256 of the dequantised float32 little-endian bytes in C order as
                 gguf.GGUFReader + dequantize return them, i.e. simply the n_elements
                 decoded values in file order). A checkpoint that is absent is listed
                 with "present": false and no tensors.

Rerun (deterministic, seed fixed below) from the repository root:

  /opt/refvenv/bin/python tests/reference/make_dequant_refs.py

(/opt/refvenv is any venv with `pip install gguf numpy`; made with gguf 0.19.0, numpy 2.x.)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import fixtures  # noqa: E402  (tests/reference/fixtures.py: paths to the committed fixtures)

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

SEED = 20240611
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "quant"

# Blocks per synthetic file, and byte offsets of the fp16 scale fields inside one block.
BLOCK_TYPES = {
    "Q4_0": (T.Q4_0, 64, [0]),          # d
    "Q4_1": (T.Q4_1, 64, [0, 2]),       # d, m
    "Q8_0": (T.Q8_0, 64, [0]),          # d
    "Q4_K": (T.Q4_K, 24, [0, 2]),       # d, dmin
    "Q5_K": (T.Q5_K, 24, [0, 2]),       # d, dmin
    "Q6_K": (T.Q6_K, 24, [208]),        # d (last two bytes of the block)
}
N_PLAIN = 2048  # values for F32 / F16 / BF16

CHECKPOINTS = [  # (file, where it is, as written into the JSON; its path here)
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf", fixtures.smollm2_gguf),
    ("stories260K.gguf", "tests/data/models/stories260K/stories260K.gguf.tar.xz", fixtures.stories260k_gguf),
]

# Finite fp16 bit patterns used for scale fields besides ordinary random scales.
SPECIAL_SCALES = [
    0x0000,  # +0
    0x8000,  # -0
    0x0001,  # smallest subnormal 2^-24
    0x8001,  # -2^-24
    0x03FF,  # largest subnormal
    0x8200,  # negative subnormal
    0x0400,  # smallest normal 2^-14
    0x0C00,  # tiny normal 2^-12
    0x3C00,  # 1.0
    0xB800,  # -0.5
    0x63D0,  # 1000
    0xE3D0,  # -1000
    0x7BFF,  # 65504, largest finite
    0xFBFF,  # -65504
]


def f16_bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def scale_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """n fp16 bit patterns: ~1/3 specials, the rest log-uniform magnitudes 1e-5..10, both signs."""
    mags = 10.0 ** rng.uniform(-5, 1, size=n)
    signs = np.where(rng.random(n) < 0.3, -1.0, 1.0)
    out = f16_bits(mags * signs)
    pick = rng.random(n) < 0.35
    out[pick] = rng.choice(np.array(SPECIAL_SCALES, dtype=np.uint16), size=int(pick.sum()))
    # put every special in at least once, at fixed places
    out[: len(SPECIAL_SCALES)] = SPECIAL_SCALES
    return out


def make_blocks(rng: np.random.Generator, qtype: T, n_blocks: int, scale_offsets: list[int]) -> np.ndarray:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for k, off in enumerate(scale_offsets):
        vals = scale_values(rng, n_blocks)
        if k == 1:
            vals = np.roll(vals, 5)  # pair different specials in d and m/dmin
        blocks[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    assert np.all(np.isfinite(blocks[:, scale_offsets[0]:scale_offsets[0] + 2].copy().view(np.float16)))
    return blocks


def make_f16(rng: np.random.Generator) -> np.ndarray:
    specials = [0x0000, 0x8000, 0x0001, 0x8001, 0x0002, 0x03FF, 0x83FF, 0x0200, 0x0400, 0x8400,
                0x3C00, 0xBC00, 0x3555, 0x7BFF, 0xFBFF, 0x7800, 0x7C00, 0xFC00,
                0x7E00, 0xFE00, 0x7C01, 0xFC01, 0x7D55, 0x7FFF, 0xFFFF, 0x7E01]
    subnormals = np.arange(0, 1024, 17, dtype=np.uint16)          # a sweep of subnormals
    exps = (np.arange(32, dtype=np.uint16) << 10) | 0x0155          # every exponent
    head = np.concatenate([np.array(specials, dtype=np.uint16), subnormals, subnormals | 0x8000, exps, exps | 0x8000])
    rest = rng.integers(0, 1 << 16, size=N_PLAIN - head.size, dtype=np.uint16)
    return np.concatenate([head, rest]).astype("<u2")


def make_bf16(rng: np.random.Generator) -> np.ndarray:
    specials = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x807F, 0x0080, 0x3F80, 0xBF80,
                0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0xFF81, 0x7FFF, 0xFFFF]
    exps = (np.arange(256, dtype=np.uint16) << 7) | 0x0035
    head = np.concatenate([np.array(specials, dtype=np.uint16), exps, exps | 0x8000])
    rest = rng.integers(0, 1 << 16, size=N_PLAIN - head.size, dtype=np.uint16)
    return np.concatenate([head, rest]).astype("<u2")


def make_f32(rng: np.random.Generator) -> np.ndarray:
    specials = [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000,
                0x3F800000, 0xBF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000,
                0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA00123, 0xFFFFFFFF]
    normal = (rng.standard_normal(512) * 0.05).astype(np.float32).view(np.uint32)
    head = np.concatenate([np.array(specials, dtype=np.uint32), normal])
    rest = rng.integers(0, 1 << 32, size=N_PLAIN - head.size, dtype=np.uint32)
    return np.concatenate([head, rest]).astype("<u4")


def write_pair(name: str, raw: np.ndarray, qtype: T) -> None:
    data = np.ascontiguousarray(raw).view(np.uint8)
    expected = dequantize(data, qtype)
    expected = np.ascontiguousarray(expected, dtype="<f4").reshape(-1)
    (OUT / f"{name}.blocks").write_bytes(data.tobytes())
    (OUT / f"{name}.f32").write_bytes(expected.tobytes())
    print(f"{name}: {data.size} bytes -> {expected.size} values")


def synthetic(rng: np.random.Generator) -> None:
    for name, (qtype, n_blocks, offs) in BLOCK_TYPES.items():
        write_pair(name, make_blocks(rng, qtype, n_blocks, offs), qtype)
    write_pair("F16", make_f16(rng), T.F16)
    write_pair("BF16", make_bf16(rng), T.BF16)
    write_pair("F32", make_f32(rng), T.F32)


def real_tensors() -> None:
    files = []
    for key, shown, where in CHECKPOINTS:
        full = where()
        entry = {"file": key, "path": shown, "present": full.exists()}
        lines = []
        if full.exists():
            entry["file_size"] = full.stat().st_size
            reader = gguf.GGUFReader(full)
            for t in reader.tensors:
                raw = np.ascontiguousarray(t.data)
                values = np.ascontiguousarray(dequantize(raw, t.tensor_type), dtype="<f4")
                assert values.size == t.n_elements
                rec = {
                    "name": t.name,
                    "type": t.tensor_type.name,
                    "type_code": int(t.tensor_type),
                    "shape": [int(x) for x in t.shape],
                    "n_elements": int(t.n_elements),
                    "offset": int(t.data_offset),
                    "raw_sha256": hashlib.sha256(raw.view(np.uint8).tobytes()).hexdigest(),
                    "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
                }
                lines.append(json.dumps(rec, separators=(",", ":")))
            print(f"{key}: {len(lines)} tensors")
        else:
            print(f"{key}: absent ({full}), listed without tensors", file=sys.stderr)
        head = json.dumps(entry, separators=(",", ":"))[:-1]
        body = ",\n".join("    " + ln for ln in lines)
        files.append(head + ',"tensors":[\n' + body + ("\n  " if lines else "") + "]}")
    doc = (
        "{\n"
        '"generator":"tests/reference/make_dequant_refs.py",\n'
        f'"gguf_version":"{version("gguf")}",\n'
        f'"numpy_version":"{np.__version__}",\n'
        '"files":[\n  ' + ",\n  ".join(files) + "\n]\n}\n"
    )
    json.loads(doc)  # must parse
    (OUT / "real_tensors.json").write_text(doc)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    synthetic(rng)
    real_tensors()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"tests/data/quant: {total} bytes")
    assert total < 256 * 1024, "keep tests/data/quant under 256 KiB"


if __name__ == "__main__":
    main()
