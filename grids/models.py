"""Models: Hugging Face ``config.json`` files in ``grids/models/``, loaded into ModelSpec.

Adding a model is dropping its config.json there as ``<key>.json`` (and a line in SOURCES.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grids._values import float64_leaves, number, shorten
from grids.errors import SpecError
from grids.files import is_file, read_json
from kernels.params import param_counts
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


LIMITS = {
    "hidden_size": 2**20,
    "num_attention_heads": 2**14,
    "num_key_value_heads": 2**14,
    "head_dim": 2**14,
    "num_hidden_layers": 2**14,
    "intermediate_size": 2**22,
    "intermediate_size_mlp": 2**22,
    "moe_intermediate_size": 2**22,
    "shared_expert_intermediate_size": 2**22,
    "vocab_size": 2**24,
    "num_local_experts": 2**16,
    "num_experts": 2**16,
    "n_routed_experts": 2**16,
    "num_experts_per_tok": 2**16,
    "experts_per_token": 2**16,
    "n_shared_experts": 2**10,
    "kv_lora_rank": 2**20,
    "q_lora_rank": 2**20,
    "qk_rope_head_dim": 2**14,
    "qk_nope_head_dim": 2**14,
    "v_head_dim": 2**14,
    "sliding_window": 2**32,
    "attention_chunk_size": 2**32,
    "max_position_embeddings": 2**32,
    "sliding_window_pattern": 2**14,
    "decoder_sparse_step": 2**14,
    "moe_layer_freq": 2**14,
    "interleave_moe_layer_step": 2**14,
    "first_k_dense_replace": 2**14,
}
"""Plausible maximum of each config.json number read: 16 to 1000 times the largest published
value (hidden_size 16,384 and 126 layers in Llama 3.1 405B, 262,208 tokens of Gemma 3's vocabulary,
256 routed experts in DeepSeek-V3, a 10M-token context in Llama 4 Scout). A value beyond is a typo
or a unit slip (1e300, 1e15 layers), refused before it reaches the arithmetic."""

MAX_PARAMETERS = 1e14
"""Most parameters of a model accepted: 50 times the largest published one (about 2e12); counts
below it stay exact in float64 (2**53 = 9.0e15)."""

LAYER_TYPES = ("full_attention", "sliding_attention")
"""Entries of a config's ``layer_types`` list (gpt-oss): global or sliding-window attention."""


