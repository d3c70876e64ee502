"""Serving under random arrivals: requests at a rate, continuous batching, percentiles in closed form.

One micro-batch of one rank receives requests as a Poisson process at lambda = request_rate /
(pp dp), each of I prompt and O output tokens, or of lengths drawn uniform about those means
(``kernels.lengths``: a step's prompts cost their mean, E[cost(I')], the decoders sit at their mean
context, a request's TTFT mixes over its own prompt, its TPOT over its own output length and
its e2e over both). The engine runs steps back to back while it has
work (``sweep.bench.simulate`` is the same engine request by request, the oracle of the tests):

- a step carries every decoding sequence (one token each) and every prompt that arrived during
  the step before (whole: the token budget is taken not to bind); a prompt's first token comes at
  the end of the step that carries it;
- with ``chunked_prefill`` the prompts share the step with the decodes, s(n, k) =
  ``scenarios.mixed_step`` (the roofline of the sum); without it a step with prompts waiting is a
  prefill pass P(k) that pauses decoding, and the others decode steps D(n);
- the sequences admitted stay within the scenario's capacity (memory and the engine's
  ``max_num_seqs``, ``kernels.memory.Capacity.staggered``).

Two approximations make it closed form:

1. Mean field in the decoders. The number of decoding sequences n is its mean n_bar, from Little's
   law n_bar = lambda (O - 1) tau, tau the mean time per output token a request sees, solved by
   bisection. n fluctuates about n_bar with the feedback gain g = lambda (O - 1) dtau/dn: one
   more decoder lengthens the steps, a longer step gathers more prompts and their work lengthens
   the next, so tau moves by the chain's whole response (the chain at n_bar + 1 against n_bar),
   not by dD/dn alone; near saturation, where prompts take most of the time, that response is
   several times dD/dn. It sets the spread a request sees (TPOT's, the admission wait's) and the
   mean's Palm excess: a request sees the steps of many decoders more often, E[n s] / E[n] over
   steps, itself among them (``served.seen``).
2. Prompts per step are a Markov chain. The N_j prompts arriving during step j are Poisson with
   mean lambda s(N_{j-1}), so N_j -> N_{j+1} has P(N' | N) = Poisson(N'; lambda s(N)); truncated at
   ``STATES`` prompts per step, its stationary distribution pi is solved exactly (one linear system).

From pi: the steps' mean, variance and lag-1 correlation (TPOT's mean and spread over a request's
O - 1 steps, plus the spread of n over its life: Var = 2 n_bar / 3 for a Poisson population of
fixed-length lives); TTFT's exact distribution under the chain: an arrival lands uniformly in a
step it finds (length-biased, s(N) pi(N)) and is served by the next, which carries it and the
Poisson(lambda s) others of its step; an arrival that finds the engine empty (probability
exp(-lambda e2e), the M/G/inf population) is served at once, P(1). An arrival that finds every
seat taken waits for one to free: with n an overdispersed Poisson count of mean n_bar and
variance m sigma_k^2 / (1 - g) (``seats_taken``: a Poisson count at few seats, where a normal
tail is far too light, skewed where the feedback spreads it), the requests waiting beyond the S
seats are E[(n - S)^+] and by Little's law each arrival waits that over lambda on average, the
share P(n >= S) of them that over the share (a wait added to TTFT and e2e). The end-to-end time
is TTFT plus a normal decode time. Percentiles invert these distributions by bisection.

Sustainable: the mean-field fixed point exists, the decoders' 99th percentile (normal
approximation of a Poisson count) fits the capacity, and the chain keeps below ``STATES`` prompts
per step. ``utilization``: the larger of the share of a step spent on other requests' work
(1 - D(1) / tau: -> 1 as the rate approaches what the GPUs can do) and of the sequence slots held
(-> 1 as the decoders fill the capacity); below 1 where sustainable.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from kernels import lengths, xp
from kernels._types import BoolScalar, Leaf, Matrix, Scalar, Vector
from kernels.memory import Capacity
from kernels.roofline import (
    PhaseTime,
    PrefillTerms,
    prefill_pass,
    prefill_terms,
    roof,
)
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload
from kernels.speculative import serving_step

STATES = 64
"""Prompts per step the chain tracks (0 .. STATES - 1): enough for a mean of ~45 prompts per step;
a point whose chain puts more than ``TAIL`` of its mass on the last state is not answered."""

TAIL = 1e-4
KS: Any = np.arange(STATES + 1, dtype=np.float64)
EYE = np.eye(STATES)


SEATS_Z = 2.3263478740408408
"""The 99th percentile of the standard normal: the decoders' count that must fit the capacity."""

