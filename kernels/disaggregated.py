"""Disaggregated prefill and decode (xPyD): prompts on x prefill instances, generation on the
deployment's y = dp decode ranks, each prompt's KV cache moved from one to the other.

Symbols: lambda, requests per second to the deployment [request/s]; x prefill instances of P_p
GPUs each (``prefill_instances``, ``prefill_tp``); the decode pool is the deployment itself, dp
ranks of pp stages of P GPUs; I and O prompt and output tokens. The prefill instances run on the
prefill GPU (``DesignPoint.prefill_gpu``, the ``prefill_gpu`` axis; by default the decode pool's
``gpu``): its FLOP/s, memory bandwidth and capacity, with the same engine profile's efficiencies
(fractions of whichever GPU's peaks), and its own compute precision (``prefill_compute_dtype``:
``auto`` picks the weight format's precision where that GPU has it, e.g. bf16 for fp8 weights on
an A100). Two GPUs are of one type when they are the same catalogue entry (``same_gpu``).

**Prefill pool: an M/D/x queue.** Requests wait in one first-come-first-served queue for the first
free prefill instance, which runs one prompt at a time for D = P(1), its prefill pass on P_p GPUs
(every prompt has I tokens: the service time is deterministic). The number N in the pool at
instants D apart is a Markov chain, exactly (those in service leave within D, those waiting are
all still there): N' = max(N - x, 0) + A, A ~ Poisson(lambda D) [Crommelin 1932]; its stationary
law pi is the time-stationary law of N. An arrival has waited at most kD + u (k whole,
0 <= u < D) iff at most x - 1 requests ahead of it remain at that time, i.e. iff at most
(k + 1) x - 1 remain u after its arrival: the max(N - x, 0) still there of the N present D - u
before it arrived, plus the Poisson(lambda (D - u)) that arrived since [Franx 2001]:

    P(W <= kD + u) = sum_n pi_n P(Poisson(lambda (D - u)) <= (k + 1) x - 1 - max(n - x, 0))   (1)

    E[W] = E[max(N - x, 0)] / lambda                                   (Little's law on the queue)

(C. D. Crommelin, "Delay probability formulae when the holding times are constant", P.O. Elec.
Engrs. J. 25, 41-50, 1932; G. J. Franx, "A simple solution for the M/D/c waiting time
distribution", Oper. Res. Lett. 29(5), 221-229, 2001.) The chain is truncated at
``kernels.queueing.STATES`` requests, like the poisson scenario's (x lambda D up to ~40).

**KV transfer.** Each prefill GPU sends its shard of the prompt's KV cache and each decode GPU
receives its own (its heads, its stage's L/pp layers), all over their own links at once:

    T_kv = max(M_seq(I; P_p), M_seq(I; P) / pp) / B_link                                   (2)

B_link is ``kv_link_bytes_per_s``; by default the GPU's scale-up link (NVLink: 450 GB/s per
direction on H100) when all x P_p + P pp dp GPUs are of one type and fit in one node, else the
scale-out network per GPU (one 400 Gb/s ConnectX-7 per H100: 50 GB/s), at the datasheet rate
(grids/gpus.toml; set the axis for a measured one). GPUs of two types never share a scale-up
domain (an NVLink domain is one node, or one NVL rack, of one GPU type), so between them the KV
cache crosses the network: B_link is the smaller of the two GPUs' scale-out bandwidths per GPU
(the faster NICs wait for the slower); its bytes are the same (they depend on the model, the KV
format and each pool's tp). The transfer follows the prefill pass and overlaps the next
prompt's (copy engines and NICs move it, not the multiprocessors); each link is busy
lambda / x T_kv (sending) or lambda / dp T_kv (receiving) of the time, which must stay below 1.

**Decode pool.** The poisson scenario's closed form (``kernels.queueing.served``) on the dp
ranks at lambda / (pp dp) per micro-batch, for requests that cost nothing to admit (their KV
cache arrives computed): every step is a decode step D(n) of the n sequences decoding. Its
sequence slots are the KV cache's (at the mean context when paged) and the engine's limits, one
token per sequence in a step. Its arrivals are taken as Poisson (the prefill pool's departures
are in fact smoother).

**Latencies.** TTFT = W + D + T_kv: the first token, sampled at the end of the prefill pass,
reaches the user when the decode instance holds the request. It then joins the next decode step
(J = D(n)/2 later on average) and gets its O - 1 further tokens at the decode pool's tau each:
TPOT = tau + J / (O - 1), e2e = TTFT + J + (O - 1) tau. Percentiles: TTFT's from (1) plus
D + T_kv; TPOT's the decode pool's plus J / (O - 1); e2e's from (1) convolved with the decode
pool's normal decode time.

**Throughput, cost, sustainability.** Throughput lambda O while both pools keep up; the
deployment holds x P_p + P pp dp GPUs (``pool_gpus``), all counted in its cost per token, each
pool's at its own GPU's price (``prefill_pool_gpus`` of them at the prefill GPU's; owned cost and
power likewise, ``kernels.point.over_pools``). A ``usd_per_gpu_hour`` or ``capex_usd_per_gpu``
override prices the decode GPU, and the prefill GPU too where it is the same type; a prefill GPU
of another type keeps its catalogue prices (grids/gpus.toml).
``utilization`` is the largest of the prefill instances' busy fraction lambda D / x, the links'
and the decode pool's; a point is sustainable where every one is below 1 and the prefill
instances fit (P_p divides the heads; weights and one prompt's KV cache in usable memory).

Left out: batching prompts on a prefill instance (it pays only where a pass is memory-bound:
short prompts), pipeline stages on prefill instances, queueing on the links, a transfer streamed
layer by layer during the prefill pass, a price override of the prefill GPU alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from kernels import xp
from kernels._types import BoolScalar, Leaf, Scalar, Vector
from kernels.memory import Capacity, kv_bytes_per_seq_per_gpu, memory_plan
from kernels.prefix import cached_tokens
from kernels.queueing import (
    QUANTILES,
    STATES,
    TAIL,
    Load,
    Percentiles,
    Z,
    invert,
    norm_cdf,
    poisson_pmf,
    served,
    stationary,
)
from kernels.roofline import PhaseTime, PrefillTerms, peak_flop_per_s, prefill_pass, prefill_terms
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload

COUNTS = 2 * STATES
"""Poisson counts (1) tracks, 0 .. COUNTS - 1: far beyond any bound below the chain's truncation."""

