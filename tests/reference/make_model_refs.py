"""Generate independent logits references for headscope's C++ model runtime.

Python is used here only to produce reference data; nothing at runtime depends
on it. Everything is computed with HF `transformers` (fp32, eager attention),
which is independent of headscope's own loaders and kernels.

What it writes (into tests/data/models/, relative to the repo root):

1. Tiny randomly initialised HF checkpoints, one folder each, every folder
   holding `config.json`, `model.safetensors` (or a sharded set with
   `model.safetensors.index.json` for `llama_sharded`) and `reference.json`:
       llama, llama_tied_rope_llama3, llama_rope_linear, llama_rope_yarn,
       mistral, qwen2, qwen3, gpt2, gpt_neox, gpt_neox_seq, llama_sharded
   and two 700-token references across attention-block edges (reference_long.json):
       mistral_window (sliding window 5), llama_long (full causal)
   Weights are re-randomised after init (fixed seed) so every tensor matters:
   matrices ~ N(0, 1/fan_in), embeddings ~ N(0, 0.5^2), biases ~ N(0, 0.1^2),
   norm weights ~ 1 + N(0, 0.1^2).
   `reference.json` = {"input_ids": [...], "logits": [[vocab floats] per
   position], "transformers_version", "torch_version", "config_format",
   "rope_inv_freq", "rope_attention_scaling"} -- floats printed with 9
   significant digits (exact round-trip of fp32).
   Some config.json files are rewritten into the legacy (transformers 4.x /
   typical hub) layout -- `rope_theta` + `rope_scaling` (or `rotary_pct` +
   `rotary_emb_base` for GPT-NeoX) -- while others keep transformers 5.x's
   `rope_parameters` layout, so a loader is exercised on both. Every folder is
   reloaded from disk with transformers and must reproduce the in-memory
   logits exactly, proving the rewritten config means the same thing.

2. References for real GGUF models, loaded with transformers' own GGUF reader
   and dequantiser (`from_pretrained(dir, gguf_file=..., dtype=float32)`):
     stories260k_reference.json  full 512-vocab logits at each of 24 positions
                                 (BOS + "Once upon a time" + greedy tokens),
                                 plus a 30-token greedy continuation string.
     smollm2_reference.json      top-5 ids/logits per position for an English
                                 paragraph (~40 tokens, no BOS).

How to rerun (CPU is enough, takes about a minute):
    /opt/refvenv/bin/pip install torch transformers accelerate gguf
    /opt/refvenv/bin/python tests/reference/make_model_refs.py
Optional environment overrides:
    STORIES260K_GGUF  (default: the committed tests/data/models/stories260K/stories260K.gguf.tar.xz)
    SMOLLM2_GGUF      (default ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf)
A GGUF that is missing is skipped with a message. Generated with
transformers 5.23.0 / torch 2.15.0; other versions may differ in the last bits.
"""

import json
import math
import os
import shutil
import sys
from pathlib import Path

import fixtures  # noqa: E402  (tests/reference/fixtures.py: paths to the committed fixtures)

import numpy as np
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
    Qwen3Config,
)
from transformers.pytorch_utils import Conv1D

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "data" / "models"
MAX_BYTES = 256 * 1024
STORIES = Path(os.environ.get("STORIES260K_GGUF") or fixtures.stories260k_gguf())
SMOLLM2 = Path(os.environ.get("SMOLLM2_GGUF", str(Path.home() / ".cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf")))

torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
VERSIONS = {"transformers_version": transformers.__version__, "torch_version": torch.__version__}


# ----------------------------------------------------------------------------- helpers
def f9(x):
    """fp32 value -> Python float printed with <= 9 significant digits (exact fp32 round trip)."""
    return float(f"{float(x):.9g}")


def dump_json(path, obj):
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return len(text) + 1


def folder_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@torch.no_grad()
def logits_of(model, ids):
    return model(torch.tensor([ids], dtype=torch.long)).logits[0].float()


