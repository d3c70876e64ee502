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
weight_dtype = ["bf16", "fp8"]       # optional further axes (grids/axes.py): weight_dtype, kv_dtype,
usd_per_gpu_hour = [1.5, 3.0]        # compute_dtype, profile, scenario, pp, dp, expert_parallel,
                                     # usd_per_gpu_hour (number formats: grids/dtypes.toml)
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
from grids.axes import AXES, OPTIONAL, REQUIRED, Axis, check_value
from grids.errors import SpecError

SWEEPS_DIR = Path(__file__).parent / "sweeps"

TOP_KEYS = {"name", "description", "axes", "fixed", "engine"}
ENGINE_KEYS = {"chunk_points": 2_000_000, "precision": "float32"}
MAX_POINTS = 10**11


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ordered axes with their values, fixed values, engine settings."""

    name: str
    description: str
    axes: dict[str, list[Any]]  # dims in order -> values (catalogue keys or paths, names, numbers)
    fixed: dict[str, Any]  # optional axes not swept -> their value (None: the axis's default in words)
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

    def coords(self, dim: str) -> list[Any]:
        """The coordinate labels of a swept axis (a config.json path is labelled by its stem)."""
        return [AXES[dim].label(v) for v in self.axes[dim]]


RANGE_LIMIT = 10**7
"""Most values one range table may generate (far beyond any useful axis; refuses a typo like
num = 1e13 before any allocation)."""


def _range(where: str, spec: dict[str, Any]) -> list[float]:
    keys = set(spec)
    numbers = {k: v for k, v in spec.items() if k != "scale"}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers.values()):
        raise SpecError(f"{where}: a range's start, stop, num and step must be numbers")
    if keys <= {"start", "stop", "num", "scale"} and {"start", "stop", "num"} <= keys:
        start, stop, num = spec["start"], spec["stop"], spec["num"]
        scale = spec.get("scale", "linear")
        if not isinstance(num, int) or not 1 <= num <= RANGE_LIMIT:
            raise SpecError(f"{where}: 'num' must be a whole number from 1 to {RANGE_LIMIT:.0e}, got {num!r}")
        if scale == "log":
            if not (start > 0 and stop > 0):
                raise SpecError(f"{where}: a log range needs positive start and stop")
            return [float(v) for v in np.geomspace(start, stop, num)]
        if scale == "linear":
            return [float(v) for v in np.linspace(start, stop, num)]
        raise SpecError(f'{where}: \'scale\' must be "linear" or "log", got {scale!r}')
    if keys == {"start", "stop", "step"}:
        start, stop, step = spec["start"], spec["stop"], spec["step"]
        if step <= 0 or stop < start:
            raise SpecError(f"{where}: expected start <= stop and a positive step")
        if (stop - start) / step + 1 > RANGE_LIMIT:
            raise SpecError(f"{where}: the range has more than {RANGE_LIMIT:.0e} values")
        return [float(v) for v in np.arange(start, stop + step * 0.5, step)]
    raise SpecError(
        f"{where}: a range is {{start, stop, num[, scale]}} or {{start, stop, step}}; got keys {sorted(keys)}"
    )


def _duplicates(values: list[Any]) -> list[Any]:
    return sorted({v for v in values if values.count(v) > 1}, key=str)


def axis_values(axis: Axis, where: str, raw: Any) -> list[Any]:
    """The validated values of one swept axis: a list, or (numeric axes) a range table whose
    values are rounded to whole numbers on integer axes."""
    numeric = axis.kind in ("integer", "float")
    if isinstance(raw, dict) and numeric:
        generated = _range(where, raw)
        values = [round(v) if axis.kind == "integer" else v for v in generated]
        merged = _duplicates(values)
        if merged:
            raise SpecError(
                f"{where}: the range's {len(values)} values round to {len(set(values))} distinct whole numbers "
                f"({', '.join(map(str, merged))} repeated); use fewer values or list them"
            )
    elif isinstance(raw, list) and raw:
        values = raw
    else:
        kind = "numbers or a range table" if numeric else "names"
        raise SpecError(f"{where}: expected a non-empty list of {kind}")
    out = [check_value(axis, where, v) for v in values]
    repeated = _duplicates(out) or _duplicates([axis.label(v) for v in out])
    if repeated:
        raise SpecError(f"{where}: duplicate values {repeated}")
    return out


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
    unknown = [k for k in axes_raw if k not in AXES]
    if unknown:
        raise SpecError(f"{source} [axes]: unknown axis '{unknown[0]}'; expected: {', '.join(AXES)}")
    missing = [k for k in REQUIRED if k not in axes_raw]
    if missing:
        raise SpecError(f"{source} [axes]: missing axis '{missing[0]}'")
    fixed_raw = raw.get("fixed", {})
    if not isinstance(fixed_raw, dict):
        raise SpecError(f"{source}: [fixed] must be a table")
    for key in fixed_raw:
        if key not in OPTIONAL:
            raise SpecError(f"{source} [fixed]: unknown key '{key}'; expected: {', '.join(OPTIONAL)}")
        if key in axes_raw:
            raise SpecError(f"{source}: '{key}' is both an axis and fixed; a dimension may be listed once")
    engine = dict(ENGINE_KEYS)
    engine_raw = raw.get("engine", {})
    if not isinstance(engine_raw, dict) or set(engine_raw) - set(ENGINE_KEYS):
        raise SpecError(f"{source} [engine]: expected keys among: {', '.join(ENGINE_KEYS)}")
    engine.update(engine_raw)
    chunk_points = engine["chunk_points"]
    if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or chunk_points < 1:
        raise SpecError(f"{source} [engine]: 'chunk_points' must be a positive integer")
    if engine["precision"] not in ("float32", "float64"):
        raise SpecError(f'{source} [engine]: \'precision\' must be "float32" or "float64"')

    axes = {dim: axis_values(AXES[dim], f"{source} [axes] {dim}", axes_raw[dim]) for dim in AXES if dim in axes_raw}
    fixed = {}
    for key in OPTIONAL:
        if key in axes:
            continue
        value = fixed_raw.get(key, AXES[key].default)
        fixed[key] = None if value is None else check_value(AXES[key], f"{source} [fixed] {key}", value)
    spec = SweepSpec(name, str(raw.get("description", "")), axes, fixed, chunk_points, engine["precision"], source, raw)
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
