"""The sweep axes, each declared once: the registry every other part reads.

An ``Axis`` says what a dimension of the design space is (name, kind, units, long_name,
description), its default, how a value is validated, and how values become kernel inputs (the
named arguments of ``kernels.point.design_point``). Spec validation (``grids.sweeps``), the
engine's inputs, the dataset's coordinates, ``sweep explain``'s flags, the CLI's choices and
``--sel`` casting all read ``AXES``; adding an axis is one entry here and the kernel that uses it.

Kinds: ``catalogue`` (a key of a catalogue: model, GPU, profile), ``choice`` (one of fixed
names), ``integer`` (positive whole numbers; ranges are rounded) and ``float`` (positive numbers,
or non-negative where ``zero_allowed``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from grids._values import is_number, shorten
from grids.dtypes import compute_code, load_dtypes
from grids.errors import SpecError
from grids.gpus import load_gpus
from grids.models import load_model
from grids.ownership import load_ownership
from grids.profiles import load_profile
from kernels import xp
from kernels.point import AUTO_COMPUTE
from kernels.scenarios import REGISTRY as SCENARIO_REGISTRY
from kernels.specs import COMPUTE_DTYPES, GPUSpec

Kind = Literal["catalogue", "choice", "integer", "float"]
Inputs = dict[str, Any]
"""Named kernel inputs (arguments of ``kernels.point.design_point``), float64 numpy arrays or spec
pytrees of them, with a leading axis over the axis's values."""


@dataclass(frozen=True)
class Axis:
    """One dimension of the design space."""

    name: str
    kind: Kind
    long_name: str
    units: str  # of a numeric value; "" for names (catalogue keys and choices carry no unit)
    description: str
    encode: Callable[[Sequence[Any]], Inputs]  # values -> named kernel inputs, stacked
    default: Any = None  # used when neither swept nor fixed; None on a required axis: no default
    required: bool = False  # every sweep lists it
    default_text: str = ""  # the default in words, for help texts, when it is not a plain value
    choices: Callable[[], Sequence[str]] | None = None  # valid names (choice, catalogue listing)
    check: Callable[[str], None] | None = None  # raises SpecError for an unknown catalogue key
    flag: str = ""  # explain's command-line flag; default --name-with-hyphens
    loop: bool = False  # the engine loops over it: the kernels branch on its entries (architecture)
    label_of: Callable[[Any], Any] = lambda value: value  # a value's coordinate label
    readout: Callable[[dict[str, list[Any]], Any], tuple[tuple[str, ...], np.ndarray]] | None = None
    """When the axis is not swept: the dims and values of a data variable named like the axis that
    records the value each point used (e.g. each GPU's catalogue price)."""
    zero_allowed: bool = False  # a numeric axis where 0 means something (no interest, no fee, prefill_tp = tp)
    below: float = math.inf  # a numeric axis's values lie below it (a probability or a share: 1)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def attrs(self) -> dict[str, str]:
        """CF attributes of the coordinate. hvplot labels an axis "long_name (units)"; names carry
        units "" (none), so a label reads "model", not "model [1]"."""
        return {"long_name": self.long_name, "units": self.units, "description": self.description}

    def label(self, value: Any) -> Any:
        """The coordinate value of a validated value (``label_of``)."""
        return self.label_of(value)

    def cast(self, text: Any, where: str = "") -> Any:
        """A value from text (``--sel tp=4``, a CLI flag), typed by kind; SpecError if it is not one."""
        try:
            if self.kind == "integer":
                number = float(text)
                if not number.is_integer():
                    raise ValueError
                return int(number)
            if self.kind == "float":
                return float(text)
        except (TypeError, ValueError):
            raise SpecError(
                f"{where or self.name}: expected {'a whole number' if self.kind == 'integer' else 'a number'}, "
                f"got {text!r}"
            ) from None
        return str(text)


def stack(specs: Sequence[Any]) -> Any:
    """Spec pytrees of one kind stacked leaf by leaf (float64 numpy): the leading axis indexes them."""
    return xp.tree_map(lambda *leaves: np.stack([np.asarray(x, dtype=np.float64) for x in leaves]), *specs)


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=np.float64)