def rope_info(model):
    """inv_freq / attention scaling actually used by the model (debug aid for the C++ side)."""
    for _, mod in model.named_modules():
        if hasattr(mod, "inv_freq") and hasattr(mod, "attention_scaling"):
            return [f9(v) for v in mod.inv_freq.tolist()], f9(mod.attention_scaling)
    return None, None


@torch.no_grad()
def randomise(model, seed):
    """Re-draw every parameter so that no tensor is a no-op (norm weights != 1, biases != 0)."""
    g = torch.Generator().manual_seed(seed)
    conv1d = {n for n, m in model.named_modules() if isinstance(m, Conv1D)}
    seen = set()
    for name, p in model.named_parameters():  # tied params are yielded once
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        mod = name.rsplit(".", 1)[0]
        if p.dim() == 1:
            is_norm = any(k in name for k in ("norm", "ln_", "layernorm")) and name.endswith("weight")
            p.copy_((1.0 if is_norm else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
        elif any(k in name for k in ("embed_tokens", "wte", "wpe", "embed_in")):
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
        else:
            fan_in = p.shape[0] if mod in conv1d else p.shape[1]
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))


def make_ids(vocab, seed, n_unique=11, repeat=slice(1, 6)):
    """12-16 distinct-ish ids with a repeated span (exercises induction-like attention)."""
    rng = np.random.default_rng(seed)
    base = rng.choice(np.arange(3, vocab), size=n_unique, replace=False).tolist()
    return base + base[repeat]


# ----------------------------------------------------------------------------- config layouts
def to_legacy(cfg_dict, rope_scaling_type_key="rope_type"):
    """Rewrite transformers-5 `rope_parameters` into the transformers-4 / hub layout."""
    d = dict(cfg_dict)
    rp = dict(d.pop("rope_parameters"))
    theta = rp.pop("rope_theta")
    if d["model_type"] == "gpt_neox":
        d["rotary_emb_base"] = theta
        d["rotary_pct"] = rp.pop("partial_rotary_factor")
    else:
        d["rope_theta"] = theta
    rtype = rp.pop("rope_type")
    if rtype == "default":
        d["rope_scaling"] = None
    else:
        d["rope_scaling"] = {rope_scaling_type_key: rtype, **rp}
    return dict(sorted(d.items()))


def common_llama(**kw):
    base = dict(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
        rms_norm_eps=1e-5, hidden_act="silu", bos_token_id=1, eos_token_id=2,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    base.update(kw)
    return base


SPECS = [
    # name, config class, kwargs, layout ("legacy" / "legacy_type" / "v5"), seed
    ("llama", LlamaConfig, common_llama(), "legacy", 1),
    ("llama_tied_rope_llama3", LlamaConfig, common_llama(
        vocab_size=112, tie_word_embeddings=True, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}), "legacy", 2),
    ("llama_rope_linear", LlamaConfig, common_llama(
        vocab_size=100, rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}),
     "legacy_type", 3),
    ("llama_rope_yarn", LlamaConfig, common_llama(
        vocab_size=104, rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                         "original_max_position_embeddings": 32}), "v5", 4),
    ("mistral", MistralConfig, dict(
        vocab_size=120, hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=256, rms_norm_eps=1e-5, sliding_window=None,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), "legacy", 5),
    ("qwen2", Qwen2Config, dict(
        vocab_size=116, hidden_size=32, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
        use_sliding_window=False, sliding_window=None, max_window_layers=2, bos_token_id=1, eos_token_id=2,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), "legacy", 6),
    ("qwen3", Qwen3Config, dict(
        vocab_size=96, hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-6,
        tie_word_embeddings=True, attention_bias=False, use_sliding_window=False, sliding_window=None,
        max_window_layers=2, bos_token_id=1, eos_token_id=2,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), "v5", 7),
    ("gpt2", GPT2Config, dict(
        vocab_size=128, n_embd=32, n_head=4, n_layer=2, n_positions=64, n_inner=None,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        bos_token_id=0, eos_token_id=0), "asis", 8),
    ("gpt_neox", GPTNeoXConfig, dict(
        vocab_size=128, hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=128, layer_norm_eps=1e-5, hidden_act="gelu", use_parallel_residual=True,
        attention_bias=True, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}),
     "legacy", 9),
    ("gpt_neox_seq", GPTNeoXConfig, dict(
        vocab_size=112, hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=128, layer_norm_eps=1e-5, hidden_act="gelu", use_parallel_residual=False,
        attention_bias=True, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
     "v5", 10),
]


