"""Serving scenarios: how requests share the GPUs, in closed form, one function each.

A scenario is a function ``(model, gpu, dep, wl, profile, capacity) -> (Timeline, feasible)``
of one micro-batch of one rank (one with a prefill pool of its own, ``Scenario.prefill_gpus``,
also takes that pool's GPU), registered once in ``REGISTRY``; its code (``Deployment.scenario``)
is its index there, and ``timeline`` dispatches with ``lax.switch``. Adding a scenario is its
function and one ``Scenario`` entry.

- ``static`` (code 0): B identical requests arrive at once (shared/benchmarks). At most B_run =
  min(B, B_max) run together, so B > B_max runs in waves: floor(B / B_run) full waves and one of
  the remaining B mod B_run. Each wave prefills its prompts (first come, first served), then
  decodes them together.
- ``concurrency`` (code 1): a closed loop of C = B clients, each sending its next request when
  its last one ends, with continuous batching, in steady state. Every decode step serves the
  running sequences at the mean context I + (O-1)/2 and the mean window context (exact: a
  step's time is affine in the summed contexts, ``decode_step_mean``); each request's prefill
  (one prompt) either pauses decoding once per request or, with the profile's
  ``chunked_prefill``, shares the steps with the decodes (whole, in pieces of
  ``prefill_chunk_tokens``, or spread evenly). The engine runs min(C, C_max) sequences, C_max
  what fits; the other requests queue for a slot (Little's law), so beyond C_max throughput
  and TPOT stay at C_max's and TTFT grows by (C - C_max) / X, X the requests completed per
  second.
- ``max_throughput`` (code 2): the same steady state with C = B_max, as many as fit.
- ``poisson`` (code 3): requests arrive at random at ``request_rate``; continuous batching within
  the capacity; means and percentiles of the latencies in closed form (``kernels.queueing``).
- ``disaggregated`` (code 4): the same arrivals, prompts on ``prefill_instances`` instances of
  ``prefill_tp`` GPUs (of the ``prefill_gpu`` type), decoding on the deployment's dp ranks, each
  prompt's KV cache moved between them (``kernels.disaggregated``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from kernels import xp
from kernels._types import BoolScalar, Scalar
from kernels.disaggregated import pool_gpus, pools, prefill_pool_gpus
from kernels.lengths import at_means
from kernels.memory import Capacity
from kernels.prefix import new_tokens
from kernels.queueing import Load, no_load, served
from kernels.roofline import (
    PhaseTime,
    PrefillTerms,
    decode_step_mean,
    decode_time,
    phase_time,
    prefill_pass,
    prefill_terms,
    static_first_token_s,
)
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload
from kernels.speculative import serving_step


class Timeline(NamedTuple):
    """Per-request latencies and the replica's throughput under one scenario."""

    prefill: PhaseTime  # one prefill pass of the running batch (static) or one prompt (steady)
    decode: PhaseTime  # all decode steps of one running batch (static) or of one request (steady)
    # sequences decoded together: per micro-batch; of the whole deployment after deployment_timeline [sequence]
    in_flight: Scalar
    ttft_s: Scalar  # mean over requests [s]
    ttft_min_s: Scalar  # the first request served [s]
    tpot_s: Scalar  # mean decode step seen by a request [s]
    e2e_s: Scalar  # mean over requests [s]
    elapsed_s: Scalar  # static: until the last request ends; steady: e2e [s]
    output_tok_s: Scalar  # output tokens per second of the replica [token/s]
    input_tok_s: Scalar  # prompt tokens per second of prefill time [token/s]
    load: Load  # percentiles over requests and utilisation under random arrivals (NaN without them)


def decode_steps(wl: Workload) -> Scalar:
    """Decode steps averaged for TPOT: O - 1, or the one step that would follow when O = 1."""
    return xp.maximum(wl.output_len - 1.0, 1.0)


def _with_batch(dep: Deployment, batch: Scalar) -> Deployment:
    return dataclasses.replace(dep, batch=batch)


class Wave(NamedTuple):
    """One static wave of b requests."""

    prefill: PhaseTime  # the pass over all b prompts
    decode: PhaseTime  # all decode steps of the b sequences
    duration_s: Scalar  # prefill + decode
    first_token_s: Scalar  # mean over its requests of the time to their first token
    first_served_s: Scalar  # its first request's time to first token