KS: Any = np.arange(COUNTS, dtype=np.float64)

LEVELS = (*QUANTILES, 0.999)
"""Waiting-time quantiles solved: the percentiles, and the top of the grid e2e is convolved on."""

GRID = 64
"""Intervals of the waiting-time grid of the e2e convolution (midpoint rule, up to W's p99.9)."""


def pool_gpus(dep: Deployment) -> Scalar:
    """GPUs of a disaggregated deployment: x P_p prefill and P pp dp decode [GPU]."""
    return prefill_pool_gpus(dep) + dep.tp * dep.pp * dep.dp


def prefill_pool_gpus(dep: Deployment) -> Scalar:
    """GPUs of the prefill pool, those on the prefill GPU: x P_p [GPU]."""
    return dep.prefill_instances * dep.prefill_tp


def same_gpu(a: GPUSpec, b: GPUSpec) -> BoolScalar:
    """Whether two GPU specs are one catalogue entry: every number equal (NaN, a value the chip
    lacks, equal to NaN). ``kernels.point.design_point`` gives a prefill GPU of the decode GPU's
    type the decode GPU's very spec (its price overrides included), so this holds for it."""
    fields = [f.name for f in dataclasses.fields(GPUSpec)]
    equal = [(getattr(a, f) == getattr(b, f)) | (xp.isnan(getattr(a, f)) & xp.isnan(getattr(b, f))) for f in fields]
    out = equal[0]
    for e in equal[1:]:
        out = out & e
    return out