QUANTILES = (0.5, 0.9, 0.99)
Z = (0.0, 1.2815515655446004, 2.3263478740408408)
"""Standard normal quantiles of ``QUANTILES``."""


def window_variance(gain: Scalar) -> Scalar:
    """Var of the mean of n over one request's life, per decoding sequence: n_bar V(g).

    In the step clock a request lives m = O - 1 steps and requests arrive at lambda tau(n) per
    step, so the decoders n are the arrivals of the last m steps, fed back with gain g = lambda
    (O - 1) dtau/dn. Linearised, n's spectrum is lambda tau |H|^2 / |1 - g H / m|^2 with H the
    box filter of length m, whence Var(n) = n_bar / (1 - g) exactly (the Palm excess a request
    sees) and the variance of the mean over the box
    V(g) = integral |h(x)|^4 / |1 - g h(x)|^2 dx / 2 pi, h(x) = (1 - e^{-ix}) / (ix),
    which is 2/3 at g = 0 (a Poisson population of fixed lives). (1 - g) V(g) rises smoothly from
    2/3 to 1; the quadratic here matches the integral (numerical quadrature) within 0.2% on
    g in [0, 0.95].
    """
    return (2.0 / 3.0 + 0.2428 * gain + 0.0905 * gain * gain) / (1.0 - gain)


def window_covariance(gain: Scalar) -> Scalar:
    """Cov of the sums over one request's life of the prompts carried and of the decoders they
    feed, per m^2 and per unit of the prompts' asymptotic variance:
    W(g) = Re integral |h(x)|^2 h(x) / (1 - g h(x)) dx / 2 pi, 1/2 at g = 0; the quadratic
    matches the integral (numerical quadrature) within 0.3% on g in [0, 0.95]."""
    return 0.5 + 0.17 * gain + 0.045 * gain * gain


MAX_GAIN = 0.99
"""The feedback gain is clipped below 1 (at 1 the decoders grow without bound: not sustainable)."""

FIXED_POINT_STEPS = 14
"""Illinois (false-position) steps for n_bar between 0 and the capacity: the fixed point's
excess lambda (O - 1) tau(n) - n is nearly affine in n; on 9 points 14 steps matched 30 to 3e-13
relative (10 steps missed one by 0.7%), where 24 halvings of a bisection reached 1e-6."""

PERCENTILE_STEPS = 40
"""Bisection halvings of a percentile between 0 and its bound."""


class Percentiles(NamedTuple):
    """p50, p90 and p99 of one latency over requests [s]."""

    p50: Scalar
    p90: Scalar
    p99: Scalar


class Load(NamedTuple):
    """What random arrivals add to a timeline: percentiles over requests, and how loaded it is
    (NaN under scenarios without random arrivals)."""

    ttft: Percentiles
    tpot: Percentiles
    e2e: Percentiles
    utilization: Scalar  # [1]; >= 1: the rate is not sustainable
    kv_transfer_s: Scalar  # one prompt's KV cache from a prefill to a decode instance (disaggregated; else NaN) [s]


def no_load(like: Scalar) -> Load:
    """The ``Load`` of a scenario without random arrivals: NaN."""
    nan = xp.nan * xp.ones_like(like)
    none = Percentiles(nan, nan, nan)
    return Load(none, none, none, nan, nan)


def step_durations(
    terms: PrefillTerms, decode: PhaseTime, chunked: Scalar, prompts: Vector, own: PrefillTerms | None = None
) -> Vector:
    """Duration of a step carrying ``prompts`` prompts beside the n decodes whose step is
    ``decode``: their sum under one roofline (chunked prefill), or, without it, a prefill pass
    P(k) when k > 0 and the decode step when k = 0 [s]. ``own``: one of the prompts costs its own
    terms instead of ``terms``' (a request's own prompt length, ``kernels.lengths``)."""
    if own is None:
        own = terms
    compute = prompts * terms.compute_per_prompt_s + (own.compute_per_prompt_s - terms.compute_per_prompt_s)
    memory = prompts * terms.memory_per_prompt_s + (own.memory_per_prompt_s - terms.memory_per_prompt_s)
    comm = prompts * terms.comm_per_prompt_s + (own.comm_per_prompt_s - terms.comm_per_prompt_s)
    mixed = (
        decode.overhead_s
        + roof(decode.compute_s + compute, decode.memory_s + memory, terms.overlap)
        + decode.comm_s
        + comm
    )
    prefill = (
        terms.overhead_s
        + roof(terms.compute_0_s + compute, terms.memory_0_s + memory, terms.overlap)
        + terms.comm_0_s
        + comm
    )
    separate = xp.where(prompts > 0.0, prefill, decode.total_s)
    return xp.where(chunked > 0.0, mixed, separate)