def _wave(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, batch: Scalar) -> Wave:
    d = _with_batch(dep, batch)
    terms = prefill_terms(model, gpu, d, wl, profile)
    prefill = prefill_pass(terms, batch)
    decode = decode_time(serving_step(model, gpu, d, profile), wl.input_len, decode_steps(wl))
    has_decode = xp.where(wl.output_len > 1.0, 1.0, 0.0)
    return Wave(
        prefill,
        decode,
        prefill.total_s + has_decode * decode.total_s,
        static_first_token_s(terms, batch, profile.prefill_first_alone),
        prefill_pass(terms, xp.ones_like(terms.overhead_s)).total_s,
    )


def static(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    max_batch: Scalar,
    admitted: Scalar,
) -> Timeline:
    """B requests at once, in waves of B_run = min(B, B_max).

    A wave of b requests lasts W(b) = P(b) + D(b). Served first come first served, its k-th
    request gets its first token at P(k), the time of a pass over k prompts (at least one weight
    read: ``mean_first_token_s``), after the waves before it. Where nothing fits (B_max < 1) the
    batch is evaluated as given, in one wave. With pp pipeline stages this is one micro-batch,
    started (j / pp) P(b_run) late for the j-th of the pp (``stagger``).

    B <= B_max: one wave of B. B > B_max: floor(B / B_max) full waves of B_max, which do not
    depend on B, and one of the remaining B mod B_max, if any. So each point needs one wave whose
    size depends on B, wave(B) or wave(B mod B_max), and wave(B_max), which a sweep evaluates
    once for all batch sizes: vmap computes a value at the rank of the axes it depends on.

    With the profile's ``prefill_first_alone`` the first prompt of a wave (or of all admitted
    prompts) is prefilled alone and the others in the next pass (``static_first_token_s``).

    KV admission: a paged engine admits every request whose prompt fits (B <= ``admitted``)
    and prefills them all first, preempting later if the batch outgrows the cache; their first
    tokens then come from one pass over the B prompts, whatever the waves that finish them.
    """
    one_wave = (dep.batch <= max_batch) | (max_batch < 1.0)
    fit = xp.maximum(max_batch, 1.0)
    n_full = xp.where(one_wave, 1.0, xp.floor(dep.batch / fit))
    rest = xp.where(one_wave, 0.0, dep.batch - n_full * fit)
    has_rem = xp.where(rest > 0.0, 1.0, 0.0)
    b_rem = xp.maximum(rest, 1.0)  # >= 1 so that no term is 0 * inf; has_rem gates it
    # The wave that depends on B: all of B, or the remainder. Full waves of B_max, ``full``, do not.
    sized = _wave(model, gpu, dep, wl, profile, xp.where(one_wave, dep.batch, b_rem))
    full = _wave(model, gpu, dep, wl, profile, fit)
    run = xp.tree_map(lambda x, y: xp.where(one_wave, x, y), sized, full)
    b_run = xp.where(one_wave, dep.batch, fit)
    p_run, d_run, w_run = run.prefill, run.decode, run.duration_s
    p_rem, d_rem, w_rem = sized.prefill, sized.decode, sized.duration_s

    # Sum over requests of the time their wave starts: b_run * W * (0 + 1 + ... + n_full - 1) + ...
    start_sum = b_run * w_run * 0.5 * n_full * (n_full - 1.0) + has_rem * b_rem * n_full * w_run
    # Pipelines: micro-batch j enters the first stage j P(b_run) / pp late (one stage's share of
    # its first prefill); on average (pp - 1) / (2 pp) P(b_run), the last (pp - 1) / pp P(b_run).
    stagger = (dep.pp - 1.0) / dep.pp * p_run.total_s
    ttft = (start_sum + n_full * b_run * run.first_token_s + has_rem * b_rem * sized.first_token_s) / dep.batch
    # All prompts admitted at once (B <= admitted): one FCFS pass over the B prompts. Without
    # paged admission, admitted = B_max, where this is the one wave's own value.
    all_in = prefill_terms(model, gpu, dep, wl, profile)
    ttft = xp.where(dep.batch <= admitted, static_first_token_s(all_in, dep.batch, profile.prefill_first_alone), ttft)
    e2e = (start_sum + n_full * b_run * w_run + has_rem * b_rem * w_rem) / dep.batch
    steps = decode_steps(wl)
    tpot = (n_full * b_run * d_run.total_s + has_rem * b_rem * d_rem.total_s) / (dep.batch * steps)
    elapsed = n_full * w_run + has_rem * w_rem + stagger
    prefill_s = n_full * p_run.total_s + has_rem * p_rem.total_s
    return Timeline(
        p_run,
        d_run,
        b_run,
        ttft + 0.5 * stagger,
        run.first_served_s,
        tpot,
        e2e + 0.5 * stagger,
        elapsed,
        dep.batch * wl.output_len / elapsed,
        dep.batch * wl.input_len / prefill_s,
        no_load(dep.batch),
    )