def prefill_deployment(dep: Deployment) -> Deployment:
    """One prefill instance: P_p GPUs, one stage, one prompt at a time, in the precision of its GPU."""
    one = xp.ones_like(dep.batch)
    return dataclasses.replace(
        dep, tp=dep.prefill_tp, pp=one, dp=one, batch=one, compute_dtype=dep.prefill_compute_dtype
    )


class Transfer(NamedTuple):
    """Moving one prompt's KV cache from a prefill instance to a decode rank, eq. (2)."""

    seconds: Scalar  # T_kv [s]
    send_bytes: Scalar  # per prefill GPU [byte]
    receive_bytes: Scalar  # per decode GPU [byte]
    link_bytes_per_s: Scalar  # B_link, per GPU per direction [byte/s]


def kv_transfer(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, prefill_gpu: GPUSpec | None = None
) -> Transfer:
    """Eq. (2): each GPU sends or receives its own shard over its own link, all at once. With a
    cached prefix (``kernels.prefix``) only the new tokens' KV moves: the decode ranks hold the
    shared prefix already. ``gpu``: the decode pool's; ``prefill_gpu``: the prefill instances'
    (None: the same); two types never share NVLink: the slower of their networks."""
    sender = gpu if prefill_gpu is None else prefill_gpu
    c = cached_tokens(wl)
    send = kv_bytes_per_seq_per_gpu(model, dep.prefill_tp, dep.kv_bytes_per_elem, wl.input_len)
    send = send - kv_bytes_per_seq_per_gpu(model, dep.prefill_tp, dep.kv_bytes_per_elem, c)
    receive = kv_bytes_per_seq_per_gpu(model, dep.tp, dep.kv_bytes_per_elem, wl.input_len)
    receive = (receive - kv_bytes_per_seq_per_gpu(model, dep.tp, dep.kv_bytes_per_elem, c)) / dep.pp
    one_node = (pool_gpus(dep) <= gpu.gpus_per_node) & same_gpu(sender, gpu)
    auto = xp.where(one_node, gpu.link_bytes_per_s, xp.minimum(sender.network_bytes_per_s, gpu.network_bytes_per_s))
    link = xp.where(xp.isnan(dep.kv_link_bytes_per_s), auto, dep.kv_link_bytes_per_s)
    return Transfer(xp.maximum(send, receive) / link, send, receive, link)


class Queue(NamedTuple):
    """The prefill pool: x instances serving prompts of D seconds to requests at rate lambda."""

    rate: Scalar  # lambda [request/s]
    service_s: Scalar  # D [s]
    servers: Scalar  # x [1]
    pi: Vector  # stationary law of N, the requests in the pool, 0 .. STATES - 1
    wait_mean_s: Scalar  # E[W] [s]
    utilization: Scalar  # lambda D / x [1]


def prefill_queue(rate: Scalar, service_s: Scalar, servers: Scalar) -> Queue:
    """The M/D/x chain N' = max(N - x, 0) + Poisson(lambda D), its stationary law and E[W]."""
    ns = xp.constant_like(KS[:STATES], service_s)
    mean = xp.maximum(rate * service_s, 1e-30)
    pmf = poisson_pmf(mean)  # arrivals in D
    waiting = xp.maximum(ns - servers, 0.0)  # max(n - x, 0): still in the pool D later
    arrived = ns[None, :] - waiting[:, None]  # N' = n' needs n' - max(n - x, 0) arrivals
    index = xp.clip(arrived, 0.0, STATES - 1.0).astype(xp.int32)
    head = xp.where((arrived >= 0.0) & (ns[None, :] < STATES - 1.0), xp.take(pmf, index), 0.0)
    tail = xp.maximum(1.0 - xp.sum(head, axis=1), 0.0)
    pi = stationary(xp.where(ns[None, :] < STATES - 1.0, head, tail[:, None]))
    return Queue(rate, service_s, servers, pi, xp.sum(pi * waiting) / rate, rate * service_s / servers)


