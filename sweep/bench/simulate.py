"""The reference of the ``poisson`` scenario: its engine simulated request by request, step by step.

Pure Python and numpy, seeded, discrete events: requests arrive as a Poisson process; the
scheduler admits waiting requests first come first served while the sequences in flight stay
within the capacity; a step carries every decoding sequence at its own context and every prompt
admitted since the step before (chunked prefill: in the same step, the roofline of the sum;
without it a prefill pass that pauses decoding); the step's time is the kernels' own roofline of
exactly that step. No mean field, no chain: what ``kernels.queueing`` approximates in closed form
is counted here, and the tests hold the two together (as ``sweep.bench.reference`` does for the
other scenarios). ``simulate_disaggregated`` does the same for the ``disaggregated`` scenario:
prefill instances taking a first-come-first-served queue, then a decode micro-batch fed by them.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from kernels.disaggregated import decode_seats, kv_transfer, prefill_deployment
from kernels.point import DesignPoint, capacity
from kernels.queueing import step_durations
from kernels.roofline import (
    DecodeStep,
    PhaseTime,
    PrefillTerms,
    _step_phase,
    decode_step,
    prefill_pass,
    prefill_terms,
    with_per_prompt,
)
from kernels.scenarios import SCENARIOS


def _f64(x: Any) -> Any:
    """A host float64 value, as the kernels take it (``kernels.xp``)."""
    return np.asarray(x, dtype=np.float64)


class Simulated(NamedTuple):
    """Per-request latencies of the requests measured (those after the warm-up and before the
    cool-down) [s], and what the engine did."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    mean_decoders: float  # time average of the sequences decoding [sequence]
    peak_in_flight: int  # most sequences admitted at once [sequence]
    steps: int


def simulate(
    point: DesignPoint,
    requests: int,
    seed: int = 0,
    warmup: float = 0.2,
    cooldown: float = 0.1,
    trace: list[tuple[float, int, int, float]] | None = None,
) -> Simulated:
    """Serve ``requests`` requests arriving at the point's request_rate / (pp dp) on one micro-batch.

    The first ``warmup`` and last ``cooldown`` shares of the requests (by arrival) are served but
    not measured: the engine starts empty and drains at the end. ``trace`` receives each step's
    (start time [s], sequences decoding, prompts carried, duration [s]). Where the workload's length
    spreads are not 0, each request draws its own prompt and output lengths (``request_lengths``),
    each prompt costs its own prefill terms and each sequence decodes until its own output length.
    """
    model, gpu, dep, wl, profile = point.model, point.gpu, point.dep, point.wl, point.profile
    rate = float(wl.request_rate) / float(dep.pp * dep.dp)
    seats = max(int(capacity(model, gpu, dep, wl, profile).staggered), 1)
    chunked = float(profile.chunked_prefill) > 0.0
    one = dataclasses.replace(dep, batch=_f64(1.0))
    terms = prefill_terms(model, gpu, one, wl, profile)
    decode_phase = _decode_phase(point)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, requests))
    prompts_of, outputs_of = request_lengths(wl, requests, rng)
    spread = float(wl.input_len_spread) > 0.0
    own_terms = _terms_by_length(model, gpu, one, wl, profile)

    def duration(contexts: np.ndarray, admitted: list[int]) -> float:
        prompts = len(admitted)
        # a pass's fixed costs at the mean prompt, each prompt its own per-prompt cost (kernels.lengths)
        step_terms = terms if not (spread and prompts) else _summed(terms, [own_terms(prompts_of[i]) for i in admitted])
        count = prompts if not (spread and prompts) else 1
        if len(contexts) == 0:
            return float(prefill_pass(step_terms, _f64(count)).total_s)
        phase = decode_phase(contexts)
        return float(step_durations(step_terms, phase, profile.chunked_prefill, _f64([count]))[0])

    first = np.full(requests, np.nan)
    done = np.full(requests, np.nan)
    waiting: deque[int] = deque()
    ids = np.zeros(0, dtype=np.int64)  # sequences decoding
    contexts = np.zeros(0)  # their cached tokens
    made = np.zeros(0, dtype=np.int64)  # their tokens generated
    t, arrived, steps, decoder_time, peak = 0.0, 0, 0, 0.0, 0
    while arrived < requests or waiting or len(ids):
        while arrived < requests and arrivals[arrived] <= t:
            waiting.append(arrived)
            arrived += 1
        if not waiting and not len(ids):
            t = float(arrivals[arrived])  # idle until the next arrival
            continue
        room = seats - len(ids)
        admitted = [waiting.popleft() for _ in range(min(room, len(waiting)))]
        peak = max(peak, len(ids) + len(admitted))
        decodes = chunked or not admitted  # without chunked prefill, prompts pause decoding
        step = duration(contexts if decodes else np.zeros(0), admitted)
        if trace is not None:
            trace.append((t, len(ids), len(admitted), step))
        t += step
        steps += 1
        decoder_time += step * len(ids)
        if decodes and len(ids):
            contexts = contexts + 1.0
            made = made + 1
            finished = made >= outputs_of[ids]
            done[ids[finished]] = t
            keep = ~finished
            ids, contexts, made = ids[keep], contexts[keep], made[keep]
        if admitted:
            new = np.asarray(admitted, dtype=np.int64)
            first[new] = t
            single = outputs_of[new] <= 1
            done[new[single]] = t
            new = new[~single]
            ids = np.concatenate([ids, new])
            contexts = np.concatenate([contexts, prompts_of[new]])
            made = np.concatenate([made, np.ones(len(new), dtype=np.int64)])
    kept = slice(int(warmup * requests), int((1.0 - cooldown) * requests))
    ttft = first[kept] - arrivals[kept]
    e2e = done[kept] - arrivals[kept]
    tpot = (done[kept] - first[kept]) / np.maximum(outputs_of[kept] - 1, 1)
    return Simulated(ttft, tpot, e2e, decoder_time / t, peak, steps)