def steady(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, concurrency: Scalar
) -> Timeline:
    """C requests always in flight (continuous batching), steady state; ``chunked_prefill``
    chooses how prompts meet decodes (``_separate`` or ``_mixed``)."""
    c = xp.maximum(concurrency, 1.0)
    one_prompt = prefill_terms(model, gpu, _with_batch(dep, xp.ones_like(c)), wl, profile)
    single = prefill_pass(one_prompt, xp.ones_like(c))
    # Contexts spread over I, ..., I + O - 1: mean I + (O - 1)/2, and the mean of min(T, W).
    step = decode_step_mean(serving_step(model, gpu, _with_batch(dep, c), profile), wl.input_len, wl.output_len)
    separate = _separate(single, step, wl, c)
    mixed = _mixed(one_prompt, single, step, wl, c, profile.prefill_chunk_tokens)
    return xp.tree_map(lambda x, y: xp.where(profile.chunked_prefill > 0.0, y, x), separate, mixed)


def _separate(single: PhaseTime, step: PhaseTime, wl: Workload, c: Scalar) -> Timeline:
    """Each prompt's prefill pauses every decode (engines without chunked prefill).

    Per request: one single-prompt prefill P(1); O - 1 decode steps of all C sequences at the mean
    context, each also paying, on average, for the (C - 1) / (O - 1) prefills of other requests
    that pause decoding meanwhile. e2e = P(1) + (O-1) S(C) + (C-1) P(1); throughput = C O / e2e.
    """
    steps = decode_steps(wl)
    has_decode = xp.where(wl.output_len > 1.0, 1.0, 0.0)
    others = (c - 1.0) * single.total_s
    e2e = single.total_s + has_decode * (steps * step.total_s + others) + (1.0 - has_decode) * others
    tpot = step.total_s + others / steps
    decode = PhaseTime(*(steps * x for x in step))
    return Timeline(
        single,
        decode,
        c,
        single.total_s,
        single.total_s,
        tpot,
        e2e,
        e2e,
        c * wl.output_len / e2e,
        wl.input_len / single.total_s,
        no_load(c),
    )


def _mixed_step(terms: PrefillTerms, step: PhaseTime, prompts: Scalar) -> PhaseTime:
    """One step that decodes the C sequences and also processes ``prompts`` whole prompts: their
    math, KV writes and all-reduce bytes join the step's (weights are read once for all), and
    the roofline (``roof``) applies to the sum."""
    return phase_time(
        step.compute_s + prompts * terms.compute_per_prompt_s,
        step.memory_s + prompts * terms.memory_per_prompt_s,
        step.comm_s + prompts * terms.comm_per_prompt_s,
        step.overhead_s,
        terms.overlap,
    )


def prompt_pieces(wl: Workload, chunk: Scalar) -> Scalar:
    """n, the steps over which one prompt's prefill is split: ceil(I_new / K) pieces of at most
    K = ``prefill_chunk_tokens`` tokens, one per step; 1 for a whole prompt (K >= I_new, inf) or
    where prompts are spread evenly (K = 0) [1]. I_new: the tokens not in the prefix cache
    (``kernels.prefix.new_tokens``)."""
    tokens = new_tokens(wl)
    piece = xp.where(chunk > 0.0, xp.minimum(chunk, tokens), tokens)
    return xp.ceil(tokens / piece)


