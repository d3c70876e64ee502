"""Predictions of the cost model at measured points, for calibration and validation."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grids.axes import design_inputs
from kernels.point import design_point, evaluate
from kernels.specs import EngineProfile
from sweep.calibration.measurements import METRICS, Measurement


@dataclass(frozen=True)
class Points:
    """Measured points as named kernel inputs (``design_point``'s arguments but the profile,
    leading axis: the point) and their measured values."""

    inputs: dict[str, Any]
    metric: np.ndarray  # index into METRICS
    measured: np.ndarray
    codes: tuple[int, ...] | None = None  # the scenario codes among the points (None: all)


def build_points(rows: list[Measurement]) -> Points:
    """The design point of every measurement, from its named values (the batch of max_throughput
    rows is unused: 1): what ran (formats, compute precision, parallelism) as the measurement
    says, the rest at the sweep axes' defaults."""
    per_row = []
    designs: dict[tuple, dict[str, Any]] = {}  # many measurements share a design: encode each once
    for r in rows:
        key = tuple(r.design().items())
        if key not in designs:
            designs[key] = design_inputs(dict(r.design(), input_len=1, output_len=1))
        named = dict(designs[key])
        # Measured lengths are means over requests (299.8 output tokens), not whole numbers.
        lengths = dict(batch=1.0 if np.isnan(r.batch) else r.batch, input_len=r.input_len, output_len=r.output_len)
        named.update({k: np.asarray(v, np.float64) for k, v in lengths.items()})
        per_row.append(named)
    inputs = jax.tree.map(lambda *xs: np.stack(xs), *per_row)
    del inputs["profile"]
    return Points(
        inputs,
        np.asarray([METRICS.index(r.metric) for r in rows]),
        np.asarray([r.value for r in rows], np.float64),
        tuple(sorted({int(c) for c in np.ravel(inputs["scenario"])})),
    )


def _metric(
    inputs: dict[str, Any], profile: EngineProfile, code: jax.Array, codes: tuple[int, ...] | None
) -> jax.Array:
    m = evaluate(*design_point(profile=profile, **inputs), codes=codes)
    values = jnp.stack([m.output_tok_s, m.ttft_s, m.tpot_s, m.e2e_s, m.ttft_min_s])
    return jnp.where(m.feasible, values[code], jnp.nan)


@functools.partial(jax.jit, static_argnames=("codes",))
def _predict(
    profile: EngineProfile, inputs: dict[str, Any], metric: jax.Array, codes: tuple[int, ...] | None = None
) -> jax.Array:
    # Only the scenarios the points hold are compiled: with the scenario batched, vmap would
    # evaluate every branch for every point (the poisson one is the costliest).
    return jax.vmap(_metric, in_axes=(0, None, 0, None))(inputs, profile, metric, codes)


def predict(profile: EngineProfile, points: Points) -> jax.Array:
    """Predicted value of each measured metric (NaN where the point cannot run), in float64."""
    with jax.enable_x64(True):
        inputs = jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.float64), points.inputs)
        profile = jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.float64), profile)
        return _predict(profile, inputs, jnp.asarray(points.metric), points.codes)


def with_terms(base: EngineProfile, names: tuple[str, ...], values) -> EngineProfile:
    """``base`` with the named terms replaced by ``values`` (a vector, traced or not)."""
    return dataclasses.replace(base, **{n: values[i] for i, n in enumerate(names)})
