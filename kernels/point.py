"""One design point, end to end: the metric set the engine stores for every point of a sweep.

The scenario (``kernels.scenarios``) decides how requests share the replica. A point that cannot
run (the weights or one sequence's KV cache do not fit, P does not divide the heads, the GPU lacks
the compute precision, or a scenario's own check fails, e.g. a request rate beyond what the
poisson scenario sustains) is data: ``feasible`` is False and ``mask_infeasible`` turns its times
into NaN. (Under the concurrency scenario the requests beyond what fits queue for a slot.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

from kernels import xp
from kernels._types import BoolScalar, Scalar
from kernels.comm import allreduce_time
from kernels.disaggregated import same_gpu
from kernels.economics import usd_per_mtok
from kernels.flops import decode_flops
from kernels.memory import Capacity, MemoryPlan, memory_plan
from kernels.ownership import OwnedCost, owned_cost
from kernels.params import param_counts
from kernels.prefix import cached_tokens, new_tokens, prefill_new_flops
from kernels.roofline import PhaseTime, bottleneck, peak_flop_per_s
from kernels.scenarios import deployment_gpus, deployment_prefill_gpus, timeline
from kernels.specs import Deployment, EngineProfile, GPUSpec, Leaf, ModelSpec, Ownership, Workload
from kernels.speculative import tokens_per_round

CAPACITY = 4.0
"""Bottleneck code of a point that does not fit (see ``kernels.roofline.BOTTLENECKS``)."""


class Metrics(NamedTuple):
    """The metrics of one design point; each field becomes a data variable of a sweep, described
    once, beside it, in ``METRICS`` (units, long_name, description, source)."""

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
    usd_per_hour_owned: Scalar  # the deployment's GPUs, owned [USD/h]
    usd_per_mtok_output_owned: Scalar  # [USD/Mtoken]
    usd_per_mtok_input_owned: Scalar  # [USD/Mtoken]
    joules_per_output_token: Scalar  # facility energy per output token [J/token]
    rent_break_even_usd_per_gpu_hour: Scalar  # rental price at which renting costs what owning does [USD/h]
    ttft_p50_s: Scalar  # percentiles over requests arriving at random (poisson scenario) [s]
    ttft_p90_s: Scalar
    ttft_p99_s: Scalar
    tpot_p50_s: Scalar
    tpot_p90_s: Scalar
    tpot_p99_s: Scalar
    e2e_p50_s: Scalar
    e2e_p90_s: Scalar
    e2e_p99_s: Scalar
    utilization: Scalar  # [1]; >= 1 where the request rate is not sustainable
    kv_transfer_s: Scalar  # one prompt's KV cache from a prefill to a decode instance (disaggregated) [s]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means, as the dataset labels it (CF ``units`` and ``long_name``), and how the
    engine stores it."""

    units: str
    long_name: str
    description: str
    source: str  # the equation: a kernel function, and the article section where it has one
    runs_only: bool = False  # exists only for a point that can run: NaN where it cannot
    dtype: str = "float"  # stored as: float (the sweep's precision), bool, int8, float64
    per_model: bool = False  # depends on the model alone: stored once per model, not on the grid
    scenarios: tuple[str, ...] = ()  # defined only under these scenarios: stored by sweeps holding one (all: empty)


_ART = "the article 'LLM inference economics from first principles'"
_GPUS = "tp * pp * dp GPUs (disaggregated: + prefill_instances * prefill_tp)"
_ARRIVALS = ("poisson", "disaggregated")

