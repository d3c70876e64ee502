"""Request lengths drawn from a distribution: each request's prompt and output lengths uniform on
[L (1 - r), L (1 + r)] about their means L, r the spread (``Workload.input_len_spread``,
``output_len_spread``; 0: every request alike).

The distribution is vLLM's random dataset: ``benchmarks/benchmark_serving.py --dataset-name random
--random-range-ratio r`` draws each length uniformly from the integers int(L (1 - r)) .. int(L (1 + r))
(vllm ``benchmarks/benchmark_dataset.py``, ``RandomDataset.sample``: "[X * (1 - b), X * (1 + b)]",
r < 1). vLLM takes one ratio for both lengths; here each has its own. The lengths are continuous.

A length enters through five points at the relative offsets ``EDGES`` (-1, -1/2, 0, 1/2, 1, in units
of r L, the centre listed first):

- a mean over requests, E[f(L)], by composite Simpson (weights 1, 4, 2, 4, 1 over 12): exact for
  cubics, so for a prefill's cost (quadratic in I: attention);
- a distribution over requests by the four equally likely strata between successive edges
  (``STRATA``), f taken linear within each, or at the strata's midpoints (``MIDPOINTS``).

Each average is the centre's value plus the weighted differences from it (``mean``): at r = 0 the
points are the mean itself, the differences are exactly 0, and spread 0 gives the numbers of fixed
lengths bit for bit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from kernels import xp
from kernels._types import BoolScalar, Scalar
from kernels.roofline import (
    DecodeStep,
    PhaseTime,
    PrefillTerms,
    _step_phase,
    decode_step_mean,
    window_context_sum,
    with_per_prompt,
)
from kernels.specs import Workload

T = TypeVar("T")

EDGES = (0.0, -1.0, -0.5, 0.5, 1.0)
"""Relative offsets of the five points of a length, in units of r L; the centre first."""

SIMPSON = (2.0 / 12.0, 1.0 / 12.0, 4.0 / 12.0, 4.0 / 12.0, 1.0 / 12.0)
"""Composite Simpson weights of ``EDGES`` for the mean of a function of a uniform length."""

STRATA = ((1, 2), (2, 0), (0, 3), (3, 4))
"""The four equally likely strata of the uniform: pairs of indices into ``EDGES``, low to high."""

MIDPOINTS = (-0.75, -0.25, 0.25, 0.75)
"""Relative offsets of the strata's midpoints."""


def points(mean_len: Scalar, spread: Scalar) -> tuple[Scalar, ...]:
    """The lengths L (1 + r e) at ``EDGES`` [token]; the first is L itself."""
    return tuple(mean_len * (1.0 + spread * e) for e in EDGES)


def midpoints(mean_len: Scalar, spread: Scalar) -> tuple[Scalar, ...]:
    """The lengths at the strata's midpoints, L (1 + r e) for e in ``MIDPOINTS`` [token]."""
    return tuple(mean_len * (1.0 + spread * e) for e in MIDPOINTS)


def mean(values: Sequence[T]) -> T:
    """E[f(L)] from f at ``EDGES`` (pytrees alike): the centre's value plus the Simpson-weighted
    differences from it, exactly the centre's value where the points coincide (r = 0)."""
    centre = values[0]

    def one(c: Any, *others: Any) -> Any:
        return c + sum(w * (v - c) for w, v in zip(SIMPSON[1:], others, strict=True))

    return xp.tree_map(one, centre, *values[1:])


def strata_mean(centre: T, strata: Sequence[T]) -> T:
    """The average over the four equally likely strata of values given per stratum, written as the
    centre's value plus the differences (exact where each stratum's value is the centre's)."""

    def one(c: Any, *per: Any) -> Any:
        return c + sum(0.25 * (v - c) for v in per)

    return xp.tree_map(one, centre, *strata)


def surely_zero(value: Any, below: float = 0.0) -> bool:
    """True where ``value`` is a host number (numpy evaluation, not a JAX trace) at most ``below``:
    there a mixture whose parts all coincide is skipped; traced (a sweep), every part is computed
    and the mixture gives the same numbers."""
    return isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0 and float(value) <= below


def fixed(wl: Workload) -> BoolScalar:
    """Every request of the same lengths (both spreads 0)."""
    return (wl.input_len_spread <= 0.0) & (wl.output_len_spread <= 0.0)


def decode_mean(step: DecodeStep, wl: Workload) -> PhaseTime:
    """One decode step of the sequences decoding, each at its own context: a request of I' prompt and
    O' output tokens passes the contexts I', ..., I' + O' - 1, so the decoders are its lengths
    weighted by O' (the steps it spends decoding) and the step, affine in the mean context and the
    mean window context, is

        s = step(E[O' (I' + (O' - 1) / 2)] / E[O'],  E[sum_t min(t, W)] / E[O'])

    (``decode_step_mean`` at fixed lengths, which it returns exactly where the spreads are 0)."""
    plain = decode_step_mean(step, wl.input_len, wl.output_len)
    if surely_zero(wl.input_len_spread) and surely_zero(wl.output_len_spread):
        return plain
    ins = points(wl.input_len, wl.input_len_spread)
    outs = points(wl.output_len, wl.output_len_spread)
    per_request = mean(outs)
    context = mean([mean([o * (i + 0.5 * (o - 1.0)) for i in ins]) for o in outs]) / per_request
    window = mean([mean([window_context_sum(step, i, o) for i in ins]) for o in outs]) / per_request
    mixed = _step_phase(step, context, window)
    same = fixed(wl)
    return xp.tree_map(lambda a, b: xp.where(same, a, b), plain, mixed)


