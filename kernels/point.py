"""One design point, end to end: the metric set the engine stores for every point of a sweep.

Scenario ``static`` (the article's and shared/benchmarks'): B identical requests arrive at once,
are prefilled together in one pass, then decoded together. TTFT is that prefill; the O - 1 later
tokens each take one decode step, the first at context I (the prompt), the last at I + O - 2.
A point that cannot run (weights or the batch's KV cache do not fit, P does not divide the
heads, the GPU lacks the compute precision) is data: ``feasible`` is False and times are NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels._types import BoolScalar, Scalar
from kernels.comm import allreduce_time
from kernels.economics import usd_per_mtok
from kernels.flops import decode_flops, prefill_flops
from kernels.memory import memory_plan
from kernels.params import param_counts
from kernels.roofline import (PhaseTime, bottleneck, decode_step, decode_time, peak_flop_per_s,
                              prefill_time)
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload

CAPACITY = 4.0
"""Bottleneck code of a point that does not fit (see ``kernels.roofline.BOTTLENECKS``)."""


class Metrics(NamedTuple):
    """The metrics of one design point; each field becomes a data variable of a sweep."""

    feasible: BoolScalar
    bottleneck: Scalar  # code into kernels.roofline.BOTTLENECKS, over the whole request
    params_total: Scalar  # [1]
    weight_bytes: Scalar  # per GPU [byte]
    kv_cache_bytes: Scalar  # per GPU, B sequences at their longest, I + O - 1 tokens [byte]
    max_batch: Scalar  # [sequence]
    prefill_flops: Scalar  # one prompt [FLOP]
    decode_flops: Scalar  # the first decode step of one sequence, after I cached tokens [FLOP]
    prefill_s: Scalar  # the prefill pass of the batch [s]
    decode_s: Scalar  # all decode steps [s]
    ttft_s: Scalar  # [s]
    tpot_s: Scalar  # mean time per output token after the first [s]
    e2e_s: Scalar  # [s]
    output_tok_s: Scalar  # output tokens per second of the replica [token/s]
    output_tok_s_per_gpu: Scalar  # [token/s/GPU]
    user_tok_s: Scalar  # 1 / tpot [token/s]
    usd_per_mtok_output: Scalar  # [USD/Mtoken]
    usd_per_mtok_input: Scalar  # [USD/Mtoken]
    allreduce_s_per_token: Scalar  # bandwidth term of one decode step's all-reduces [s]


def decode_steps(wl: Workload) -> Scalar:
    """Decode steps averaged for TPOT: O - 1, or the one step that would follow when O = 1."""
    return jnp.maximum(wl.output_len - 1.0, 1.0)


def request_phases(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload,
                   profile: EngineProfile) -> tuple[PhaseTime, PhaseTime]:
    """Prefill pass and summed decode steps of one static batch (decode steps: ``decode_steps``)."""
    prefill = prefill_time(model, gpu, dep, wl, profile)
    decode = decode_time(decode_step(model, gpu, dep, profile), wl.input_len, decode_steps(wl))
    return prefill, decode


def feasibility(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload,
                profile: EngineProfile) -> BoolScalar:
    """Whether the point can run: heads split evenly, precision present, batch fits in memory."""
    plan = memory_plan(model, gpu, dep, profile, wl.input_len + wl.output_len - 1.0)
    heads_split = jnp.mod(model.n_heads, dep.tp) == 0.0
    has_peak = jnp.isfinite(peak_flop_per_s(gpu, dep.compute_dtype))
    return heads_split & has_peak & plan.weights_fit & (dep.batch <= plan.max_batch)


def evaluate(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload,
             profile: EngineProfile) -> Metrics:
    """All metrics of one design point (rank-0 in, rank-0 out), as if it could run.

    Times and rates are computed even where ``feasible`` is False (the article's "70B on one
    H100" reasoning); ``mask_infeasible`` turns them into NaN, as a sweep stores them.
    """
    plan = memory_plan(model, gpu, dep, profile, wl.input_len + wl.output_len - 1.0)
    prefill, decode = request_phases(model, gpu, dep, wl, profile)
    has_decode = jnp.where(wl.output_len > 1.0, 1.0, 0.0)
    tpot = decode.total_s / decode_steps(wl)
    e2e = prefill.total_s + has_decode * decode.total_s
    # A missing link (NaN bandwidth of a single-device chip at P > 1) also makes a point infeasible.
    ok = feasibility(model, gpu, dep, wl, profile) & jnp.isfinite(e2e) & jnp.isfinite(tpot)
    out_rate = dep.batch * wl.output_len / e2e
    price = gpu.usd_per_hour * dep.tp
    total = PhaseTime(*(p + has_decode * d for p, d in zip(prefill, decode)))

    return Metrics(
        feasible=ok,
        bottleneck=jnp.where(ok, bottleneck(total), CAPACITY),
        params_total=param_counts(model).total,
        weight_bytes=plan.weight_bytes_per_gpu,
        kv_cache_bytes=plan.kv_bytes_per_token_per_gpu * dep.batch * (wl.input_len + wl.output_len - 1.0),
        max_batch=plan.max_batch,
        prefill_flops=prefill_flops(model, wl.input_len, profile.causal_attention).total,
        decode_flops=decode_flops(model, wl.input_len).total,
        prefill_s=prefill.total_s,
        decode_s=has_decode * decode.total_s,
        ttft_s=prefill.total_s,
        tpot_s=tpot,
        e2e_s=e2e,
        output_tok_s=out_rate,
        output_tok_s_per_gpu=out_rate / dep.tp,
        user_tok_s=1.0 / tpot,
        usd_per_mtok_output=usd_per_mtok(price, out_rate),
        usd_per_mtok_input=usd_per_mtok(price, dep.batch * wl.input_len / prefill.total_s),
        allreduce_s_per_token=allreduce_time(model, gpu, dep, profile, jnp.ones_like(dep.batch)).bandwidth_s,
    )


TIMED_FIELDS = ("prefill_s", "decode_s", "ttft_s", "tpot_s", "e2e_s", "output_tok_s",
                "output_tok_s_per_gpu", "user_tok_s", "usd_per_mtok_output", "usd_per_mtok_input")
"""Metrics that exist only for a point that can run."""


def mask_infeasible(metrics: Metrics) -> Metrics:
    """NaN for every time, rate and price of a point that cannot run; the grid stays rectangular."""
    masked = {name: jnp.where(metrics.feasible, getattr(metrics, name), jnp.nan)
              for name in TIMED_FIELDS}
    return metrics._replace(**masked)