def _numeric(name: str) -> Callable[[Sequence[Any]], Inputs]:
    return lambda values: {name: _floats(values)}


def _weight_dtype(values: Sequence[Any]) -> Inputs:
    formats = load_dtypes()
    return {
        "weight_bytes_per_elem": _floats([formats[v].bytes_per_elem for v in values]),
        "weight_compute_dtype": _floats([compute_code(formats[v].compute) for v in values]),
        "weight_fallback_compute_dtype": _floats([compute_code(formats[v].fallback_compute) for v in values]),
        "act_bytes_per_elem": _floats([formats[v].act_bytes_per_elem for v in values]),
    }


def _kv_dtype(values: Sequence[Any]) -> Inputs:
    formats = load_dtypes()
    return {"kv_bytes_per_elem": _floats([formats[v].bytes_per_elem for v in values])}


def _compute_dtype(values: Sequence[Any]) -> Inputs:
    return {"compute_dtype": _floats([AUTO_COMPUTE if v == "auto" else compute_code(v) for v in values])}


def _per_gpu(name: str) -> Callable[[Sequence[Any]], Inputs]:
    """Encoder of an axis whose default (None, encoded NaN) is each GPU's catalogue ``field``."""
    return lambda values: {name: _floats([math.nan if v is None else v for v in values])}


def _catalogue(field: str) -> Callable[[dict[str, list[Any]], Any], tuple[tuple[str, ...], np.ndarray]]:
    """Readout of such an axis: the value each GPU used, over the gpu dim."""

    def readout(axes: dict[str, list[Any]], value: Any) -> tuple[tuple[str, ...], np.ndarray]:
        gpus = load_gpus()
        return ("gpu",), _floats([gpus[g].table[field] if value is None else value for g in axes["gpu"]])

    return readout


def _scalar(axes: dict[str, list[Any]], value: Any) -> tuple[tuple[str, ...], np.ndarray]:
    return (), np.asarray(float(value), dtype=np.float64)


def _ownership_axes() -> list[Axis]:
    """One float axis per ownership term of grids/ownership.toml, defaulting to its value there."""
    return [
        Axis(
            term.name,
            "float",
            term.long_name,
            term.units,
            f"{term.description} (default: {term.source})",
            _numeric(term.name),
            default=term.value,
            readout=_scalar,
            zero_allowed=term.zero_allowed,
        )
        for term in load_ownership().values()
    ]


def _file_stem(key: str) -> str:
    """A catalogue entry's label: its key, or a file path's name without .json or .toml (a
    custom model's config.json, a custom profile's TOML)."""
    return Path(key).stem if key.endswith((".json", ".toml")) else key


def _check_model(key: str) -> None:
    load_model(key)


def _check_gpu(key: str) -> None:
    gpus = load_gpus()
    if key not in gpus:
        raise SpecError(f"unknown GPU '{key}'; expected one of: {', '.join(gpus)}")


def _prefill_gpu(values: Sequence[Any]) -> Inputs:
    """GPU specs of the prefill instances; None (the default): a spec of NaN throughout, which
    ``kernels.point.design_point`` reads as the decode pool's GPU."""
    gpus = load_gpus()
    nan: Any = np.float64(math.nan)  # numpy, not JAX: stacked below, also while a caller traces
    decode_pool = GPUSpec(**{f.name: nan for f in dataclasses.fields(GPUSpec)})
    return {"prefill_gpu": stack([decode_pool if k is None else gpus[k].spec for k in values])}


def _check_profile(name: str) -> None:
    load_profile(name)


def _kv_formats() -> list[str]:
    return [k for k, d in load_dtypes().items() if d.kv]


EXPERT_PARALLEL = {"off": 0.0, "on": 1.0}


