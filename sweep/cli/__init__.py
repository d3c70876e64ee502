"""The ``sweep`` console script: a thin layer over the subpackages (the calls of ``sweep.api``).

The error boundary, for every command: an expected failure prints ONE line on stderr, ``sweep
COMMAND: error: WHAT`` naming the file, entry or argument and what is expected, and exits with
- status 2 for bad input: an unknown key, a malformed or out-of-range file entry (``grids.files``
  reads every input: regular UTF-8 files of at most 64 MiB, nested at most 32 levels), a bad
  argument (argparse's own errors too), an output path that cannot be one, a store another writer
  holds (``sweep run``) or whose chunks cannot be decoded (``sweep show``, ``sweep query``);
- status 1 for an environment failure: an OSError such as a directory that refuses a new file,
  a full disk or a permission (``sweep.cli.outputs`` checks output paths before any computation);
  for ``sweep run`` the line says what the run left in the store (``InterruptedRunError``: how many
  chunks are written and kept) and that the same command resumes.
Anything else is a bug: its traceback, then one line asking for a report, status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from grids.errors import SpecError
from sweep.cli.types import count, positive
from sweep.store.errors import StoreError


def _cmd_explain(args: argparse.Namespace) -> int:
    from grids.axes import AXES
    from sweep.query.explain import explain
    from sweep.query.explain_text import render

    values = {name: getattr(args, name) for name in AXES if getattr(args, name) is not None}
    result = explain(convention=args.convention, sensitivity=args.sensitivity, **values)
    print(json.dumps(_json_safe(result), indent=2, allow_nan=False) if args.json else render(result))
    return 0


def _json_safe(value: object) -> object:
    """NaN and infinities become null (JSON has neither): e.g. the cost on a GPU without a price."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cmd_catalog(args: argparse.Namespace) -> int:
    from grids.catalog import catalog

    data = catalog()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(
        f"{'model':<16} {'params':>16} {'layers':>6} {'d_model':>7} {'heads':>5} {'kv':>3} "
        f"{'d_ffn':>6} {'vocab':>7} {'KV/token bf16':>14}"
    )
    for m in data["models"]:
        print(
            f"{m['key']:<16} {m['params_total']:>16,.0f} {m['n_layers']:>6.0f} {m['d_model']:>7.0f} "
            f"{m['n_heads']:>5.0f} {m['n_kv_heads']:>3.0f} {m['d_ffn']:>6.0f} {m['vocab']:>7.0f} "
            f"{m['kv_bytes_per_token_bf16'] / 1e6:>10.3f} MB"
        )
    print()
    print(
        f"{'gpu':<15} {'bf16 TFLOP/s':>12} {'fp8 TFLOP/s':>11} {'memory GB':>9} {'HBM TB/s':>8} "
        f"{'link GB/s':>9} {'$/GPU-h':>7}  source"
    )
    for g in data["gpus"]:

        def num(key: str, scale: float, fmt: str, g: dict = g) -> str:
            return "n/a" if g[key] is None else format(g[key] / scale, fmt)

        print(
            f"{g['key']:<15} {num('flop_per_s_bf16', 1e12, '.0f'):>12} {num('flop_per_s_fp8', 1e12, '.0f'):>11} "
            f"{num('hbm_bytes', 1e9, '.0f'):>9} {num('hbm_bytes_per_s', 1e12, '.2f'):>8} "
            f"{num('link_bytes_per_s', 1e9, '.0f'):>9} {num('usd_per_hour', 1, '.2f'):>7}  {g['source'][:60]}"
        )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from grids.sweeps import load_sweep
    from sweep.cli.outputs import output_store
    from sweep.store.run import default_store, run_sweep

    spec = load_sweep(args.spec)
    output_store(args.output or default_store(spec), "--output")
    path = run_sweep(
        spec,
        args.output,
        overwrite=args.overwrite,
        progress=not args.quiet,
        chunk_points=args.chunk_points,
        scheduler=args.scheduler,
    )
    print(f"{spec.n_points:,} design points -> {path}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from sweep.query.show import describe
    from sweep.store.read import reading

    with reading(args.store):
        print(describe(args.store))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from sweep.store.verify import Verification, repair_store, verify_store

    def report(found: Verification) -> None:
        for damage in found.damage:
            print(f"{found.store}: {damage}")
        print(found.summary())

    if not args.repair:
        found = verify_store(args.store)
        report(found)
        return 0 if found.clean else 1
    found, after = repair_store(args.store, progress=not args.quiet, report=report)
    if not found.clean:
        whole = any(d.chunk is None for d in found.damage)
        recomputed = "every chunk" if whole else f"{len(found.damaged_chunks)} chunks"
        print(f"{after.store}: repaired: recomputed {recomputed}")
        print(after.summary())
    elif after.chunks_checked > found.chunks_checked:
        print(
            f"{after.store}: completed: computed the {after.chunks_checked - found.chunks_checked} chunks not written"
        )
        print(after.summary())
    return 0


DEFAULT_COLUMNS = ("ttft_s", "tpot_s", "user_tok_s", "output_tok_s", "usd_per_mtok_output")


def _cmd_query(args: argparse.Namespace) -> int:
    from sweep.store.read import reading

    with reading(args.store):
        return _query(args)


def _query(args: argparse.Namespace) -> int:
    from sweep.query.accessor import best_rows
    from sweep.store.read import open_sweep
    from sweep.store.verify import check_intact

    ds = open_sweep(args.store)
    check_intact(args.store)  # a flipped byte that decodes would otherwise answer with wrong numbers
    order = list(map(str, ds.dims))
    selection = dict(_split_assignment(item) for item in args.sel)
    ds = ds.econ.sel(**selection)
    # coordinates are printed anyway: --vars may name them, and only variables become columns
    columns = [c for c in (args.vars.split(",") if args.vars else DEFAULT_COLUMNS) if c and c not in ds.coords]
    known = sorted(map(str, ds.data_vars))
    for name in [*columns, *([args.sort] if args.sort and args.sort not in ds.coords else [])]:
        if name not in ds.data_vars:
            raise SpecError(f"unknown variable '{name}' (--vars, --sort); expected one of: {', '.join(known)}")
    if args.best:
        over = [d for d in args.over.split(",") if d]
        best = ds.econ.best(
            args.best, over, *args.where, maximize=args.max, columns=[c for c in columns if c != args.best]
        )
        table = best_rows(best, args.best, order)
    else:
        # a variable sorted by is shown too, after the columns asked for (pandas sorts by columns)
        sort = [args.sort] if args.sort and args.sort not in columns and args.sort not in ds.coords else []
        masked = ds.econ.where(*args.where)[columns + sort]
        table = masked.to_dataframe().dropna(how="all", subset=columns).reset_index()
        if args.sort:
            table = table.sort_values(args.sort, ascending=not args.max)
    table = table.head(args.limit) if args.limit else table
    print(
        table.to_csv(index=False)
        if args.csv
        else (table.to_string(index=False) if len(table) else "no point meets the conditions"),
        end="\n",
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from sweep.bench import run_bench

    result = run_bench(min_points=args.points, scheduler=args.scheduler)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"in memory:     {result['in_memory_points_per_s']:.3g} design points/s (full metric set; fastest pass, "
        f"median {result['in_memory_points_per_s_median']:.3g})"
    )
    print(
        f"end to end:    {result['end_to_end_points']:.3g} points -> zarr in {result['end_to_end_s']:.1f} s "
        f"({result['end_to_end_points'] / result['end_to_end_s']:.3g} points/s), peak RSS "
        f"{result['peak_rss_bytes'] / 1e9:.2f} GB, store {result['store_bytes'] / 1e9:.2f} GB"
    )
    print(
        f"reference:     {result['reference_points_per_s']:.3g} points/s (pure Python, decode loop); "
        f"speedup {result['speedup_vs_reference']:.3g}x"
    )
    print(
        f"optimize:      {result['optimize_points']:.3g} configurations, batch solved under 2 SLOs, in "
        f"{result['optimize_s']:.2f} s ({result['optimize_compile_s']:.1f} s to trace and compile, once per process)"
    )
    print(
        f"one answer:    explain {result['explain_cold_s']:.2f} s (empty compilation cache), "
        f"catalog {result['catalog_s']:.2f} s, query {result['query_s']:.2f} s (wall, median of 3)"
    )
    if args.scheduler:
        print(
            f"dask:          the same sweep with --scheduler {args.scheduler} in {result['dask_end_to_end_s']:.1f} s, "
            f"{result['dask_over_single_process']:.2f}x the single-process time"
        )
    return 0


def _split_assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise SpecError(f"argument --sel: expected DIM=VALUE, got {text!r}")
    dim, value = text.split("=", 1)
    return dim.strip(), value.strip()


def _one_line(text: str) -> str:
    """A message on one line: line breaks (from a file name or a parser's message) become spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, as every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


EXPLAIN_HELP = {
    "model": "catalogue key (see `sweep catalog`) or path to a config.json",
    "gpu": "catalogue key, e.g. h100-sxm (see `sweep catalog`)",
    "profile": "engine profile for the realistic convention: a name in grids/profiles or a path",
    "expert_parallel": "on (or the bare flag): spread each MoE layer's routed experts whole over the TP*DP GPUs of "
    "a stage, with all-to-all dispatch and combine; off: split every expert like a dense MLP",
}
"""Help texts of explain flags that say more than the axis's description (grids/axes.py)."""


def add_axis_flags(p: argparse.ArgumentParser) -> None:
    """One flag per sweep axis (grids/axes.py): typed by its kind, choices from the registry."""
    from grids.axes import AXES

    for name, axis in AXES.items():
        kwargs: dict = dict(dest=name, default=None, metavar=name.upper())
        if axis.kind in ("integer", "float"):
            kwargs["type"] = lambda text, axis=axis: axis.cast(text, axis.cli_flag)
        elif axis.kind == "choice" and axis.choices is not None:
            kwargs["choices"] = list(axis.choices())
            kwargs["metavar"] = "{" + ",".join(kwargs["choices"]) + "}"
        if name == "expert_parallel":
            kwargs.update(nargs="?", const="on")
        default = axis.default_text or axis.default
        required = axis.required and axis.default is None
        text = EXPLAIN_HELP.get(name, axis.description)
        text += f" [{axis.units}]" if axis.units and axis.units != "1" else ""
        text += " (required)" if required else f" (default {default})"
        kwargs["help"] = text.replace("%", "%%")
        p.add_argument(axis.cli_flag, required=required, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sweep", description="Design-space sweeps of LLM inference economics (roofline cost model).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "explain",
        help="the article's step-by-step breakdown of one design point",
        description="Print every step of the cost model for one design point "
        "(parameters, FLOPs per operation, prefill and decode roofline, KV cache, "
        "all-reduce, throughput, cost). SI units in --json.",
    )
    add_axis_flags(p)
    p.add_argument(
        "--convention",
        choices=["realistic", "article"],
        default="realistic",
        help="article: the article's simplifications (full S^2 attention, 100%% of peak, "
        "(N-1)/N all-reduce); realistic (default): causal attention, ring all-reduce, "
        "efficiencies of --profile",
    )
    p.add_argument(
        "--sensitivity",
        action="store_true",
        help="also the elasticities of $/Mtok (rented, owned) and throughput to each GPU number "
        "(FLOP/s, HBM bandwidth and capacity, link bandwidth, price, purchase price, power), by "
        "forward-mode autodiff (about 10 s more: JAX compiles the point)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser(
        "catalog",
        help="the models and GPUs known, with their key numbers",
        description="List catalogue models (grids/models/*.json) and GPUs (grids/gpus.toml).",
    )
    p.add_argument(
        "--json", action="store_true", help='print {"models": [...], "gpus": [...]} with every number and source'
    )
    p.set_defaults(func=_cmd_catalog)

    p = sub.add_parser(
        "run",
        help="evaluate a sweep spec into a zarr store (resumable)",
        description="Evaluate every design point of SPEC (a TOML file, or a name in grids/sweeps) "
        "chunk by chunk into a zarr store. Rerunning an interrupted run computes "
        "only the missing chunks.",
    )
    p.add_argument("spec", help="sweep spec: path to a TOML file or a name in grids/sweeps (e.g. article-70b)")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="store: a path or any fsspec URL the workers share (default outputs/<name>.zarr)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="local[:N]|tcp://HOST:PORT",
        help="run chunks as Dask tasks: on a LocalCluster of N worker processes, or on a running "
        "Dask scheduler whose workers share the store",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a store made by a different spec")
    p.add_argument("--chunk-points", type=positive, default=None, help="design points per chunk (memory bound)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("show", help="dims, variables with units, completeness and provenance of a store")
    p.add_argument("store", help="path to a sweep zarr store")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "verify",
        help="re-read every chunk of a store against its recorded checksums; --repair recomputes the damaged",
        description="Re-read every chunk of STORE and compare it with the checksum recorded when it was "
        "written. Prints one line per damaged chunk (variable, chunk index, file) and a summary; exits 0 if "
        "the store is clean, 1 if it is damaged. --repair recomputes the damaged chunks from the spec the "
        "store records, under its writer lock, leaving the store identical to a clean run.",
    )
    p.add_argument("store", help="path to a sweep zarr store")
    p.add_argument("--repair", action="store_true", help="recompute the damaged chunks (exit 0 once clean)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar while repairing")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser(
        "query",
        help="filter, select and reduce a store; print a table or CSV",
        description="Examples: for each model the cheapest (gpu, tp, batch) with at least 30 "
        "tokens/s per user and TTFT under 1 s:\n  sweep query outputs/procurement.zarr "
        "--where 'user_tok_s>=30' --where 'ttft_s<=1' --best usd_per_mtok_output "
        "--over gpu,tp,batch --sel input_len=4096 --sel output_len=1024",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("store", help="path to a sweep zarr store")
    p.add_argument("--sel", action="append", default=[], metavar="DIM=VALUE", help="keep one value of a dimension")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COND",
        help="keep feasible points meeting VAR OP NUMBER, OP in >= <= > < == (repeatable)",
    )
    p.add_argument("--best", metavar="VAR", help="reduce: the point minimising VAR over --over dims")
    p.add_argument("--over", default="gpu,tp,batch", help="dims to reduce over with --best (default gpu,tp,batch)")
    p.add_argument("--max", action="store_true", help="maximise instead of minimise (--best, --sort)")
    p.add_argument("--vars", default=None, help="comma-separated columns to print (default key metrics)")
    p.add_argument("--sort", default=None, help="sort rows by this variable (without --best)")
    p.add_argument("--limit", type=count, default=50, help="rows to print (0: all; default 50)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.set_defaults(func=_cmd_query)

    p = sub.add_parser(
        "bench",
        help="the engine's own speed: in memory, end to end to zarr, vs the reference",
        description="Measure (a) in-memory design points/s of the full metric set (the fastest of three "
        "passes over the same chunks, and the median pass), (b) wall time, "
        "peak RSS and store size of a >= 1e8-point `sweep run` to a temporary zarr "
        "store (deleted afterwards), (c) points/s of the pure-Python reference and "
        "the speedup, (d) sweep optimize over >= 1e6 configurations (optimize_s; its trace and compile "
        "apart, optimize_compile_s), (e) the wall time of one answer: explain_cold_s (sweep explain with an empty "
        "compilation cache), catalog_s, query_s (on the demo store). GB here means 1e9 bytes.",
    )
    p.add_argument("--points", type=float, default=1e8, help="minimum points of the end-to-end sweep (default 1e8)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="local[:N]|tcp://HOST:PORT",
        help="also run the end-to-end sweep on Dask and report its wall time over the single-process one",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (SI units)")
    p.set_defaults(func=_cmd_bench)

    from sweep.cli.calibration import add_commands as add_calibration
    from sweep.cli.plots import add_commands as add_plots
    from sweep.cli.procurement import add_commands as add_procurement

    add_calibration(sub)
    add_plots(sub)
    add_procurement(sub)
    return parser


def _os_message(err: OSError) -> str:
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return err.strerror or str(err)  # a failed write names no file: "No space left on device"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = f"sweep {args.command}"
    try:
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a reader that left (`| head`) shows here
        return status
    except (SpecError, StoreError) as err:
        print(f"{command}: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sweep show STORE | head`: the reader left; stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as err:  # the machine refused: permission, read-only file system, disk full
        print(f"{command}: error: {_one_line(_os_message(err))}", file=sys.stderr)
        return 1
    except Exception:  # a bug: its traceback, and where to send it
        traceback.print_exc()
        print(
            f"{command}: internal error (a bug): please report it with the command line and the traceback above",
            file=sys.stderr,
        )
        return 1