def build(cls, kw, seed):
    torch.manual_seed(seed)
    cfg = cls(**kw)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    randomise(model, 1000 + seed)
    return model.eval()


def save_checkpoint(model, folder, layout, **save_kw):
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder, **save_kw)  # transformers 5 always writes safetensors
    (folder / "generation_config.json").unlink(missing_ok=True)
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("dtype", None)
    cfg["torch_dtype"] = "float32"
    if layout == "legacy":
        cfg = to_legacy(cfg)
    elif layout == "legacy_type":
        cfg = to_legacy(cfg, rope_scaling_type_key="type")
    cfg_path.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")


def reload(folder):
    m = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
    return m.eval()


def write_reference(folder, ids, logits, layout, model):
    inv_freq, att = rope_info(model)
    ref = {
        "input_ids": ids,
        "logits": [[f9(v) for v in row] for row in logits.tolist()],
        **VERSIONS,
        "config_format": {"legacy": "legacy rope_theta/rope_scaling (transformers 4.x / hub)",
                          "legacy_type": "legacy rope_theta/rope_scaling with old 'type' key",
                          "v5": "transformers 5.x rope_parameters",
                          "asis": "as saved (no rope)"}[layout],
        "rope_inv_freq": inv_freq,
        "rope_attention_scaling": att,
    }
    dump_json(folder / "reference.json", ref)


def tiny_models():
    llama_model = llama_ids = None
    for name, cls, kw, layout, seed in SPECS:
        model = build(cls, kw, seed)
        vocab = model.config.vocab_size
        ids = make_ids(vocab, seed, n_unique=11 if seed % 2 else 9)
        want = logits_of(model, ids)
        folder = OUT / name
        save_checkpoint(model, folder, layout)
        got = logits_of(reload(folder), ids)
        diff = (got - want).abs().max().item()
        assert diff == 0.0, f"{name}: reloaded checkpoint differs by {diff}"
        write_reference(folder, ids, got, layout, model)

        # Sensitivity checks: show that the config features actually move the logits.
        notes = [f"logit std {got.std().item():.3f}", f"argmax {got.argmax(-1).tolist()}"]
        rp = getattr(model.config, "rope_parameters", None) or {}
        if rp.get("rope_type", "default") != "default":
            plain_kw = dict(kw, rope_parameters={"rope_type": "default", "rope_theta": rp["rope_theta"]})
            plain = build(cls, plain_kw, seed)
            plain.load_state_dict(model.state_dict())
            notes.append(f"max |diff| vs unscaled rope {(logits_of(plain, ids) - got).abs().max().item():.4f}")
        saved = {}
        from safetensors import safe_open
        for f in sorted(folder.glob("*.safetensors")):
            with safe_open(f, "pt") as sf:
                saved.update({k: tuple(sf.get_slice(k).get_shape()) for k in sf.keys()})
        print(f"[{name}] ids={ids}\n   tensors={len(saved)} lm_head stored={'lm_head.weight' in saved or 'embed_out.weight' in saved}"
              f" size={folder_size(folder)}B  " + "; ".join(notes))
        if name == "llama":
            llama_model, llama_ids, llama_logits = model, ids, got

    # Same llama weights, saved as several shards with an index.
    folder = OUT / "llama_sharded"
    save_checkpoint(llama_model, folder, "legacy", max_shard_size="40KB")
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert (folder / "model.safetensors.index.json").exists() and len(shards) >= 2, shards
    got = logits_of(reload(folder), llama_ids)
    assert (got - llama_logits).abs().max().item() == 0.0
    write_reference(folder, llama_ids, got, "legacy", llama_model)
    print(f"[llama_sharded] shards={shards} size={folder_size(folder)}B")