AXES: dict[str, Axis] = {
    axis.name: axis
    for axis in (
        Axis(
            "model",
            "catalogue",
            "model",
            "",
            "catalogue key of the model (grids/models), or a config.json path (labelled by its file name)",
            lambda v: {"model": stack([load_model(k).spec for k in v])},
            required=True,
            check=_check_model,
            loop=True,
            label_of=_file_stem,
            choices=lambda: sorted(p.stem for p in (Path(__file__).parent / "models").glob("*.json")),
        ),
        Axis(
            "gpu",
            "catalogue",
            "GPU",
            "",
            "catalogue key of the GPU (grids/gpus.toml)",
            lambda v: {"gpu": stack([load_gpus()[k].spec for k in v])},
            required=True,
            check=_check_gpu,
            choices=lambda: list(load_gpus()),
        ),
        Axis(
            "tp",
            "integer",
            "tensor-parallel degree",
            "GPU",
            "GPUs of one pipeline stage, splitting every weight matrix (Megatron); a deployment has tp * pp * dp GPUs",
            _numeric("tp"),
            default=1,
            required=True,
        ),
        Axis(
            "batch",
            "integer",
            "batch size",
            "sequence",
            "requests served together (static) or kept in flight "
            "(concurrency), per micro-batch of a data-parallel rank",
            _numeric("batch"),
            default=1,
            required=True,
        ),
        Axis(
            "input_len",
            "integer",
            "prompt length",
            "token",
            "prompt tokens per request",
            _numeric("input_len"),
            required=True,
            flag="--input",
        ),
        Axis(
            "output_len",
            "integer",
            "output length",
            "token",
            "generated tokens per request",
            _numeric("output_len"),
            required=True,
            flag="--output",
        ),
        Axis(
            "weight_dtype",
            "choice",
            "weight format",
            "",
            "storage format of the weights, scale overhead included (grids/dtypes.toml)",
            _weight_dtype,
            default="bf16",
            choices=lambda: list(load_dtypes()),
        ),
        Axis(
            "kv_dtype",
            "choice",
            "KV-cache format",
            "",
            "storage format of the KV cache (grids/dtypes.toml)",
            _kv_dtype,
            default="bf16",
            choices=_kv_formats,
        ),
        Axis(
            "compute_dtype",
            "choice",
            "compute precision",
            "",
            "tensor-core precision whose peak applies "
            "(auto: the weight format's, e.g. W4A16 for int4; grids/dtypes.toml)",
            _compute_dtype,
            default="auto",
            choices=lambda: ["auto", *COMPUTE_DTYPES],
        ),
        Axis(
            "profile",
            "catalogue",
            "engine profile",
            "",
            "efficiency and overhead terms of a serving engine (grids/profiles)",
            lambda v: {"profile": stack([load_profile(k).spec for k in v])},
            default="roofline",
            check=_check_profile,
            choices=lambda: sorted(p.stem for p in (Path(__file__).parent / "profiles").glob("*.toml")),
            label_of=_file_stem,
        ),
        Axis(
            "scenario",
            "choice",
            "serving scenario",
            "",
            "; ".join(f"{s.name}: {s.description}" for s in SCENARIO_REGISTRY),
            lambda v: {"scenario": _floats([[s.name for s in SCENARIO_REGISTRY].index(k) for k in v])},
            default="static",
            choices=lambda: [s.name for s in SCENARIO_REGISTRY],
        ),
        Axis(
            "pp",
            "integer",
            "pipeline stages",
            "1",
            "stages of tp GPUs, each holding 1/pp of the layers; pp micro-batches of batch sequences in flight",
            _numeric("pp"),
            default=1,
        ),
        Axis(
            "dp",
            "integer",
            "data-parallel ranks",
            "1",
            "ranks of tp * pp GPUs, each serving its own pp micro-batches (disaggregated: the decode instances)",
            _numeric("dp"),
            default=1,
        ),
        Axis(
            "prefill_instances",
            "integer",
            "prefill instances",
            "1",
            "instances of prefill_tp GPUs running the prompts, one at a time, beside the dp decode ranks "
            "(disaggregated scenario; the others ignore it)",
            _numeric("prefill_instances"),
            default=1,
        ),
        Axis(
            "prefill_tp",
            "integer",
            "prefill tensor-parallel degree",
            "GPU",
            "GPUs of one prefill instance (disaggregated scenario; the others ignore it); 0: tp, the decode ranks'",
            _numeric("prefill_tp"),
            default=0,
            default_text="0 (the decode ranks' tp)",
            zero_allowed=True,
        ),
        Axis(
            "prefill_gpu",
            "catalogue",
            "prefill GPU",
            "",
            "catalogue key of the prefill instances' GPU (grids/gpus.toml; disaggregated scenario, the others ignore "
            "it): its FLOP/s, memory and precisions run the prompts, with the profile's efficiencies; another type "
            "than gpu moves the KV cache over the network (the slower of the two GPUs' scale-out links) and is "
            "priced at its own catalogue prices: usd_per_gpu_hour and capex_usd_per_gpu set the decode GPU's "
            "(and the prefill GPU's only where it is the same type)",
            _prefill_gpu,
            default=None,
            default_text="gpu, the decode pool's",
            check=_check_gpu,
            choices=lambda: list(load_gpus()),
        ),
        Axis(
            "expert_parallel",
            "choice",
            "expert parallelism",
            "",
            "on: routed experts spread whole over the "
            "tp * dp GPUs of a stage, all-to-all dispatch and combine; off: split like dense MLPs",
            lambda v: {"expert_parallel": _floats([EXPERT_PARALLEL[k] for k in v])},
            default="off",
            choices=lambda: list(EXPERT_PARALLEL),
        ),
        Axis(
            "request_rate",
            "float",
            "request rate",
            "request/s",
            "requests per second to the whole deployment, arriving at random (poisson scenario; the others ignore it)",
            _numeric("request_rate"),
            default=1.0,
            readout=_scalar,
        ),
        Axis(
            "input_len_spread",
            "float",
            "prompt length spread",
            "1",
            "r: each request's prompt length uniform on [input_len (1 - r), input_len (1 + r)], vLLM's random dataset "
            "(benchmarks/benchmark_serving.py --random-range-ratio; kernels.lengths); poisson scenario, the others "
            "take every prompt at input_len; 0: fixed",
            _numeric("input_len_spread"),
            default=0.0,
            zero_allowed=True,
            below=1.0,
        ),
        Axis(
            "output_len_spread",
            "float",
            "output length spread",
            "1",
            "r: each request's output length uniform on [output_len (1 - r), output_len (1 + r)], vLLM's random "
            "dataset (benchmarks/benchmark_serving.py --random-range-ratio; kernels.lengths); poisson scenario, the "
            "others take every output at output_len; 0: fixed",
            _numeric("output_len_spread"),
            default=0.0,
            zero_allowed=True,
            below=1.0,
        ),
        Axis(
            "kv_link_bytes_per_s",
            "float",
            "KV transfer bandwidth",
            "byte/s",
            "bandwidth per GPU per direction moving each prompt's KV cache from a prefill instance to a decode "
            "rank (disaggregated scenario); not swept: the GPU's scale-up link (NVLink) when all the deployment's "
            "GPUs fit in one node, else its network per GPU (grids/gpus.toml)",
            _per_gpu("kv_link_bytes_per_s"),
            default=None,
            default_text="the GPU's NVLink within a node, else its network",
        ),
        Axis(
            "draft_tokens",
            "integer",
            "draft tokens",
            "token",
            "tokens a multi-token-prediction head (one block of the model's own architecture) drafts per sequence "
            "per decode round, verified by the target in one pass (kernels.speculative); 0: no speculative decoding",
            _numeric("draft_tokens"),
            default=0,
            zero_allowed=True,
        ),
        Axis(
            "draft_acceptance",
            "float",
            "draft acceptance rate",
            "1",
            "probability that the target accepts each drafted token (draft_tokens > 0; ignored at 0); default 0.85: "
            "DeepSeek-V3 technical report (arXiv:2412.19437) section 5.4.3, 85-90% acceptance of its MTP token",
            _numeric("draft_acceptance"),
            default=0.85,
            zero_allowed=True,
            below=1.0,
        ),
        Axis(
            "cached_prefix_fraction",
            "float",
            "cached prefix fraction",
            "1",
            "share of each prompt already in the engine's prefix cache, one prefix shared by all requests (a system "
            "prompt, a conversation history): prefill computes the rest, the prefix's KV cache is held once "
            "(kernels.prefix); 0: none",
            _numeric("cached_prefix_fraction"),
            default=0.0,
            zero_allowed=True,
            below=1.0,
        ),
        Axis(
            "usd_per_gpu_hour",
            "float",
            "price per GPU-hour",
            "USD/h",
            "rental price of one GPU (disaggregated: of the decode pool's type; a prefill_gpu of another type keeps "
            "its catalogue price); not swept: each GPU's catalogue price (grids/gpus.toml)",
            _per_gpu("usd_per_gpu_hour"),
            default=None,
            default_text="each GPU's catalogue price",
            readout=_catalogue("usd_per_hour"),
        ),
        Axis(
            "capex_usd_per_gpu",
            "float",
            "purchase price per GPU",
            "USD",
            "purchase price of one GPU, owned (disaggregated: of the decode pool's type, like usd_per_gpu_hour); "
            "not swept: each GPU's catalogue estimate (grids/gpus.toml capex_usd)",
            _per_gpu("capex_usd_per_gpu"),
            default=None,
            default_text="each GPU's catalogue estimate",
            readout=_catalogue("capex_usd"),
        ),
        *_ownership_axes(),
    )
}
"""Every axis, in the dataset's dimension order."""

