"""Human-readable rendering of ``sweep explain``: the article's steps, in display units."""

from __future__ import annotations

import math
from typing import Any

from sweep.query.units import gigabytes, seconds, si


def _overlap_lines(d: dict[str, Any]) -> list[str]:
    """How the profile adds a pass's compute and memory time, where it is not the roofline's max."""
    if d["roof_overlap"] >= 1.0:
        return []
    return [
        f"   (profile {d['profile']}: a pass's kernels each wait on one resource, so it takes the longer of "
        f"compute and memory plus {1.0 - d['roof_overlap']:.0%} of the shorter; roof_overlap {d['roof_overlap']:g})"
    ]


def render(d: dict[str, Any]) -> str:
    """The breakdown of ``sweep.query.explain.explain`` as numbered steps, like the article."""
    lines = [
        f"{d['model']} on {_gpus(d)}, batch {d['batch']}, {d['input_len']} prompt + "
        f"{d['output_len']} output tokens, scenario {d['scenario']}  "
        f"[convention {d['convention']}, profile {d['profile']}, "
        f"weights {d['weight_dtype']}, KV {d['kv_dtype']}, {d['compute_dtype']} matmuls]",
        "",
        "1. Parameters",
        f"   embedding {si(d['params_embedding'], '')}, attention {si(d['params_attention'], '')}, "
        f"MLP {si(d['params_mlp'], '')}, norms {si(d['params_norms'], '')}, LM head {si(d['params_lm_head'], '')}",
        f"   total {d['params_total']:,.0f} -> weights {gigabytes(d['weight_bytes_total'])} "
        f"({gigabytes(d['weight_bytes'])} per GPU)",
    ]
    if d["params_experts"] > 0:
        lines.append(
            f"   routed experts {si(d['params_experts'], '')}, router {si(d['params_router'], '')}; "
            f"active per token {d['params_active']:,.0f}; a decode step of the batch touches "
            f"{d['experts_touched_per_layer']:.2f} experts per MoE layer (uniform routing)"
        )
    lines += ["", f"2. Prefill FLOPs of one {d['input_len']}-token prompt, summed over all layers"]
    if d["cached_tokens"] > 0:
        lines.append(
            f"   {d['cached_tokens']:,.0f} tokens ({d['cached_prefix_fraction']:.0%}) are in the prefix cache: only "
            f"the {d['input_len'] - d['cached_tokens']:,.0f} new tokens are computed, attending to all "
            f"{d['input_len']}; the prefix's KV cache is held once ({gigabytes(d['kv_shared_bytes_per_gpu'])} per GPU)"
        )
    for op, flops in d["prefill_flops_by_op"].items():
        lines.append(f"   {op:<8} {si(flops, 'FLOP'):>16}")
    lines += [
        f"   total (+ LM head on the last token) {si(d['prefill_flops'], 'FLOP')} per prompt",
        "",
        f"3. Prefill time on {d['prefill_gpus']} x {_prefill_gpu_name(d)}{si(d['prefill_peak_flop_per_s'], 'FLOP/s')}, "
        f"{si(d['prefill_hbm_bytes_per_s'], 'B/s')}",
        f"   compute {seconds(d['prefill_compute_s'])} vs memory {seconds(d['prefill_memory_s'])} "
        f"(weights {seconds(d['weight_read_s'])}) + communication {seconds(d['prefill_comm_s'])}"
        f" -> {d['prefill_bottleneck']}-bound; TTFT {seconds(d['ttft_s'])}",
        *_overlap_lines(d),
        "",
        f"4. Decode: the token after the prompt costs {si(d['decode_flops'], 'FLOP')} per sequence",
        f"   step compute {seconds(d['decode_step_compute_s'])} vs memory {seconds(d['decode_step_memory_s'])}"
        f" -> {d['decode_bottleneck']}-bound; step {seconds(d['decode_step_s'])}, "
        f"mean over {d['decode_steps']:g} steps (TPOT) {seconds(d['tpot_s'])}",
        *_speculation_lines(d),
        "",
        f"5. KV cache: {gigabytes(d['kv_cache_bytes_total'])} for {d['batch']} x "
        f"{d['input_len'] + d['output_len'] - 1} tokens ({gigabytes(d['kv_cache_bytes'])} per GPU); "
        f"at most {d['max_batch']:g} such sequences fit{' per micro-batch' if d['pp'] > 1 else ''}; "
        f"{d['batch_in_flight']:g} run together{' on average' if _random_arrivals(d) else ''}",
        "",
        f"6. Tensor parallelism over {d['tp']} GPUs: all-reduce per token {seconds(d['allreduce_s_per_token'])}"
        f" (bandwidth) + {seconds(d['allreduce_latency_s_per_token'])} (latency)",
        "",
        "7. Throughput and cost",
        f"   end to end {seconds(d['e2e_s'])}; {d['output_tok_s']:,.1f} output tokens/s "
        f"({d['output_tok_s_per_gpu']:,.1f} per GPU, {d['user_tok_s']:,.1f} per user; "
        f"{d['decode_tok_s']:,.1f} in steady decode)",
        f"   at ${d['usd_per_hour']:.2f}/h{_prices(d)}: ${d['usd_per_mtok_output']:,.2f} per million output tokens, "
        f"${d['usd_per_mtok_input']:,.4f} per million input tokens (prefill time charged to input)",
        _owned_line(d),
        *_interval_lines(d),
        *_load_lines(d),
        "",
        f"Bottleneck: {d['bottleneck']}",
        *_sensitivity_lines(d),
    ]
    if not d["feasible"]:
        lines.append(
            f"NOT FEASIBLE: {d['infeasible_reason']}. Times above are what it would take if it fit;"
            " a sweep stores NaN here."
        )
    return "\n".join(lines)


