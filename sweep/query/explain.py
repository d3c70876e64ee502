"""The article's step-by-step breakdown of one design point, in float64 (``sweep explain``)."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from grids.axes import AXES, design_inputs
from grids.dtypes import load_dtypes
from grids.errors import SpecError
from grids.models import load_model
from grids.profiles import load_profile
from kernels import xp
from kernels.comm import allreduce_time, expert_group_tokens
from kernels.disaggregated import prefill_deployment
from kernels.flops import op_flops
from kernels.memory import kv_cache_bytes, memory_plan
from kernels.ownership import owned_cost
from kernels.params import experts_touched, param_counts
from kernels.point import (
    INTERVAL_METRICS,
    capacity,
    design_point,
    evaluate,
    interval,
    over_pools,
    request_memory,
    widen_interval,
)
from kernels.prefix import cached_tokens, new_pairs, new_tokens
from kernels.roofline import BOTTLENECKS, bottleneck, decode_step_time, peak_flop_per_s, weight_read_s
from kernels.scenarios import SCENARIOS, decode_steps, deployment_gpus, deployment_prefill_gpus, timeline
from kernels.specs import COMPUTE_DTYPES
from kernels.speculative import serving_step, speculation

CONVENTIONS = {"article": "article", "realistic": "roofline"}
"""Convention name -> the profile that carries its counting rules (realistic: the default profile)."""


def _f64(x: Any) -> Any:
    return np.asarray(x, dtype=np.float64)


def _scalars(named: Any) -> dict[str, float]:
    return {k: float(v) for k, v in named._asdict().items()}


def explain(
    model: str,
    gpu: str,
    tp: int = 1,
    batch: int = 1,
    input_len: int | None = None,
    output_len: int | None = None,
    *,
    convention: str = "realistic",
    profile: str | None = None,
    sensitivity: bool = False,
    **axes: Any,
) -> dict[str, Any]:
    """Every intermediate of the cost model for one design point, SI units, as a flat dict.

    ``axes``: any other axis of grids/axes.py by name (weight_dtype="fp8", scenario="concurrency",
    pp=2, expert_parallel="on" or True, usd_per_gpu_hour=2.0 ...); unset axes take their defaults.
    Times and rates are reported even when the point cannot run (``feasible`` False, e.g. 70B
    weights on one 80 GB GPU), as the article reasons about them; a sweep stores NaN there.
    Evaluated in float64 numpy, op by op (``kernels.xp``): no JAX, and no program to compile (XLA
    takes 10-30 s for one design point); inf and NaN are data, not warnings.

    ``sensitivity``: also ``elasticity``, per metric of ``kernels.sensitivity.ELASTIC_METRICS`` the
    elasticities to each GPU number, by forward-mode autodiff (JAX; ~10 s to compile).
    """
    with np.errstate(all="ignore"):
        out = _explain(model, gpu, tp, batch, input_len, output_len, convention, profile, axes)
    if sensitivity:
        values = {k: v for k, v in dict(axes, model=model, gpu=gpu, tp=tp, batch=batch).items() if v is not None}
        values.update(input_len=out["input_len"], output_len=out["output_len"], profile=out["profile_key"])
        out["elasticity"] = point_elasticities(values)
    return out


def point_elasticities(values: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Elasticities of one design point (axis values) by forward-mode autodiff, in float64."""
    import jax
    import jax.numpy as jnp

    from kernels.sensitivity import GPU_NUMBERS, elasticities

    with jax.enable_x64(True):
        named = jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.float64), design_inputs(values))
        # only the point's own scenario is compiled (each one with random arrivals costs ~30 s)
        codes = (SCENARIOS.index(values.get("scenario", AXES["scenario"].default)),)
        result = _jitted(elasticities, codes)(design_point(**named))
        return {m: dict(zip(GPU_NUMBERS, map(float, v))) for m, v in result.items()}


@functools.cache
def _jitted(fn: Any, codes: tuple[int, ...]) -> Any:
    """One compiled program per function, scenarios held and process: every design point has the
    same shapes."""
    import jax

    return jax.jit(functools.partial(fn, codes=codes))


