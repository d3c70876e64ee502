"""What the fitted terms do not pin down: the Laplace approximation of a fit, and its share of a
prediction's stated interval.

A fit minimises the weighted mean of r_i^2, r_i = ln predicted_i - ln measured_i. Near its
optimum the log-likelihood of r_i ~ N(0, s^2 / w_i) is quadratic in the free terms, with
precision (Gauss-Newton) J^T W J / s^2, J_ij = d ln predicted_i / d z_j in the unit search box
z = (term - low) / (high - low), and s^2 = sum w r^2 / (n - p) the residual variance. Each term
also carries the precision 12 of a uniform prior over its search box (variance 1/12 of the box):
a term the data do not constrain (a PCIe link fitted on NVLink-only data) keeps the spread of its
whole box instead of an infinite one. The inverse is the terms' covariance.

A prediction's log then varies by sd^2 = g C g^T, g = d ln predicted / d term, and its 80%
interval of ln(measured / predicted), [lo, hi] from the residuals, widens on each side about its
centre to sqrt(half^2 + (z_0.9 sd)^2): independent parameter and residual errors add in variance.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from kernels.specs import EngineProfile
from sweep.calibration.fit import FIT_BOUNDS
from sweep.calibration.predict import Points, predict, with_terms

PRIOR_PRECISION = 12.0
"""Precision of a uniform distribution over [0, 1] (its variance is 1/12): each free term's prior,
in its unit search box."""


def log_jacobian(profile: EngineProfile, free: tuple[str, ...], points: Points) -> tuple[np.ndarray, np.ndarray]:
    """ln predicted at each point (NaN where it cannot run) and its derivative by each free term,
    shape (points, terms), by forward-mode differentiation of the whole cost model."""
    with jax.enable_x64(True):  # the terms span 1e-5 s to 1e3 sequences: float64
        values = jnp.asarray([float(getattr(profile, n)) for n in free], dtype=jnp.float64)
        log_pred = functools.partial(_log_predict, profile, free, points)
        jac = np.asarray(jax.jacfwd(log_pred)(values), dtype=np.float64)
        return np.asarray(log_pred(values), dtype=np.float64), jac


def _log_predict(profile: EngineProfile, free: tuple[str, ...], points: Points, values: jax.Array) -> jax.Array:
    return jnp.log(predict(with_terms(profile, free, values), points))


def term_covariance(
    profile: EngineProfile, free: tuple[str, ...], points: Points, weights: np.ndarray | None = None
) -> np.ndarray:
    """Covariance of the free terms of a fitted ``profile`` (term units squared, order of
    ``free``), from the points it was fitted to and their loss ``weights`` (default all 1)."""
    log_pred, jac = log_jacobian(profile, free, points)
    w = np.ones(len(log_pred)) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(log_pred) & np.isfinite(jac).all(axis=1)
    r = log_pred[ok] - np.log(points.measured[ok])
    dof = max(int(ok.sum()) - len(free), 1)
    s2 = float(np.sum(w[ok] * r * r) / dof)
    width = np.array([FIT_BOUNDS[n][1] - FIT_BOUNDS[n][0] for n in free])
    unit = jac[ok] * width  # d ln predicted / d z
    precision = unit.T @ (w[ok, None] * unit) / max(s2, 1e-300) + PRIOR_PRECISION * np.eye(len(free))
    cov_unit = np.linalg.inv(precision)
    cov = cov_unit * np.outer(width, width)
    return np.asarray(0.5 * (cov + cov.T))


def log_sd(profile: EngineProfile, free: tuple[str, ...], cov: np.ndarray, points: Points) -> np.ndarray:
    """Standard deviation of ln predicted at each point from the terms' covariance (NaN where the
    point cannot run)."""
    log_pred, jac = log_jacobian(profile, free, points)
    sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", jac, cov, jac), 0.0))
    return np.where(np.isfinite(log_pred), sd, math.nan)