def _speculation_lines(d: dict[str, Any]) -> list[str]:
    """Speculative decoding: the round after the prompt (kernels.speculative)."""
    if d["draft_tokens"] == 0:
        return []
    return [
        f"   speculative: an MTP head drafts {d['draft_tokens']} tokens per round "
        f"({seconds(d['draft_s'])}), the target verifies {d['draft_tokens'] + 1} per sequence in one pass "
        f"({seconds(d['verify_s'])}); at acceptance {d['draft_acceptance']:g} a round emits "
        f"{d['tokens_per_round']:.3f} tokens per sequence: the step above is a round's share per token, "
        f"{d['speculative_speedup']:.2f}x the plain step of {seconds(d['plain_step_s'])}"
    ]


def _load_lines(d: dict[str, Any]) -> list[str]:
    """Percentiles over requests arriving at random (the poisson and disaggregated scenarios)."""
    if not _random_arrivals(d):
        return []
    q = {name: " / ".join(seconds(d[f"{name}_p{p}_s"]) for p in (50, 90, 99)) for name in ("ttft", "tpot", "e2e")}
    pools = []
    if d["scenario"] == "disaggregated":
        pools = [
            f"   disaggregated: {d['prefill_instances']} prefill instance(s) of {d['prefill_tp']} x "
            f"{d['prefill_gpu']} ({d['prefill_compute_dtype']} matmuls), prompts one at a time, each KV cache "
            f"moved to the decode ranks on {d['gpu']} in {seconds(d['kv_transfer_s'])} (part of TTFT"
            f"{'; two GPU types: over the network' if _two_types(d) else ''})"
        ]
    return [
        *pools,
        f"   at {d['request_rate']:g} requests/s arriving at random (utilisation {d['utilization']:.2f}, "
        f"{'sustainable' if d['utilization'] < 1 else 'NOT sustainable'}), p50 / p90 / p99: "
        f"TTFT {q['ttft']}; TPOT {q['tpot']}; end to end {q['e2e']}",
    ]


def _interval_lines(d: dict[str, Any]) -> list[str]:
    """The profile's stated 80% interval around the headline numbers, when it states one."""
    lo = d.get("interval_log_p10")
    if lo is None or lo != lo:  # NaN: a profile never fitted states no interval
        return [f"   (profile {d['profile']} states no error interval: it was never fitted to measurements)"]
    return [
        f"   80% interval (profile {d['profile']}, {_basis(d)}): TTFT {seconds(d['ttft_s_p10'])} .. "
        f"{seconds(d['ttft_s_p90'])}; TPOT {seconds(d['tpot_s_p10'])} .. {seconds(d['tpot_s_p90'])}; "
        f"{d['output_tok_s_p10']:,.1f} .. {d['output_tok_s_p90']:,.1f} output tokens/s; "
        f"${d['usd_per_mtok_output_p10']:,.2f} .. ${d['usd_per_mtok_output_p90']:,.2f} per million output tokens"
    ] + _terms_line(d)


def _basis(d: dict[str, Any]) -> str:
    """Whether the profile's calibration measured the point's GPU and model (if not, its interval
    is the wider one of held-out fits, where the calibration ran them)."""
    unseen = d.get("interval_unseen") or []
    if not unseen:
        return "from its calibration, which measured this GPU and model"
    words = {"gpu": "GPU", "model": "model"}
    return f"from its calibration, for a {' and a '.join(words.get(u, u) for u in unseen)} it did not measure"


def _terms_line(d: dict[str, Any]) -> list[str]:
    """How much of that interval the fitted terms' own uncertainty adds at this point."""
    sd = d.get("interval_terms_log_sd") or {}
    if "output_tok_s" not in sd:
        return []
    return [
        f"   (the fitted terms' uncertainty at this point: throughput {100 * sd['output_tok_s']:.1f}% sd, "
        f"TTFT {100 * sd.get('ttft_s', math.nan):.1f}% sd, added in variance to the errors of the fit)"
    ]


