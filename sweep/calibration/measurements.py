"""Measurements to calibrate and validate against: shared/benchmarks' JSON and the canonical CSV.

Canonical CSV header: ``model,gpu,tp,batch,input_len,output_len,scenario,metric,value`` with
optional columns saying what ran: ``weight_dtype,kv_dtype,compute_dtype,pp,dp,expert_parallel``
(the sweep axes of the same names, validated by them; empty means the axis default),
``precision`` (shorthand for the weight and KV format, and the compute precision the weights
run at), ``engine`` and ``source``. ``metric`` is one of METRICS; ``batch`` is empty for
max_throughput. The benchmark JSON (vLLM static batches) does not say model, GPU or tp: the
caller gives them.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from grids.axes import AXES, check_value
from grids.dtypes import kv_dtypes
from grids.errors import SpecError
from grids.gpus import load_gpus
from grids.models import load_model
from kernels.point import speed_sign
from kernels.scenarios import SCENARIOS

METRICS = ("output_tok_s", "ttft_s", "tpot_s", "e2e_s", "ttft_min_s")
"""Measurable metrics; ttft_min_s is the shortest TTFT of a batch (the first prompt served)."""

SPEED_SIGN = {name: speed_sign(name) for name in METRICS}
"""+1 for a rate, -1 for a time (``kernels.point.speed_sign``): sign * ln(measured / predicted) is
how much faster the real engine was, whichever metric was measured, so errors of rates and times
pool into one interval."""


CSV_REQUIRED = ("model", "gpu", "tp", "batch", "input_len", "output_len", "scenario", "metric", "value")
DESIGN_COLUMNS = ("weight_dtype", "kv_dtype", "compute_dtype", "pp", "dp", "expert_parallel")
"""Optional columns that are sweep axes: what ran, validated by the axis registry."""
CSV_OPTIONAL = ("precision", *DESIGN_COLUMNS, "engine", "source")


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
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    compute_dtype: str = "auto"
    pp: int = 1
    dp: int = 1
    expert_parallel: str = "off"
    engine: str = ""
    file: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def precision(self) -> str:
        """The number formats in one word: the weights' where the KV cache matches, else both."""
        return self.weight_dtype if self.kv_dtype == self.weight_dtype else f"{self.weight_dtype}/kv-{self.kv_dtype}"

    def design(self) -> dict[str, object]:
        """The sweep-axis values of the point that ran (lengths and batch aside)."""
        return dict(
            model=self.model,
            gpu=self.gpu,
            tp=self.tp,
            weight_dtype=self.weight_dtype,
            kv_dtype=self.kv_dtype,
            compute_dtype=self.compute_dtype,
            pp=self.pp,
            dp=self.dp,
            expert_parallel=self.expert_parallel,
            scenario=self.scenario,
        )


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


def _axis_value(where: str, name: str, text: str) -> object:
    """A CSV cell of a sweep-axis column, validated by the axis (whole numbers for tp, pp, dp)."""
    axis = AXES[name]
    value: object = text
    if axis.kind in ("integer", "float"):
        value = _positive(where, name, text)
    return check_value(axis, f"{where}: column '{name}'", value)


def _formats(where: str, row: dict[str, str]) -> dict[str, object]:
    """The number formats and parallelism of a row: the design columns, with ``precision`` the
    shorthand for weights and KV cache (an explicit column wins where both are given and agree)."""
    cells = {c: (row.get(c) or "").strip() for c in ("precision", *DESIGN_COLUMNS)}
    out: dict[str, object] = {c: _axis_value(where, c, v) for c, v in cells.items() if v and c != "precision"}
    precision = cells["precision"]
    if precision:
        _axis_value(where, "weight_dtype", precision)
        if out.get("weight_dtype", precision) != precision:
            raise SpecError(f"{where}: precision '{precision}' and weight_dtype '{out['weight_dtype']}' disagree")
        out.setdefault("weight_dtype", precision)
        if "kv_dtype" not in out:
            if precision not in kv_dtypes():
                raise SpecError(
                    f"{where}: precision '{precision}' cannot store the KV cache; give the kv_dtype column "
                    f"(one of {', '.join(kv_dtypes())})"
                )
            out["kv_dtype"] = precision
    return out


def load_csv(path: Path) -> list[Measurement]:
    """Rows of a canonical measurement CSV, validated."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecError(
                f"{path}: missing column '{missing[0]}'; expected header "
                f"{','.join(CSV_REQUIRED)}[,{','.join(CSV_OPTIONAL)}]"
            )
        rows = []
        checked: set[tuple[str, str]] = set()  # each (model, gpu) loaded once
        for line, row in enumerate(reader, start=2):
            where = f"{path} line {line}"
            if row["scenario"] not in SCENARIOS:
                raise SpecError(f"{where}: scenario must be one of {', '.join(SCENARIOS)}, got {row['scenario']!r}")
            if row["metric"] not in METRICS:
                raise SpecError(f"{where}: metric must be one of {', '.join(METRICS)}, got {row['metric']!r}")
            if (row["model"], row["gpu"]) not in checked:
                _check_keys(where, row["model"], row["gpu"])
                checked.add((row["model"], row["gpu"]))
            tp = _axis_value(where, "tp", row["tp"])
            rows.append(
                Measurement(
                    model=row["model"],
                    gpu=row["gpu"],
                    tp=int(tp),  # type: ignore[call-overload]
                    batch=_positive(where, "batch", row["batch"], allow_empty=row["scenario"] == "max_throughput"),
                    input_len=_positive(where, "input_len", row["input_len"]),
                    output_len=_positive(where, "output_len", row["output_len"]),
                    scenario=row["scenario"],
                    metric=row["metric"],
                    value=_positive(where, "value", row["value"]),
                    engine=(row.get("engine") or "").strip(),
                    file=str(path),
                    extra={"source": row["source"]} if row.get("source") else {},
                    **_formats(where, row),  # type: ignore[arg-type]
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
