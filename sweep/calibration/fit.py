"""Fit an engine profile to measurements through the JAX model itself.

The free terms are found by bounded L-BFGS-B (scipy) on the mean squared log error, with the
gradient from ``jax.grad`` of the whole cost model. Each term stays inside its physical bounds;
several deterministic starting points guard against local minima (the model has kinks: the
roofline max and the waves of a static batch). Each measurement weighs alike, or each file
(``row_weights``): a file of a few latency points then counts as much as a table of hundreds.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from kernels.specs import EngineProfile
from sweep.calibration.measurements import Measurement
from sweep.calibration.predict import Points, build_points, predict, with_terms

FREE_TERMS = (
    "matmul_eff",
    "matmul_tokens_half",
    "attn_eff",
    "weight_bw_eff",
    "kv_bw_eff",
    "kv_parallel_half",
    "step_overhead_s",
    "prefill_overhead_s",
    "allreduce_latency_s",
)
"""Terms fitted by default; the conventions, usable memory and engine limits stay as the base says."""

FIT_BOUNDS = {
    "matmul_eff": (0.05, 1.0),
    "matmul_tokens_half": (0.0, 2048.0),
    "attn_eff": (0.05, 1.0),
    "weight_bw_eff": (0.05, 1.0),
    "kv_bw_eff": (0.05, 1.0),
    "kv_parallel_half": (0.0, 64.0),
    "step_overhead_s": (0.0, 0.005),  # CUDA-graph engines: 1-2 ms fitted here (vllm, lmdeploy)
    "prefill_overhead_s": (0.0, 0.5),
    "allreduce_latency_s": (0.0, 1e-4),
    "pcie_latency_extra_s": (0.0, 1e-4),
    "roof_overlap": (0.0, 1.0),
    "link_eff": (0.05, 1.0),
    "pcie_link_eff": (0.02, 1.0),
    "if_link_eff": (0.02, 1.0),
    "max_num_seqs": (16.0, 4096.0),
    "max_num_tokens": (1024.0, 32768.0),
    "kv_free_frac": (0.3, 1.0),
}
"""Search box of each free term: inside its physical range (grids.profiles.TERMS), narrowed to
values a GPU serving engine can have (e.g. a per-step overhead under 20 ms)."""


@dataclass(frozen=True)
class FitResult:
    profile: EngineProfile
    terms: dict[str, float]
    loss: float  # mean squared log error at the optimum
    starts: int
    iterations: int


WEIGHTINGS = ("points", "files")
"""How ``sweep calibrate --weights`` weighs the measurements in the loss."""


def row_weights(rows: list[Measurement], how: str = "points") -> np.ndarray:
    """Weight of each measurement in the loss: ``points``, all alike; ``files``, each file alike
    (a point weighs 1 / the points of its file, scaled so that the weights sum to the points)."""
    if how not in WEIGHTINGS:
        raise ValueError(f"weights '{how}': expected one of {', '.join(WEIGHTINGS)}")
    if how == "points":
        return np.ones(len(rows))
    per_file = {f: sum(r.file == f for r in rows) for f in {r.file for r in rows}}
    w = np.array([1.0 / per_file[r.file] for r in rows])
    return w * len(rows) / w.sum()


def log_error_loss(profile: EngineProfile, points: Points, weights: jax.Array | None = None) -> jax.Array:
    """Weighted mean over the points of (ln predicted - ln measured)^2 (default: all weights 1);
    infeasible points add a constant penalty (they cannot be fitted, and must not be silently
    dropped)."""
    pred = predict(profile, points)
    ok = jnp.isfinite(pred)
    err = jnp.where(ok, jnp.log(jnp.where(ok, pred, 1.0)) - jnp.log(points.measured), 0.0)
    w = jnp.ones_like(points.measured) if weights is None else weights
    return jnp.sum(w * jnp.where(ok, err * err, 1.0)) / jnp.sum(w)


@functools.partial(jax.jit, static_argnames=("free", "codes"))
def _unit_loss_and_grad(z, lo, hi, base, free, inputs, metric, measured, weights, codes):
    """The loss and its gradient in the unit box z in [0, 1]^n (term = lo + (hi - lo) z): one
    compiled program for every base profile and start with the same points and free terms."""
    points = Points(inputs, metric, measured, codes)
    return jax.value_and_grad(lambda u: log_error_loss(with_terms(base, free, lo + (hi - lo) * u), points, weights))(z)


def fit(
    rows: list[Measurement],
    base: EngineProfile,
    free: tuple[str, ...] = FREE_TERMS,
    starts: int = 6,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> FitResult:
    """Best profile over ``starts`` L-BFGS-B runs from deterministic points of the search box;
    ``weights``: of each row in the loss (``row_weights``; default all 1)."""
    with jax.enable_x64(True):  # counts and the fit need float64
        points = build_points(rows)
        lo = np.array([FIT_BOUNDS[n][0] for n in free])
        hi = np.array([FIT_BOUNDS[n][1] for n in free])
        f64 = functools.partial(jnp.asarray, dtype=jnp.float64)
        args = (
            f64(lo),
            f64(hi),
            jax.tree.map(f64, base),
            free,
            jax.tree.map(f64, points.inputs),
            jnp.asarray(points.metric),
            f64(points.measured),
            f64(np.ones(len(rows)) if weights is None else weights),
            points.codes,
        )

        def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
            v, g = _unit_loss_and_grad(f64(z), *args)
            return float(v), np.asarray(g, dtype=np.float64)

        rng = np.random.default_rng(seed)
        inits = [np.full(len(free), 0.5)] + [rng.uniform(0.05, 0.95, len(free)) for _ in range(starts - 1)]
        best, iterations = None, 0
        for z0 in inits:
            res = scipy.optimize.minimize(
                objective, z0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(free), options={"maxiter": 500}
            )
            iterations += int(res.nit)
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None  # at least one start
        values = lo + (hi - lo) * best.x
        terms = {n: float(v) for n, v in zip(free, values)}
        return FitResult(with_terms(base, free, jnp.asarray(values)), terms, float(best.fun), len(inits), iterations)


def errors(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """MAPE and largest absolute error as fractions, over points that could be predicted."""
    ok = np.isfinite(predicted)
    rel = np.abs(predicted[ok] / measured[ok] - 1.0)
    return {
        "mape": float(rel.mean()) if ok.any() else math.nan,
        "max_abs_pct_error": float(rel.max()) if ok.any() else math.nan,
        "points": int(len(measured)),
        "predicted_points": int(ok.sum()),
    }
