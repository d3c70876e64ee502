"""The catalogue as plain data: every model and GPU with its key numbers (``sweep catalog``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from grids.errors import SpecError
from grids.files import read_toml
from grids.gpus import load_gpus
from grids.models import MODELS_DIR, load_model, model_keys
from kernels.memory import kv_bytes_per_token_per_gpu
from kernels.params import param_counts
from kernels.specs import ModelSpec


def _plain(value: Any) -> Any:
    """JSON-safe: NaN becomes None."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _f64(x: Any) -> Any:
    return np.float64(x)


def _key_numbers(spec: ModelSpec) -> tuple[float, float]:
    """All parameters, and KV-cache bytes per token on one GPU in bf16 (2 bytes per value), in
    float64 numpy (``kernels.xp``): whole numbers below 2**53, so exact, and no JAX to import."""
    host = type(spec)(**{f.name: _f64(getattr(spec, f.name)) for f in dataclasses.fields(spec)})
    one = _f64(1.0)
    return float(param_counts(host).total), float(kv_bytes_per_token_per_gpu(host, one, 2.0 * one))


def model_rows() -> list[dict[str, Any]]:
    """One row per catalogue model: architecture numbers, parameters, KV bytes per token in bf16."""
    sources = read_toml(MODELS_DIR / "SOURCES.toml")
    keys = model_keys()
    specs = [load_model(key).spec for key in keys]
    rows = []
    for key, spec in zip(keys, specs):
        row: dict[str, Any] = {"key": key}
        row.update({name: float(getattr(spec, name)) for name in spec.__dataclass_fields__})
        row["params_total"], row["kv_bytes_per_token_bf16"] = _key_numbers(spec)
        source = sources.get(key, {})
        if not isinstance(source, dict):
            raise SpecError(f"{MODELS_DIR / 'SOURCES.toml'} [{key}]: expected a table with hf_repo and source")
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
