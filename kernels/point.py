"""One design point, end to end: the metric set the engine stores for every point of a sweep.

The scenario (``kernels.scenarios``) decides how requests share the replica. A point that cannot
run (the weights or one sequence's KV cache do not fit, P does not divide the heads, the GPU lacks
the compute precision, or C exceeds what fits under the concurrency scenario) is data:
``feasible`` is False and ``mask_infeasible`` turns its times into NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels._types import BoolScalar, Scalar
from kernels.comm import allreduce_time
from kernels.economics import usd_per_mtok
from kernels.flops import decode_flops, prefill_flops
from kernels.memory import MemoryPlan, memory_plan
from kernels.params import param_counts
from kernels.roofline import PhaseTime, bottleneck, peak_flop_per_s
from kernels.scenarios import timeline
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload

CAPACITY = 4.0
"""Bottleneck code of a point that does not fit (see ``kernels.roofline.BOTTLENECKS``)."""


class Metrics(NamedTuple):
    """The metrics of one design point; each field becomes a data variable of a sweep."""

    feasible: BoolScalar
    bottleneck: Scalar  # code into kernels.roofline.BOTTLENECKS, over prefill + decode
    params_total: Scalar  # [1]
    weight_bytes: Scalar  # per GPU [byte]
    kv_cache_bytes: Scalar  # per GPU, sequences in flight at their longest, I + O - 1 tokens [byte]
    max_batch: Scalar  # sequences of I + O - 1 tokens that fit [sequence]
    batch_in_flight: Scalar  # sequences decoded together, all pp micro-batches of all dp ranks [sequence]
    prefill_flops: Scalar  # one prompt [FLOP]
    decode_flops: Scalar  # the first decode step of one sequence, after I cached tokens [FLOP]
    prefill_s: Scalar  # one prefill pass: the running batch (static) or one prompt (steady) [s]
    decode_s: Scalar  # all decode steps of the running batch (static) or of one request [s]
    ttft_s: Scalar  # mean over requests [s]
    ttft_min_s: Scalar  # the first request served [s]
    tpot_s: Scalar  # mean decode step seen by a request [s]
    e2e_s: Scalar  # mean over requests [s]
    output_tok_s: Scalar  # output tokens per second of the deployment (all pp * dp * P GPUs) [token/s]
    output_tok_s_per_gpu: Scalar  # [token/s/GPU]
    user_tok_s: Scalar  # 1 / tpot [token/s]
    usd_per_mtok_output: Scalar  # [USD/Mtoken]
    usd_per_mtok_input: Scalar  # [USD/Mtoken]
    allreduce_s_per_token: Scalar  # bandwidth term of one token's all-reduces [s]


def request_memory(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> MemoryPlan:
    """Memory plan for sequences at their longest: I + O - 1 tokens (the last token is never cached)."""
    return memory_plan(model, gpu, dep, profile, wl.input_len + wl.output_len - 1.0)


def feasibility(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> BoolScalar:
    """Heads split evenly, every pipeline stage has a layer, the precision exists, one sequence
    fits (and C fit, for concurrency)."""
    plan = request_memory(model, gpu, dep, wl, profile)
    heads_split = jnp.mod(model.n_heads, dep.tp) == 0.0
    stages_have_layers = dep.pp <= model.n_layers
    has_peak = jnp.isfinite(peak_flop_per_s(gpu, dep.compute_dtype))
    fits = plan.weights_fit & (plan.max_batch >= 1.0)
    concurrency_fits = (dep.scenario != 1.0) | (dep.batch <= plan.max_batch)
    return heads_split & stages_have_layers & has_peak & fits & concurrency_fits


def evaluate(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> Metrics:
    """All metrics of one design point (rank-0 in, rank-0 out), as if it could run.

    Times and rates are computed even where ``feasible`` is False (the article's "70B on one
    H100" reasoning, with the batch taken as given); ``mask_infeasible`` turns them into NaN.
    """
    plan = request_memory(model, gpu, dep, wl, profile)
    # Where nothing fits, the scenarios evaluate the batch as given (explain shows what it would take).
    tl = timeline(model, gpu, dep, wl, profile, plan.max_batch)
    has_decode = jnp.where(wl.output_len > 1.0, 1.0, 0.0)
    ok = feasibility(model, gpu, dep, wl, profile) & jnp.isfinite(tl.e2e_s) & jnp.isfinite(tl.tpot_s)
    total = PhaseTime(*(p + has_decode * d for p, d in zip(tl.prefill, tl.decode)))
    gpus = dep.tp * dep.pp * dep.dp
    price = gpu.usd_per_hour * gpus
    return Metrics(
        feasible=ok,
        bottleneck=jnp.where(ok, bottleneck(total), CAPACITY),
        params_total=param_counts(model).total,
        weight_bytes=plan.weight_bytes_per_gpu,
        kv_cache_bytes=plan.kv_bytes_per_seq_per_gpu * tl.in_flight / dep.dp,
        max_batch=plan.max_batch,
        batch_in_flight=tl.in_flight,
        prefill_flops=prefill_flops(model, wl.input_len, profile.causal_attention).total,
        decode_flops=decode_flops(model, wl.input_len).total,
        prefill_s=tl.prefill.total_s,
        decode_s=has_decode * tl.decode.total_s,
        ttft_s=tl.ttft_s,
        ttft_min_s=tl.ttft_min_s,
        tpot_s=tl.tpot_s,
        e2e_s=tl.e2e_s,
        output_tok_s=tl.output_tok_s,
        output_tok_s_per_gpu=tl.output_tok_s / gpus,
        user_tok_s=1.0 / tl.tpot_s,
        usd_per_mtok_output=usd_per_mtok(price, tl.output_tok_s),
        usd_per_mtok_input=usd_per_mtok(price, tl.input_tok_s),
        allreduce_s_per_token=allreduce_time(model, gpu, dep, profile, jnp.ones_like(dep.batch)).bandwidth_s,
    )


TIMED_FIELDS = (
    "batch_in_flight",
    "prefill_s",
    "decode_s",
    "ttft_s",
    "ttft_min_s",
    "tpot_s",
    "e2e_s",
    "output_tok_s",
    "output_tok_s_per_gpu",
    "user_tok_s",
    "usd_per_mtok_output",
    "usd_per_mtok_input",
)
"""Metrics that exist only for a point that can run."""


def mask_infeasible(metrics: Metrics) -> Metrics:
    """NaN for every time, rate and price of a point that cannot run; the grid stays rectangular."""
    masked = {name: jnp.where(metrics.feasible, getattr(metrics, name), jnp.nan) for name in TIMED_FIELDS}
    return metrics._replace(**masked)