def _pieces_step(terms: PrefillTerms, step: PhaseTime, prompts: Scalar, n: Scalar) -> PhaseTime:
    """The mean step where steps carry whole pieces (1/n of a prompt each), ``prompts`` prompts a
    step on average: k = floor(n q) or k + 1 pieces, in shares 1 - f and f (f = n q - k), so

    S_bar = (1 - f) S(k / n) + f S((k + 1) / n)  >=  S(q)

    S(p), the step carrying p prompts (``_mixed_step``), is convex in p: a piece turns a
    memory-bound decode step compute-bound, so the steps that carry one are longer than the
    mean field S(q) says.
    """
    k = xp.floor(n * prompts)
    f = n * prompts - k
    low, high = _mixed_step(terms, step, k / n), _mixed_step(terms, step, (k + 1.0) / n)
    return PhaseTime(*((1.0 - f) * a + f * b for a, b in zip(low, high)))


def _prompt_steps(terms: PrefillTerms, step: PhaseTime, prompts: Scalar, chunk: Scalar, n: Scalar) -> PhaseTime:
    """The mean step carrying ``prompts`` prompts on average: in whole pieces (K > 0,
    ``_pieces_step``) or spread evenly over the steps (K = 0: every step carries the mean)."""
    pieces = _pieces_step(terms, step, prompts, n)
    spread = _mixed_step(terms, step, prompts)
    return xp.tree_map(lambda x, y: xp.where(chunk > 0.0, x, y), pieces, spread)


def _prompt_wait(terms: PrefillTerms, step: PhaseTime, piece: PhaseTime, wl: Workload, c: Scalar, n: Scalar) -> Scalar:
    """Mean wait of a request of a closed loop of C before the first step that carries its
    prompt, where prompts come in whole pieces [s].

    A client sends its next request when it receives the last token of the previous one, at the
    end of a step; the engine has already begun the next step for the others, which the new
    request waits out (a step as its decodes see it, S_seen). Then its prompt queues behind the
    prompts that came before it: the prefill work of one prompt, s = n (S(1/n) - S(0)), arrives
    at X = C / (O S_bar) prompts per second, a load rho = X s < 1 (S convex), and a queue with
    deterministic service waits rho s / (2 (1 - rho)) on average (Pollaczek-Khinchine, M/D/1).
    An arriving request sees the others' load, C - 1 of C (the arrival theorem of closed
    networks, Reiser & Lavenberg 1980): nothing to wait for at C = 1.
    """
    steps = decode_steps(wl)
    mean = _pieces_step(terms, step, c / wl.output_len, n)
    seen = _pieces_step(terms, step, (c - 1.0) / steps, n)
    service = n * (piece.total_s - step.total_s)
    load = c / (wl.output_len * mean.total_s) * service
    queue = load * service / (2.0 * (1.0 - load))
    return (c - 1.0) / c * (seen.total_s + queue)