# ----------------------------------------------------------------------------- GGUF models
def patch_gguf_null_token_ids():
    """Old GGUFs store 'no token' as 0xFFFFFFFF (llama.cpp's LLAMA_TOKEN_NULL), e.g. stories260K's
    padding/separator ids; transformers' tokenizer conversion would index the vocab with it. Drop those
    keys, matching llama.cpp's meaning of the value."""
    import transformers.integrations.gguf as tg
    import transformers.integrations.gguf.reader as tgr

    orig = tgr.read_gguf_metadata
    if getattr(orig, "_headscope_patched", False):
        return

    def patched(*a, **k):
        md, names = orig(*a, **k)
        for key in [k for k in md if k.startswith("tokenizer.ggml.") and k.endswith("_token_id")]:
            try:
                if int(md[key]) >= 2**31:
                    del md[key]
            except (TypeError, ValueError):
                pass
        return md, names

    patched._headscope_patched = True
    tgr.read_gguf_metadata = patched
    tg.read_gguf_metadata = patched


def load_gguf(path):
    patch_gguf_null_token_ids()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    cfg = AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    if cfg.pad_token_id is not None and not (0 <= cfg.pad_token_id < cfg.vocab_size):
        cfg.pad_token_id = None  # 0xFFFFFFFF == "none" in GGUF
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, config=cfg, dtype=torch.float32, attn_implementation="eager")
    return tok, model.eval()


@torch.no_grad()
def greedy(model, ids, n):
    out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, min_new_tokens=n)
    return out[0].tolist()


def stories260k():
    if not STORIES.exists():
        print(f"skip stories260K: {STORIES} missing")
        return
    tok, model = load_gguf(STORIES)
    prompt = "Once upon a time"
    ids = [1] + tok(prompt, add_special_tokens=False).input_ids
    print("[stories260k] prompt ids", ids, tok.convert_ids_to_tokens(ids))
    full = greedy(model, ids, 30)
    text = tok.decode(full, skip_special_tokens=True)
    known = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
    print(f"[stories260k] greedy: {text!r}  matches known answer: {text.startswith(known)}")
    assert text.startswith(known), "stories260K greedy continuation differs from the known answer"
    seq = full[:24]
    logits = logits_of(model, seq)
    assert logits.argmax(-1)[len(ids) - 1:-1].tolist() == seq[len(ids):], "greedy tokens != argmax"
    path = OUT / "stories260k_reference.json"
    n = dump_json(path, {
        "model": "stories260K.gguf", "prompt": prompt, "prompt_len": len(ids), "input_ids": seq,
        "logits": [[f9(v) for v in row] for row in logits.tolist()],
        "greedy": text, "greedy_ids": full, "greedy_new_tokens": 30, **VERSIONS})
    print(f"[stories260k] wrote {path.name} ({n}B)")


def check_dequant_independently(path, model):
    """Cross-check transformers' dequantised weights against gguf-py's dequantiser (and the q/k un-permute)."""
    try:
        import gguf
        from gguf.quants import dequantize
    except ImportError:
        print("   (gguf-py not installed; skipping independent dequant check)")
        return
    r = gguf.GGUFReader(str(path))
    t = {x.name: x for x in r.tensors}
    sd = model.state_dict()
    cfg = model.config

    def deq(name):
        x = t[name]
        return torch.from_numpy(np.array(dequantize(x.data, x.tensor_type), dtype=np.float32))

    def unpermute(w, n_head):  # inverse of llama.cpp convert_hf_to_gguf's permute()
        return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    checks = {
        "model.embed_tokens.weight": deq("token_embd.weight"),
        "model.layers.0.mlp.down_proj.weight": deq("blk.0.ffn_down.weight"),
        "model.layers.0.self_attn.q_proj.weight": unpermute(deq("blk.0.attn_q.weight"), cfg.num_attention_heads),
        "model.layers.0.self_attn.k_proj.weight": unpermute(deq("blk.0.attn_k.weight"), cfg.num_key_value_heads),
        "model.layers.0.self_attn.v_proj.weight": deq("blk.0.attn_v.weight"),
    }
    for k, v in checks.items():
        print(f"   dequant check {k}: max|transformers - gguf-py| = {(sd[k] - v).abs().max().item():.3g}")


