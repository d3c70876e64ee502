"""``sweep calibrate`` and ``sweep validate``: fit profiles to measurements; state the error."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from sweep.cli.outputs import output_file
from sweep.cli.types import positive

MEASUREMENTS_HELP = (
    "measurement files: the JSON of shared/benchmarks (give --model, --gpu, --tp: once for all "
    "JSON files or once per JSON file, in order) or the canonical CSV "
    "(model,gpu,tp,batch,input_len,output_len,scenario,metric,value[,precision,weight_dtype,kv_dtype,"
    "compute_dtype,pp,dp,expert_parallel,engine,source])"
)


def _add_point_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help=MEASUREMENTS_HELP)
    p.add_argument("--model", action="append", default=[], help="model key of the JSON file(s)")
    p.add_argument("--gpu", action="append", default=[], help="GPU key of the JSON file(s)")
    p.add_argument(
        "--tp", action="append", type=positive, default=[], help="tensor-parallel degree of the JSON file(s)"
    )


def _hold_out_fields(text: str | None) -> tuple[str, ...]:
    """The fields of ``--hold-out``, validated like ``--by`` (the profile states the intervals of
    gpu and model for GPUs and models its fit did not measure, ``grids.profiles.HOLDOUT_FIELDS``)."""
    if text is None:
        return ()
    from grids.errors import SpecError
    from sweep.calibration.validate import parse_by

    fields = parse_by(text)
    if not fields or len(set(fields)) != len(fields):
        raise SpecError(
            f"argument --hold-out: expected distinct fields, comma-separated (e.g. gpu,model); got {text!r}"
        )
    return fields


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from sweep.calibration.fit import FREE_TERMS
    from sweep.calibration.validate import calibrate, pair_files, parse_grid

    hold_out = _hold_out_fields(args.hold_out)  # checked before any fit
    output_file(args.output, "--output")
    rows = pair_files(args.files, args.model, args.gpu, args.tp)
    free = tuple(t for t in args.free.split(",") if t) if args.free else FREE_TERMS
    grid = parse_grid(args.grid, free)  # checked before any fit
    out = Path(args.output)
    name = args.name or out.stem
    command = "sweep " + " ".join(shlex.quote(a) for a in sys.argv[1:])  # recorded in the profile
    description = args.description or f"fitted to {', '.join(args.files)}"
    result = calibrate(rows, args.base, free, out, name, description, command, hold_out, args.weights, grid)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"wrote {result['profile']}: MAPE {100 * result['mape']:.2f}%, max {100 * result['max_abs_pct_error']:.2f}%")
    for term, value in result["terms"].items():
        flag = "   <- at a bound of its search range" if term in result["at_bound"] else ""
        print(f"  {term:<22} {value:.6g} [{result['units'][term]}]{flag}")
    for f, e in result["files"].items():
        print(f"  {f}: MAPE {100 * e['mape']:.2f}%, max {100 * e['max_abs_pct_error']:.2f}% ({e['points']} points)")
    for g in result["hold_out"]:
        print(
            f"  held out {g['held_out']}={g[g['held_out']]} (fitted on {g['train_points']} others): MAPE "
            f"{100 * g['mape']:.1f}%, median {100 * g['median_abs_error']:.1f}%, bias {100 * g['bias']:+.1f}%, "
            f"80% interval covers {100 * g['coverage_80']:.0f}% of its {g['points']} points "
            f"({100 * g['coverage_80_residuals_only']:.0f}% without the terms' uncertainty, "
            f"median sd {100 * g['param_log_sd_median']:.1f}% in the log)"
        )
    iv = result["interval"]
    lo, hi = iv.get("holdout_log_error_p10", iv["log_error_p10"]), iv.get("holdout_log_error_p90", iv["log_error_p90"])
    print(f"  stated 80% interval: measured / predicted in [{math.exp(lo):.3f}, {math.exp(hi):.3f}]")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sweep.calibration.validate import pair_files, parse_by, report

    by = parse_by(args.by)
    if args.plot:
        output_file(args.plot, "--plot")
    rows = pair_files(args.files, args.model, args.gpu, args.tp)
    rep = report(rows, args.profile, by)
    if args.plot:
        from sweep.viz.validation import write_plot

        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        write_plot(rep, Path(args.plot))
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    if by:
        _print_groups(rep)
        return 0
    print(
        f"{'model':<14} {'gpu':<9} {'tp':>2} {'batch':>6} {'in':>6} {'out':>6} {'scenario':<10} {'metric':<12} "
        f"{'measured':>10} {'predicted':>10} {'error':>7} {'datasheet':>10}"
    )
    for p in rep["points"]:
        pred = "n/a" if p["predicted"] is None else f"{p['predicted']:.4g}"
        err = "" if p["predicted"] is None else f"{100 * (p['predicted'] / p['measured'] - 1):+.1f}%"
        sheet = "n/a" if p["datasheet"] is None else f"{p['datasheet']:.4g}"
        batch = "-" if p["batch"] is None else f"{p['batch']:g}"
        print(
            f"{p['model']:<14} {p['gpu']:<9} {p['tp']:>2} {batch:>6} {p['input_len']:>6g} {p['output_len']:>6g} "
            f"{p['scenario']:<10} {p['metric']:<12} {p['measured']:>10.4g} {pred:>10} {err:>7} {sheet:>10}"
        )
    print()
    for f, e in rep["files"].items():
        d = rep["datasheet"]["files"][f]
        print(
            f"{f}: MAPE {100 * e['mape']:.2f}%, max {100 * e['max_abs_pct_error']:.2f}% "
            f"(datasheet roofline: MAPE {100 * d['mape']:.1f}%, max {100 * d['max_abs_pct_error']:.1f}%)"
        )
    print(
        f"overall, profile {rep['profile']}: MAPE {100 * rep['mape']:.2f}%, max "
        f"{100 * rep['max_abs_pct_error']:.2f}% over {len(rep['points'])} points"
    )
    return 0


def _print_groups(rep: dict) -> None:
    """The per-group table of ``sweep validate --by``, then the overall error."""
    by = rep["by"]
    covered = any("coverage_80" in g for g in rep["groups"])
    widths = {k: max(len(k), *(len(str(g[k])) for g in rep["groups"])) for k in by}
    print(
        "  ".join(f"{k:<{widths[k]}}" for k in by)
        + f"  {'points':>6}  {'MAPE':>7}  {'median':>7}  {'bias':>7}"
        + (f"  {'in 80%':>7}" if covered else "")
    )
    for g in rep["groups"]:
        pct = lambda x: "n/a" if x != x else f"{100 * x:.1f}%"  # noqa: E731  (NaN: nothing predicted)
        bias = "n/a" if g["bias"] != g["bias"] else f"{100 * g['bias']:+.1f}%"
        print(
            "  ".join(f"{str(g[k]):<{widths[k]}}" for k in by)
            + f"  {g['points']:>6}  {pct(g['mape']):>7}  {pct(g['median_abs_error']):>7}  {bias:>7}"
            + (f"  {pct(g['coverage_80']):>7}" if covered else "")
        )
    print(
        f"overall, profile {rep['profile']}: MAPE {100 * rep['mape']:.2f}%, max "
        f"{100 * rep['max_abs_pct_error']:.2f}% over {len(rep['points'])} points "
        "(median: median absolute error; bias: median of predicted / measured - 1"
        + ("; in 80%: share inside the profile's stated 80% interval)" if covered else ")")
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit an engine profile to measurements (gradients through the JAX model)",
        description="Fit the free terms of a base profile to measured throughput/latency by "
        "bounded L-BFGS-B on the mean squared log error, with gradients from jax.grad "
        "of the cost model. Writes a profile TOML recording the data, the fitted "
        "values with units, and MAPE and max error per file.\n\nThe shipped vllm-h100 "
        "profile was made with:\n  sweep calibrate ../shared/benchmarks/llama_31_8b_2000in_300out.json "
        "../shared/benchmarks/llama_33_70b_2000in_300out.json --model llama-3.1-8b "
        "--model llama-3.3-70b --gpu h100-sxm --tp 1 --tp 4 --base vllm-base "
        "--free matmul_eff,kv_bw_eff,step_overhead_s,allreduce_latency_s "
        "-o grids/profiles/vllm-h100.toml\n\nThe vllm, trtllm and lmdeploy profiles record the command "
        "that made them in their [fit] table; --hold-out gpu adds the interval a GPU the fit did not "
        "see should expect.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_point_flags(p)
    p.add_argument("-o", "--output", required=True, help="profile TOML to write, e.g. grids/profiles/NAME.toml")
    p.add_argument("--base", default="vllm-base", help="profile whose other terms are kept (default vllm-base)")
    p.add_argument(
        "--free", default=None, help="comma-separated terms to fit (default: every efficiency and overhead term)"
    )
    p.add_argument(
        "--hold-out",
        default=None,
        metavar="FIELD",
        help="also leave each value of FIELD out in turn (gpu, model, file, ...; several comma-separated): fit "
        "on the rest, predict it, and print its error (one more fit per value); gpu and model set the wider "
        "intervals stated for a GPU or model the fit did not measure",
    )
    p.add_argument(
        "--weights",
        choices=("points", "files"),
        default="points",
        help="weigh every measurement alike (points, default) or every file alike (files: a point "
        "weighs 1 / its file's points, so a small file counts as much as a large one)",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="TERM=V1,V2,...",
        help="a term the gradient cannot fit (e.g. prefill_chunk_tokens=512,1024,inf): fit --free "
        "at each value and keep the least loss (repeatable: every combination)",
    )
    p.add_argument("--name", default=None, help="profile name (default: the file's stem)")
    p.add_argument("--description", default=None, help="one line saying what the profile is for")
    p.add_argument("--json", action="store_true", help="print the fitted terms and errors as JSON")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser(
        "validate",
        help="prediction error against measurements, per point, file and overall",
        description="Compare predictions with measurements. Without --profile: the pure datasheet "
        "roofline. The datasheet roofline's error is always reported beside.",
    )
    _add_point_flags(p)
    p.add_argument("--profile", default=None, help="profile name in grids/profiles or path (default: roofline)")
    p.add_argument("--json", action="store_true", help="print one JSON object (errors as fractions)")
    p.add_argument(
        "--by",
        default=None,
        metavar="FIELDS",
        help="errors per group of these comma-separated fields (e.g. gpu,model,engine): points, MAPE, "
        "median absolute error and signed bias",
    )
    p.add_argument(
        "--plot",
        default=None,
        metavar="FILE.html",
        help="write measured vs predicted against batch (calibrated and datasheet) as HTML",
    )
    p.set_defaults(func=_cmd_validate)