def request_lengths(wl: Any, requests: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each request's prompt and output tokens: the means where their spread is 0, else drawn as
    vLLM's random dataset draws them, uniform on the integers int(L (1 - r)) .. int(L (1 + r))
    (vllm benchmarks/benchmark_dataset.py, RandomDataset.sample; outputs at least 1). Drawn after
    the arrivals, so that fixed lengths leave the arrivals' stream as it was."""

    def draw(mean: float, spread: float, least: int) -> np.ndarray:
        if spread <= 0.0:
            return np.full(requests, mean)
        return rng.integers(max(int(mean * (1.0 - spread)), least), int(mean * (1.0 + spread)) + 1, requests).astype(
            np.float64
        )

    prompts = draw(float(wl.input_len), float(wl.input_len_spread), 0)
    outputs = draw(float(wl.output_len), float(wl.output_len_spread), 1)
    return prompts, outputs.astype(np.int64)


def _terms_by_length(model: Any, gpu: Any, dep: Any, wl: Any, profile: Any) -> Callable[[float], PrefillTerms]:
    """The prefill terms of one prompt of a given length, computed once per length."""
    cache: dict[float, PrefillTerms] = {}

    def terms(length: float) -> PrefillTerms:
        if length not in cache:
            cache[length] = prefill_terms(model, gpu, dep, dataclasses.replace(wl, input_len=_f64(length)), profile)
        return cache[length]

    return terms


def _summed(terms: PrefillTerms, own: list[PrefillTerms]) -> PrefillTerms:
    """One pass's terms whose per-prompt costs are the sum of its prompts' own (``terms``' fixed costs):
    ``prefill_pass(_summed(...), 1)`` is the pass of all of them."""
    return with_per_prompt(terms, own, lambda costs: _f64(sum(float(c) for c in costs)))


def _decode_phase(point: DesignPoint) -> Callable[[np.ndarray], PhaseTime]:
    """The roofline of one decode step of sequences at ``contexts`` cached tokens, each its own."""
    model, gpu, dep, profile = point.model, point.gpu, point.dep, point.profile
    window = float(model.window)
    steps_by_batch: dict[int, DecodeStep] = {}

    def decode_phase(contexts: np.ndarray) -> PhaseTime:
        n = len(contexts)
        if n not in steps_by_batch:
            steps_by_batch[n] = decode_step(model, gpu, dataclasses.replace(dep, batch=_f64(n)), profile)
        in_window = np.minimum(contexts, window) if window > 0.0 else np.zeros_like(contexts)
        return _step_phase(steps_by_batch[n], _f64(contexts.mean()), _f64(in_window.mean()))

    return decode_phase


def prefill_pool(arrivals: np.ndarray, service_s: float, servers: int) -> np.ndarray:
    """When each request's prompt is done: ``servers`` instances taking the queue first come,
    first served, ``service_s`` per prompt [s]."""
    free = [0.0] * servers
    done = np.empty_like(arrivals)
    for i, arrived in enumerate(arrivals):
        start = max(float(arrived), heapq.heappop(free))
        done[i] = start + service_s
        heapq.heappush(free, done[i])
    return done


def simulate_disaggregated(
    point: DesignPoint, requests: int, seed: int = 0, warmup: float = 0.2, cooldown: float = 0.1
) -> Simulated:
    """The disaggregated scenario request by request: ``requests`` arrive at random at the point's
    request_rate; the prefill instances serve them first come, first served (``prefill_pool``);
    each KV cache reaches a decode micro-batch chosen at random T_kv later (the first token with
    it), and that micro-batch is simulated: waiting requests join at the start of a step, within
    its sequence slots, and every step decodes one token of each sequence, its time the kernels'
    roofline of exactly that step. Latencies of the requests it served (``warmup``, ``cooldown``
    as in ``simulate``). The prompts run on the point's prefill GPU, the decode steps on its GPU."""
    model, gpu, dep, wl, profile = point.model, point.gpu, point.dep, point.wl, point.profile
    prompt, output = float(wl.input_len), int(wl.output_len)
    one = prefill_terms(model, point.prefill_gpu, prefill_deployment(dep), wl, profile)
    service = float(prefill_pass(one, _f64(1.0)).total_s)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / float(wl.request_rate), requests))
    ready = prefill_pool(arrivals, service, int(dep.prefill_instances)) + float(
        kv_transfer(model, gpu, dep, wl, point.prefill_gpu).seconds
    )
    mine = rng.random(requests) < 1.0 / float(dep.pp * dep.dp)
    arrivals, ready = arrivals[mine], ready[mine]  # in arrival order: first come, first done
    n = len(arrivals)
    seats = max(int(decode_seats(model, gpu, dep, wl, profile)), 1)
    decode_phase = _decode_phase(point)
    done = ready.copy()
    ids = np.zeros(0, dtype=np.int64)  # sequences decoding
    contexts = np.zeros(0)  # their cached tokens
    made = np.zeros(0, dtype=np.int64)  # their tokens generated
    waiting: deque[int] = deque()
    t, arrived, steps, decoder_time, peak = 0.0, 0, 0, 0.0, 0
    while output > 1 and (arrived < n or waiting or len(ids)):
        while arrived < n and ready[arrived] <= t:
            waiting.append(arrived)
            arrived += 1
        if not waiting and not len(ids):
            t = float(ready[arrived])  # idle until the next request's KV cache arrives
            continue
        new = np.asarray([waiting.popleft() for _ in range(min(seats - len(ids), len(waiting)))], dtype=np.int64)
        ids = np.concatenate([ids, new])
        contexts = np.concatenate([contexts, np.full(len(new), prompt)])
        made = np.concatenate([made, np.ones(len(new), dtype=np.int64)])  # the first token came with the KV
        peak = max(peak, len(ids))
        step = float(decode_phase(contexts).total_s)
        t += step
        steps += 1
        decoder_time += step * len(ids)
        contexts, made = contexts + 1.0, made + 1
        finished = made >= output
        done[ids[finished]] = t
        ids, contexts, made = ids[~finished], contexts[~finished], made[~finished]
    kept = slice(int(warmup * n), int((1.0 - cooldown) * n))
    return Simulated(
        ready[kept] - arrivals[kept],
        (done[kept] - ready[kept]) / max(output - 1, 1),
        done[kept] - arrivals[kept],
        decoder_time / max(t, 1e-30),
        peak,
        steps,
    )