@functools.cache
def _counts(count: int) -> tuple[Any, Any]:
    """k = 0 .. count - 1 and log k!, host constants."""
    ks = np.arange(count, dtype=np.float64)
    return ks, np.array([math.lgamma(k + 1.0) for k in range(count)], dtype=np.float64)


def poisson_pmf(mean: Leaf, count: int = STATES) -> Leaf:
    """P(k) = mean^k e^-mean / k! for k = 0 .. count - 1, along a new last axis of ``mean``."""
    ks, log_factorial = _counts(count)
    shape = (1,) * np.ndim(mean) + (count,)  # explicit ranks: the engine forbids rank promotion
    ks, log_factorial = xp.constant_like(ks.reshape(shape), mean), xp.constant_like(log_factorial.reshape(shape), mean)
    return xp.exp(ks * xp.log(mean)[..., None] - mean[..., None] - log_factorial)


def transitions(rate: Scalar, durations: Vector) -> Matrix:
    """P(N' | N): Poisson(N'; rate s(N)) prompts arrive during the step that follows N; the last
    state holds the tail."""
    mean = xp.maximum(rate * durations, 1e-30)
    ks = xp.constant_like(KS[:STATES], mean)
    pmf = poisson_pmf(mean)
    head = xp.where(ks[None, :] < STATES - 1.0, pmf, 0.0)
    tail = xp.maximum(1.0 - xp.sum(head, axis=1), 0.0)
    return xp.where(ks[None, :] < STATES - 1.0, head, tail[:, None])


def stationary(p: Matrix) -> Vector:
    """pi = pi P, sum(pi) = 1: (P^T - I) pi = 0 with its last row replaced by the normalisation."""
    ks = xp.constant_like(KS[:STATES], p)
    last = ks[:, None] == STATES - 1.0
    a = xp.where(last, 1.0, p.T - xp.constant_like(EYE, p))
    return xp.solve(a, xp.where(ks == STATES - 1.0, 1.0, 0.0))


class Chain(NamedTuple):
    """The prompts-per-step chain at a given number of decoders."""

    durations: Vector  # s(N), N = 0 .. STATES - 1: the step after N prompts arrived [s]
    next_durations: Vector  # s(1 + N): the step carrying a new arrival and N others [s]
    p: Matrix  # P(N' | N)
    pi: Vector  # stationary distribution
    step_mean_s: Scalar  # mean step [s]
    per_token_s: Scalar  # mean time per decode step, prefill pauses included [s]
    per_token_var: Scalar  # asymptotic variance of the time per decode step: Var of the sum of m / m [s^2]
    prompts_mean: Scalar  # k_bar, prompts per step [1]
    prompts_var: Scalar  # Var(k) [1]
    prompts_var_sum: Scalar  # asymptotic variance of k: Var of the sum of m steps' k / m [1]
    slope_s: Scalar  # Cov(s, k) / Var(k): step time per prompt carried, regressed [s]
    decode: PhaseTime  # D(n), one decode step


def decode_at(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, decoders: Scalar
) -> PhaseTime:
    """D(n): one decode step of ``decoders`` sequences at the mean context (at least 1e-3)."""
    return lengths.decode_mean(serving_step(model, gpu, _batch(dep, xp.maximum(decoders, 1e-3)), profile), wl)


def chain(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    terms: PrefillTerms,
    rate: Scalar,
    decoders: Scalar,
) -> Chain:
    """The chain of prompts per step with ``decoders`` sequences decoding at the mean context."""
    decode = decode_at(model, gpu, dep, wl, profile, decoders)
    all_durations = step_durations(terms, decode, profile.chunked_prefill, xp.constant_like(KS, decode.total_s))
    durations = all_durations[:STATES]
    p = transitions(rate, durations)
    pi = stationary(p)
    ks = xp.constant_like(KS[:STATES], durations)
    mean, k_mean = xp.sum(pi * durations), xp.sum(pi * ks)
    var = xp.maximum(xp.sum(pi * durations * durations) - mean * mean, 0.0)
    k_var = xp.maximum(xp.sum(pi * ks * ks) - k_mean * k_mean, 0.0)
    cov = xp.sum(pi * durations * ks) - mean * k_mean
    # Sums over many steps: Var(sum of m x) / m -> Var(x) + 2 sum_L Cov(x_0, x_L), the lag sum
    # from the fundamental matrix Z = (I - P + 1 pi)^-1: sum_{L>=1} (P^L x - x_bar) = Z x - x.
    z = xp.solve(xp.constant_like(EYE, p) - p + pi[None, :], xp.stack([durations, ks], axis=1))
    var_sum = xp.maximum(var + 2.0 * xp.sum(pi * (durations - mean) * (z[:, 0] - durations)), 0.0)
    k_var_sum = xp.maximum(k_var + 2.0 * xp.sum(pi * (ks - k_mean) * (z[:, 1] - ks)), 0.0)
    # Decode steps: every step (chunked), else those after a step without arrivals.
    decode_share = xp.where(profile.chunked_prefill > 0.0, 1.0, xp.maximum(pi[0], 1e-12))
    return Chain(
        durations,
        all_durations[1:],
        p,
        pi,
        mean,
        mean / decode_share,
        var_sum / decode_share,
        k_mean,
        k_var,
        k_var_sum,
        cov / xp.maximum(k_var, 1e-30),
        decode,
    )


