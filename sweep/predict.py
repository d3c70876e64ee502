"""Predictions of the cost model at measured points, for calibration and validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from grids.dtypes import compute_code, default_compute
from grids.gpus import load_gpus
from grids.models import load_model
from grids.sweeps import SCENARIOS
from kernels.point import evaluate
from kernels.specs import Deployment, EngineProfile, Workload
from sweep.engine import stack_specs
from sweep.measurements import METRICS, PRECISION_BYTES, Measurement


@dataclass(frozen=True)
class Points:
    """Measured points as stacked specs (leading axis: the point) and their measured values."""

    model: object
    gpu: object
    dep: Deployment
    wl: Workload
    metric: np.ndarray  # index into METRICS
    measured: np.ndarray


def build_points(rows: list[Measurement]) -> Points:
    """Stack the specs of every measurement (the batch of max_throughput rows is unused: 1)."""
    gpus = load_gpus()
    models = {k: load_model(k).spec for k in {r.model for r in rows}}
    f = lambda values: jnp.asarray(np.asarray(values, dtype=np.float64))  # noqa: E731
    dep = Deployment(
        tp=f([r.tp for r in rows]),
        batch=f([1.0 if np.isnan(r.batch) else r.batch for r in rows]),
        weight_bytes_per_elem=f([PRECISION_BYTES[r.precision] for r in rows]),
        kv_bytes_per_elem=f([PRECISION_BYTES[r.precision] for r in rows]),
        act_bytes_per_elem=f([2.0] * len(rows)),
        # The format's own tensor-core precision, as in sweeps (fp8 weights run fp8 matmuls).
        compute_dtype=f([compute_code(default_compute(r.precision)) for r in rows]),
        scenario=f([SCENARIOS.index(r.scenario) for r in rows]),
        pp=f([1.0] * len(rows)),
        dp=f([1.0] * len(rows)),
        expert_parallel=f([0.0] * len(rows)),
    )
    wl = Workload(f([r.input_len for r in rows]), f([r.output_len for r in rows]))
    return Points(
        stack_specs([models[r.model] for r in rows], jnp.float64),
        stack_specs([gpus[r.gpu].spec for r in rows], jnp.float64),
        dep,
        wl,
        np.asarray([METRICS.index(r.metric) for r in rows]),
        np.asarray([r.value for r in rows]),
    )


def _metric(m, dep: Deployment, code):
    values = jnp.stack([m.output_tok_s, m.ttft_s, m.tpot_s, m.e2e_s, m.ttft_min_s])
    return jnp.where(m.feasible, values[code], jnp.nan)


@jax.jit
def _predict(profile: EngineProfile, model, gpu, dep: Deployment, wl: Workload, metric) -> jax.Array:
    one = lambda m, g, d, w, c: _metric(evaluate(m, g, d, w, profile), d, c)  # noqa: E731
    return jax.vmap(one)(model, gpu, dep, wl, metric)


def predict(profile: EngineProfile, points: Points) -> jax.Array:
    """Predicted value of each measured metric (NaN where the point cannot run)."""
    return _predict(profile, points.model, points.gpu, points.dep, points.wl, jnp.asarray(points.metric))


def with_terms(base: EngineProfile, names: tuple[str, ...], values) -> EngineProfile:
    """``base`` with the named terms replaced by ``values`` (a vector, traced or not)."""
    return dataclasses.replace(base, **{n: values[i] for i, n in enumerate(names)})
