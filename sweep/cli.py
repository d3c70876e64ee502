"""The ``sweep`` console script: a thin layer over the Python API.

Bad input (unknown key, malformed file, non-positive length) prints one message naming the file
or argument and what is expected, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from grids.errors import SpecError


def _cmd_explain(args: argparse.Namespace) -> int:
    from sweep.explain import explain
    from sweep.explain_text import render

    result = explain(args.model, args.gpu, args.tp, args.batch, args.input, args.output,
                     convention=args.convention, profile=args.profile,
                     weight_dtype=args.weight_dtype, kv_dtype=args.kv_dtype)
    print(json.dumps(result, indent=2, allow_nan=False, default=str) if args.json else render(result))
    return 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    from grids.catalog import catalog

    data = catalog()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{'model':<16} {'params':>16} {'layers':>6} {'d_model':>7} {'heads':>5} {'kv':>3} "
          f"{'d_ffn':>6} {'vocab':>7} {'KV/token bf16':>14}")
    for m in data["models"]:
        print(f"{m['key']:<16} {m['params_total']:>16,.0f} {m['n_layers']:>6.0f} {m['d_model']:>7.0f} "
              f"{m['n_heads']:>5.0f} {m['n_kv_heads']:>3.0f} {m['d_ffn']:>6.0f} {m['vocab']:>7.0f} "
              f"{m['kv_bytes_per_token_bf16'] / 1e6:>10.3f} MB")
    print()
    print(f"{'gpu':<15} {'bf16 TFLOP/s':>12} {'fp8 TFLOP/s':>11} {'memory GB':>9} {'HBM TB/s':>8} "
          f"{'link GB/s':>9} {'$/GPU-h':>7}  source")
    for g in data["gpus"]:
        def num(key: str, scale: float, fmt: str) -> str:
            return "n/a" if g[key] is None else format(g[key] / scale, fmt)
        print(f"{g['key']:<15} {num('flop_per_s_bf16', 1e12, '.0f'):>12} {num('flop_per_s_fp8', 1e12, '.0f'):>11} "
              f"{num('hbm_bytes', 1e9, '.0f'):>9} {num('hbm_bytes_per_s', 1e12, '.2f'):>8} "
              f"{num('link_bytes_per_s', 1e9, '.0f'):>9} {num('usd_per_hour', 1, '.2f'):>7}  {g['source'][:60]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep", description="Design-space sweeps of LLM inference economics (roofline cost model).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("explain", help="the article's step-by-step breakdown of one design point",
                       description="Print every step of the cost model for one design point "
                                   "(parameters, FLOPs per operation, prefill and decode roofline, KV cache, "
                                   "all-reduce, throughput, cost). SI units in --json.")
    p.add_argument("--model", required=True, help="catalogue key (see `sweep catalog`) or path to a config.json")
    p.add_argument("--gpu", required=True, help="catalogue key, e.g. h100-sxm")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel degree = GPUs per replica (default 1)")
    p.add_argument("--batch", type=int, default=1, help="sequences served together (default 1)")
    p.add_argument("--input", type=int, required=True, help="prompt tokens per request")
    p.add_argument("--output", type=int, required=True, help="output tokens per request")
    p.add_argument("--convention", choices=["realistic", "article"], default="realistic",
                   help="article: the article's simplifications (full S^2 attention, 100%% of peak, "
                        "(N-1)/N all-reduce); realistic (default): causal attention, ring all-reduce, "
                        "efficiencies of --profile")
    p.add_argument("--profile", default=None, help="engine profile for the realistic convention "
                                                   "(name in grids/profiles or a path; default roofline)")
    p.add_argument("--weight-dtype", default="bf16", help="bf16 (default), fp16, fp8, int8")
    p.add_argument("--kv-dtype", default="bf16", help="bf16 (default), fp16, fp8, int8")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("catalog", help="the models and GPUs known, with their key numbers",
                       description="List catalogue models (grids/models/*.json) and GPUs (grids/gpus.toml).")
    p.add_argument("--json", action="store_true",
                   help="print {\"models\": [...], \"gpus\": [...]} with every number and source")
    p.set_defaults(func=_cmd_catalog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpecError as err:
        print(f"sweep {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
