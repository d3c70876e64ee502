"""Sweep specifications: TOML files naming the axes of a design-space sweep (grids/sweeps/).

```toml
name = "article-70b"                 # the store is outputs/<name>.zarr unless -o says otherwise
description = "..."
[axes]                               # the dimensions of the result, in this order
model = ["llama-3.3-70b"]            # catalogue keys (or config.json paths)
gpu = ["h100-sxm", "h200"]
tp = [1, 2, 4, 8]
batch = { start = 1, stop = 512, num = 10, scale = "log" }   # geometric range, rounded
input_len = { start = 1024, stop = 8192, step = 1024 }      # linear range, stop included
output_len = [300]
weight_dtype = ["bf16", "fp8"]       # optional further axes: weight_dtype, kv_dtype, compute_dtype, profile,
                                     # scenario (number formats: grids/dtypes.toml)
[fixed]                              # values of optional axes that are not swept
profile = "roofline"
[engine]
chunk_points = 2_000_000             # design points per chunk (memory bound)
precision = "float32"                # float32 (fast) or float64
```
Everything is validated before any computation; errors name the file and the entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grids._values import read_toml
from grids.dtypes import kv_dtypes, weight_dtypes
from grids.errors import SpecError
from grids.gpus import load_gpus
from grids.models import load_model
from grids.profiles import load_profile
from kernels.scenarios import SCENARIOS
from kernels.specs import COMPUTE_DTYPES

SWEEPS_DIR = Path(__file__).parent / "sweeps"

REQUIRED_AXES = ("model", "gpu", "tp", "batch", "input_len", "output_len")
OPTIONAL_AXES = ("weight_dtype", "kv_dtype", "compute_dtype", "profile", "scenario", "pp", "dp", "expert_parallel")
NUMERIC_AXES = ("tp", "batch", "input_len", "output_len", "pp", "dp")
DEFAULTS = {
    "weight_dtype": "bf16",
    "kv_dtype": "bf16",
    "compute_dtype": "auto",
    "profile": "roofline",
    "scenario": "static",
    "pp": 1,
    "dp": 1,
    "expert_parallel": "off",
}
EXPERT_PARALLEL = {"off": 0.0, "on": 1.0}
"""expert_parallel values: routed experts split like dense MLPs (off) or spread whole over the
P * dp GPUs of a stage with all-to-all dispatch and combine (on)."""

DTYPE_BYTES = weight_dtypes()
"""Storage width of a weight number format, scale overhead included [byte] (grids/dtypes.toml)."""
KV_DTYPE_BYTES = kv_dtypes()
"""Storage width of a KV-cache number format [byte]."""
COMPUTE_NAMES = ("auto",) + COMPUTE_DTYPES
"""compute_dtype values: auto (the weight format's default, grids/dtypes.toml) or a precision."""

TOP_KEYS = {"name", "description", "axes", "fixed", "engine"}
ENGINE_KEYS = {"chunk_points": 2_000_000, "precision": "float32"}
MAX_POINTS = 10**11


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ordered axes with their values, fixed values, engine settings."""

    name: str
    description: str
    axes: dict[str, list[Any]]  # dims in order -> coordinate values
    fixed: dict[str, str]  # optional axes not swept -> their value
    chunk_points: int
    precision: str
    source: str = ""  # the file it came from
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)


def _range(where: str, spec: dict[str, Any]) -> list[float]:
    keys = set(spec)
    if keys <= {"start", "stop", "num", "scale"} and {"start", "stop", "num"} <= keys:
        start, stop, num = spec["start"], spec["stop"], spec["num"]
        scale = spec.get("scale", "linear")
        if not isinstance(num, int) or num < 1:
            raise SpecError(f"{where}: 'num' must be a positive integer, got {num!r}")
        if scale == "log":
            if not (isinstance(start, (int, float)) and start > 0 and isinstance(stop, (int, float)) and stop > 0):
                raise SpecError(f"{where}: a log range needs positive start and stop")
            return list(np.geomspace(start, stop, num))
        if scale == "linear":
            return list(np.linspace(start, stop, num))
        raise SpecError(f'{where}: \'scale\' must be "linear" or "log", got {scale!r}')
    if keys == {"start", "stop", "step"}:
        start, stop, step = spec["start"], spec["stop"], spec["step"]
        if not all(isinstance(v, (int, float)) for v in (start, stop, step)) or step <= 0 or stop < start:
            raise SpecError(f"{where}: expected start <= stop and a positive step")
        return list(np.arange(start, stop + step * 0.5, step))
    raise SpecError(
        f"{where}: a range is {{start, stop, num[, scale]}} or {{start, stop, step}}; got keys {sorted(keys)}"
    )


def _numeric_axis(where: str, raw: Any) -> list[int]:
    values = _range(where, raw) if isinstance(raw, dict) else raw
    if not isinstance(values, list) or not values:
        raise SpecError(f"{where}: expected a non-empty list of positive whole numbers or a range table")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
            raise SpecError(f"{where}: expected positive whole numbers, got {v!r}")
        n = int(round(float(v)))
        if isinstance(raw, list) and n != v:
            raise SpecError(f"{where}: expected whole numbers, got {v!r}")
        if n < 1:
            raise SpecError(f"{where}: values must be positive, got {v!r}")
        out.append(n)
    if isinstance(raw, dict):  # a rounded geometric range may repeat small values
        out = sorted(set(out))
    elif len(set(out)) != len(out):
        raise SpecError(f"{where}: duplicate values {sorted({v for v in out if out.count(v) > 1})}")
    return out


def _name_axis(where: str, raw: Any, check) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise SpecError(f"{where}: expected a non-empty list of names")
    if len(set(raw)) != len(raw):
        raise SpecError(f"{where}: duplicate values {sorted({v for v in raw if raw.count(v) > 1})}")
    for value in raw:
        check(where, value)
    return list(raw)


def _check_model(where: str, key: str) -> None:
    try:
        load_model(key)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def _check_gpu(gpus: dict) -> Any:
    def check(where: str, key: str) -> None:
        if key not in gpus:
            raise SpecError(f"{where}: unknown GPU '{key}'; expected one of: {', '.join(gpus)}")

    return check


def _check_names(kind: str, names: Any) -> Any:
    def check(where: str, name: str) -> None:
        if name not in names:
            raise SpecError(f"{where}: unknown {kind} '{name}'; expected one of: {', '.join(names)}")

    return check


_check_dtype = _check_names("number format", DTYPE_BYTES)


def _check_scenario(where: str, name: str) -> None:
    if name not in SCENARIOS:
        raise SpecError(f"{where}: unknown scenario '{name}'; expected one of: {', '.join(SCENARIOS)}")


def _check_profile(where: str, name: str) -> None:
    try:
        load_profile(name)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def validate(raw: dict[str, Any], source: str) -> SweepSpec:
    """Check a parsed sweep TOML completely; raise SpecError naming ``source`` and the entry."""
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise SpecError(f"{source}: unknown key '{unknown[0]}'; expected: {', '.join(sorted(TOP_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SpecError(f"{source}: 'name' must be a non-empty string of letters, digits, '-', '_', '.'")
    axes_raw = raw.get("axes")
    if not isinstance(axes_raw, dict):
        raise SpecError(f"{source}: missing [axes] table")
    unknown = [k for k in axes_raw if k not in REQUIRED_AXES + OPTIONAL_AXES]
    if unknown:
        raise SpecError(
            f"{source} [axes]: unknown axis '{unknown[0]}'; expected: {', '.join(REQUIRED_AXES + OPTIONAL_AXES)}"
        )
    missing = [k for k in REQUIRED_AXES if k not in axes_raw]
    if missing:
        raise SpecError(f"{source} [axes]: missing axis '{missing[0]}'")
    fixed_raw = raw.get("fixed", {})
    if not isinstance(fixed_raw, dict):
        raise SpecError(f"{source}: [fixed] must be a table")
    for key in fixed_raw:
        if key not in OPTIONAL_AXES:
            raise SpecError(f"{source} [fixed]: unknown key '{key}'; expected: {', '.join(OPTIONAL_AXES)}")
        if key in axes_raw:
            raise SpecError(f"{source}: '{key}' is both an axis and fixed; a dimension may be listed once")
        if key in NUMERIC_AXES:
            value = fixed_raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"{source} [fixed]: '{key}' must be a positive integer")
        elif not isinstance(fixed_raw[key], str):
            raise SpecError(f"{source} [fixed]: '{key}' must be a name")
    engine = dict(ENGINE_KEYS)
    engine_raw = raw.get("engine", {})
    if not isinstance(engine_raw, dict) or set(engine_raw) - set(ENGINE_KEYS):
        raise SpecError(f"{source} [engine]: expected keys among: {', '.join(ENGINE_KEYS)}")
    engine.update(engine_raw)
    if not isinstance(engine["chunk_points"], int) or engine["chunk_points"] < 1:
        raise SpecError(f"{source} [engine]: 'chunk_points' must be a positive integer")
    if engine["precision"] not in ("float32", "float64"):
        raise SpecError(f'{source} [engine]: \'precision\' must be "float32" or "float64"')

    gpus = load_gpus()
    checks = {
        "model": _check_model,
        "gpu": _check_gpu(gpus),
        "weight_dtype": _check_dtype,
        "kv_dtype": _check_names("KV-cache number format", KV_DTYPE_BYTES),
        "compute_dtype": _check_names("compute precision", COMPUTE_NAMES),
        "profile": _check_profile,
        "scenario": _check_scenario,
        "expert_parallel": _check_names("expert-parallel setting", EXPERT_PARALLEL),
        "pp": lambda where, value: None,
        "dp": lambda where, value: None,
    }
    axes: dict[str, list[Any]] = {}
    for dim in REQUIRED_AXES + OPTIONAL_AXES:
        if dim not in axes_raw:
            continue
        where = f"{source} [axes] {dim}"
        axes[dim] = (
            _numeric_axis(where, axes_raw[dim])
            if dim in NUMERIC_AXES
            else _name_axis(where, axes_raw[dim], checks[dim])
        )
    fixed = {k: fixed_raw.get(k, DEFAULTS[k]) for k in OPTIONAL_AXES if k not in axes}
    for key, value in fixed.items():
        checks[key](f"{source} [fixed] {key}", value)
    spec = SweepSpec(
        name, str(raw.get("description", "")), axes, fixed, engine["chunk_points"], engine["precision"], source, raw
    )
    if spec.n_points > MAX_POINTS:
        raise SpecError(f"{source}: {spec.n_points:.3g} design points exceed the limit of {MAX_POINTS:.0e}")
    return spec


def load_sweep(path_or_name: str) -> SweepSpec:
    """A sweep spec from a TOML path, or by name from grids/sweeps/."""
    path = Path(path_or_name)
    if not path.exists() and path.suffix != ".toml":
        path = SWEEPS_DIR / f"{path_or_name}.toml"
    if not path.exists():
        raise SpecError(f"{path_or_name}: no such sweep spec file")
    return validate(read_toml(path), str(path))