METRICS: dict[str, MetricInfo] = {
    "feasible": MetricInfo(
        "1",
        "feasible",
        "the point can run: heads split evenly, every stage has a layer, the precision exists, "
        "the batch fits in memory (all of it under the concurrency scenario)",
        "kernels.point.feasibility",
        dtype="bool",
    ),
    "bottleneck": MetricInfo(
        "1",
        "bottleneck",
        "largest term over the whole request (capacity: does not fit)",
        "kernels.roofline.bottleneck",
        dtype="int8",
    ),
    "params_total": MetricInfo(
        "1",
        "parameters",
        "all parameters of the model",
        f"kernels.params.param_counts; {_ART}",
        dtype="float64",
        per_model=True,
    ),
    "weight_bytes": MetricInfo(
        "byte",
        "weight memory per GPU",
        "bytes of weights held by each GPU (its share of its stage's layers, and of the MTP head under "
        "speculative decoding)",
        "kernels.params.weight_bytes_per_gpu",
    ),
    "kv_cache_bytes": MetricInfo(
        "byte",
        "KV cache per GPU",
        "KV cache of the sequences in flight at their longest, per GPU (a cached prefix counted once)",
        f"kernels.memory; {_ART}, KV cache",
    ),
    "max_batch": MetricInfo(
        "sequence",
        "largest batch that fits",
        "sequences of the request length per micro-batch that fit beside the weights, capped by the engine",
        "kernels.memory.memory_plan",
    ),
    "batch_in_flight": MetricInfo(
        "sequence",
        "sequences in flight",
        "sequences decoded together over the whole deployment (a static wave, "
        "or the concurrency, times pp micro-batches and dp ranks)",
        "kernels.scenarios",
        runs_only=True,
    ),
    "prefill_flops": MetricInfo(
        "FLOP",
        "prefill FLOPs",
        "FLOPs of one prompt's prefill (of its tokens not in the prefix cache)",
        f"kernels.flops; kernels.prefix; {_ART}, prefill",
    ),
    "decode_flops": MetricInfo(
        "FLOP",
        "decode FLOPs per token",
        "FLOPs of the first decode step of one sequence",
        f"kernels.flops; {_ART}, decode",
    ),
    "prefill_s": MetricInfo(
        "s",
        "prefill time",
        "one prefill pass: the running batch (static) or one prompt (steady state)",
        "kernels.roofline.prefill_time",
        runs_only=True,
    ),
    "decode_s": MetricInfo(
        "s",
        "decode time",
        "all decode steps of the running batch (static) or of one request (steady state)",
        "kernels.roofline.decode_time",
        runs_only=True,
    ),
    "ttft_s": MetricInfo(
        "s",
        "time to first token",
        "arrival to first output token, mean over requests",
        "kernels.scenarios",
        runs_only=True,
    ),
    "ttft_min_s": MetricInfo(
        "s",
        "shortest time to first token",
        "the first request served: one prompt's prefill pass (static), or any request's (steady state)",
        "kernels.scenarios",
        runs_only=True,
    ),
    "tpot_s": MetricInfo(
        "s",
        "time per output token",
        "mean time between output tokens after the first",
        "kernels.scenarios",
        runs_only=True,
    ),
    "e2e_s": MetricInfo(
        "s",
        "end-to-end latency",
        "arrival to last output token, mean over requests",
        "kernels.scenarios",
        runs_only=True,
    ),
    "output_tok_s": MetricInfo(
        "token/s",
        "output throughput",
        f"output tokens per second of the whole deployment ({_GPUS})",
        "kernels.scenarios",
        runs_only=True,
    ),
    "output_tok_s_per_gpu": MetricInfo(
        "token/s/GPU",
        "output throughput per GPU",
        f"output_tok_s / the deployment's {_GPUS}",
        "kernels.point.evaluate",
        runs_only=True,
    ),
    "user_tok_s": MetricInfo(
        "token/s",
        "per-user speed",
        "output tokens per second one user sees, 1 / tpot",
        "kernels.point.evaluate",
        runs_only=True,
    ),
    "usd_per_mtok_output": MetricInfo(
        "USD/Mtoken",
        "cost per million output tokens",
        f"price per GPU-hour x the deployment's {_GPUS} / output tokens per hour x 1e6",
        f"kernels.economics; {_ART}, cost per token",
        runs_only=True,
    ),
    "usd_per_mtok_input": MetricInfo(
        "USD/Mtoken",
        "cost per million input tokens",
        f"price per GPU-hour x the deployment's {_GPUS} / prompt tokens per hour of prefill x 1e6",
        "kernels.economics",
        runs_only=True,
    ),
    "allreduce_s_per_token": MetricInfo(
        "s",
        "all-reduce time per token",
        "bandwidth term of one token's 2L tensor-parallel all-reduces",
        f"kernels.comm; {_ART}, tensor parallelism",
    ),
    "usd_per_hour_owned": MetricInfo(
        "USD/h",
        "owned cost per hour",
        f"capital, electricity and hosting of the deployment's {_GPUS} and their share of the nodes, owned",
        "kernels.ownership.owned_cost",
    ),
    "usd_per_mtok_output_owned": MetricInfo(
        "USD/Mtoken",
        "owned cost per million output tokens",
        "usd_per_hour_owned / output tokens per hour x 1e6",
        "kernels.ownership; kernels.economics",
        runs_only=True,
    ),
    "usd_per_mtok_input_owned": MetricInfo(
        "USD/Mtoken",
        "owned cost per million input tokens",
        "usd_per_hour_owned / prompt tokens per hour of prefill x 1e6",
        "kernels.ownership; kernels.economics",
        runs_only=True,
    ),
    "joules_per_output_token": MetricInfo(
        "J/token",
        "energy per output token",
        f"facility power of the {_GPUS} and their share of the nodes (drawn power x PUE) / output tokens per second",
        "kernels.ownership.owned_cost",
        runs_only=True,
    ),
    "rent_break_even_usd_per_gpu_hour": MetricInfo(
        "USD/h",
        "break-even rental price",
        "rental price per GPU-hour at which renting costs what owning does: owning is cheaper above it",
        "kernels.ownership.owned_cost",
    ),
    **{
        f"{latency}_p{q}_s": MetricInfo(
            "s",
            f"{name}, p{q}",
            f"{q}th percentile over requests of the {name}, requests arriving at random at request_rate",
            "kernels.queueing.served; kernels.disaggregated.pools",
            runs_only=True,
            scenarios=_ARRIVALS,
        )
        for latency, name in (
            ("ttft", "time to first token"),
            ("tpot", "time per output token"),
            ("e2e", "end-to-end latency"),
        )
        for q in (50, 90, 99)
    },
    "utilization": MetricInfo(
        "1",
        "utilisation",
        "the tighter of the share of each step spent on other requests' work and the share of the "
        "sequence slots held (99th percentile); below 1 where the request rate is sustainable (disaggregated: "
        "the largest of the prefill instances', the KV links' and the decode ranks')",
        "kernels.queueing.served; kernels.disaggregated.pools",
        scenarios=_ARRIVALS,
    ),
    "kv_transfer_s": MetricInfo(
        "s",
        "KV transfer time",
        "moving one prompt's KV cache from a prefill instance to a decode rank, each GPU over its own link "
        "(NVLink within a node, else the network; kv_link_bytes_per_s); part of the time to first token",
        "kernels.disaggregated.kv_transfer",
        runs_only=True,
        scenarios=("disaggregated",),
    ),
}
"""Every metric's metadata, in ``Metrics`` field order (checked below and by the tests)."""
assert tuple(METRICS) == Metrics._fields


