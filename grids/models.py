"""Models: Hugging Face ``config.json`` files in ``grids/models/``, loaded into ModelSpec.

Adding a model is dropping its config.json there as ``<key>.json`` (and a line in SOURCES.toml).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grids._values import float64_leaves, number
from grids.errors import SpecError
from kernels.specs import DENSE_DEFAULTS, ModelSpec

MODELS_DIR = Path(__file__).parent / "models"

EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")
"""config.json fields giving the routed experts of a MoE layer (Mixtral, Llama 4 and gpt-oss;
Qwen-MoE; DeepSeek)."""

QKV_BIAS_MODEL_TYPES = ("qwen2",)
"""Architectures whose q, k, v projections always carry biases (not stated in config.json)."""

QK_NORM_MODEL_TYPES = ("qwen3", "qwen3_moe", "gemma3_text", "gemma3")
"""Architectures with an RMSNorm scale of width head_dim on q and on k (not stated in config.json);
Llama 4's ``use_qk_norm`` is a parameter-free L2 norm and adds nothing."""

NORMS_PER_LAYER = {"gemma3_text": 4.0, "gemma3": 4.0}
"""RMSNorm vectors per block where not 2: Gemma 3 norms before and after attention and the MLP."""

MODEL_TYPE_DEFAULTS = {
    "gemma3_text": {
        "vocab_size": 262208,
        "tie_word_embeddings": True,
        "sliding_window_pattern": 6,
        "max_position_embeddings": 131072,
    },
}
"""Values a config.json may leave out, from the transformers configuration class's defaults
(``Gemma3TextConfig``: vocab_size 262208, tie_word_embeddings True, sliding_window_pattern 6,
max_position_embeddings 131072;
see grids/models/SOURCES.toml). ``ModelEntry.defaults`` lists the ones a model took."""

LLAMA4_NOPE_INTERVAL = 4
"""Llama 4: every 4th layer is a NoPE layer with global attention; the others use chunked
attention over ``attention_chunk_size`` tokens (transformers ``Llama4TextConfig``,
no_rope_layer_interval 4), counted here as a sliding window of that size."""


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue model: its key, where it came from, and its spec."""

    key: str
    path: Path
    config: dict[str, Any]
    spec: ModelSpec
    defaults: dict[str, Any]  # config fields absent from the file, filled from MODEL_TYPE_DEFAULTS


def model_keys() -> list[str]:
    """Catalogue keys of the models shipped in grids/models/, sorted."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def _text_config(where: str, config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise SpecError(f"{where}: expected a JSON object (a Hugging Face config.json)")
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config