def _mixed(terms: PrefillTerms, single: PhaseTime, step: PhaseTime, wl: Workload, c: Scalar, chunk: Scalar) -> Timeline:
    """Prompts share steps with decodes (chunked prefill: vLLM V1, TensorRT-LLM's in-flight
    batching). Every step emits one token for each of the C sequences, so C / O requests finish
    and as many start per step: the steps carry q = C / O prompts on average beside the C
    decodes. A step carrying p prompts takes

    S(p) = overhead + max(T_math(C) + p m_1, T_mem(C) + p w_1) + T_comm(C) + p a_1

    with m_1, w_1, a_1 one prompt's math, KV write and all-reduce time (``PrefillTerms``): decode
    is memory-bound where prefill is compute-bound, so prompts fill the idle tensor cores.

    ``prefill_chunk_tokens`` K says how a prompt meets the steps: K > 0, in n = ceil(I / K)
    pieces (n = 1 for a whole prompt), each in one step, so steps carry whole pieces
    (``_pieces_step``); K = 0, spread evenly, every step S(q) (the mean field). Throughput
    C / S_bar(C / O). A request's own prompt comes before its first token, so its O - 1 decode
    steps carry the others': TPOT = S_bar((C - 1) / (O - 1)). TTFT: the n steps that carry its
    prompt, n S(1 / n), after the wait for them in pieces (``_prompt_wait``); e2e TTFT +
    (O - 1) TPOT. Not modelled: a token budget that splits the decodes themselves.
    """
    steps = decode_steps(wl)
    has_decode = xp.where(wl.output_len > 1.0, 1.0, 0.0)
    n = prompt_pieces(wl, chunk)
    mean = _prompt_steps(terms, step, c / wl.output_len, chunk, n)
    seen = _prompt_steps(terms, step, (c - 1.0) / steps, chunk, n)
    piece = _mixed_step(terms, step, 1.0 / n)
    first = n * piece.total_s
    wait = xp.where(chunk > 0.0, _prompt_wait(terms, step, piece, wl, c, n), 0.0)
    e2e = first + wait + has_decode * steps * seen.total_s
    return Timeline(
        single,
        PhaseTime(*(steps * x for x in seen)),
        c,
        first + wait,
        first,
        seen.total_s,
        e2e,
        e2e,
        c / mean.total_s,
        wl.input_len / single.total_s,
        no_load(c),
    )


def _static(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, capacity: Capacity
) -> tuple[Timeline, BoolScalar]:
    """``static``: always runnable (waves when B exceeds B_max, the sequences in lockstep)."""
    return static(model, gpu, dep, wl, profile, capacity.lockstep, capacity.admitted), xp.ones_like(
        dep.batch, dtype=bool
    )


def _concurrency(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, capacity: Capacity
) -> tuple[Timeline, BoolScalar]:
    """``concurrency``: a closed loop of C = B clients, each sending its next request as soon
    as its last one ends. The engine runs n = min(C, C_max) of them, C_max = ``capacity.staggered``
    (memory and the engine's limits); the other C - n wait for a slot.

    Beyond C_max the running set is the steady state at C_max, which completes requests at
    X = output_tok_s(C_max) / O. The C - n waiting requests queue in front of it, and by Little's
    law each waits (C - n) / X: TTFT and e2e grow by that, TPOT and throughput stay at C_max's.
    Every client's cycle is then C / X, i.e. TTFT = C / X - (the rest of a request's time,
    C_max / X - TTFT(C_max)). Where not even one sequence fits, C as given, like max_throughput.
    """
    limit = capacity.staggered
    running = xp.where(limit >= 1.0, xp.minimum(dep.batch, limit), dep.batch)
    run = steady(model, gpu, dep, wl, profile, running)
    wait = (dep.batch - running) * wl.output_len / run.output_tok_s
    queued = run._replace(ttft_s=run.ttft_s + wait, e2e_s=run.e2e_s + wait, elapsed_s=run.elapsed_s + wait)
    return queued, (dep.batch <= limit) | (limit >= 1.0)


def _max_throughput(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, capacity: Capacity
) -> tuple[Timeline, BoolScalar]:
    """``max_throughput``: as many staggered sequences in flight as fit (where nothing fits, the
    batch as given)."""
    max_batch = capacity.staggered
    fill = xp.where(max_batch >= 1.0, max_batch, dep.batch)
    return steady(model, gpu, dep, wl, profile, fill), xp.ones_like(dep.batch, dtype=bool)


def _poisson(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile, capacity: Capacity
) -> tuple[Timeline, BoolScalar]:
    """``poisson``: requests at random at request_rate / (pp dp) per micro-batch; runnable where
    that rate is sustainable within the capacity (``kernels.queueing.served``)."""
    s = served(model, gpu, dep, wl, profile, capacity)
    steps = decode_steps(wl)
    d = s.decode
    decode = PhaseTime(
        steps * d.compute_s, steps * d.memory_s, steps * d.comm_s, steps * d.overhead_s, steps * s.tpot_s
    )
    rate = wl.request_rate / (dep.pp * dep.dp)
    return (
        Timeline(
            s.first,
            decode,
            s.decoders,
            s.ttft_s,
            s.first.total_s,
            s.tpot_s,
            s.e2e_s,
            s.e2e_s,
            rate * wl.output_len,
            wl.input_len / s.first.total_s,
            s.load,
        ),
        s.sustainable,
    )