HERMITE_POINTS = ((0.0, 2.0 / 3.0), (1.7320508075688772, 1.0 / 6.0), (-1.7320508075688772, 1.0 / 6.0))
"""Gauss-Hermite nodes and weights for the standard normal (probabilists', 3 points: 0, +-sqrt 3):
exact for polynomials up to degree 5."""


def size_biased(f: Callable[[Scalar], Scalar], mean: Scalar, dispersion: Scalar) -> Scalar:
    """E[n f(n)] / E[n] for n gamma-distributed with this mean and variance / mean (``dispersion``,
    1 for a Poisson count), by quadrature: the size-biased gamma(shape a, scale theta) is the
    gamma(a + 1, theta), whose quantiles are taken by the Wilson-Hilferty cube of a normal (3
    Gauss-Hermite points). Exact for f affine: f(mean + dispersion); as mean -> 0, f(dispersion)
    (one sees oneself)."""
    theta = xp.maximum(dispersion, 1e-12)
    shape = xp.maximum(mean, 0.0) / theta + 1.0
    c = 1.0 / (9.0 * shape)
    nodes = [(shape * theta * xp.maximum(1.0 - c + z * xp.sqrt(c), 0.0) ** 3, w) for z, w in HERMITE_POINTS]
    # the cube's mean is within 1e-5 of shape theta; scaled to it, f affine comes out exact
    scale = shape * theta / sum((w * x for x, w in nodes), 0.0 * mean)
    total = 0.0 * mean
    for x, w in nodes:
        total = total + w * f(x * scale)
    return total


def seats_taken(mean: Scalar, variance: Scalar, seats: Scalar) -> tuple[Scalar, Scalar]:
    """E[(N - S)^+] and P(N >= S) for a count N of this mean and variance, S ``seats``: N = D M,
    M Poisson of mean mean / D, D = variance / mean (at least 1), the overdispersed Poisson. Exact
    sums of M's probabilities where S / D lies below the last state; beyond, the normal with a
    half-unit continuity correction."""
    d = xp.maximum(variance / xp.maximum(mean, 1e-12), 1.0)
    lam = xp.maximum(mean / d, 1e-12)
    t = seats / d
    ks = xp.constant_like(KS[:STATES], mean)
    pmf = poisson_pmf(lam)
    exact_e = d * (lam - t + xp.sum(xp.maximum(t - ks, 0.0) * pmf))
    exact_p = 1.0 - xp.sum(xp.where(ks < t, pmf, 0.0))  # the states below t: none lost above the last
    sd = xp.sqrt(variance)
    z = (mean - seats + 0.5) / sd
    few = t < STATES - 1.0
    excess = xp.where(few, exact_e, sd * _ramp_integral(z) - 0.5 * norm_cdf(z))
    return xp.maximum(excess, 0.0), xp.clip(xp.where(few, exact_p, norm_cdf(z)), 0.0, 1.0)


def _batch(dep: Deployment, batch: Scalar) -> Deployment:
    return dataclasses.replace(dep, batch=batch)