def life_variance(own_steps: Scalar, lives: Sequence[Scalar]) -> Scalar:
    """Var of the mean of the decoders n over a request's own life of m' steps, per unit of n's
    Poisson variance per step, when the others' lives L are spread: n's autocovariance at lag u is
    lambda E[(L - u)^+], so

        F(m') = (2 / m'^2) E_L[ integral_0^a (m' - u)(L - u) du ],  a = min(m', L)
              = (2 / m'^2) E_L[ m' L a - (m' + L) a^2 / 2 + a^3 / 3 ]

    (2 m / 3 at m' = L = m: a Poisson population of fixed lives), the expectation over ``lives`` (the
    life at ``EDGES``) by ``mean``."""
    m = own_steps

    def one(life: Scalar) -> Scalar:
        a = xp.minimum(m, life)
        return 2.0 * (m * life * a - 0.5 * (m + life) * a * a + a * a * a / 3.0) / (m * m)

    return mean([one(life) for life in lives])


def life_covariance(own_steps: Scalar, lives: Sequence[Scalar]) -> Scalar:
    """Cov of the means over a request's own life of m' steps of the prompts carried and of the
    decoders they become, per unit of the prompts' variance per step: a prompt carried at step t is
    a decoder at t + u while its life L exceeds u, so

        G(m') = (1 / m'^2) E_L[ integral_0^a (m' - u) du ] = E_L[ m' a - a^2 / 2 ] / m'^2

    (1/2 at m' = L: ``kernels.queueing.window_covariance`` at zero gain)."""
    m = own_steps

    def one(life: Scalar) -> Scalar:
        a = xp.minimum(m, life)
        return (m * a - 0.5 * a * a) / (m * m)

    return mean([one(life) for life in lives])


def uniform_ramp(t: Any, width: Any, lo: Any, hi: Any) -> Any:
    """P(R + X <= t) for R uniform on [0, ``width``] (the rest of a step) and X uniform on [lo, hi]
    (a step whose length varies within a stratum), both independent:

        (width / (hi - lo)) [H((t - lo) / width) - H((t - hi) / width)]

    with H(x) = integral of clip(x, 0, 1): 0, x^2 / 2, x - 1/2; where hi - lo is negligible, the
    ramp of X fixed at the middle, clip((t - (lo + hi) / 2) / width, 0, 1)."""
    gap = hi - lo
    spread = gap > 1e-6 * width
    safe = xp.where(spread, gap, 1.0)

    def ramp_integral(x: Any) -> Any:
        inside = xp.clip(x, 0.0, 1.0)
        return 0.5 * inside * inside + xp.maximum(x - 1.0, 0.0)

    ramp = (ramp_integral((t - lo) / width) - ramp_integral((t - hi) / width)) * width / safe
    point = xp.clip((t - 0.5 * (lo + hi)) / width, 0.0, 1.0)
    return xp.where(spread, ramp, point)


def uniform_cdf(t: Any, lo: Any, hi: Any) -> Any:
    """P(X <= t) for X uniform on [lo, hi]; where hi - lo is negligible, the step at the middle."""
    gap = hi - lo
    spread = gap > 1e-6 * xp.maximum(hi, 1e-30)
    safe = xp.where(spread, gap, 1.0)
    return xp.where(spread, xp.clip((t - lo) / safe, 0.0, 1.0), xp.where(t >= 0.5 * (lo + hi), 1.0, 0.0))


def prompt_mean(own: Sequence[PrefillTerms]) -> PrefillTerms:
    """The prefill terms of a pass of k prompts of lengths drawn at random, from each length's terms
    at ``EDGES``: k times the mean per-prompt cost (``mean``: exact for a cost quadratic in I) and the
    pass's fixed costs at the mean length."""
    return with_per_prompt(own[0], own, mean)


def carrying(terms: PrefillTerms, own: PrefillTerms) -> PrefillTerms:
    """A pass's terms where one of its k prompts is of a given length (``own``) and the others of
    random lengths (``terms``): the difference of its cost from the mean moved into the fixed
    costs, so the pass of k prompts is ``prefill_pass(carrying(terms, own), k)``."""
    return terms._replace(
        compute_0_s=terms.compute_0_s + (own.compute_per_prompt_s - terms.compute_per_prompt_s),
        memory_0_s=terms.memory_0_s + (own.memory_per_prompt_s - terms.memory_per_prompt_s),
        comm_0_s=terms.comm_0_s + (own.comm_per_prompt_s - terms.comm_per_prompt_s),
    )


def at_means(wl: Workload) -> Workload:
    """The workload with every request at the mean lengths (the spreads 0)."""
    return dataclasses.replace(
        wl, input_len_spread=0.0 * wl.input_len_spread, output_len_spread=0.0 * wl.output_len_spread
    )