def _sensitivity_lines(d: dict) -> list[str]:
    """The elasticities as a tornado in text: largest effect on rented $/Mtok first."""
    if "elasticity" not in d:
        return []
    e = d["elasticity"]
    rent, own, thru = e["usd_per_mtok_output"], e["usd_per_mtok_output_owned"], e["output_tok_s"]
    lines = ["", "Which number matters (% change per 1% more of the GPU number; kernels.sensitivity):"]
    lines.append(f"   {'GPU number':<18} {'$/Mtok rented':>13} {'$/Mtok owned':>13} {'output tok/s':>13}")
    order = sorted(rent, key=lambda k: -max(abs(_finite(rent[k])), abs(_finite(own[k]))))
    for k in order:
        lines.append(f"   {k:<18} {rent[k] + 0.0:>+13.3f} {own[k] + 0.0:>+13.3f} {thru[k] + 0.0:>+13.3f}")
    return lines


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _owned_line(d: dict) -> str:
    """Owned: the cost per hour by what it pays for, per token, energy, and the break-even rent."""
    if math.isnan(d["usd_per_hour_owned"]):
        return f"   owned: no purchase price of {d['gpu']} in the catalogue (give --capex-usd-per-gpu)"
    prefill = (
        f"; per {d['prefill_gpu']} of the prefill pool ${d['owned_prefill_usd_per_hour']:.3f}" if _two_types(d) else ""
    )
    return (
        f"   owned at ${d['usd_per_hour_owned']:.2f}/h (per {d['gpu'] if prefill else 'GPU'}: capital "
        f"${d['owned_capital_usd_per_hour']:.3f} + "
        f"energy ${d['owned_energy_usd_per_hour']:.3f} + hosting ${d['owned_hosting_usd_per_hour']:.3f}{prefill}): "
        f"${d['usd_per_mtok_output_owned']:,.2f} per million output tokens, "
        f"{d['joules_per_output_token']:,.3g} J per output token; owning beats renting above "
        f"${d['rent_break_even_usd_per_gpu_hour']:.2f} per GPU-hour"
    )


def _random_arrivals(d: dict) -> bool:
    from kernels.scenarios import REGISTRY, SCENARIOS

    return REGISTRY[SCENARIOS.index(d["scenario"])].random_arrivals


def _two_types(d: dict) -> bool:
    """A disaggregated deployment whose prefill instances run on another GPU type than its decode ranks."""
    return d["scenario"] == "disaggregated" and d["prefill_gpu"] != d["gpu"]


def _prefill_gpu_name(d: dict) -> str:
    """'h100-sxm: ' before the prefill GPU's numbers where the two pools differ, else nothing."""
    return f"{d['prefill_gpu']}: " if _two_types(d) else ""


def _prices(d: dict) -> str:
    """' (8 x h100-sxm at $2.99 + 16 x h200 at $3.59)' where the pools' GPUs differ, else nothing."""
    if not _two_types(d):
        return ""
    prefill = d["prefill_instances"] * d["prefill_tp"]
    return (
        f" ({prefill} x {d['prefill_gpu']} at ${d['prefill_usd_per_gpu_hour']:.2f} + "
        f"{d['gpus'] - prefill} x {d['gpu']} at ${d['usd_per_gpu_hour']:.2f})"
    )


def _gpus(d: dict) -> str:
    """'8 x h100-sxm', or with pipeline/data/expert parallelism '32 x h200 (tp 8 x pp 1 x dp 4, expert-parallel)',
    or disaggregated '24 x h100-sxm (prefill 2 x tp 4 + decode tp 8 x pp 1 x dp 2)', with two GPU types
    '24 GPUs (prefill 2 x tp 4 on h100-sxm + decode tp 8 x pp 1 x dp 2 on h200)'."""
    ep = ", expert-parallel" if d["expert_parallel"] else ""
    if _two_types(d):
        return (
            f"{d['gpus']} GPUs (prefill {d['prefill_instances']} x tp {d['prefill_tp']} on {d['prefill_gpu']} + "
            f"decode tp {d['tp']} x pp {d['pp']} x dp {d['dp']}{ep} on {d['gpu']})"
        )
    if d["scenario"] == "disaggregated":
        return (
            f"{d['gpus']} x {d['gpu']} (prefill {d['prefill_instances']} x tp {d['prefill_tp']} + "
            f"decode tp {d['tp']} x pp {d['pp']} x dp {d['dp']}{ep})"
        )
    if d["pp"] == 1 and d["dp"] == 1 and not d["expert_parallel"]:
        return f"{d['tp']} x {d['gpu']}"
    return f"{d['gpus']} x {d['gpu']} (tp {d['tp']} x pp {d['pp']} x dp {d['dp']}{ep})"