METRICS = ("ttft", "tpot", "e2e")
"""The latencies compared, each as its mean and p90 (``kernels.point.Metrics`` fields
``{name}_s`` and ``{name}_p90_s``)."""


def highest_rate(point: DesignPoint, steps: int = 20) -> float:
    """The highest request rate the closed form calls sustainable at this point [request/s], by
    bisection between 0 and an upper bound found by doubling."""
    from kernels.point import evaluate_point

    def ok(rate: float) -> bool:
        wl = dataclasses.replace(point.wl, request_rate=_f64(rate))
        return bool(evaluate_point(point._replace(wl=wl)).feasible)

    hi = 1.0
    while ok(hi) and hi < 1e6:
        hi *= 2.0
    lo = 0.0
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def compare(point: DesignPoint, requests: int, seed: int = 0) -> dict[str, float]:
    """Relative error (closed form / simulated - 1) of each latency's mean and p90 at this point,
    with the simulation's mean decoders beside the closed form's."""
    from kernels.point import evaluate_point

    m = evaluate_point(point)
    disaggregated = int(point.dep.scenario) == SCENARIOS.index("disaggregated")
    sim = (simulate_disaggregated if disaggregated else simulate)(point, requests, seed)
    out: dict[str, float] = {}
    for name in METRICS:
        x = getattr(sim, f"{name}_s")
        out[f"{name}_mean"] = float(getattr(m, f"{name}_s")) / float(np.mean(x)) - 1.0
        out[f"{name}_p90"] = float(getattr(m, f"{name}_p90_s")) / float(np.percentile(x, 90)) - 1.0
    out["utilization"] = float(m.utilization)
    return out


def target(key: str) -> float:
    """What the error ``key`` of ``compare`` must stay within: 5% for a mean, 10% for a p90."""
    return 0.05 if key.endswith("mean") else 0.10


def error_summary(rows: list[dict[str, float]]) -> str:
    """The table the README quotes from ``compare``'s rows: per latency, the median, p90 and max of
    the absolute relative error, and the share within its target (5% for means, 10% for p90s)."""
    lines = [f"abs relative error over {len(rows)} configurations: median / p90 / max; share within target"]
    for key in (k for k in rows[0] if "utilization" not in k):
        e = np.abs([r[key] for r in rows])
        bound = target(key)
        spread = f"{np.median(e):6.1%} {np.percentile(e, 90):6.1%} {e.max():6.1%}"
        lines.append(f"{key:10s} {spread}  within {bound:.0%}: {np.mean(e <= bound):.0%}")
    return "\n" + "\n".join(lines)
