"""The ``sweep optimize`` and ``sweep compare`` subcommands: the SLO optimum of a sweep, and one
table per procurement decision (``sweep.engine.optimize``, ``sweep.query.compare``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from typing import Any

from grids.errors import SpecError
from kernels.specs import Ownership
from sweep.cli.types import positive

SLO_HELP = (
    "service-level objective METRIC<=NUMBER or METRIC>=NUMBER (repeatable), e.g. 'user_tok_s>=30' "
    "'ttft_s<=1'; metrics: ttft_s, tpot_s, e2e_s, user_tok_s, ... (SI units)"
)


def _slos(items: list[str]) -> list[Any]:
    from grids.slo import parse_slo

    if not items:
        raise SpecError("argument --slo: give at least one objective, e.g. --slo 'user_tok_s>=30'")
    return [parse_slo(item) for item in items]


def _cmd_optimize(args: argparse.Namespace) -> int:
    from grids.sweeps import load_sweep
    from sweep.engine.optimize import optimize
    from sweep.store.write import write_dataset

    spec = load_sweep(args.spec)
    slos = _slos(args.slo)
    if args.output:
        from sweep.cli.outputs import output_store

        output_store(args.output, "--output")
    ds = optimize(spec, slos, args.minimize, sensitivity=args.sensitivity)
    objective = ds[args.minimize]
    met = int(objective.notnull().sum())
    knob = "goodput_rps" if "goodput_rps" in ds else "optimal_batch"
    print(
        f"{objective.size:,} configurations of '{spec.name}' "
        f"({'request rate' if knob == 'goodput_rps' else 'batch'} solved, {ds.attrs['slo']}): "
        f"{met:,} meet the objectives"
    )
    latencies = ["ttft_p90_s", "tpot_p90_s", "utilization"] if knob == "goodput_rps" else ["ttft_s", "tpot_s"]
    table = ds[[args.minimize, knob, *latencies, "user_tok_s", "output_tok_s_per_gpu"]]
    frame = table.to_dataframe().dropna(subset=[args.minimize]).reset_index()
    frame = frame.sort_values(args.minimize, ascending=ds.attrs["objective_sense"] == "min")
    constant = [c for c in frame.columns if c in ds.dims and ds.sizes[c] == 1]
    if len(frame):
        print(frame.drop(columns=constant).head(args.limit).to_string(index=False))
    if args.output:
        print(f"optimum -> {write_dataset(ds, args.output, overwrite=args.overwrite)}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from sweep.query.compare import COLUMNS, compare

    values = {}
    for name in ("usd_per_gpu_hour", *OWNERSHIP_FLAGS):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.demand_rps is not None and args.budget_usd_per_hour is not None:
        raise SpecError("--demand-rps and --budget-usd-per-hour answer different questions; give one")
    for flag, value in (("--demand-rps", args.demand_rps), ("--budget-usd-per-hour", args.budget_usd_per_hour)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise SpecError(f"argument {flag}: expected a positive number, got {value!r}")
    slos = _slos(args.slo)
    _check_names(args)  # before the note: a refusal stays one line on stderr
    print(
        "sweep compare: solving every deployment's batch (about 30-60 s on 2 cores, most of it tracing the program)",
        file=sys.stderr,
    )
    result = compare(
        args.model,
        args.input,
        args.output,
        slos,
        gpus=_names(args.gpus),
        own=args.own,
        profile=args.profile,
        weight_dtypes=_names(args.weight_dtypes),
        kv_dtypes=_names(args.kv_dtypes),
        demand_rps=args.demand_rps,
        budget_usd_per_hour=args.budget_usd_per_hour,
        values=values,
    )
    if args.json:
        keys = [*COLUMNS, "rent_break_even_usd_per_gpu_hour"] + [
            k
            for k in ("replicas", "gpus_total", "usd_per_month", "output_tok_s_total")
            if result.rows and k in result.rows[0]
        ]
        keys += [k for k in (result.rows[0] if result.rows else {}) if k.endswith(("_p10", "_p90"))]
        print(json.dumps([{k: _safe(row.get(k)) for k in keys} for row in result.rows], indent=2, allow_nan=False))
        return 0
    print(render(result, args))
    return 0


def _safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _check_names(args: argparse.Namespace) -> None:
    """The catalogue keys and format names of ``sweep compare``, checked by their axes."""
    from grids.axes import AXES, check_value

    check_value(AXES["model"], "--model", args.model)
    check_value(AXES["profile"], "--profile", args.profile)
    for axis, flag, names in (
        ("gpu", "--gpus", args.gpus),
        ("weight_dtype", "--weight-dtypes", args.weight_dtypes),
        ("kv_dtype", "--kv-dtypes", args.kv_dtypes),
    ):
        for name in _names(names) or []:
            check_value(AXES[axis], flag, name)


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _money(value: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(value) else f"${value:,.{digits}f}"


def _cost(row: dict[str, Any], name: str) -> str:
    """'$1.378 (1.30-1.46)': the central value and the profile's stated 80% interval."""
    value, lo, hi = row[name], row.get(f"{name}_p10", math.nan), row.get(f"{name}_p90", math.nan)
    if not math.isfinite(value):
        return "n/a"
    band = f" ({lo:.2f}-{hi:.2f})" if math.isfinite(lo) else " (no interval)"
    return f"${value:,.3f}{band}"


