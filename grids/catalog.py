"""The catalogue as plain data: every model and GPU with its key numbers (``sweep catalog``)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from grids._values import read_toml
from grids.axes import stack
from grids.gpus import load_gpus
from grids.models import MODELS_DIR, load_model, model_keys
from kernels.memory import kv_bytes_per_token_per_gpu
from kernels.params import param_counts
from kernels.specs import ModelSpec


def _plain(value: Any) -> Any:
    """JSON-safe: NaN becomes None."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _key_numbers(spec: ModelSpec) -> tuple[jax.Array, jax.Array]:
    """All parameters, and KV-cache bytes per token on one GPU in bf16 (2 bytes per value)."""
    one = jnp.ones_like(spec.d_model)
    return param_counts(spec).total, kv_bytes_per_token_per_gpu(spec, one, 2.0 * one)


def model_rows() -> list[dict[str, Any]]:
    """One row per catalogue model: architecture numbers, parameters, KV bytes per token in bf16."""
    sources = read_toml(MODELS_DIR / "SOURCES.toml")
    keys = model_keys()
    specs = [load_model(key).spec for key in keys]
    with jax.enable_x64(True):  # parameter counts need float64
        params, kv_bytes = jax.jit(jax.vmap(_key_numbers))(stack(specs))
    rows = []
    for i, (key, spec) in enumerate(zip(keys, specs)):
        row: dict[str, Any] = {"key": key}
        row.update({name: float(getattr(spec, name)) for name in spec.__dataclass_fields__})
        row["params_total"] = float(params[i])
        row["kv_bytes_per_token_bf16"] = float(kv_bytes[i])
        source = sources.get(key, {})
        row["hf_repo"] = source.get("hf_repo")
        row["source"] = source.get("source")
        rows.append(row)
    return rows


def gpu_rows() -> list[dict[str, Any]]:
    """One row per catalogue GPU: every field of its table, NaN as None."""
    return [{"key": key, **{k: _plain(v) for k, v in entry.table.items()}} for key, entry in load_gpus().items()]


def catalog() -> dict[str, list[dict[str, Any]]]:
    """``{"models": [...], "gpus": [...]}``."""
    return {"models": model_rows(), "gpus": gpu_rows()}