def _disaggregated(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    capacity: Capacity,
    prefill_gpu: GPUSpec,
) -> tuple[Timeline, BoolScalar]:
    """``disaggregated``: requests at random at request_rate, prompts on the prefill instances (on
    ``prefill_gpu``), the decoding on the dp ranks (on ``gpu``) at request_rate / (pp dp) per
    micro-batch (``kernels.disaggregated``); runnable where the prefill instances fit and both
    pools and the links keep up. The decode ranks' capacity is their own (no prompt tokens in
    their steps), not ``capacity``. Every request at the mean lengths: the length spreads
    (``kernels.lengths``) are the poisson scenario's only."""
    p = pools(model, gpu, dep, at_means(wl), profile, prefill_gpu)
    steps = decode_steps(wl)
    d = p.decode
    decode = PhaseTime(
        steps * d.compute_s, steps * d.memory_s, steps * d.comm_s, steps * d.overhead_s, steps * p.tpot_s
    )
    copies = dep.pp * dep.dp
    return (
        Timeline(
            p.prefill,
            decode,
            p.decoders,
            p.ttft_s,
            p.ttft_min_s,
            p.tpot_s,
            p.e2e_s,
            p.e2e_s,
            wl.request_rate / copies * wl.output_len,
            dep.prefill_instances * wl.input_len / p.prefill.total_s / copies,  # the prefill pool's, over copies
            p.load,
        ),
        p.sustainable,
    )


def replica_gpus(dep: Deployment) -> Scalar:
    """GPUs of a deployment of dp ranks of pp stages of P GPUs: P pp dp [GPU]."""
    return dep.tp * dep.pp * dep.dp


class Scenario(NamedTuple):
    """One serving scenario: its name (the coordinate), what it means, and its function."""

    name: str
    description: str
    run: Callable[..., tuple[Timeline, BoolScalar]]
    batch_limit: Callable[[Capacity], Scalar]  # the largest batch it runs in one piece (SLO optimum's search)
    gpus: Callable[[Deployment], Scalar] = replica_gpus  # GPUs it holds: its cost per token counts them all
    random_arrivals: bool = False  # requests arrive at random at request_rate: an optimum solves the rate (goodput)
    prefill_gpus: Callable[[Deployment], Scalar] | None = None
    """Of ``gpus``, those of its prefill pool, on the prefill GPU (``DesignPoint.prefill_gpu``), and
    ``run`` takes that GPU as its last argument; None: one pool, on ``gpu``."""


def no_prefill_pool(dep: Deployment) -> Scalar:
    """GPUs of a scenario without a prefill pool of its own on the prefill GPU: none [GPU]."""
    return 0.0 * dep.tp


def _one_pool(run: Callable[..., tuple[Timeline, BoolScalar]]) -> Callable[..., tuple[Timeline, BoolScalar]]:
    """``run`` of a scenario of one pool, taking (and ignoring) the prefill GPU like one with two."""
    return lambda model, gpu, dep, wl, profile, capacity, prefill_gpu: run(model, gpu, dep, wl, profile, capacity)


REGISTRY: tuple[Scenario, ...] = (
    Scenario(
        "static",
        "batch requests at once, in waves when they do not all fit",
        _static,
        lambda cap: cap.lockstep,  # beyond it, waves: a partial wave lowers throughput
    ),
    Scenario(
        "concurrency",
        "batch requests kept in flight (continuous batching), steady state",
        _concurrency,
        lambda cap: cap.staggered,  # beyond it, requests queue: same throughput and cost, longer TTFT
    ),
    Scenario(
        "max_throughput",
        "as many requests in flight as fit, steady state",
        _max_throughput,
        lambda cap: xp.ones_like(cap.staggered),  # the batch is not used
    ),
    Scenario(
        "poisson",
        "requests arriving at random at request_rate, continuous batching: means, percentiles, utilisation",
        _poisson,
        lambda cap: xp.ones_like(cap.staggered),  # the batch is not used
        random_arrivals=True,
    ),
    Scenario(
        "disaggregated",
        "requests arriving at random at request_rate, prompts on prefill_instances instances of prefill_tp GPUs, "
        "decoding on the dp ranks, KV cache moved between them: means, percentiles, utilisation",
        _disaggregated,
        lambda cap: xp.ones_like(cap.staggered),  # the batch is not used
        gpus=pool_gpus,
        random_arrivals=True,
        prefill_gpus=prefill_pool_gpus,
    ),
)
"""Every scenario; a scenario's code is its index here."""