def wait_cdf(q: Queue, t: Leaf) -> Leaf:
    """Eq. (1): P(W <= t) for each of the waiting times ``t`` (a vector) [1]."""
    k = xp.floor(t / q.service_s)
    mean = xp.maximum(q.rate * (q.service_s - (t - k * q.service_s)), 1e-30)
    pmf = poisson_pmf(mean, COUNTS)
    cdf = xp.cumsum(pmf, axis=1)  # P(Poisson <= j), j = 0 .. COUNTS - 1, per t
    ns = xp.constant_like(KS[:STATES], t)
    bound = (k[:, None] + 1.0) * q.servers - 1.0 - xp.maximum(ns - q.servers, 0.0)[None, :]
    rows = xp.constant_like(np.arange(t.shape[0], dtype=np.float64), t)[:, None] * COUNTS
    # an index in range even where t or D is NaN (a prefill GPU without the precision): the values stay NaN
    index = xp.clip(xp.where(bound >= 0.0, bound, 0.0), 0.0, COUNTS - 1.0)
    at = xp.take(cdf.reshape(-1), (rows + index).astype(xp.int32))
    return xp.sum(q.pi[None, :] * xp.where(bound >= 0.0, at, 0.0), axis=1)


def wait_quantiles(q: Queue) -> Leaf:
    """W's quantiles at ``LEVELS`` by bisection of eq. (1) on [0, (STATES / x + 2) D]: the
    truncated chain never holds more than STATES / x prompts' worth of wait per instance [s]."""
    top = (STATES / q.servers + 2.0) * q.service_s
    return invert(lambda t: wait_cdf(q, t), 0.0 * top, top, xp.constant_like(LEVELS, top))