def _explain(
    model: str,
    gpu: str,
    tp: int,
    batch: int,
    input_len: int | None,
    output_len: int | None,
    convention: str,
    profile: str | None,
    axes: dict[str, Any],
) -> dict[str, Any]:
    if convention not in CONVENTIONS:
        raise SpecError(f"argument --convention: expected one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if convention == "article" and profile is not None:
        raise SpecError("argument --profile: the article convention fixes its own profile; drop --profile")
    if isinstance(axes.get("expert_parallel"), bool):
        axes["expert_parallel"] = "on" if axes["expert_parallel"] else "off"
    values = dict(axes, model=model, gpu=gpu, tp=tp, batch=batch, input_len=input_len, output_len=output_len)
    values["profile"] = profile or CONVENTIONS[convention]
    values = {k: v for k, v in values.items() if v is not None}
    named = design_inputs(values)  # validates every value (SpecError naming the flag)
    chosen = {name: values.get(name, axis.default) for name, axis in AXES.items()}
    m, prof = load_model(model), load_profile(values["profile"])
    spec, gspec, dep, wl, pspec, own, prefill_gspec = design_point(**xp.tree_map(_f64, named))
    tp, batch, pp, dp = (int(chosen[k]) for k in ("tp", "batch", "pp", "dp"))
    input_len, output_len = int(chosen["input_len"]), int(chosen["output_len"])
    weight_dtype, kv_dtype = chosen["weight_dtype"], chosen["kv_dtype"]
    compute = dep.compute_dtype
    scenario, expert_parallel = chosen["scenario"], chosen["expert_parallel"] == "on"

    metrics = evaluate(spec, gspec, dep, wl, pspec, own, prefill_gspec)
    # the GPUs that run the prompts: a prefill instance (disaggregated, on the prefill GPU), else the deployment's
    disaggregated = scenario == "disaggregated"
    prefill_dep = prefill_deployment(dep) if disaggregated else dep
    prefill_on = prefill_gspec if disaggregated else gspec
    prefill_gpu = (chosen["prefill_gpu"] or gpu) if disaggregated else gpu
    plan = request_memory(spec, gspec, dep, wl, pspec)
    prefill_plan = memory_plan(spec, prefill_on, prefill_dep, pspec, wl.input_len, cached_tokens(wl))
    tl, _ = timeline(spec, gspec, dep, wl, pspec, capacity(spec, gspec, dep, wl, pspec), None, prefill_gspec)
    prefill, decode = tl.prefill, tl.decode
    running = dataclasses.replace(dep, batch=tl.in_flight / (dep.pp * dep.dp))  # one micro-batch
    # a decode step per output token: under speculation a round / E (kernels.speculative)
    first_step = decode_step_time(serving_step(spec, gspec, running, pspec), wl.input_len)
    spec_round = speculation(spec, gspec, running, pspec, wl.input_len, dep.draft_tokens, dep.draft_acceptance)
    counts = param_counts(spec)
    cached = cached_tokens(wl)
    pairs, pairs_window = new_pairs(wl.input_len, cached, spec.window, pspec.causal_attention)
    ops_prefill = op_flops(spec, new_tokens(wl), pairs, pairs_window, _f64(0.0))
    ops_decode = op_flops(spec, _f64(1.0), wl.input_len + 1.0, xp.minimum(wl.input_len, spec.window) + 1.0, _f64(1.0))
    comm_token = allreduce_time(spec, gspec, dep, pspec, _f64(1.0))
    peak = float(peak_flop_per_s(gspec, dep.compute_dtype))
    gpus = deployment_gpus(dep)
    usd_per_hour = over_pools(gspec.usd_per_hour, prefill_gspec.usd_per_hour, gpus, deployment_prefill_gpus(dep))
    out = dict(
        model=m.key,
        gpu=gpu,
        tp=tp,
        batch=batch,
        input_len=input_len,
        output_len=output_len,
        convention=convention,
        profile=prof.name,
        profile_key=values["profile"],
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype,
        compute_dtype=COMPUTE_DTYPES[int(compute)],
        scenario=scenario,
        pp=pp,
        dp=dp,
        expert_parallel=bool(expert_parallel),
        gpus=round(float(gpus)),
        prefill_instances=int(chosen["prefill_instances"]),
        prefill_tp=round(float(dep.prefill_tp)),
        prefill_gpus=round(float(prefill_dep.tp)),
        prefill_gpu=prefill_gpu,
        prefill_compute_dtype=COMPUTE_DTYPES[int(prefill_dep.compute_dtype)],
        roof_overlap=float(pspec.roof_overlap),
    )
    out.update(_scalars(metrics))
    out["feasible"] = bool(metrics.feasible)
    out["bottleneck"] = BOTTLENECKS[int(metrics.bottleneck)]
    out.update({f"params_{k}": v for k, v in _scalars(counts).items()})
    out.update(
        weight_bytes_total=float(counts.total) * load_dtypes()[weight_dtype].bytes_per_elem,
        kv_cache_bytes_total=float(
            kv_cache_bytes(spec, wl.input_len + wl.output_len - 1.0, dep.batch, dep.kv_bytes_per_elem)
        ),
        peak_flop_per_s=peak,
        hbm_bytes_per_s=float(gspec.hbm_bytes_per_s),
        prefill_peak_flop_per_s=float(peak_flop_per_s(prefill_on, prefill_dep.compute_dtype)),
        prefill_hbm_bytes_per_s=float(prefill_on.hbm_bytes_per_s),
        prefill_weight_bytes=float(prefill_plan.weight_bytes_per_gpu),
        prefill_max_batch=float(prefill_plan.max_batch),
        usd_per_gpu_hour=float(gspec.usd_per_hour),
        prefill_usd_per_gpu_hour=float(prefill_on.usd_per_hour),
        request_rate=float(wl.request_rate),
        usd_per_hour=float(usd_per_hour),
        capex_usd_per_gpu=float(gspec.capex_usd),
        **{f"owned_{k}": float(v) for k, v in owned_cost(gspec, own)._asdict().items()},
        owned_prefill_usd_per_hour=float(owned_cost(prefill_on, own).usd_per_hour),
        **{f.name: float(getattr(own, f.name)) for f in dataclasses.fields(own)},
        prefill_flops_by_op=_scalars(ops_prefill),
        decode_flops_by_op=_scalars(ops_decode),
        experts_touched_per_layer=float(experts_touched(spec, expert_group_tokens(dep, running.batch))),
        prefill_compute_s=float(prefill.compute_s),
        prefill_memory_s=float(prefill.memory_s),
        prefill_comm_s=float(prefill.comm_s),
        prefill_bottleneck=BOTTLENECKS[int(bottleneck(prefill))],
        weight_read_s=float(weight_read_s(spec, prefill_on, prefill_dep, pspec)),
        decode_step_compute_s=float(first_step.compute_s),
        decode_step_memory_s=float(first_step.memory_s),
        decode_step_comm_s=float(first_step.comm_s),
        decode_step_s=float(first_step.total_s),
        decode_bottleneck=BOTTLENECKS[int(bottleneck(decode))],
        decode_steps=float(decode_steps(wl)),
        allreduce_latency_s_per_token=float(comm_token.latency_s),
        decode_tok_s=float(tl.in_flight) / float(metrics.tpot_s),
        kv_budget_bytes_per_gpu=float(plan.kv_budget_bytes_per_gpu),
        kv_shared_bytes_per_gpu=float(plan.kv_shared_bytes_per_gpu),
        cached_prefix_fraction=float(wl.cached_prefix_fraction),
        cached_tokens=float(cached),
        draft_tokens=int(chosen["draft_tokens"]),
        draft_acceptance=float(dep.draft_acceptance),
        tokens_per_round=float(spec_round.tokens_per_round),
        draft_s=float(spec_round.draft_s),
        verify_s=float(spec_round.verify_s),
        plain_step_s=float(spec_round.plain_tpot_s),
        speculative_speedup=float(spec_round.speedup),
    )
    # the profile's stated 80% interval (NaN for a profile never fitted), beside each central
    # value, widened by what its fit left uncertain in its terms at this point
    lo, hi = prof.interval(gpu, scenario, model)
    out.update(interval_log_p10=lo, interval_log_p90=hi, interval_unseen=prof.unseen(gpu, model))
    sd = terms_log_sd(prof, metrics, (spec, gspec, dep, wl, pspec, own, prefill_gspec))
    out["interval_terms_log_sd"] = sd
    for name in INTERVAL_METRICS:
        wide = widen_interval(lo, hi, sd.get(name, math.nan))
        out[f"{name}_p10"], out[f"{name}_p90"] = (float(x) for x in interval(out[name], name, *wide))
    if not out["feasible"]:
        out["infeasible_reason"] = infeasible_reason(out, spec)
    return out


def point_terms_log_sd(values: dict[str, Any]) -> dict[str, float]:
    """``terms_log_sd`` of one design point named by its axis values (``profile`` among them;
    the rest at their defaults), in float64 numpy."""
    with np.errstate(all="ignore"):
        point = design_point(**xp.tree_map(_f64, design_inputs(values)))
        return terms_log_sd(load_profile(values["profile"]), evaluate(*point), tuple(point))


def terms_log_sd(prof: Any, metrics: Any, point: tuple[Any, ...]) -> dict[str, float]:
    """Per metric of ``INTERVAL_METRICS``, the standard deviation of its log from the covariance
    of the terms the profile's fit recorded (``sweep calibrate``'s [fit.covariance]), with the
    derivatives by central differences of the float64 model, each term moved by 1e-4 of its own
    standard deviation; {} for a profile without that record."""
    recorded = prof.covariance()
    if recorded is None:
        return {}
    names, rows = recorded
    cov = np.asarray(rows, dtype=np.float64)
    spec, gspec, dep, wl, pspec, own, prefill_gspec = point
    grads = np.zeros((len(INTERVAL_METRICS), len(names)))
    for j, name in enumerate(names):
        step = 1e-4 * math.sqrt(cov[j, j])
        if step == 0.0:
            continue
        moved = [
            evaluate(
                spec,
                gspec,
                dep,
                wl,
                dataclasses.replace(pspec, **{name: _f64(getattr(pspec, name) + sign * step)}),
                own,
                prefill_gspec,
            )
            for sign in (1.0, -1.0)
        ]
        for i, metric in enumerate(INTERVAL_METRICS):
            up, down = (float(getattr(m, metric)) for m in moved)
            grads[i, j] = (math.log(up) - math.log(down)) / (2.0 * step) if up > 0.0 and down > 0.0 else math.nan
    sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grads, cov, grads), 0.0))
    return {
        m: float(v) for m, v in zip(INTERVAL_METRICS, sd) if math.isfinite(v) and math.isfinite(getattr(metrics, m))
    }