def _phi(z: Leaf) -> Leaf:
    """The standard normal density."""
    return xp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def norm_cdf(z: Leaf) -> Leaf:
    """The standard normal CDF, by Abramowitz & Stegun 7.1.26 for erf (|error| < 1.5e-7): the
    same arithmetic on host and under JAX, no special-function library."""
    x = xp.minimum(xp.maximum(z, -40.0), 40.0) / math.sqrt(2.0)
    a = xp.maximum(x, -x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * xp.exp(-a * a)
    return 0.5 * (1.0 + xp.where(x >= 0.0, erf, -erf))


def _ramp_integral(z: Leaf) -> Leaf:
    """G(z) = integral of the normal CDF up to z: z Phi(z) + phi(z)."""
    return z * norm_cdf(z) + _phi(z)


def invert(cdf: Callable[[Vector], Vector], lo: Scalar, hi: Scalar, levels: Vector) -> Vector:
    """The smallest t in [lo, hi] with cdf(t) >= level, per level, by bisection."""

    def halve(_: object, bounds: tuple[Vector, Vector]) -> tuple[Vector, Vector]:
        a, b = bounds
        mid = 0.5 * (a + b)
        below = cdf(mid) < levels
        return xp.where(below, mid, a), xp.where(below, b, mid)

    a, b = xp.fori_loop(0, PERCENTILE_STEPS, halve, (lo + 0.0 * levels, hi + 0.0 * levels))
    return 0.5 * (a + b)


class Served(NamedTuple):
    """Latencies of requests arriving at rate lambda (means and percentiles)."""

    decoders: Scalar  # n_bar [sequence]
    ttft_s: Scalar
    tpot_s: Scalar
    e2e_s: Scalar
    load: Load
    sustainable: BoolScalar
    decode: PhaseTime  # D(n_bar), one decode step
    first: PhaseTime  # P(1): one prompt on an idle engine


def served(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    capacity: Capacity,
    terms: PrefillTerms | None = None,
    first_token_percentiles: bool = True,
) -> Served:
    """Means and percentiles of TTFT, TPOT and e2e of one micro-batch at rate request_rate / (pp dp).

    ``terms``: what one arriving request's prompt costs the engine (default: its prefill on this
    deployment, ``prefill_terms``); zero for a decode instance, which receives the KV cache
    already computed (``kernels.disaggregated``). Without ``first_token_percentiles`` the
    percentiles of TTFT and e2e are NaN and not computed (a decode instance's caller has its own)."""
    rate = wl.request_rate / (dep.pp * dep.dp)
    one = xp.ones_like(dep.batch)
    fixed_prompts = lengths.surely_zero(wl.input_len_spread)
    fixed_outputs_known = lengths.surely_zero(wl.output_len_spread)
    if terms is None and fixed_prompts:
        own = [prefill_terms(model, gpu, _batch(dep, one), wl, profile)] * len(lengths.EDGES)
    elif terms is None:
        prompt_lens = lengths.points(wl.input_len, wl.input_len_spread)
        own = [
            prefill_terms(model, gpu, _batch(dep, one), dataclasses.replace(wl, input_len=i), profile)
            for i in prompt_lens
        ]
    else:
        own = [terms] * len(lengths.EDGES)
    terms = lengths.prompt_mean(own)
    carrying = [lengths.carrying(terms, t) for t in own]  # a pass with one prompt of each length
    firsts = [prefill_pass(t, one) for t in carrying]
    first = lengths.mean(firsts)
    tokens = xp.maximum(wl.output_len - 1.0, 0.0)
    steps = xp.maximum(wl.output_len - 1.0, 1.0)
    seats = xp.maximum(capacity.staggered, 1.0)

    def slope(c: Chain, n: Scalar) -> tuple[Scalar, Scalar]:
        """What one more decoding sequence adds [s]: to a decode step, dD/dn, and to the mean time
        per token, dtau/dn, the prompts' response included: its decode work lengthens every step,
        a longer step gathers more prompts (lambda s per step) and their work lengthens the next,
        so the chain's mean moves by more than dD/dn (about dD/dn / (1 - the prompts' share of the
        time) where they bind): the chain at n + 1 against the chain at n."""
        upper = chain(model, gpu, dep, wl, profile, terms, rate, xp.maximum(n, 1e-3) + 1.0)
        return upper.decode.total_s - c.decode.total_s, upper.per_token_s - c.per_token_s

    def gain(dn: Scalar) -> Scalar:
        return xp.clip(rate * tokens * dn, 0.0, MAX_GAIN)

    def seen(c: Chain, n: Scalar) -> tuple[Scalar, Scalar, Scalar]:
        """Mean time per token a request sees, E[n s] / E[n]: the mean step plus Cov(n, s) / n_bar;
        and dtau/dn and the gain g = lambda m dtau/dn (the prompts' response included: a longer
        step gathers more prompts, so more decoders), which set the spread a request sees. The
        decoders are the new ones of the last m = O - 1 steps (the prompts carried): the mean's
        excess takes Var(n) = m sigma_k^2 / (1 - g_D) with the decode step's own gain g_D =
        lambda m dD/dn (sigma_k^2 the prompts' asymptotic variance; m sigma_k^2 = n_bar for
        Poisson arrivals per step), and a step's prompts correlate with the recent ones that made
        n, Cov(n, k) = (sigma_k^2 - Var k) / (2 (1 - g_D)). The decode step a request sees is
        E[n D(n)] / E[n] over n gamma-distributed with that mean and variance (``size_biased``):
        D(n) + dD/dn Var(n) / n where D is straight, less where it bends down (a mixture of
        experts' weights read: Mixtral 8x7B on one MI300X at 3 decoders, TPOT +20% -> +10%
        against the simulation), more at the roofline's kink. The chain's mean step is taken at
        the steps' own average of n, by the decode step's slope. With g in the mean's excess, the
        fixed point ran away to a second root for Mixtral near saturation (n 146-346 against
        55-79 simulated, TPOT +33-95%; README)."""
        dn, total = slope(c, n)
        g = gain(total)
        g_step = gain(dn)  # the decode step's own gain: the mean's excess (see the module notes)
        var_n = steps * c.prompts_var_sum / (1.0 - g_step)
        cov_nk = 0.5 * (c.prompts_var_sum - c.prompts_var) / (1.0 - g_step)
        # Var(n) / n: the prompts' Fano factor over many steps (1 for Poisson arrivals), fed back
        fano = xp.where(c.prompts_mean > 1e-12, c.prompts_var_sum / xp.maximum(c.prompts_mean, 1e-12), 1.0)
        decode_seen = size_biased(
            lambda x: decode_at(model, gpu, dep, wl, profile, x).total_s, n, fano / (1.0 - g_step)
        )
        excess_s = decode_seen - c.decode.total_s + c.slope_s * cov_nk / xp.maximum(n, 1e-3)
        excess_s = xp.minimum(excess_s, dn * var_n)
        # n is Little's, a time average; the steps hold fewer on average, longer steps holding
        # more decoders: E_steps[n] = n / (1 + excess / E[s]), and their mean decode step is D
        # there, dD/dn times the shift below D(n) (Llama 3.1 8B on an H100 at 3866/486 and u
        # 0.76: n 29.7 -> 26.8 against 26.5 simulated, TPOT +12% -> +1.0%).
        shift = n * excess_s / (c.per_token_s + excess_s)
        return c.per_token_s - dn * shift + excess_s, total, g

    def excess(n: Scalar) -> Scalar:
        c = chain(model, gpu, dep, wl, profile, terms, rate, n)
        return rate * tokens * seen(c, n)[0] - n

    def secant(lo: Scalar, hi: Scalar, f_lo: Scalar, f_hi: Scalar) -> Scalar:
        """Where the chord through (lo, f_lo) and (hi, f_hi) crosses zero, within [lo, hi]."""
        gap = f_lo - f_hi
        safe = xp.where(gap > 0.0, gap, 1.0)
        return xp.where(gap > 0.0, xp.clip(lo + (hi - lo) * f_lo / safe, lo, hi), 0.5 * (lo + hi))

    def narrow(_: object, state: tuple[Scalar, ...]) -> tuple[Scalar, ...]:
        """One step of the Illinois method: false position, halving the value kept twice in a row."""
        lo, hi, f_lo, f_hi, side = state
        mid = secant(lo, hi, f_lo, f_hi)
        f_mid = excess(mid)
        up = f_mid > 0.0  # the root lies above mid
        return (
            xp.where(up, mid, lo),
            xp.where(up, hi, mid),
            xp.where(up, f_mid, xp.where(side < 0.0, 0.5 * f_lo, f_lo)),
            xp.where(up, xp.where(side > 0.0, 0.5 * f_hi, f_hi), f_mid),
            xp.where(up, 1.0, -1.0) + 0.0 * side,
        )

    zero = 0.0 * seats
    f_top = excess(seats)
    found = f_top < 0.0
    lo, hi, f_lo, f_hi, _ = xp.fori_loop(
        0, FIXED_POINT_STEPS, narrow, (zero, seats, excess(zero), xp.minimum(f_top, -1e-30), zero)
    )
    n = secant(lo, hi, f_lo, f_hi)
    c = chain(model, gpu, dep, wl, profile, terms, rate, n)
    # A request's own mean step responds to the mean of n over its life by dtau/dn: n moves
    # slowly (over m steps), the chain follows it within a few.
    tpot, dn, g = seen(c, n)
    # A request's mean step over its m steps: the prompts' own (chain) part, the decoders' part
    # (n averaged over its life: m sigma_k^2 V(g)), and their covariance.
    decoders_var = c.prompts_var_sum * window_variance(g)  # n's part, per step of life: m V(g) at fixed lives
    prompts_cov = c.prompts_var_sum * window_covariance(g)  # the prompts' and the decoders', per m^2 of life
    tpot_var = c.per_token_var / steps + dn * dn * steps * decoders_var + 2.0 * dn * c.slope_s * prompts_cov
    tpot_sd = xp.sqrt(xp.maximum(tpot_var, 0.0))
    # Output lengths spread: a request of O' outputs averages over its own m' = O' - 1 steps, the
    # others' lives spread (``lengths.life_variance``): TPOT a mixture over the strata of O'.
    outs = lengths.midpoints(wl.output_len, wl.output_len_spread)
    lives = [xp.maximum(o - 1.0, 1.0) for o in lengths.points(wl.output_len, wl.output_len_spread)]
    fixed_outputs = wl.output_len_spread <= 0.0

    def own_sd(o: Scalar) -> Scalar:
        m = xp.maximum(o - 1.0, 1.0)
        var = (
            c.per_token_var / m
            + dn * dn * decoders_var * 1.5 * lengths.life_variance(m, lives)
            + 2.0 * dn * c.slope_s * prompts_cov * 2.0 * lengths.life_covariance(m, lives)
        )
        return xp.where(fixed_outputs, tpot_sd, xp.sqrt(xp.maximum(var, 0.0)))

    tpot_sds = [own_sd(o) for o in outs]

    # TTFT: land in a step (length-biased), wait out its rest, then the step that carries you.
    biased = c.pi * c.durations / c.step_mean_s
    weights = biased[:, None] * c.p  # (step landed in, others arriving in it)
    rest_mean = 0.5 * c.durations[:, None]
    # the step carrying a new arrival of each prompt length (lengths.EDGES), beside the N others
    own_next = [
        step_durations(terms, c.decode, profile.chunked_prefill, xp.constant_like(KS[1:], c.durations), t) for t in own
    ]
    next_mean = lengths.mean(own_next)
    busy_ttft = xp.sum(weights * (rest_mean + next_mean[None, :]))
    decode_total = tokens * tpot
    empty = xp.exp(-rate * (busy_ttft + decode_total))
    # Admission: the sequences in flight beyond the seats wait for one to finish. n is an
    # overdispersed Poisson count, mean n_bar and the variance its feedback gives, m sigma_k^2 /
    # (1 - g); the requests waiting E[(n - S)^+], and each arrival waits that over lambda on
    # average (Little's law), those that wait (P(n >= S)) that over the share that waits. (A
    # normal n: Llama 3.3 70B tp 2 on H100 at 4 seats, TTFT mean -22% against the simulation;
    # a negative binomial, skewed twice as much: LMDeploy 8B on H200 at 0.94, TTFT p90 +87%.)
    beyond, waiting = seats_taken(n, xp.maximum(steps * c.prompts_var_sum / (1.0 - g), 1e-30), seats)
    admission_s = beyond / xp.maximum(rate, 1e-30)
    # the wait of an arrival that waits [s] (0 where hardly any waits)
    queued_s = xp.where(waiting > 1e-9, admission_s / xp.maximum(waiting, 1e-9), 0.0)
    ttft = empty * first.total_s + (1.0 - empty) * busy_ttft + admission_s
    e2e = ttft + decode_total
    decode_sd = xp.maximum(tokens * tpot_sd, 1e-9 * (e2e + 1e-30))
    # per stratum of O': its decode time, normal, its width's spread (uniform) added in variance
    decode_totals = [xp.maximum(o - 1.0, 0.0) * tpot for o in outs]
    stratum = 0.5 * wl.output_len * wl.output_len_spread * tpot  # one stratum's width of decode time [s]
    decode_sds = [
        xp.where(
            fixed_outputs,
            decode_sd,
            xp.maximum(xp.sqrt((xp.maximum(o - 1.0, 0.0) * sd) ** 2 + stratum * stratum / 12.0), 1e-9 * (e2e + 1e-30)),
        )
        for o, sd in zip(outs, tpot_sds, strict=True)
    ]
    levels: Any = xp.constant_like(QUANTILES, ttft)

    no_wait = lengths.surely_zero(waiting, 1e-9)

    def ttft_cdf(t: Vector) -> Vector:
        if no_wait:
            return ttft_free_cdf(t)
        return (1.0 - waiting) * ttft_free_cdf(t) + waiting * ttft_free_cdf(t - queued_s)

    def ttft_free_cdf(t: Vector) -> Vector:
        width = c.durations[None, :, None]
        frac = (t[:, None, None] - c.next_durations[None, None, :]) / width
        if fixed_prompts:
            busy = xp.sum(weights[None] * xp.clip(frac, 0.0, 1.0), axis=(1, 2))
            return empty * xp.where(t >= first.total_s, 1.0, 0.0) + (1.0 - empty) * busy
        strata = [
            lengths.uniform_ramp(t[:, None, None], width, own_next[a][None, None, :], own_next[b][None, None, :])
            for a, b in lengths.STRATA
        ]
        busy = xp.sum(weights[None] * lengths.strata_mean(xp.clip(frac, 0.0, 1.0), strata), axis=(1, 2))
        alone = [lengths.uniform_cdf(t, firsts[a].total_s, firsts[b].total_s) for a, b in lengths.STRATA]
        return empty * lengths.strata_mean(xp.where(t >= first.total_s, 1.0, 0.0), alone) + (1.0 - empty) * busy

    def e2e_given(t: Vector, steps_s: Any, total: Scalar, sd: Scalar) -> Vector:
        """P(e2e <= t) for a decode time normal (total, sd) after the step carrying the prompt."""
        upper = (t[:, None, None] - steps_s[None, None, :] - total) / sd
        lower = upper - c.durations[None, :, None] / sd
        ramp = (_ramp_integral(upper) - _ramp_integral(lower)) * sd / c.durations[None, :, None]
        busy = xp.sum(weights[None] * ramp, axis=(1, 2))
        alone = norm_cdf((t - first.total_s - total) / sd)
        return empty * alone + (1.0 - empty) * busy

    def e2e_cdf(t: Vector) -> Vector:
        if no_wait:
            return e2e_free_cdf(t)
        return (1.0 - waiting) * e2e_free_cdf(t) + waiting * e2e_free_cdf(t - queued_s)

    def e2e_free_cdf(t: Vector) -> Vector:
        centre = e2e_given(t, c.next_durations, decode_total, decode_sd)
        if fixed_outputs_known and fixed_prompts:
            return centre
        return lengths.strata_mean(
            centre, [e2e_given(t, next_mean, x, sd) for x, sd in zip(decode_totals, decode_sds, strict=True)]
        )

    def tpot_cdf(t: Vector) -> Vector:
        cdf = [norm_cdf((t - tpot) / xp.maximum(sd, 1e-30)) for sd in tpot_sds]
        return 0.25 * (cdf[0] + cdf[1] + cdf[2] + cdf[3])

    longest = c.durations[STATES - 1] + own_next[-1][STATES - 1]
    first_top = xp.maximum(longest, firsts[-1].total_s)
    # the longest strata's decode time beyond the mean's bound (0 where the outputs are fixed)
    beyond = xp.maximum(
        xp.maximum(decode_totals[-1] + 10.0 * decode_sds[-1], decode_totals[0] + 10.0 * decode_sds[0])
        - (decode_total + 10.0 * decode_sd),
        0.0,
    )
    if first_token_percentiles:
        ttft_q = invert(ttft_cdf, 0.0 * ttft, first_top + queued_s, levels)
        e2e_q = invert(e2e_cdf, 0.0 * e2e, first_top + queued_s + decode_total + 10.0 * decode_sd + beyond, levels)
    else:
        ttft_q = e2e_q = xp.nan * levels
    top_sd = xp.maximum(xp.maximum(tpot_sds[0], tpot_sds[-1]), tpot_sd)
    mixed_q = tpot + 0.0 * levels if fixed_outputs_known else invert(tpot_cdf, 0.0 * tpot, tpot + 10.0 * top_sd, levels)
    tpot_q = [xp.where(fixed_outputs, tpot + z * tpot_sd, mixed_q[i]) for i, z in enumerate(Z)]

    held = n + SEATS_Z * xp.sqrt(n)
    isolated = lengths.decode_mean(serving_step(model, gpu, _batch(dep, xp.ones_like(n)), profile), wl).total_s
    utilization = xp.maximum(1.0 - isolated / tpot, held / seats)
    sustainable = found & (held <= seats) & (c.pi[STATES - 1] < TAIL) & xp.isfinite(tpot)
    utilization = xp.where(sustainable, utilization, xp.maximum(utilization, 1.0))
    load = Load(
        Percentiles(ttft_q[0], ttft_q[1], ttft_q[2]),
        Percentiles(*tpot_q),
        Percentiles(e2e_q[0], e2e_q[1], e2e_q[2]),
        utilization,
        xp.nan * utilization,
    )
    return Served(n, ttft, tpot, e2e, load, sustainable, c.decode, first)