def render(result: Any, args: argparse.Namespace) -> str:
    """The comparison as a text table, best first, with what it assumed."""
    mode = "owned" if args.own else "rented"
    ranked = "monthly cost" if args.demand_rps else "output tokens/s" if args.budget_usd_per_hour else f"$/Mtok {mode}"
    lines = [
        f"{args.model}, {args.input}-token prompts, {args.output} output tokens, "
        f"{' and '.join(str(s) for s in result.slos)}; profile {result.profile} (continuous batching); "
        f"ranked by {ranked}",
        "",
    ]
    header = (
        f"{'gpu':<15} {'GPUs':>4} {'tp':>2} {'pp':>2} {'weights':>7} {'kv':>4} {'batch':>5} "
        f"{'$/Mtok rent (80%)':>21} {'$/Mtok own (80%)':>21} {'tok/s/GPU':>9} {'tok/s/user':>10} "
        f"{'TTFT s':>6} {'J/tok':>6} {'break-even $/GPU-h':>18}"
    )
    extra = ""
    if args.own:
        extra += f" {'owning pays above $/GPU-h':>25}"
    if args.demand_rps is not None:
        extra += f" {'replicas':>8} {'GPUs (nodes)':>12} {'$/month':>12}"
    elif args.budget_usd_per_hour is not None:
        extra += f" {'replicas':>8} {'GPUs':>5} {'output tok/s':>12}"
    lines.append(header + extra)
    for r in result.rows:
        line = (
            f"{r['gpu']:<15} {r['n_gpus']:>4} {r['tp']:>2} {r['pp']:>2} {r['weight_dtype']:>7} {r['kv_dtype']:>4} "
            f"{r['batch']:>5} {_cost(r, 'usd_per_mtok_output'):>21} {_cost(r, 'usd_per_mtok_output_owned'):>21} "
            f"{r['output_tok_s_per_gpu']:>9,.0f} "
            f"{r['user_tok_s']:>10.1f} {r['ttft_s']:>6.2f} {r['joules_per_output_token']:>6.2f} "
            f"{_money(r['break_even_usd_per_gpu_hour']):>18}"
        )
        if args.own:
            line += f" {_money(r['rent_break_even_usd_per_gpu_hour']):>25}"
        if args.demand_rps is not None:
            line += f" {r['replicas']:>8,.0f} {r['gpus_total']:>12,.0f} {_money(r['usd_per_month'], 0):>12}"
        elif args.budget_usd_per_hour is not None:
            line += f" {r['replicas']:>8,.0f} {r['gpus_total']:>5,.0f} {r['output_tok_s_total']:>12,.0f}"
        lines.append(line)
    if not result.rows:
        lines.append("no GPU meets the objectives")
    lines += ["", *(f"note: {n}" for n in result.notes)]
    lines.append(
        "break-even: the rental price per GPU-hour at which a row would cost what the first row does; "
        "(80%): the profile's stated interval on that GPU (sweep calibrate); own: grids/ownership.toml"
    )
    return "\n".join(lines)