SCENARIOS = tuple(s.name for s in REGISTRY)
"""Names of the ``Deployment.scenario`` codes, in code order."""


def timeline(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    capacity: Capacity,
    codes: tuple[int, ...] | None = None,
    prefill_gpu: GPUSpec | None = None,
) -> tuple[Timeline, BoolScalar]:
    """The deployment's timeline under the scenario chosen by ``dep.scenario``, and whether that
    scenario can run it; ``prefill_gpu``: the GPU of a prefill pool (None: ``gpu``).

    ``lax.switch``: where a sweep holds the scenario fixed, only its branch runs; where scenario
    is an axis, ``vmap`` turns the switch into a select of all branches. ``codes`` (sorted) are
    the scenarios a sweep holds: only their branches are compiled, so a sweep without
    ``poisson`` never pays for it (default: all).
    """
    codes = tuple(range(len(REGISTRY))) if codes is None else codes
    runs = [REGISTRY[c].run if REGISTRY[c].prefill_gpus else _one_pool(REGISTRY[c].run) for c in codes]
    prefill_gpu = gpu if prefill_gpu is None else prefill_gpu
    one, ok = xp.switch(_branch(dep, codes), runs, model, gpu, dep, wl, profile, capacity, prefill_gpu)
    return deployment_timeline(one, dep), ok


def deployment_gpus(dep: Deployment, codes: tuple[int, ...] | None = None) -> Scalar:
    """GPUs the deployment of ``dep`` holds under its scenario (``Scenario.gpus``); ``codes``: the
    scenarios it may hold, as for ``timeline`` [GPU]."""
    codes = tuple(range(len(REGISTRY))) if codes is None else codes
    return xp.switch(_branch(dep, codes), [REGISTRY[c].gpus for c in codes], dep)


def deployment_prefill_gpus(dep: Deployment, codes: tuple[int, ...] | None = None) -> Scalar:
    """Of ``deployment_gpus``, those on the prefill GPU (``Scenario.prefill_gpus``; none without a
    prefill pool) [GPU]."""
    codes = tuple(range(len(REGISTRY))) if codes is None else codes
    counts = [REGISTRY[c].prefill_gpus or no_prefill_pool for c in codes]
    return xp.switch(_branch(dep, codes), counts, dep)


def _branch(dep: Deployment, codes: tuple[int, ...]) -> Any:
    """The position of the scenario code of ``dep`` among ``codes`` (sorted), an int32 index."""
    code = xp.clip(dep.scenario, 0.0, len(REGISTRY) - 1.0)
    index = 0.0 * code
    for c in codes[:-1]:
        index = index + xp.where(code > c, 1.0, 0.0)
    return index.astype(xp.int32)


def batch_limit(dep: Deployment, capacity: Capacity) -> Scalar:
    """The largest batch the scenario of ``dep`` runs in one piece [sequence]."""
    code = xp.clip(dep.scenario, 0.0, len(REGISTRY) - 1.0).astype(xp.int32)
    return xp.switch(code, [s.batch_limit for s in REGISTRY], capacity)


def deployment_timeline(one: Timeline, dep: Deployment) -> Timeline:
    """From one micro-batch of one rank to the deployment: pp micro-batches in each of dp ranks.

    The ranks run side by side, and so do a pipeline's micro-batches: each stage works on one
    micro-batch while the others are at other stages, so a micro-batch's pass takes what it
    would on one stage holding all layers (the terms sum over the stages) and the deployment
    serves pp * dp times its throughput (static waves: staggered starts, ``static``). Latencies
    are per request.
    """
    copies = dep.pp * dep.dp
    return one._replace(
        in_flight=copies * one.in_flight, output_tok_s=copies * one.output_tok_s, input_tok_s=copies * one.input_tok_s
    )
