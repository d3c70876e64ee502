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
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from grids._values import number, shorten
from grids.axes import AXES, check_value
from grids.dtypes import kv_dtypes
from grids.errors import SpecError
from grids.files import is_file, read_json, read_text
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


LIMITS = {"batch": 2**20, "input_len": 2**32, "output_len": 2**32}
"""Plausible maxima of a measurement's batch (or concurrency) and token counts: beyond, a typo."""


def _positive(where: str, name: str, text: str | None, allow_empty: bool = False, integer: bool = False) -> float:
    """A cell (or JSON number as text): a positive finite number, whole where ``integer``, at most
    its plausible maximum (``LIMITS``); NaN for an empty cell where ``allow_empty``."""
    text = "" if text is None else text
    if allow_empty and text.strip() == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{where}: column '{name}' must be a number, got {shorten(text)}") from None
    if not value > 0 or not math.isfinite(value):
        raise SpecError(f"{where}: column '{name}' must be positive, got {shorten(text)}")
    if integer and not value.is_integer():
        raise SpecError(f"{where}: column '{name}' must be a whole number, got {shorten(text)}")
    if value > LIMITS.get(name, math.inf):
        raise SpecError(f"{where}: column '{name}' = {value:g} is beyond its plausible maximum {LIMITS[name]:,}")
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


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the (line, row) pairs of a CSV file read by ``grids.files`` (a regular
    UTF-8 file of at most 64 MiB); a row of the wrong width is refused."""
    text = read_text(path)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        lines = [(reader.line_num, cells) for cells in reader]
    except csv.Error as err:
        raise SpecError(f"{path}: not a valid CSV file ({err})") from None
    header = lines[0][1] if lines else []
    rows = []
    for line, cells in lines[1:]:
        if not cells:  # a blank line
            continue
        if len(cells) != len(header):
            raise SpecError(f"{path} line {line}: {len(cells)} cells, expected {len(header)} as in the header")
        rows.append((line, dict(zip(header, cells))))
    return header, rows


def load_csv(path: Path) -> list[Measurement]:
    """Rows of a canonical measurement CSV, validated."""
    header, lines = _rows(path)
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise SpecError(
            f"{path}: missing column '{missing[0]}'; expected header "
            f"{','.join(CSV_REQUIRED)}[,{','.join(CSV_OPTIONAL)}]"
        )
    rows = []
    checked: set[tuple[str, str]] = set()  # each (model, gpu) loaded once
    for line, row in lines:
        where = f"{path} line {line}"
        if row["scenario"] not in SCENARIOS:
            raise SpecError(f"{where}: scenario must be one of {', '.join(SCENARIOS)}, got {shorten(row['scenario'])}")
        if row["metric"] not in METRICS:
            raise SpecError(f"{where}: metric must be one of {', '.join(METRICS)}, got {shorten(row['metric'])}")
        if (row["model"], row["gpu"]) not in checked:
            _check_keys(where, row["model"], row["gpu"])
            checked.add((row["model"], row["gpu"]))
        tp = _axis_value(where, "tp", row["tp"])
        rows.append(
            Measurement(
                model=row["model"],
                gpu=row["gpu"],
                tp=int(tp),  # type: ignore[call-overload]
                batch=_positive(
                    where, "batch", row["batch"], allow_empty=row["scenario"] == "max_throughput", integer=True
                ),
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


BENCHMARK_FIELDS = ("avg_input_tokens", "avg_output_tokens", "tokens_per_second_in_batch")
"""Fields each entry of a benchmark JSON's ``results`` needs (others are ignored)."""

JSON_NAMES = {"avg_input_tokens": "input_len", "avg_output_tokens": "output_len"}
"""The measurement field a benchmark field becomes (for its plausible maximum)."""


def load_benchmark_json(path: Path, model: str | None, gpu: str | None, tp: int | None) -> list[Measurement]:
    """A shared/benchmarks JSON file (vLLM static batches): output tokens/s per batch size.
    ``results`` is an object from batch size to an object of BENCHMARK_FIELDS."""
    if model is None or gpu is None or tp is None:
        raise SpecError(f"{path}: this JSON does not say model, GPU or tp; pass --model, --gpu and --tp")
    _check_keys(str(path), model, gpu)
    check_value(AXES["tp"], f"{path}: --tp", tp)
    data = read_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or not results:
        got = "no 'results'" if results is None else f"'results' is {shorten(results, 30)}"
        raise SpecError(f"{path}: expected a benchmark JSON whose 'results' maps batch sizes to objects; {got}")
    rows = []
    for batch, r in results.items():
        where = f"{path} results[{shorten(batch)}]"
        if not isinstance(r, dict):
            raise SpecError(f"{where}: expected an object with {', '.join(BENCHMARK_FIELDS)}")
        cells = {k: number(where, r, k, maximum=LIMITS.get(JSON_NAMES.get(k, ""))) for k in BENCHMARK_FIELDS}
        rows.append(
            Measurement(
                model=model,
                gpu=gpu,
                tp=tp,
                batch=_positive(where, "batch", batch, integer=True),
                input_len=cells["avg_input_tokens"],
                output_len=cells["avg_output_tokens"],
                scenario="static",
                metric="output_tok_s",
                value=cells["tokens_per_second_in_batch"],
                file=str(path),
            )
        )
    return rows


def load_measurements(
    paths: list[str], model: str | None = None, gpu: str | None = None, tp: int | None = None
) -> list[Measurement]:
    """Every measurement of the given files (.csv canonical, .json benchmark)."""
    rows: list[Measurement] = []
    for name in paths:
        path = Path(name)
        if not is_file(path):
            raise SpecError(f"{path}: no such measurement file")
        if path.suffix == ".csv":
            rows += load_csv(path)
        elif path.suffix == ".json":
            rows += load_benchmark_json(path, model, gpu, tp)
        else:
            raise SpecError(f"{path}: expected a .csv (canonical) or .json (shared/benchmarks) file")
    return rows
