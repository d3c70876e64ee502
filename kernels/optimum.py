"""The SLO optimum: for one configuration, the batch (requests per micro-batch, or in flight)
that is cheapest while meeting service-level objectives, solved inside the compiled program.

Along the batch, a deployment trades speed per user for throughput: TTFT, TPOT and end-to-end
latency grow with the batch, tokens per second per user falls, and output throughput grows, so
cost per token falls, up to what fits in one piece (``kernels.scenarios.batch_limit``: memory
and the engine's limits; a static batch beyond it runs in waves, and a closed loop's requests
beyond it queue for a slot: the same cost per token, a longer TTFT, so never a better optimum).
Whether a batch meets every objective is therefore true up to some b* and false beyond it, and
the cheapest batch meeting them is b*: the largest one that does. It is found by bisection over
whole batches in [1, limit] (``STEPS`` halvings cover limits up to 2^STEPS), vectorised like
every other kernel. ``binding`` says what stops the batch growing: the first objective that
b* + 1 breaks, or the batch limit itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from kernels import xp
from kernels._types import BoolScalar, Scalar
from kernels.point import CAPACITY, DesignPoint, Metrics, capacity, evaluate_point
from kernels.scenarios import batch_limit

STEPS = 20
"""Halvings of the search interval: batch limits up to 2^20 = 1,048,576 sequences are searched
exactly; a larger limit (a profile without an engine cap on a huge memory) is clipped there."""

LIMIT = 2.0**STEPS

COMPARISONS = {"<=": lambda value, bound: value <= bound, ">=": lambda value, bound: value >= bound}
"""How an objective compares its metric with its bound."""


class Slo(NamedTuple):
    """One service-level objective: ``metric op bound``, e.g. ("ttft_s", "<=", 1.0)."""

    metric: str
    op: str
    bound: float

    def met(self, metrics: Metrics) -> BoolScalar:
        value = getattr(metrics, self.metric)
        return COMPARISONS[self.op](value, self.bound) & xp.isfinite(value)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


class Optimum(NamedTuple):
    """The cheapest batch meeting the objectives and the metrics there (NaN where none does)."""

    batch: Scalar  # b* [sequence]; NaN where even one request breaks an objective or cannot run
    binding: Scalar  # 0: the batch limit; k >= 1: the k-th objective; -1: none met at batch 1 (a code)
    metrics: Metrics  # at b*, masked like a sweep's (NaN where it cannot run)


def at_batch(point: DesignPoint, batch: Scalar) -> DesignPoint:
    return point._replace(dep=dataclasses.replace(point.dep, batch=batch))


def meets(metrics: Metrics, slos: Sequence[Slo]) -> BoolScalar:
    ok = metrics.feasible
    for slo in slos:
        ok = ok & slo.met(metrics)
    return ok


def slo_optimum(point: DesignPoint, slos: Sequence[Slo], codes: tuple[int, ...] | None = None) -> Optimum:
    """The largest batch in [1, limit] meeting every objective in ``slos`` (the cheapest, see the
    module docstring), by bisection; ``point``'s own batch is ignored. ``codes``: the scenarios
    the point may hold (``kernels.scenarios.timeline``)."""
    one = xp.ones_like(point.dep.batch)
    cap = capacity(point.model, point.gpu, point.dep, point.wl, point.profile)
    limit = xp.clip(xp.floor(batch_limit(point.dep, cap)), 1.0, LIMIT)

    def ok(batch: Scalar) -> BoolScalar:
        return meets(evaluate_point(at_batch(point, batch), codes), slos)

    def halve(_: Any, bounds: tuple[Scalar, Scalar]) -> tuple[Scalar, Scalar]:
        lo, hi = bounds  # ok(lo) holds (or lo = 1); the answer lies in [lo, hi]
        mid = xp.floor(0.5 * (lo + hi + 1.0))
        good = ok(mid)
        return xp.where(good, mid, lo), xp.where(good, hi, mid - 1.0)

    best, _ = xp.fori_loop(0, STEPS, halve, (one, limit))

    def probe(i: Any, pair: tuple[Metrics, Metrics]) -> tuple[Metrics, Metrics]:
        # b* and b* + 1 in a loop of two: one more copy of the point's program, not two
        m = evaluate_point(at_batch(point, best + i), codes)
        first = i == 0
        at, after = pair
        return (
            xp.tree_map(lambda new, old: xp.where(first, new, old), m, at),
            xp.tree_map(lambda new, old: xp.where(first, old, new), m, after),
        )

    blank = Metrics(*(xp.zeros_like(one) for _ in Metrics._fields))._replace(feasible=one > 1.0)
    metrics, beyond = xp.fori_loop(0, 2, probe, (blank, blank))
    found = meets(metrics, slos)
    # what one more request breaks: the batch limit (or, past it, running at all), else the first
    # objective it breaks
    binding = 0.0 * one
    grows = (best < limit) & beyond.feasible
    for k in reversed(range(len(slos))):
        binding = xp.where(grows & ~slos[k].met(beyond), float(k + 1), binding)
    return Optimum(xp.where(found, best, xp.nan), xp.where(found, binding, -1.0), _masked(metrics, found))


RATE_RANGE = (1e-4, 1e4)
"""Request rates [request/s] the goodput search covers, in log space."""

RATE_STEPS = 30
"""Halvings of ln(rate) over ``RATE_RANGE``: a relative precision of 18.4 / 2^30 = 2e-8."""


class Goodput(NamedTuple):
    """The highest request rate meeting the objectives and the metrics there (NaN where none does)."""

    rate: Scalar  # [request/s] to the deployment; NaN where even the lowest rate breaks an objective
    binding: Scalar  # 0: sustainability (utilisation reaches 1); k >= 1: the k-th objective; -1: none met
    metrics: Metrics  # at that rate, masked like a sweep's


def at_rate(point: DesignPoint, rate: Scalar) -> DesignPoint:
    return point._replace(wl=dataclasses.replace(point.wl, request_rate=rate))


def goodput(point: DesignPoint, slos: Sequence[Slo], codes: tuple[int, ...] | None = None) -> Goodput:
    """The highest request rate at which ``point`` (the poisson scenario) meets every objective in
    ``slos``; ``point``'s own rate is ignored.

    Along the rate, latencies and their percentiles grow and cost per token falls (the same GPUs
    serve more tokens per hour) until the rate is no longer sustainable, so the cheapest rate
    meeting the objectives is the highest one that does: found by bisection on ln(rate), like
    ``slo_optimum`` on the batch. ``binding``: what a rate 0.1% higher breaks.
    """
    one = xp.ones_like(point.wl.request_rate)
    low, high = math.log(RATE_RANGE[0]), math.log(RATE_RANGE[1])

    def ok(log_rate: Scalar) -> BoolScalar:
        return meets(evaluate_point(at_rate(point, xp.exp(log_rate)), codes), slos)

    def halve(_: Any, bounds: tuple[Scalar, Scalar]) -> tuple[Scalar, Scalar]:
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        good = ok(mid)
        return xp.where(good, mid, lo), xp.where(good, hi, mid)

    lo, _ = xp.fori_loop(0, RATE_STEPS, halve, (low * one, high * one))
    best = xp.exp(lo)
    metrics = evaluate_point(at_rate(point, best), codes)
    beyond = evaluate_point(at_rate(point, best * 1.001), codes)
    found = meets(metrics, slos)
    binding = 0.0 * one
    for k in reversed(range(len(slos))):
        binding = xp.where(beyond.feasible & ~slos[k].met(beyond), float(k + 1), binding)
    return Goodput(xp.where(found, best, xp.nan), xp.where(found, binding, -1.0), _masked(metrics, found))


def _masked(metrics: Metrics, found: BoolScalar) -> Metrics:
    """``metrics`` where ``found``, NaN (and infeasible) elsewhere."""
    nan = xp.nan * xp.ones_like(metrics.ttft_s)
    return metrics._replace(
        **{
            name: xp.where(found, getattr(metrics, name), nan)
            for name in metrics._fields
            if name not in ("feasible", "bottleneck")
        },
        feasible=found & metrics.feasible,
        bottleneck=xp.where(found, metrics.bottleneck, CAPACITY),
    )