def smollm2():
    if not SMOLLM2.exists():
        print(f"skip SmolLM2: {SMOLLM2} missing")
        return
    tok, model = load_gguf(SMOLLM2)
    check_dequant_independently(SMOLLM2, model)
    text = ("The old lighthouse stood at the edge of the cliff, and every night its keeper climbed the narrow "
            "stairs to light the lamp. Sailors far out at sea relied on its steady beam to guide them safely "
            "home.")
    ids = tok(text).input_ids
    assert ids and ids[0] != 1, "SmolLM2 should not get a BOS (add_bos_token is false)"
    logits = logits_of(model, ids)
    top = logits.topk(5, dim=-1)
    nxt = [tok.decode([i]) for i in top.indices[:, 0].tolist()]
    print(f"[smollm2] {len(ids)} tokens; greedy next token per position:")
    print("   " + " | ".join(f"{tok.decode([a])!r}->{b!r}" for a, b in zip(ids, nxt)))
    cont = greedy(model, ids, 12)[len(ids):]
    print(f"[smollm2] greedy continuation: {tok.decode(cont)!r}")
    path = OUT / "smollm2_reference.json"
    n = dump_json(path, {
        "model": SMOLLM2.name, "prompt": text, "add_bos": False, "input_ids": ids,
        "top5_ids": top.indices.tolist(), "top5_logits": [[f9(v) for v in row] for row in top.values.tolist()],
        "greedy_next_text": nxt, "greedy_continuation_ids": cont, **VERSIONS})
    print(f"[smollm2] wrote {path.name} ({n}B)")


LONG_T = 700
LONG_POSITIONS = [0, 1, 5, 254, 255, 256, 257, 300, 511, 512, 513, 600, LONG_T - 1]


def long_sequences():
    """Sequences longer than one attention block (so blocked/tiled kernels are exercised across block edges),
    with and without a sliding window. Logits are kept only at LONG_POSITIONS to stay small:
    <folder>/reference_long.json = {"input_ids": [700 ids], "positions": [...], "logits": [[vocab] per position]}."""
    base = dict(vocab_size=120, hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, max_position_embeddings=1024, rms_norm_eps=1e-5,
                tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    for name, window, seed in (("mistral_window", 5, 11), ("llama_long", None, 12)):
        model = build(MistralConfig, dict(base, sliding_window=window), seed)
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, model.config.vocab_size, (LONG_T,), generator=g).tolist()
        folder = OUT / name
        save_checkpoint(model, folder, "legacy")
        logits = logits_of(reload(folder), ids)
        dump_json(folder / "reference_long.json", {
            "input_ids": ids, "positions": LONG_POSITIONS, "sliding_window": window,
            "logits": [[f9(v) for v in logits[p].tolist()] for p in LONG_POSITIONS], **VERSIONS})
        print(f"[{name}] T={LONG_T} window={window} size={folder_size(folder)}B")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    print(VERSIONS)
    if "--long-only" in sys.argv:
        return long_sequences()
    tiny_models()
    long_sequences()
    stories260k()
    smollm2()
    bad = [str(p) for p in OUT.rglob("*") if p.is_file() and p.stat().st_size > MAX_BYTES]
    bad += [str(p) for p in OUT.iterdir() if p.is_dir() and folder_size(p) > MAX_BYTES]
    if bad:
        sys.exit(f"over {MAX_BYTES} bytes: {bad}")


if __name__ == "__main__":
    main()