REQUIRED = tuple(name for name, axis in AXES.items() if axis.required)
OPTIONAL = tuple(name for name, axis in AXES.items() if not axis.required)


def check_value(axis: Axis, where: str, value: Any) -> Any:
    """One value of ``axis``, validated: a positive whole number, a positive number, or a known name."""
    if axis.kind in ("integer", "float"):
        if not is_number(value):  # a bool, a string, or an integer beyond float64 (10**400)
            raise SpecError(
                f"{where}: expected a positive {'whole ' if axis.kind == 'integer' else ''}number, got {shorten(value)}"
            )
        if not math.isfinite(value) or value < 0 or (value == 0 and not axis.zero_allowed):
            limit = "non-negative" if axis.zero_allowed else "positive"
            raise SpecError(f"{where}: values must be {limit} and finite, got {shorten(value)}")
        if value >= axis.below:
            raise SpecError(f"{where}: values must be below {axis.below:g}, got {shorten(value)}")
        if axis.kind == "integer":
            if float(value) != math.floor(value):
                raise SpecError(f"{where}: expected whole numbers, got {shorten(value)}")
            return int(value)
        return float(value)
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: expected a name, got {shorten(value)}")
    if axis.check is not None:
        try:
            axis.check(value)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None
    elif axis.choices is not None and value not in axis.choices():
        raise SpecError(f"{where}: unknown {axis.long_name} '{value}'; expected one of: {', '.join(axis.choices())}")
    return value


def design_inputs(values: dict[str, Any]) -> Inputs:
    """Named kernel inputs of ONE design point (rank 0, float64 numpy) from axis values; axes not
    given take their defaults. Feed them to ``kernels.point.design_point``. A catalogue axis also
    takes a spec pytree itself instead of a key (tests, custom specs)."""
    unknown = sorted(set(values) - set(AXES))
    if unknown:
        raise SpecError(f"unknown axis '{unknown[0]}'; expected: {', '.join(AXES)}")
    inputs: Inputs = {}
    for name, axis in AXES.items():
        value = values.get(name, axis.default)
        if axis.kind == "catalogue" and value is not None and not isinstance(value, str):
            inputs[name] = value
            continue
        if value is None and axis.required:
            raise SpecError(f"missing value of '{name}' ({axis.cli_flag})")
        value = value if value is None else check_value(axis, axis.cli_flag, value)
        inputs.update(xp.tree_map(lambda x: np.asarray(x[0]), axis.encode([value])))
    return inputs