class DesignPoint(NamedTuple):
    """The kernel inputs of one design point, built by ``design_point`` from named values."""

    model: ModelSpec
    gpu: GPUSpec
    dep: Deployment
    wl: Workload
    profile: EngineProfile
    own: Ownership
    prefill_gpu: GPUSpec  # the disaggregated scenario's prefill instances'; ``gpu`` itself where of its type


AUTO_COMPUTE = -1.0
"""``compute_dtype`` code meaning: the weight format's own compute precision."""


def over_pools(per_gpu: Scalar, per_prefill_gpu: Scalar, gpus: Scalar, prefill_gpus: Scalar) -> Scalar:
    """A per-GPU amount (a price [USD/h], a power [W]) summed over a deployment's ``gpus`` GPUs,
    ``prefill_gpus`` of them at the prefill GPU's ``per_prefill_gpu``; where that is the decode
    GPU's (one type, or no prefill pool), ``per_gpu * gpus`` exactly, as for one GPU type."""
    one_type = (prefill_gpus == 0.0) | (per_prefill_gpu == per_gpu)
    return xp.where(one_type, per_gpu * gpus, per_gpu * (gpus - prefill_gpus) + per_prefill_gpu * prefill_gpus)


def design_point(
    *,
    model: ModelSpec,
    gpu: GPUSpec,
    profile: EngineProfile,
    tp: Leaf,
    batch: Leaf,
    input_len: Leaf,
    output_len: Leaf,
    weight_bytes_per_elem: Leaf,
    weight_compute_dtype: Leaf,
    weight_fallback_compute_dtype: Leaf,
    act_bytes_per_elem: Leaf,
    kv_bytes_per_elem: Leaf,
    compute_dtype: Leaf,
    scenario: Leaf,
    pp: Leaf,
    dp: Leaf,
    expert_parallel: Leaf,
    prefill_instances: Leaf,
    prefill_tp: Leaf,
    prefill_gpu: GPUSpec,
    kv_link_bytes_per_s: Leaf,
    request_rate: Leaf,
    draft_tokens: Leaf,
    draft_acceptance: Leaf,
    cached_prefix_fraction: Leaf,
    input_len_spread: Leaf,
    output_len_spread: Leaf,
    usd_per_gpu_hour: Leaf,
    capex_usd_per_gpu: Leaf,
    capex_usd_per_node: Leaf,
    amortization_years: Leaf,
    cost_of_capital: Leaf,
    power_frac: Leaf,
    node_overhead_w: Leaf,
    pue: Leaf,
    usd_per_kwh: Leaf,
    hosting_usd_per_kw_month: Leaf,
) -> DesignPoint:
    """The one constructor of a design point, from named values (the encodings of the sweep axes,
    ``grids.axes``), used alike by the engine, explain, calibration and the tests.

    Args:
      model, gpu, profile: catalogue specs.
      tp, pp, dp, batch, input_len, output_len, scenario, expert_parallel: see ``Deployment``, ``Workload``.
      weight_bytes_per_elem, weight_compute_dtype, weight_fallback_compute_dtype,
        act_bytes_per_elem: the weight format's storage width [byte], the precision it computes
        in where the GPU has tensor cores for it and where it has not (codes), and the width of
        the activations it runs with [byte] (grids/dtypes.toml).
      kv_bytes_per_elem: the KV-cache format's width [byte].
      compute_dtype: the precision whose peak applies (a code), or AUTO_COMPUTE: the weight
        format's own where the GPU has it (nvfp4 on B200: fp4), else its fallback (on H100: bf16).
      prefill_instances, prefill_tp: the disaggregated scenario's prefill pool: instances and GPUs of
        each (0: tp, the decode ranks').
      prefill_gpu: the GPU of its prefill instances (a catalogue spec), or a spec of NaN throughout
        (the axis's default; no GPU lacks memory, so its ``hbm_bytes`` tells it apart): ``gpu``.
        One of the same type (the default, or the same catalogue entry) is ``gpu`` as priced below;
        one of another type keeps its catalogue prices, and its precision is resolved on it.
      kv_link_bytes_per_s: its KV transfer bandwidth per GPU [byte/s]; NaN: the GPU's own link
        (``kernels.disaggregated.kv_transfer``).
      request_rate: requests per second to the deployment, arriving at random (poisson, disaggregated).
      draft_tokens, draft_acceptance: speculative decoding with an MTP head, k tokens drafted per
        round, each accepted with probability a (``kernels.speculative``); k = 0: none.
      cached_prefix_fraction: f, the share of each prompt already in the prefix cache (``kernels.prefix``).
      input_len_spread, output_len_spread: r, each request's prompt and output lengths uniform on
        [L (1 - r), L (1 + r)] about input_len and output_len (``kernels.lengths``; poisson scenario).
      usd_per_gpu_hour: rental price of one GPU (of the decode pool's type) [USD/h]; NaN: the GPU's
        catalogue price.
      capex_usd_per_gpu: purchase price of one GPU (of that type) [USD]; NaN: the GPU's catalogue price.
      capex_usd_per_node ... hosting_usd_per_kw_month: see ``Ownership``.
    """

    def precision(g: GPUSpec) -> Leaf:
        native = xp.isfinite(peak_flop_per_s(g, weight_compute_dtype))
        auto = xp.where(native, weight_compute_dtype, weight_fallback_compute_dtype)
        return xp.where(compute_dtype < 0.0, auto, compute_dtype)

    price = xp.where(xp.isnan(usd_per_gpu_hour), gpu.usd_per_hour, usd_per_gpu_hour)
    capex = xp.where(xp.isnan(capex_usd_per_gpu), gpu.capex_usd, capex_usd_per_gpu)
    priced = dataclasses.replace(gpu, usd_per_hour=price, capex_usd=capex)
    one_type = xp.isnan(prefill_gpu.hbm_bytes) | same_gpu(prefill_gpu, gpu)
    prefill_gpu = xp.tree_map(lambda mine, decode: xp.where(one_type, decode, mine), prefill_gpu, priced)
    own = Ownership(
        capex_usd_per_node=capex_usd_per_node,
        amortization_years=amortization_years,
        cost_of_capital=cost_of_capital,
        power_frac=power_frac,
        node_overhead_w=node_overhead_w,
        pue=pue,
        usd_per_kwh=usd_per_kwh,
        hosting_usd_per_kw_month=hosting_usd_per_kw_month,
    )
    dep = Deployment(
        tp=tp,
        batch=batch,
        weight_bytes_per_elem=weight_bytes_per_elem,
        kv_bytes_per_elem=kv_bytes_per_elem,
        act_bytes_per_elem=act_bytes_per_elem,
        compute_dtype=precision(gpu),
        scenario=scenario,
        pp=pp,
        dp=dp,
        expert_parallel=expert_parallel,
        prefill_instances=prefill_instances,
        prefill_tp=xp.where(prefill_tp > 0.0, prefill_tp, tp),
        prefill_compute_dtype=precision(prefill_gpu),
        kv_link_bytes_per_s=kv_link_bytes_per_s,
        draft_tokens=draft_tokens,
        draft_acceptance=draft_acceptance,
    )
    wl = Workload(
        input_len=input_len,
        output_len=output_len,
        request_rate=request_rate,
        cached_prefix_fraction=cached_prefix_fraction,
        input_len_spread=input_len_spread,
        output_len_spread=output_len_spread,
    )
    return DesignPoint(model, priced, dep, wl, profile, own, prefill_gpu)


