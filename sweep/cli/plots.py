"""The ``sweep plot``, ``sweep report`` and ``sweep explore`` subcommands (a thin layer over
``sweep.viz.figures``, ``sweep.viz.report`` and ``sweep.viz.explore``). Bad input raises SpecError, which the
CLI prints and turns into exit status 2."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from grids.errors import SpecError
from sweep.cli.outputs import output_file
from sweep.viz.kinds import KIND_DESCRIPTIONS

KIND_NAMES = tuple(KIND_DESCRIPTIONS)


def _para(text: str) -> str:
    return textwrap.fill(text, width=100)


def parse_selection(items: list[str]) -> dict[str, str]:
    """['gpu=h200', 'input_len=2048'] -> {'gpu': 'h200', 'input_len': '2048'}; a repeated dim is an error."""
    selection: dict[str, str] = {}
    for item in items:
        dim, sep, value = item.partition("=")
        dim, value = dim.strip(), value.strip()
        if not sep or not dim or not value:
            raise SpecError(f"argument --sel: expected DIM=VALUE (e.g. gpu=h200 or tp=1,2,4), got {item!r}")
        if dim in selection:
            raise SpecError(f"argument --sel: dimension '{dim}' given twice")
        selection[dim] = value
    return selection


def _cmd_plot(args: argparse.Namespace) -> int:
    from sweep.store.read import reading
    from sweep.viz.figures import plot, save
    from sweep.viz.report import load_dataset

    if not str(args.output).lower().endswith((".html", ".png")):
        raise SpecError(f"-o {args.output}: expected a file name ending in .html or .png")
    selection = parse_selection(args.sel)
    output_file(args.output, "--output")
    with reading(args.store):
        ds, notes = load_dataset(args.store)
        for note in notes:
            print(f"sweep plot: note: {note}")
        path = save(plot(ds, args.kind, selection), args.output)
    print(f"{args.kind} -> {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from sweep.store.read import reading
    from sweep.viz.report import write_report

    output_file(args.output, "--output")
    with reading(args.source):
        path = write_report(args.source, args.output)
    print(f"report -> {path}")
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from sweep.store.read import reading
    from sweep.viz.explore import serve

    if not 0 < args.port < 65536:
        raise SpecError(f"--port {args.port}: expected a TCP port between 1 and 65535")
    with reading(args.store):
        serve(args.store, args.port, address=args.address, announce=announced(args.store))
    return 0


def announced(store: str) -> Any:
    def announce(url: str) -> None:
        print(f"sweep explore: serving {store} on {url} (Ctrl-C stops)", flush=True)

    return announce


def add_commands(sub: Any) -> None:
    """Add ``plot``, ``report`` and ``explore`` to the ``sweep`` CLI's subparsers."""
    kinds = "\n".join(f"  {k:<20} {d}" for k, d in KIND_DESCRIPTIONS.items())
    p = sub.add_parser(
        "plot",
        help="one figure of a sweep to .html (interactive) or .png (static)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_para(
            "Draw one of the article's figures from a sweep. Dimensions the figure does not show "
            "are held at one value: --sel chooses it, otherwise a default is used (the article's "
            "2048-token prompt and 300 output tokens where on the axis, batch 1, the smallest tp at "
            "which the model fits, the first value of the others) and marked * in the figure's "
            "subtitle. Axes are in display units (GB = 1e9 bytes, ms, tokens/s, $/Mtok)."
        )
        + "\n\nKinds:\n"
        + kinds
        + "\n\nExamples:\n  sweep plot outputs/procurement.zarr cost-vs-speed --sel model=llama-3.3-70b "
        "-o outputs/cost.html\n  sweep plot outputs/article-70b.zarr throughput-vs-batch --sel tp=4 "
        "--sel profile=roofline -o outputs/throughput.png",
    )
    p.add_argument(
        "store", metavar="STORE", help="sweep zarr store (a spec name or TOML path also works: computed in memory)"
    )
    p.add_argument("kind", metavar="KIND", choices=KIND_NAMES, help="figure kind: " + ", ".join(KIND_NAMES))
    p.add_argument(
        "--sel",
        action="append",
        default=[],
        metavar="DIM=VALUE",
        help="hold DIM at VALUE (repeatable); for a dimension the figure shows, a comma-separated "
        "list keeps only those values (e.g. --sel gpu=h100-sxm,h200)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="FILE.html (bokeh, self-contained, opens offline) or FILE.png (matplotlib, no browser)",
    )
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "report",
        help="a self-contained HTML report: figures, best configurations, provenance",
        description="Write one HTML page with every figure kind, a table of the cheapest (gpu, tp, batch) per "
        "million output tokens with at least 30 tokens/s per user and TTFT at most 1 s for each "
        "combination of the other dimensions, and the sweep's provenance. BokehJS is inlined: the "
        "page loads nothing from the network.",
    )
    p.add_argument(
        "source",
        metavar="SPEC_OR_STORE",
        help="a sweep zarr store, or a spec (name in grids/sweeps or TOML path) computed in memory",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the HTML file to write")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "explore",
        help="an interactive Panel app over a store, on http://127.0.0.1:PORT",
        description="Serve an explorer of a sweep store on 127.0.0.1 only (unless --address): choose the "
        "variable, the x-axis dimension and the dimension drawn as one line per value; toggle log axes; every other "
        "dimension has a widget holding it at one value. Runs until interrupted (Ctrl-C).",
    )
    p.add_argument("store", metavar="STORE", help="sweep zarr store (see `sweep run`)")
    p.add_argument("--port", type=int, default=5006, help="TCP port (default 5006)")
    p.add_argument(
        "--address",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves every network "
        "the machine is on, to anyone who can reach it)",
    )
    p.set_defaults(func=_cmd_explore)
