"""Service-level objectives as people write them ('ttft_s<=1'), and the objectives a cost optimum
may minimise: parsed and checked without JAX, so the CLI's --help and errors stay fast."""

from __future__ import annotations

import re

import numpy as np

from grids.errors import SpecError
from kernels.optimum import COMPARISONS, Slo
from kernels.point import METRICS

OBJECTIVES = {
    "usd_per_mtok_output": "min",
    "usd_per_mtok_input": "min",
    "usd_per_mtok_output_owned": "min",
    "usd_per_mtok_input_owned": "min",
    "joules_per_output_token": "min",
    "output_tok_s": "max",
    "output_tok_s_per_gpu": "max",
}
"""What the optimum may minimise or maximise: the costs and throughputs that improve as the batch
grows (so that the largest batch meeting the objectives is the best one)."""

SLO_METRICS = tuple(
    name for name, info in METRICS.items() if info.runs_only and info.units in ("s", "token/s", "token/s/GPU")
)
"""Metrics an objective may bound: latencies and speeds."""


def parse_slo(text: str) -> Slo:
    """'user_tok_s>=30' -> Slo("user_tok_s", ">=", 30.0); SpecError naming what is wrong."""
    match = re.fullmatch(r"\s*([a-z0-9_]+)\s*(<=|>=)\s*(\S+)\s*", text)
    if match is None:
        raise SpecError(f"--slo {text!r}: expected METRIC<=NUMBER or METRIC>=NUMBER, e.g. 'ttft_s<=1'")
    metric, op, number = match.groups()
    if metric not in SLO_METRICS:
        raise SpecError(f"--slo {text!r}: unknown metric '{metric}'; expected one of: {', '.join(SLO_METRICS)}")
    try:
        bound = float(number)
    except ValueError:
        raise SpecError(f"--slo {text!r}: '{number}' is not a number") from None
    if not np.isfinite(bound) or bound <= 0:
        raise SpecError(f"--slo {text!r}: the bound must be a positive finite number")
    assert op in COMPARISONS
    return Slo(metric, op, bound)
