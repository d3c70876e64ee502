"""Measurements to calibrate and validate against: shared/benchmarks' JSON and the canonical CSV.

Canonical CSV header: ``model,gpu,tp,batch,input_len,output_len,scenario,metric,value`` with
optional ``precision,engine,source`` columns. ``metric`` is one of METRICS; ``batch`` is empty
for max_throughput. The benchmark JSON (vLLM static batches) does not say model, GPU or tp: the
caller gives them.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from grids.dtypes import kv_dtypes
from grids.errors import SpecError
from grids.gpus import load_gpus
from grids.models import load_model
from kernels.scenarios import SCENARIOS

METRICS = ("output_tok_s", "ttft_s", "tpot_s", "e2e_s", "ttft_min_s")
"""Measurable metrics; ttft_min_s is the shortest TTFT of a batch (the first prompt served)."""


CSV_REQUIRED = ("model", "gpu", "tp", "batch", "input_len", "output_len", "scenario", "metric", "value")


@dataclass(frozen=True)
class Measurement:
    """One measured number at one design point."""

    model: str
    gpu: str
    tp: int
    batch: float  # NaN for max_throughput
    input_len: float
    output_len: float
    scenario: str
    metric: str
    value: float
    precision: str = "bf16"
    file: str = ""
    extra: dict = field(default_factory=dict, compare=False)


def _positive(where: str, name: str, text: str, allow_empty: bool = False) -> float:
    if allow_empty and text.strip() == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{where}: column '{name}' must be a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise SpecError(f"{where}: column '{name}' must be positive, got {text!r}")
    return value


def _check_keys(where: str, model: str, gpu: str) -> None:
    try:
        load_model(model)
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    if gpu not in load_gpus():
        raise SpecError(f"{where}: unknown GPU '{gpu}'; expected one of: {', '.join(load_gpus())}")


def load_csv(path: Path) -> list[Measurement]:
    """Rows of a canonical measurement CSV, validated."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecError(
                f"{path}: missing column '{missing[0]}'; expected header "
                f"{','.join(CSV_REQUIRED)}[,precision,engine,source]"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            where = f"{path} line {line}"
            if row["scenario"] not in SCENARIOS:
                raise SpecError(f"{where}: scenario must be one of {', '.join(SCENARIOS)}, got {row['scenario']!r}")
            if row["metric"] not in METRICS:
                raise SpecError(f"{where}: metric must be one of {', '.join(METRICS)}, got {row['metric']!r}")
            precision = (row.get("precision") or "bf16").strip()
            formats = kv_dtypes()  # a precision applies to weights and KV cache alike: a KV format
            if precision not in formats:
                raise SpecError(f"{where}: precision must be one of {', '.join(formats)}")
            _check_keys(where, row["model"], row["gpu"])
            tp = _positive(where, "tp", row["tp"])
            rows.append(
                Measurement(
                    model=row["model"],
                    gpu=row["gpu"],
                    tp=int(tp),
                    batch=_positive(where, "batch", row["batch"], allow_empty=row["scenario"] == "max_throughput"),
                    input_len=_positive(where, "input_len", row["input_len"]),
                    output_len=_positive(where, "output_len", row["output_len"]),
                    scenario=row["scenario"],
                    metric=row["metric"],
                    value=_positive(where, "value", row["value"]),
                    precision=precision,
                    file=str(path),
                    extra={k: row.get(k, "") for k in ("engine", "source") if row.get(k)},
                )
            )
    if not rows:
        raise SpecError(f"{path}: no measurements")
    return rows


def load_benchmark_json(path: Path, model: str | None, gpu: str | None, tp: int | None) -> list[Measurement]:
    """A shared/benchmarks JSON file (vLLM static batches): output tokens/s per batch size."""
    if model is None or gpu is None or tp is None:
        raise SpecError(f"{path}: this JSON does not say model, GPU or tp; pass --model, --gpu and --tp")
    _check_keys(str(path), model, gpu)
    try:
        data = json.loads(Path(path).read_text())
        results = data["results"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise SpecError(f"{path}: expected a benchmark JSON with a 'results' object ({err})") from None
    rows = []
    for batch, r in results.items():
        where = f"{path} results[{batch}]"
        try:
            rows.append(
                Measurement(
                    model=model,
                    gpu=gpu,
                    tp=tp,
                    batch=_positive(where, "batch", batch),
                    input_len=_positive(where, "avg_input_tokens", str(r["avg_input_tokens"])),
                    output_len=_positive(where, "avg_output_tokens", str(r["avg_output_tokens"])),
                    scenario="static",
                    metric="output_tok_s",
                    value=_positive(where, "tokens_per_second_in_batch", str(r["tokens_per_second_in_batch"])),
                    file=str(path),
                )
            )
        except (KeyError, TypeError) as err:
            raise SpecError(f"{where}: missing field {err}") from None
    return rows


def load_measurements(
    paths: list[str], model: str | None = None, gpu: str | None = None, tp: int | None = None
) -> list[Measurement]:
    """Every measurement of the given files (.csv canonical, .json benchmark)."""
    rows: list[Measurement] = []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise SpecError(f"{path}: no such measurement file")
        if path.suffix == ".csv":
            rows += load_csv(path)
        elif path.suffix == ".json":
            rows += load_benchmark_json(path, model, gpu, tp)
        else:
            raise SpecError(f"{path}: expected a .csv (canonical) or .json (shared/benchmarks) file")
    return rows
