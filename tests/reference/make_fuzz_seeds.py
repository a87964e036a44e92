"""Writes the seed corpus for the libFuzzer targets (tests/data/fuzz/{gguf,safetensors}/): small valid files
that reach every branch of the parsers, written with the PyPI `gguf` and `safetensors` packages.
Rerun: python3 tests/reference/make_fuzz_seeds.py   (needs: pip install gguf safetensors numpy)"""
import os
import numpy as np
import gguf
from safetensors.numpy import save_file

root = os.path.join(os.path.dirname(__file__), "..", "data", "fuzz")
os.makedirs(f"{root}/gguf", exist_ok=True)
os.makedirs(f"{root}/safetensors", exist_ok=True)
rng = np.random.default_rng(0)

# GGUF: every metadata value type, a small byte-level vocabulary, and tensors of several storage types.
w = gguf.GGUFWriter(f"{root}/gguf/seed_llama.gguf", "llama")
w.add_block_count(1); w.add_context_length(64); w.add_embedding_length(32); w.add_feed_forward_length(64)
w.add_head_count(4); w.add_head_count_kv(2); w.add_layer_norm_rms_eps(1e-5); w.add_rope_dimension_count(8)
w.add_uint8("seed.u8", 7); w.add_int16("seed.i16", -3); w.add_float64("seed.f64", 0.5); w.add_bool("seed.b", True)
w.add_array("seed.arr", [1, 2, 3])
w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("smollm")
toks = ["H", "e", "l", "o", ",", " ", "w", "r", "d", "!", "1", "2", "3", "He", "ll", "llo", "<|s|>"]
w.add_token_list(toks); w.add_token_types([1] * 16 + [3]); w.add_token_merges(["H e", "l l", "ll o"])
w.add_bos_token_id(16)
w.add_tensor("token_embd.weight", rng.standard_normal((17, 32), dtype=np.float32))
w.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(rng.standard_normal((32, 32), dtype=np.float32), gguf.GGMLQuantizationType.Q8_0),
             raw_dtype=gguf.GGMLQuantizationType.Q8_0)
w.add_tensor("blk.0.attn_k.weight", rng.standard_normal((16, 32)).astype(np.float16))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

w = gguf.GGUFWriter(f"{root}/gguf/seed_spm.gguf", "llama")
w.add_tokenizer_model("llama")
toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581", "a", "b", "\u2581a", "ab"]
w.add_token_list(toks); w.add_token_scores([0.0] * 259 + [-1.0, -2.0, -2.0, -0.5, -0.7])
w.add_token_types([2, 3, 3] + [6] * 256 + [1] * 5)
w.add_tensor("t", np.arange(8, dtype=np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

save_file({"a": rng.standard_normal((2, 3), dtype=np.float32), "b": np.arange(4, dtype=np.float16)},
          f"{root}/safetensors/seed.safetensors", metadata={"format": "pt"})
for d in ("gguf", "safetensors"):
    for f in sorted(os.listdir(f"{root}/{d}")):
        print(d, f, os.path.getsize(f"{root}/{d}/{f}"))