OWNERSHIP_FLAGS = ("capex_usd_per_gpu", *(f.name for f in dataclasses.fields(Ownership)))
"""The ownership axes compare takes as flags: the purchase price, and every term of grids/ownership.toml."""


def add_commands(sub: Any) -> None:
    from grids.axes import AXES
    from grids.slo import OBJECTIVES

    p = sub.add_parser(
        "optimize",
        help="the cheapest batch under SLOs for every other coordinate of a sweep, solved exactly",
        description="For every configuration of SPEC (its batch axis is ignored), the batch that meets "
        "every --slo at the best --minimize objective, found by bisection inside the compiled "
        "program; prints the best configurations and writes the Dataset (no batch dim; "
        "variables optimal_batch and binding) with -o.",
    )
    p.add_argument("spec", help="sweep spec: path to a TOML file or a name in grids/sweeps")
    p.add_argument("--slo", action="append", default=[], metavar="COND", help=SLO_HELP)
    p.add_argument(
        "--minimize",
        default="usd_per_mtok_output",
        choices=list(OBJECTIVES),
        help="objective (output_tok_s and output_tok_s_per_gpu are maximised); default usd_per_mtok_output",
    )
    p.add_argument(
        "--sensitivity",
        action="store_true",
        help="also elasticity_<metric> over a gpu_number dim: d ln metric / d ln GPU number at the optimum",
    )
    p.add_argument("-o", "--output", default=None, help="write the optimum as a zarr store here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at -o")
    p.add_argument("--limit", type=positive, default=20, help="rows to print (default 20)")
    p.set_defaults(func=_cmd_optimize)

    p = sub.add_parser(
        "compare",
        help="each GPU type's cheapest deployment of a model under SLOs: rent, own, demand, budget",
        description="For each GPU type, the cheapest deployment of --model meeting every --slo over tensor "
        "and pipeline parallelism, number formats and expert parallelism, with the batch solved "
        "exactly (continuous batching under --profile): GPUs, batch, $/Mtok rented and owned with "
        "the profile's 80% interval, output tokens/s per GPU, joules per token, and the rental "
        "price at which it would match the best. --demand-rps: replicas, whole nodes and $/month "
        "to serve it; --budget-usd-per-hour: the most output tokens/s for that money.",
    )
    p.add_argument("--model", required=True, help="catalogue key or path to a config.json")
    p.add_argument("--input", type=positive, required=True, help="prompt tokens per request")
    p.add_argument("--output", type=positive, required=True, help="output tokens per request")
    p.add_argument("--slo", action="append", default=[], metavar="COND", help=SLO_HELP)
    p.add_argument("--gpus", default=None, help="comma-separated GPU keys (default: every catalogue GPU)")
    p.add_argument("--own", action="store_true", help="rank by the owned cost (grids/ownership.toml) instead of rent")
    p.add_argument("--profile", default="vllm", help="engine profile (default vllm, calibrated)")
    p.add_argument("--weight-dtypes", default="bf16,fp8", help="weight formats to consider (default bf16,fp8)")
    p.add_argument("--kv-dtypes", default="bf16,fp8", help="KV-cache formats to consider (default bf16,fp8)")
    p.add_argument("--demand-rps", type=float, default=None, help="requests per second to serve")
    p.add_argument("--budget-usd-per-hour", type=float, default=None, help="money per hour to spend")
    for name in ("usd_per_gpu_hour", *OWNERSHIP_FLAGS):
        axis = AXES[name]
        default = axis.default_text or axis.default
        p.add_argument(
            axis.cli_flag,
            dest=name,
            default=None,
            type=lambda text, axis=axis: axis.cast(text, axis.cli_flag),
            help=f"{axis.description} [{axis.units}] (default {default})".replace("%", "%%"),
        )
    p.add_argument("--json", action="store_true", help="print one JSON list of rows, best first (SI units)")
    p.set_defaults(func=_cmd_compare)
