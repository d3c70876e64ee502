"""Models: Hugging Face ``config.json`` files in ``grids/models/``, loaded into ModelSpec.

Adding a model is dropping its config.json there as ``<key>.json`` (and a line in SOURCES.toml).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from grids._values import number
from grids.errors import SpecError
from kernels.specs import ModelSpec

MODELS_DIR = Path(__file__).parent / "models"

MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")
"""config.json fields that mark a mixture-of-experts model."""

QKV_BIAS_MODEL_TYPES = ("qwen2",)
"""Architectures whose q, k, v projections always carry biases (not stated in config.json)."""


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue model: its key, where it came from, and its spec."""

    key: str
    path: Path
    config: dict[str, Any]
    spec: ModelSpec


def model_keys() -> list[str]:
    """Catalogue keys of the models shipped in grids/models/, sorted."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def _text_config(where: str, config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise SpecError(f"{where}: expected a JSON object (a Hugging Face config.json)")
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config


def spec_from_config(where: str, config: dict[str, Any]) -> ModelSpec:
    """Build a ModelSpec from a config.json's fields; ``where`` names the file for messages."""
    cfg = _text_config(where, config)
    moe = [k for k in MOE_KEYS if k in cfg]
    if moe:
        raise SpecError(f"{where}: mixture-of-experts models ('{moe[0]}') are not supported yet; "
                        "expected a dense decoder-only config")
    d_model = number(where, cfg, "hidden_size", integer=True)
    n_heads = number(where, cfg, "num_attention_heads", integer=True)
    n_kv = number(where, cfg, "num_key_value_heads", integer=True) if "num_key_value_heads" in cfg else n_heads
    d_head = number(where, cfg, "head_dim", integer=True) if cfg.get("head_dim") else d_model / n_heads
    if d_head != int(d_head):
        raise SpecError(f"{where}: hidden_size {d_model:g} is not a multiple of num_attention_heads "
                        f"{n_heads:g}; expected a 'head_dim' field")
    if n_heads % n_kv:
        raise SpecError(f"{where}: num_attention_heads {n_heads:g} must be a multiple of "
                        f"num_key_value_heads {n_kv:g}")
    tied = cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
    if not isinstance(tied, bool):
        raise SpecError(f"{where}: field 'tie_word_embeddings' must be true or false")
    bias = cfg.get("attention_bias", cfg.get("model_type") in QKV_BIAS_MODEL_TYPES)
    values = dict(
        n_layers=number(where, cfg, "num_hidden_layers", integer=True),
        d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv, d_head=d_head,
        d_ffn=number(where, cfg, "intermediate_size", integer=True),
        vocab=number(where, cfg, "vocab_size", integer=True),
        tied_embeddings=float(tied), qkv_bias=float(bool(bias)),
    )
    return ModelSpec(**{k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()})


def load_model(key_or_path: str) -> ModelEntry:
    """A catalogue key (``llama-3.3-70b``) or a path to a config.json."""
    path = Path(key_or_path)
    if path.suffix != ".json":
        path = MODELS_DIR / f"{key_or_path}.json"
        if not path.exists():
            raise SpecError(f"unknown model '{key_or_path}'; expected a path to a config.json "
                            f"or one of: {', '.join(model_keys())}")
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid JSON ({err})") from None
    return ModelEntry(path.stem, path, config, spec_from_config(str(path), config))