def _with_defaults(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    filled = {k: v for k, v in MODEL_TYPE_DEFAULTS.get(str(cfg.get("model_type")), {}).items() if k not in cfg}
    return {**cfg, **filled}, filled


def _count(where: str, cfg: dict[str, Any], key: str) -> float:
    return number(where, cfg, key, integer=True)


def _moe_fields(where: str, cfg: dict[str, Any], n_layers: float) -> dict[str, float]:
    """Experts, their sizes and which layers are MoE, by config family."""
    key = next((k for k in EXPERT_KEYS if cfg.get(k)), None)
    if key is None:
        return {}
    n_experts = _count(where, cfg, key)
    if "num_experts_per_tok" not in cfg and "experts_per_token" not in cfg:
        raise SpecError(f"{where}: a mixture-of-experts config ('{key}') needs 'num_experts_per_tok'")
    top_k = _count(where, cfg, "num_experts_per_tok" if "num_experts_per_tok" in cfg else "experts_per_token")
    if top_k > n_experts:
        raise SpecError(f"{where}: num_experts_per_tok {top_k:g} exceeds the {n_experts:g} experts")
    expert = _count(where, cfg, "moe_intermediate_size" if "moe_intermediate_size" in cfg else "intermediate_size")
    layers = range(int(n_layers))
    if "first_k_dense_replace" in cfg:  # DeepSeek: dense first layers, then MoE every moe_layer_freq
        freq = int(cfg.get("moe_layer_freq", 1))
        moe = [i for i in layers if i >= cfg["first_k_dense_replace"] and i % freq == 0]
    elif "decoder_sparse_step" in cfg:  # Qwen-MoE
        step, dense = int(cfg["decoder_sparse_step"]), set(cfg.get("mlp_only_layers") or [])
        moe = [i for i in layers if i not in dense and (i + 1) % step == 0]
    elif "interleave_moe_layer_step" in cfg:  # Llama 4
        step = int(cfg["interleave_moe_layer_step"])
        moe = cfg.get("moe_layers") or list(range(step - 1, int(n_layers), step))
    else:  # Mixtral, gpt-oss: every layer
        moe = list(layers)
    shared = 0.0
    if "n_shared_experts" in cfg:  # DeepSeek: shared experts of the routed experts' width
        shared = float(cfg.get("n_shared_experts") or 0) * expert
    elif cfg.get("shared_expert_intermediate_size"):  # Qwen2-MoE
        shared = _count(where, cfg, "shared_expert_intermediate_size")
    elif cfg.get("model_type") == "llama4_text":  # one shared expert of intermediate_size
        shared = expert
    return dict(
        n_experts=n_experts,
        experts_per_token=top_k,
        d_ffn_expert=expert,
        d_ffn_shared=shared,
        n_moe_layers=float(len(moe)),
        expert_bias=float(cfg.get("model_type") == "gpt_oss"),
        router_bias=float(cfg.get("model_type") == "gpt_oss" or cfg.get("topk_method") == "noaux_tc"),
    )


def _mla_fields(where: str, cfg: dict[str, Any]) -> dict[str, float]:
    """Multi-head latent attention (DeepSeek-V2/V3); the multi-token-prediction module
    (num_nextn_predict_layers) is not part of the served model and is ignored."""
    if not cfg.get("kv_lora_rank"):
        return {}
    return dict(
        kv_lora_rank=_count(where, cfg, "kv_lora_rank"),
        q_lora_rank=float(cfg.get("q_lora_rank") or 0),
        qk_rope_head_dim=_count(where, cfg, "qk_rope_head_dim"),
        qk_nope_head_dim=_count(where, cfg, "qk_nope_head_dim"),
        v_head_dim=_count(where, cfg, "v_head_dim"),
    )


def _window_fields(where: str, cfg: dict[str, Any], n_layers: float) -> dict[str, float]:
    """Sliding-window layers: gpt-oss's layer_types, Gemma 3's pattern (every 6th layer global),
    Llama 4's chunked attention (every 4th layer global), or a window on every layer (Mistral v0.1)."""
    if cfg.get("attention_chunk_size"):
        window = _count(where, cfg, "attention_chunk_size")
        return dict(window=window, n_window_layers=n_layers - n_layers // LLAMA4_NOPE_INTERVAL)
    if not cfg.get("sliding_window") or cfg.get("use_sliding_window") is False:
        return {}
    window = _count(where, cfg, "sliding_window")
    if isinstance(cfg.get("layer_types"), list):
        count = float(sum(t == "sliding_attention" for t in cfg["layer_types"]))
    elif cfg.get("sliding_window_pattern"):
        count = n_layers - n_layers // _count(where, cfg, "sliding_window_pattern")
    else:
        count = n_layers
    return dict(window=window, n_window_layers=count)


def _spec_and_defaults(where: str, config: dict[str, Any]) -> tuple[ModelSpec, dict[str, Any]]:
    cfg, filled = _with_defaults(_text_config(where, config))
    d_model = number(where, cfg, "hidden_size", integer=True)
    n_heads = number(where, cfg, "num_attention_heads", integer=True)
    n_kv = number(where, cfg, "num_key_value_heads", integer=True) if "num_key_value_heads" in cfg else n_heads
    d_head = number(where, cfg, "head_dim", integer=True) if cfg.get("head_dim") else d_model / n_heads
    mla = _mla_fields(where, cfg)
    if mla:  # the q/k width of one head (d_head is not used by MLA's formulas)
        d_head = mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]
    if d_head != int(d_head):
        raise SpecError(
            f"{where}: hidden_size {d_model:g} is not a multiple of num_attention_heads "
            f"{n_heads:g}; expected a 'head_dim' field"
        )
    if n_heads % n_kv:
        raise SpecError(f"{where}: num_attention_heads {n_heads:g} must be a multiple of num_key_value_heads {n_kv:g}")
    tied = cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
    if not isinstance(tied, bool):
        raise SpecError(f"{where}: field 'tie_word_embeddings' must be true or false")
    model_type = cfg.get("model_type")
    bias = cfg.get("attention_bias", model_type in QKV_BIAS_MODEL_TYPES)
    n_layers = number(where, cfg, "num_hidden_layers", integer=True)
    # Llama 4: intermediate_size is the experts' width, intermediate_size_mlp the dense layers'.
    ffn_key = "intermediate_size_mlp" if "intermediate_size_mlp" in cfg else "intermediate_size"
    values = dict(DENSE_DEFAULTS)
    values.update(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        d_head=d_head,
        d_ffn=number(where, cfg, ffn_key, integer=True),
        vocab=number(where, cfg, "vocab_size", integer=True),
        tied_embeddings=float(tied),
        qkv_bias=float(bool(bias)),
        n_norms=NORMS_PER_LAYER.get(str(model_type), 2.0),
        qk_norm=float(model_type in QK_NORM_MODEL_TYPES and not mla),
    )
    values.update(_moe_fields(where, cfg, n_layers))
    values.update(mla)
    values.update(_window_fields(where, cfg, n_layers))
    # the context the model was trained for: prompt + output beyond it cannot run
    if cfg.get("max_position_embeddings") is not None:
        values["max_context"] = number(where, cfg, "max_position_embeddings", integer=True)
    spec = float64_leaves(ModelSpec, values)
    return spec, filled


def load_model(key_or_path: str) -> ModelEntry:
    """A catalogue key (``llama-3.3-70b``) or a path to a config.json."""
    path = Path(key_or_path)
    if path.suffix != ".json":
        path = MODELS_DIR / f"{key_or_path}.json"
        if not path.exists():
            raise SpecError(
                f"unknown model '{key_or_path}'; expected a path to a config.json or one of: {', '.join(model_keys())}"
            )
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid JSON ({err})") from None
    spec, filled = _spec_and_defaults(str(path), config)
    return ModelEntry(path.stem, path, config, spec, filled)