def infeasible_reason(out: dict[str, Any], spec: Any) -> str:
    """Why a point cannot run, in words."""
    if out["input_len"] + out["output_len"] > float(spec.max_context):
        return (
            f"prompt + output = {out['input_len'] + out['output_len']:,} tokens exceed {out['model']}'s context of "
            f"{float(spec.max_context):,.0f} tokens (max_position_embeddings)"
        )
    if float(spec.n_heads) % out["tp"]:
        return f"tp {out['tp']} does not divide the {float(spec.n_heads):g} attention heads"
    if out["pp"] > float(spec.n_layers):
        return f"pp {out['pp']} exceeds the {float(spec.n_layers):g} layers: a stage would hold none"
    if math.isnan(out["peak_flop_per_s"]):
        return f"{out['gpu']} has no {out['compute_dtype']} tensor path"
    if out["scenario"] == "disaggregated":
        if math.isnan(out["prefill_peak_flop_per_s"]):
            return f"the prefill GPU {out['prefill_gpu']} has no {out['prefill_compute_dtype']} tensor path"
        if float(spec.n_heads) % out["prefill_tp"]:
            return f"prefill tp {out['prefill_tp']} does not divide the {float(spec.n_heads):g} attention heads"
        if math.isnan(out["kv_transfer_s"]):
            return (
                f"no link to move the KV cache from {out['prefill_gpu']} to {out['gpu']}: the catalogue gives no "
                "scale-out network for one of them (set kv_link_bytes_per_s)"
            )
        if out["prefill_max_batch"] < 1:
            return (
                f"a prefill instance ({out['prefill_tp']} x {out['prefill_gpu']}, weights "
                f"{out['prefill_weight_bytes'] / 1e9:.1f} GB per GPU) cannot hold one {out['input_len']}-token prompt"
            )
    if out["kv_budget_bytes_per_gpu"] <= 0:
        return (
            f"the weights alone ({out['weight_bytes'] / 1e9:.1f} GB per GPU) exceed the usable "
            f"memory of {out['gpu']}; try a larger tp"
        )
    if out["max_batch"] < 1:
        return (
            f"beside the weights ({out['weight_bytes'] / 1e9:.1f} GB per GPU) not even one sequence of "
            f"{out['input_len'] + out['output_len'] - 1} tokens fits"
        )
    if out["scenario"] == "concurrency" and out["max_batch"] < out["batch"]:
        return f"{out['batch']} requests in flight do not fit: at most {out['max_batch']:g} do"
    return "a time is not finite (e.g. no interconnect for tp > 1)"