def _text_config(where: str, config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise SpecError(f"{where}: expected a JSON object (a Hugging Face config.json)")
    inner = config.get("text_config")
    if inner is not None and not isinstance(inner, dict):
        raise SpecError(f"{where}: field 'text_config' must be an object, got {type(inner).__name__}")
    return inner if isinstance(inner, dict) else config


def _with_defaults(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    filled = {k: v for k, v in MODEL_TYPE_DEFAULTS.get(str(cfg.get("model_type")), {}).items() if k not in cfg}
    return {**cfg, **filled}, filled


def _count(where: str, cfg: dict[str, Any], key: str, minimum: float = 1.0) -> float:
    """A whole-number field from ``minimum`` (1 unless 0 means something) to its plausible maximum."""
    return number(where, cfg, key, positive=minimum > 0, integer=True, minimum=minimum, maximum=LIMITS.get(key))


def _given(cfg: dict[str, Any], key: str) -> bool:
    """Whether an optional field is set: present and not null (Hugging Face writes null for unset)."""
    return cfg.get(key) is not None


def _flag(where: str, cfg: dict[str, Any], key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(f"{where}: field '{key}' must be true or false, got {shorten(value)}")
    return value


def _layer_list(where: str, cfg: dict[str, Any], key: str, n_layers: float) -> list[int]:
    """A list of distinct layer indices, each in [0, num_hidden_layers)."""
    value = [] if cfg.get(key) is None else cfg[key]
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise SpecError(f"{where}: field '{key}' must be a list of layer indices (whole numbers)")
    outside = [i for i in value if not 0 <= i < n_layers]
    if outside:
        raise SpecError(
            f"{where}: field '{key}' names layer {shorten(outside[0])}, beyond the {n_layers:g} layers "
            f"(indices 0 to {n_layers - 1:g})"
        )
    if len(set(value)) != len(value):
        raise SpecError(f"{where}: field '{key}' lists a layer twice")
    return value


def _moe_layers(where: str, cfg: dict[str, Any], n_layers: float) -> list[int]:
    """Which layers are MoE, by config family."""
    layers = range(int(n_layers))
    if "first_k_dense_replace" in cfg:  # DeepSeek: dense first layers, then MoE every moe_layer_freq
        first = _count(where, cfg, "first_k_dense_replace", minimum=0)
        if first > n_layers:
            raise SpecError(f"{where}: first_k_dense_replace {first:g} exceeds the {n_layers:g} layers")
        freq = _count(where, cfg, "moe_layer_freq") if _given(cfg, "moe_layer_freq") else 1
        return [i for i in layers if i >= first and i % freq == 0]
    if "decoder_sparse_step" in cfg:  # Qwen-MoE
        step = _count(where, cfg, "decoder_sparse_step")
        dense = set(_layer_list(where, cfg, "mlp_only_layers", n_layers))
        return [i for i in layers if i not in dense and (i + 1) % step == 0]
    if "interleave_moe_layer_step" in cfg:  # Llama 4
        step = _count(where, cfg, "interleave_moe_layer_step")
        if _given(cfg, "moe_layers") and cfg["moe_layers"] != []:
            return _layer_list(where, cfg, "moe_layers", n_layers)
        return list(range(int(step) - 1, int(n_layers), int(step)))
    return list(layers)  # Mixtral, gpt-oss: every layer


def _moe_fields(where: str, cfg: dict[str, Any], n_layers: float) -> dict[str, float]:
    """Experts, their sizes and which layers are MoE, by config family."""
    key = next((k for k in EXPERT_KEYS if cfg.get(k) is not None and cfg.get(k) != 0), None)
    if key is None:
        return {}
    n_experts = _count(where, cfg, key)
    if "num_experts_per_tok" not in cfg and "experts_per_token" not in cfg:
        raise SpecError(f"{where}: a mixture-of-experts config ('{key}') needs 'num_experts_per_tok'")
    top_k = _count(where, cfg, "num_experts_per_tok" if "num_experts_per_tok" in cfg else "experts_per_token")
    if top_k > n_experts:
        raise SpecError(f"{where}: num_experts_per_tok {top_k:g} exceeds the {n_experts:g} experts")
    expert = _count(where, cfg, "moe_intermediate_size" if "moe_intermediate_size" in cfg else "intermediate_size")
    moe = _moe_layers(where, cfg, n_layers)
    if not moe:
        raise SpecError(f"{where}: '{key}' gives {n_experts:g} experts, but the config makes no layer a MoE layer")
    shared = 0.0
    if "n_shared_experts" in cfg:  # DeepSeek: shared experts of the routed experts' width
        shared = _count(where, cfg, "n_shared_experts", minimum=0) * expert if _given(cfg, "n_shared_experts") else 0.0
    elif _given(cfg, "shared_expert_intermediate_size"):  # Qwen2-MoE (0: none)
        shared = _count(where, cfg, "shared_expert_intermediate_size", minimum=0)
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
    if not _given(cfg, "kv_lora_rank"):
        return {}
    return dict(
        kv_lora_rank=_count(where, cfg, "kv_lora_rank"),
        q_lora_rank=_count(where, cfg, "q_lora_rank", minimum=0) if _given(cfg, "q_lora_rank") else 0.0,
        qk_rope_head_dim=_count(where, cfg, "qk_rope_head_dim"),
        qk_nope_head_dim=_count(where, cfg, "qk_nope_head_dim"),
        v_head_dim=_count(where, cfg, "v_head_dim"),
    )


def _layer_types(where: str, cfg: dict[str, Any], n_layers: float) -> list[str] | None:
    """The config's ``layer_types`` (one of LAYER_TYPES per layer), or None where not given."""
    if not _given(cfg, "layer_types"):
        return None
    types = cfg["layer_types"]
    if not isinstance(types, list) or len(types) != n_layers:
        raise SpecError(f"{where}: field 'layer_types' must be a list of one entry per layer ({n_layers:g})")
    unknown = [t for t in types if t not in LAYER_TYPES]
    if unknown:
        raise SpecError(
            f"{where}: field 'layer_types' has an unknown entry {shorten(unknown[0])}; "
            f"expected {' or '.join(repr(t) for t in LAYER_TYPES)}"
        )
    return types


def _window_fields(where: str, cfg: dict[str, Any], n_layers: float) -> dict[str, float]:
    """Sliding-window layers: gpt-oss's layer_types, Gemma 3's pattern (every 6th layer global),
    Llama 4's chunked attention (every 4th layer global), or a window on every layer (Mistral v0.1)."""
    if _given(cfg, "attention_chunk_size"):
        window = _count(where, cfg, "attention_chunk_size")
        return dict(window=window, n_window_layers=n_layers - n_layers // LLAMA4_NOPE_INTERVAL)
    if not _given(cfg, "sliding_window") or not _flag(where, cfg, "use_sliding_window", True):
        return {}
    window = _count(where, cfg, "sliding_window")
    types = _layer_types(where, cfg, n_layers)
    if types is not None:
        count = float(sum(t == "sliding_attention" for t in types))
    elif _given(cfg, "sliding_window_pattern"):
        count = n_layers - n_layers // _count(where, cfg, "sliding_window_pattern")
    else:
        count = n_layers
    return dict(window=window, n_window_layers=count)


def _parameters(values: dict[str, float]) -> float:
    """All parameters of a model's spec values, in float64 numpy (``kernels.xp``)."""
    leaves: dict[str, Any] = {name: np.float64(value) for name, value in values.items()}
    spec = ModelSpec(**leaves)
    return float(param_counts(spec).total)


def _spec_and_defaults(where: str, config: dict[str, Any]) -> tuple[ModelSpec, dict[str, Any]]:
    cfg, filled = _with_defaults(_text_config(where, config))
    model_type = cfg.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise SpecError(f"{where}: field 'model_type' must be a string, got {shorten(model_type)}")
    d_model = _count(where, cfg, "hidden_size")
    n_heads = _count(where, cfg, "num_attention_heads")
    n_kv = _count(where, cfg, "num_key_value_heads") if "num_key_value_heads" in cfg else n_heads
    d_head = _count(where, cfg, "head_dim") if _given(cfg, "head_dim") else d_model / n_heads
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
    outer_tied = _flag(where, config, "tie_word_embeddings", False) if cfg is not config else False
    tied = _flag(where, cfg, "tie_word_embeddings", outer_tied)
    bias = _flag(where, cfg, "attention_bias", model_type in QKV_BIAS_MODEL_TYPES)
    n_layers = _count(where, cfg, "num_hidden_layers")
    # Llama 4: intermediate_size is the experts' width, intermediate_size_mlp the dense layers'.
    ffn_key = "intermediate_size_mlp" if "intermediate_size_mlp" in cfg else "intermediate_size"
    values = dict(DENSE_DEFAULTS)
    values.update(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        d_head=d_head,
        d_ffn=_count(where, cfg, ffn_key),
        vocab=_count(where, cfg, "vocab_size"),
        tied_embeddings=float(tied),
        qkv_bias=float(bias),
        n_norms=NORMS_PER_LAYER.get(str(model_type), 2.0),
        qk_norm=float(model_type in QK_NORM_MODEL_TYPES and not mla),
    )
    values.update(_moe_fields(where, cfg, n_layers))
    values.update(mla)
    _layer_types(where, cfg, n_layers)  # checked even where no window uses it
    values.update(_window_fields(where, cfg, n_layers))
    # the context the model was trained for: prompt + output beyond it cannot run
    if cfg.get("max_position_embeddings") is not None:
        values["max_context"] = _count(where, cfg, "max_position_embeddings")
    total = _parameters(values)
    if not total <= MAX_PARAMETERS:
        raise SpecError(f"{where}: {total:.3g} parameters, beyond the plausible maximum of {MAX_PARAMETERS:.0e}")
    spec = float64_leaves(ModelSpec, values)
    return spec, filled


def load_model(key_or_path: str) -> ModelEntry:
    """A catalogue key (``llama-3.3-70b``) or a path to a config.json (read by ``grids.files``:
    a regular UTF-8 file of at most 64 MiB, nested at most 32 levels)."""
    path = Path(key_or_path)
    if path.suffix != ".json":
        path = MODELS_DIR / f"{key_or_path}.json"
        if not is_file(path):
            raise SpecError(
                f"unknown model {shorten(key_or_path)}; expected a path to a config.json or one of: "
                f"{', '.join(model_keys())}"
            )
    config = read_json(path)
    spec, filled = _spec_and_defaults(str(path), config)
    return ModelEntry(path.stem, path, config, spec, filled)