def decode_seats(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> Scalar:
    """Sequences one decode micro-batch holds: the KV cache at the mean context I + (O - 1)/2
    (paged) or the longest (reserved), within the engine's max_num_seqs and, one token each per
    step, its max_num_tokens (``kernels.point.capacity`` without prompt tokens) [sequence]."""
    c = cached_tokens(wl)
    longest = memory_plan(model, gpu, dep, profile, wl.input_len + wl.output_len - 1.0, c).max_batch
    mean = memory_plan(model, gpu, dep, profile, wl.input_len + 0.5 * (wl.output_len - 1.0), c).max_batch
    held = xp.where(profile.kv_paged > 0.0, mean, longest)
    # A speculative round verifies k + 1 tokens per sequence.
    budget = xp.where(
        dep.draft_tokens > 0.0, xp.floor(profile.max_num_tokens / (dep.draft_tokens + 1.0)), profile.max_num_tokens
    )
    return xp.minimum(held, budget)


def prefill_fits(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> BoolScalar:
    """A prefill instance on ``gpu`` (the prefill GPU) runs: P_p divides the heads, the weights and
    one prompt's KV cache fit, the GPU has the precision."""
    prefill = prefill_deployment(dep)
    plan = memory_plan(model, gpu, prefill, profile, wl.input_len, cached_tokens(wl))
    has_peak = xp.isfinite(peak_flop_per_s(gpu, prefill.compute_dtype))
    return plan.weights_fit & (plan.max_batch >= 1.0) & (xp.mod(model.n_heads, dep.prefill_tp) == 0.0) & has_peak


class Pools(NamedTuple):
    """The two pools under random arrivals: what the scenario's timeline takes."""

    prefill: PhaseTime  # P(1): one prompt on a prefill instance
    decode: PhaseTime  # D(n): one decode step at the decode pool's mean decoders
    decoders: Scalar  # n, sequences decoding per micro-batch of a decode rank [sequence]
    ttft_s: Scalar  # mean [s]
    ttft_min_s: Scalar  # an idle pool's: D + T_kv [s]
    tpot_s: Scalar  # mean [s]
    e2e_s: Scalar  # mean [s]
    load: Load
    sustainable: BoolScalar


def pools(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    prefill_gpu: GPUSpec | None = None,
) -> Pools:
    """Latencies, their percentiles and the utilisation of a disaggregated deployment (module
    docstring): ``gpu`` the decode pool's GPU, ``prefill_gpu`` the prefill instances' (None: the same)."""
    sender = gpu if prefill_gpu is None else prefill_gpu
    one = xp.ones_like(dep.batch)
    first = prefill_pass(prefill_terms(model, sender, prefill_deployment(dep), wl, profile), one)
    d = first.total_s
    q = prefill_queue(wl.request_rate, d, dep.prefill_instances)
    kv = kv_transfer(model, gpu, dep, wl, sender)
    # Decode ranks: arriving requests bring their KV cache; joining a step costs nothing.
    free = PrefillTerms(*(0.0 * one for _ in PrefillTerms._fields))._replace(overlap=profile.roof_overlap)
    seats = decode_seats(model, gpu, dep, wl, profile)
    decoding = dataclasses.replace(profile, chunked_prefill=one)
    s = served(model, gpu, dep, wl, decoding, Capacity(seats, seats, seats), free, first_token_percentiles=False)

    tokens = xp.maximum(wl.output_len - 1.0, 0.0)
    steps = xp.maximum(wl.output_len - 1.0, 1.0)
    has_decode = wl.output_len > 1.0
    join = xp.where(has_decode, 0.5 * s.decode.total_s, 0.0)
    ahead = d + kv.seconds
    ttft = q.wait_mean_s + ahead
    decode_mean = join + tokens * s.tpot_s
    decode_sd = tokens * (s.load.tpot.p90 - s.load.tpot.p50) / Z[1]

    w = wait_quantiles(q)
    ttft_q = [w[i] + ahead for i in range(len(QUANTILES))]
    tpot_q = [x + join / steps for x in s.load.tpot]
    # e2e: W (eq. 1, on a grid up to its p99.9, the rest at the top) plus a normal decode time.
    grid = w[-1] * xp.constant_like(np.arange(GRID + 1) / GRID, d)
    cdf = wait_cdf(q, grid)
    nodes = np.arange(GRID + 1)
    before = np.maximum(nodes - 1, 0).astype(np.int32)
    mass = cdf - xp.where(nodes == 0, 0.0, xp.take(cdf, before)) + xp.where(nodes == GRID, 1.0 - cdf[-1], 0.0)
    point = 0.5 * (grid + xp.take(grid, before))
    base = ahead + decode_mean
    sd = xp.maximum(decode_sd, 1e-9 * (base + 1e-30))

    def e2e_cdf(t: Vector) -> Vector:
        return xp.sum(mass[None, :] * norm_cdf((t[:, None] - base - point[None, :]) / sd), axis=1)

    levels = xp.constant_like(QUANTILES, d)
    solved = invert(e2e_cdf, 0.0 * base, base + w[-1] + 10.0 * sd, levels)
    e2e_q = [xp.where(has_decode, solved[i], ttft_q[i]) for i in range(len(QUANTILES))]

    rate = wl.request_rate
    link_busy = xp.maximum(rate / dep.prefill_instances * kv.send_bytes, rate / dep.dp * kv.receive_bytes)
    link_busy = link_busy / kv.link_bytes_per_s
    decode_busy = xp.where(has_decode, s.load.utilization, 0.0)
    utilization = xp.maximum(xp.maximum(q.utilization, link_busy), decode_busy)
    sustainable = (
        prefill_fits(model, sender, dep, wl, profile)
        & (q.utilization < 1.0)
        & (q.pi[STATES - 1] < TAIL)
        & (link_busy < 1.0)
        & (s.sustainable | ~has_decode)
    )
    load = Load(
        Percentiles(*ttft_q),
        Percentiles(*tpot_q),
        Percentiles(*e2e_q),
        xp.where(sustainable, utilization, xp.maximum(utilization, 1.0)),
        kv.seconds,
    )
    return Pools(
        first, s.decode, s.decoders, ttft, ahead, s.tpot_s + join / steps, ttft + decode_mean, load, sustainable
    )