def request_memory(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> MemoryPlan:
    """Memory plan for sequences at their longest: I + O - 1 tokens (the last token is never cached),
    the cached prefix held once (``kernels.prefix``)."""
    return memory_plan(model, gpu, dep, profile, wl.input_len + wl.output_len - 1.0, cached_tokens(wl))


def capacity(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> Capacity:
    """How many sequences fit. A static batch's sequences grow in lockstep and all reach
    I + O - 1 tokens together. In a steady state they are spread evenly over their lives, so
    an engine that allocates KV pages as sequences grow (``kv_paged``) holds on average the
    mean context I + (O - 1)/2 per sequence (exact for full-attention layers; a window layer's
    min(T, W) at the mean is an upper bound of its mean); one that reserves I + O per sequence
    holds the longest.

    A paged engine admits a request while its prompt fits (``admitted``: sequences of I tokens)
    and preempts later if the batch outgrows the cache. The engine's token budget per step N
    (``max_num_tokens``) caps the lockstep and staggered counts: a decode step carries
    one token per sequence, and with chunked prefill a steady step also carries the C I / O
    prompt tokens of the requests that start meanwhile, so C (1 + I / O) <= N.

    Speculative decoding (k drafted tokens, E emitted per round): the verify pass carries k + 1
    tokens per sequence and E C I / O prompt tokens per round, so C (k + 1 + E I / O) <= N. A
    cached prefix: the prompts carry only their new tokens (``kernels.prefix.new_tokens``) and
    the prefix is held once (``memory_plan``).
    """
    shared = cached_tokens(wl)
    verified = dep.draft_tokens + 1.0
    longest = request_memory(model, gpu, dep, wl, profile).max_batch
    lockstep = xp.minimum(
        longest, xp.where(dep.draft_tokens > 0.0, xp.floor(profile.max_num_tokens / verified), profile.max_num_tokens)
    )
    mean = memory_plan(model, gpu, dep, profile, wl.input_len + 0.5 * (wl.output_len - 1.0), shared).max_batch
    held = xp.where(profile.kv_paged > 0.0, mean, longest)
    e = tokens_per_round(dep.draft_tokens, dep.draft_acceptance)
    tokens_per_sequence = verified + profile.chunked_prefill * (e * new_tokens(wl)) / wl.output_len
    budget = xp.floor(profile.max_num_tokens / tokens_per_sequence)
    prompts = memory_plan(model, gpu, dep, profile, wl.input_len, shared).max_batch
    admitted = xp.where(profile.kv_paged > 0.0, prompts, lockstep)
    return Capacity(lockstep, xp.minimum(held, budget), admitted)


def feasibility(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> BoolScalar:
    """Heads split evenly, every pipeline stage has a layer, the precision exists, prompt plus
    output within the model's context (the longest, where the lengths are spread), one sequence
    fits (whether the scenario can run the batch is the scenario's own check)."""
    plan = request_memory(model, gpu, dep, wl, profile)
    heads_split = xp.mod(model.n_heads, dep.tp) == 0.0
    stages_have_layers = dep.pp <= model.n_layers
    has_peak = xp.isfinite(peak_flop_per_s(gpu, dep.compute_dtype))
    fits = plan.weights_fit & (plan.max_batch >= 1.0)
    in_context = wl.input_len * (1.0 + wl.input_len_spread) + wl.output_len * (1.0 + wl.output_len_spread) <= (
        model.max_context
    )
    return heads_split & stages_have_layers & has_peak & in_context & fits


def evaluate_point(point: DesignPoint, codes: tuple[int, ...] | None = None) -> Metrics:
    """``evaluate`` of a ``DesignPoint``, with the times of a point that cannot run as NaN;
    ``codes``: the scenarios it may hold (``kernels.scenarios.timeline``)."""
    return mask_infeasible(evaluate(*point, codes=codes))


def evaluate(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    wl: Workload,
    profile: EngineProfile,
    own: Ownership | None = None,
    prefill_gpu: GPUSpec | None = None,
    codes: tuple[int, ...] | None = None,
) -> Metrics:
    """All metrics of one design point (rank-0 in, rank-0 out), as if it could run; the owned
    costs are NaN without ``own``; ``prefill_gpu``: the GPU of a prefill pool (None: ``gpu``),
    whose GPUs the costs and power count at its own prices and power.

    Times and rates are computed even where ``feasible`` is False (the article's "70B on one
    H100" reasoning, with the batch taken as given); ``mask_infeasible`` turns them into NaN.
    """
    plan = request_memory(model, gpu, dep, wl, profile)
    # Where nothing fits, the scenarios evaluate the batch as given (explain shows what it would take).
    prefill_gpu = gpu if prefill_gpu is None else prefill_gpu
    tl, runs = timeline(model, gpu, dep, wl, profile, capacity(model, gpu, dep, wl, profile), codes, prefill_gpu)
    has_decode = xp.where(wl.output_len > 1.0, 1.0, 0.0)
    ok = feasibility(model, gpu, dep, wl, profile) & runs & xp.isfinite(tl.e2e_s) & xp.isfinite(tl.tpot_s)
    total = PhaseTime(*(p + has_decode * d for p, d in zip(tl.prefill, tl.decode)))
    gpus = deployment_gpus(dep, codes)
    on_prefill_gpu = deployment_prefill_gpus(dep, codes)
    price = over_pools(gpu.usd_per_hour, prefill_gpu.usd_per_hour, gpus, on_prefill_gpu)
    nan = xp.nan * xp.ones_like(dep.batch)
    owned = owned_cost(gpu, own) if own is not None else OwnedCost(nan, nan, nan, nan)
    owned_prefill = owned_cost(prefill_gpu, own) if own is not None else owned
    owned_usd_per_hour = over_pools(owned.usd_per_hour, owned_prefill.usd_per_hour, gpus, on_prefill_gpu)
    facility_w = over_pools(owned.facility_w, owned_prefill.facility_w, gpus, on_prefill_gpu)
    # one rental price for all the deployment's GPUs: its owned cost per GPU-hour, their mean
    one_type = (on_prefill_gpu == 0.0) | (owned_prefill.usd_per_hour == owned.usd_per_hour)
    break_even = xp.where(one_type, owned.usd_per_hour, owned_usd_per_hour / gpus)
    return Metrics(
        feasible=ok,
        bottleneck=xp.where(ok, bottleneck(total), CAPACITY),
        params_total=param_counts(model).total,
        weight_bytes=plan.weight_bytes_per_gpu,
        kv_cache_bytes=plan.kv_bytes_per_seq_per_gpu * tl.in_flight / dep.dp + plan.kv_shared_bytes_per_gpu,
        max_batch=plan.max_batch,
        batch_in_flight=tl.in_flight,
        prefill_flops=prefill_new_flops(model, wl, profile.causal_attention).total,
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
        allreduce_s_per_token=allreduce_time(model, gpu, dep, profile, xp.ones_like(dep.batch)).bandwidth_s,
        usd_per_hour_owned=owned_usd_per_hour,
        usd_per_mtok_output_owned=usd_per_mtok(owned_usd_per_hour, tl.output_tok_s),
        usd_per_mtok_input_owned=usd_per_mtok(owned_usd_per_hour, tl.input_tok_s),
        joules_per_output_token=facility_w / tl.output_tok_s,
        rent_break_even_usd_per_gpu_hour=break_even,
        ttft_p50_s=tl.load.ttft.p50,
        ttft_p90_s=tl.load.ttft.p90,
        ttft_p99_s=tl.load.ttft.p99,
        tpot_p50_s=tl.load.tpot.p50,
        tpot_p90_s=tl.load.tpot.p90,
        tpot_p99_s=tl.load.tpot.p99,
        e2e_p50_s=tl.load.e2e.p50,
        e2e_p90_s=tl.load.e2e.p90,
        e2e_p99_s=tl.load.e2e.p99,
        utilization=tl.load.utilization,
        kv_transfer_s=tl.load.kv_transfer_s,
    )


TIMED_FIELDS = tuple(name for name, info in METRICS.items() if info.runs_only)
"""Metrics that exist only for a point that can run."""

INTERVAL_METRICS = (
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "output_tok_s",
    "output_tok_s_per_gpu",
    "user_tok_s",
    "usd_per_mtok_output",
    "usd_per_mtok_input",
    "usd_per_mtok_output_owned",
    "usd_per_mtok_input_owned",
    "joules_per_output_token",
)
"""The metrics a profile's stated interval applies to: its latencies, throughputs and costs."""

TERMS_LOG_SD = {name: f"{name}_terms_log_sd" for name in INTERVAL_METRICS}
"""Per metric of ``INTERVAL_METRICS``, the name of its stored spread from the profile's fitted
terms (``kernels.sensitivity.terms_log_sd``; a sweep with ``term_intervals``)."""


def speed_sign(name: str) -> float:
    """+1 for a metric that grows with the engine's speed (a rate: token/s), -1 for one that
    shrinks with it (a time, a cost per token), 0 for the rest (counts, bytes), by its unit."""
    units = METRICS[name].units
    return 1.0 if units.startswith("token/s") else -1.0 if units in ("s", "USD/Mtoken", "J/token") else 0.0


def interval(value: Any, name: str, log_p10: Any, log_p90: Any) -> tuple[Any, Any]:
    """p10 and p90 of a predicted ``value`` of metric ``name`` under a profile's stated 80%
    interval of ln(measured speed / predicted speed), (log_p10, log_p90): a rate scales by
    e^p10 .. e^p90, a time or cost by e^-p90 .. e^-p10."""
    sign = speed_sign(name)
    if sign > 0:
        return value * xp.exp(log_p10), value * xp.exp(log_p90)
    if sign < 0:
        return value * xp.exp(-log_p90), value * xp.exp(-log_p10)
    return value, value


Z_80 = 1.2815515655446004
"""The standard normal's 90th percentile: an 80% two-sided interval spans +-1.28 sd."""


def widen_interval(log_p10: Any, log_p90: Any, log_sd: Any) -> tuple[Any, Any]:
    """A stated interval (log_p10, log_p90) of ln(measured speed / predicted speed) widened by an
    independent error of standard deviation ``log_sd`` in the log (what a fit leaves uncertain in
    its terms, ``sweep.calibration.uncertainty``): each half about the centre becomes
    sqrt(half^2 + (1.28 sd)^2), variances adding. A NaN ``log_sd`` adds nothing."""
    centre, half = 0.5 * (log_p10 + log_p90), 0.5 * (log_p90 - log_p10)
    sd = xp.fmax(log_sd, 0.0)  # NaN -> 0 (a ufunc: labelled arrays stay labelled)
    wide = xp.sqrt(half * half + (Z_80 * sd) ** 2)
    return centre - wide, centre + wide


def mask_infeasible(metrics: Metrics) -> Metrics:
    """NaN for every time, rate and price of a point that cannot run; the grid stays rectangular."""
    masked = {name: xp.where(metrics.feasible, getattr(metrics, name), xp.nan) for name in TIMED_FIELDS}
    return metrics._replace(**masked)
