"""Which number matters: elasticities of cost and throughput to each number of a GPU's datasheet
and price, by forward-mode automatic differentiation of the point's whole program.

The elasticity of a metric m to a GPU number x is d ln m / d ln x: the % change of m per 1%
change of x (-0.6: 1% more HBM bandwidth, 0.6% cheaper tokens). Every number is scaled by a
factor s, and ``jax.jacfwd`` differentiates the metrics with respect to the factors at s = 1:
d ln m / d ln x = (dm / ds) / m. The batch is held fixed; memory capacity enters through whole
sequences (how many fit), which are steps, so its elasticity at a fixed batch is 0 except where
the number of sequences in flight follows memory continuously.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kernels.point import INTERVAL_METRICS, DesignPoint, Metrics, evaluate_point

GPU_NUMBERS: dict[str, tuple[str, ...]] = {
    "flop_per_s": ("flop_per_s_bf16", "flop_per_s_fp8", "flop_per_s_int8", "flop_per_s_fp4"),
    "hbm_bytes_per_s": ("hbm_bytes_per_s",),
    "hbm_bytes": ("hbm_bytes",),
    "link_bytes_per_s": ("link_bytes_per_s",),
    "usd_per_hour": ("usd_per_hour",),
    "capex_usd": ("capex_usd",),
    "tdp_w": ("tdp_w",),
}
"""The numbers a buyer compares GPUs by, each a set of GPUSpec fields scaled together (FLOP/s:
every tensor-core precision's peak)."""

ELASTIC_METRICS = ("usd_per_mtok_output", "usd_per_mtok_output_owned", "output_tok_s")
"""The metrics whose elasticities are given: rented and owned cost per output token, throughput."""


def scaled(point: DesignPoint, factors: Any) -> DesignPoint:
    """``point`` with each GPU number of ``GPU_NUMBERS`` multiplied by its entry of ``factors``
    (a vector in that order), on the GPUs of both pools (a disaggregated prefill GPU too: scaled
    alike, one of the decode GPU's type stays that type)."""

    def scale(gpu: Any) -> Any:
        changes = {}
        for i, fields in enumerate(GPU_NUMBERS.values()):
            for name in fields:
                changes[name] = getattr(gpu, name) * factors[i]
        return dataclasses.replace(gpu, **changes)

    return point._replace(gpu=scale(point.gpu), prefill_gpu=scale(point.prefill_gpu))


def elasticities(point: DesignPoint, codes: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Per metric of ``ELASTIC_METRICS``, the vector of its elasticities to ``GPU_NUMBERS`` (NaN
    where the metric is NaN: a point that cannot run, a GPU without a price); ``codes``: the
    scenarios the point may hold."""
    import jax
    import jax.numpy as jnp

    ones = jnp.ones(len(GPU_NUMBERS), dtype=point.dep.batch.dtype)

    def metrics(factors: Any) -> tuple[Any, ...]:
        m: Metrics = evaluate_point(scaled(point, factors), codes)
        return tuple(getattr(m, name) for name in ELASTIC_METRICS)

    values, jvp = jax.linearize(metrics, ones)
    columns = [jvp(col) for col in jnp.eye(len(GPU_NUMBERS), dtype=ones.dtype)]
    return {
        name: jnp.stack([columns[j][i] for j in range(len(GPU_NUMBERS))]) / values[i]
        for i, name in enumerate(ELASTIC_METRICS)
    }


def terms_log_sd(
    point: DesignPoint, directions: Any, codes: tuple[int, ...] | None = None
) -> tuple[Metrics, dict[str, Any]]:
    """The point's metrics and, per metric of ``INTERVAL_METRICS``, the standard deviation of its
    log from the uncertainty of the profile's fitted terms: sqrt(sum_k (d ln m . v_k)^2) over the
    ``directions`` v_k (shape (K, profile fields), in the fields' order: the covariance's
    eigenvectors scaled by the square roots of their eigenvalues, so that sum_k v_k v_k^T is the
    covariance; zero rows add nothing). One linearisation of the whole program, one forward-mode
    product per direction."""
    import jax
    import jax.numpy as jnp

    fields = [f.name for f in dataclasses.fields(point.profile)]

    def logs(profile: Any) -> tuple[tuple[Any, ...], Metrics]:
        m = evaluate_point(point._replace(profile=profile), codes)
        return tuple(jnp.log(getattr(m, name)) for name in INTERVAL_METRICS), m

    # every direction's product in one batched forward-mode pass: the point's own values are
    # computed once (they do not depend on the direction), its tangents K at a time
    tangents = dataclasses.replace(
        point.profile,
        **{
            f: jnp.asarray(directions[:, i], dtype=jnp.result_type(getattr(point.profile, f)))
            for i, f in enumerate(fields)
        },
    )
    products, metrics = jax.vmap(lambda t: jax.jvp(logs, (point.profile,), (t,), has_aux=True)[1:], out_axes=(0, None))(
        tangents
    )
    return metrics, {name: jnp.sqrt(jnp.sum(d * d, axis=0)) for name, d in zip(INTERVAL_METRICS, products)}
