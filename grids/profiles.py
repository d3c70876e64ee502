"""Engine profiles: the named efficiency and overhead terms of a serving engine, as data.

Each profile is ``grids/profiles/<name>.toml``; every term has a value and the source of that
value. Units, bounds and meaning of each term are defined once, here, in ``TERMS``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grids._values import float64_leaves, number, text
from grids.errors import SpecError
from grids.files import is_file, read_toml
from kernels.specs import EngineProfile

PROFILES_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True)
class Term:
    """What one profile term means, its unit, and the physically admissible range."""

    units: str
    lower: float
    upper: float
    meaning: str
    # A term added after profiles were written: its value where a profile file does not list it,
    # the behaviour from before the term existed, and the source that value carries.
    default: float | None = None
    default_source: str = ""


TERMS: dict[str, Term] = {
    "causal_attention": Term("1", 0.0, 1.0, "1: query i attends to i keys (causal); 0: to all keys (the article)"),
    "allreduce_volume_factor": Term(
        "1", 1.0, 2.0, "2: ring all-reduce moves 2(P-1)/P of the message; 1: the article's (P-1)/P"
    ),
    "reads_embedding": Term(
        "1", 0.0, 1.0, "1: a step streams the whole embedding table (the article); 0: gathers its rows"
    ),
    "matmul_eff": Term("1", 0.01, 1.0, "achieved / peak FLOP/s of weight matmuls with many tokens per step"),
    "matmul_tokens_half": Term("token", 0.0, 1e5, "tokens per step at which matmul efficiency is half its maximum"),
    "attn_eff": Term("1", 0.01, 1.0, "achieved / peak FLOP/s of attention (QK^T, softmax, AV)"),
    "weight_bw_eff": Term("1", 0.01, 1.0, "achieved / peak memory bandwidth when streaming weights"),
    "kv_bw_eff": Term("1", 0.01, 1.0, "achieved / peak memory bandwidth reading the KV cache, ample parallel work"),
    "kv_parallel_half": Term(
        "1", 0.0, 1e3, "KV work items (B*K/P) per multiprocessor at which KV-read efficiency halves"
    ),
    "step_overhead_s": Term("s", 0.0, 0.1, "fixed time per decode step: scheduling, kernel launches, sampling"),
    "prefill_overhead_s": Term("s", 0.0, 1.0, "fixed time per prefill pass"),
    "allreduce_latency_s": Term("s", 0.0, 1e-3, "latency of one all-reduce, independent of its size"),
    "link_eff": Term("1", 0.01, 1.0, "achieved / datasheet bandwidth of collectives over NVLink"),
    "pcie_link_eff": Term("1", 0.01, 1.0, "achieved / datasheet bandwidth of collectives between GPUs over PCIe"),
    "if_link_eff": Term(
        "1", 0.01, 1.0, "achieved / datasheet (all-peer aggregate) bandwidth of collectives over Infinity Fabric"
    ),
    "chunked_prefill": Term(
        "1", 0.0, 1.0, "1: in steady states prompts share steps with decodes (chunked prefill); 0: each pauses them"
    ),
    "prefill_chunk_tokens": Term(
        "token",
        0.0,
        math.inf,
        "with chunked_prefill, the most tokens of one prompt a step carries: ceil(I / K) pieces in as "
        "many steps (inf: whole prompts; 0: prompts spread evenly over the steps, the mean field)",
    ),
    "prefill_first_alone": Term(
        "1",
        0.0,
        1.0,
        "1: requests arriving together: the first is prefilled alone, the others together in the next "
        "pass, their first tokens at its end (an engine loop that admits what waits when a pass starts); "
        "0: one pass, first come first served",
    ),
    "mem_usable_frac": Term("1", 0.05, 1.0, "fraction of device memory available to weights and KV cache"),
    "kv_free_frac": Term("1", 0.05, 1.0, "fraction of the usable memory left after the weights given to KV cache"),
    "kv_paged": Term(
        "1",
        0.0,
        1.0,
        "1: KV pages allocated as sequences grow (PagedAttention); 0: prompt + output reserved per sequence",
    ),
    "max_num_seqs": Term("sequence", 1.0, math.inf, "the engine's limit on sequences in flight (inf: none)"),
    "max_num_tokens": Term(
        "token",
        1.0,
        math.inf,
        "the engine's limit on tokens in one step, prompt chunks and decodes together (inf: none)",
    ),
    "attn_len_half": Term(
        "token",
        0.0,
        1e5,
        "prompt length L at which a prompt's attention runs at half attn_eff: e(L) = attn_eff L / (L + L_half), "
        "the fixed cost of each query tile amortised over the keys it visits (0: constant attn_eff)",
        default=0.0,
        default_source="constant attention efficiency (no length dependence)",
    ),
    "attn_bf16_peak": Term(
        "1",
        0.0,
        1.0,
        "1: attention (QK^T, softmax, AV) runs at the 16-bit tensor peak whatever the weights' compute format; "
        "0: at the compute format's peak",
        default=0.0,
        default_source="attention at the compute format's peak",
    ),
    "mem_reserved_bytes": Term(
        "byte",
        0.0,
        1e11,
        "memory per GPU the engine holds beside the weights and the KV cache (CUDA context, runtime and "
        "decoder buffers, activation workspace), taken before the KV cache's share kv_free_frac",
        default=0.0,
        default_source="nothing held beside weights and KV cache (within mem_usable_frac)",
    ),
    "head_16bit": Term(
        "1",
        0.0,
        1.0,
        "1: the embedding table and the LM head stay in 16 bits when the other weights are stored narrower "
        "(fp8, int4: post-training quantization leaves them out); 0: stored in the weight format",
        default=0.0,
        default_source="embedding and LM head in the weight format",
    ),
    "pcie_latency_extra_s": Term(
        "s",
        0.0,
        1e-3,
        "latency one collective or transfer adds between GPUs linked over PCIe (through the host or a PCIe "
        "switch, no NVLink) beyond allreduce_latency_s",
        default=0.0,
        default_source="the same latency over every fabric",
    ),
    "roof_overlap": Term(
        "1",
        0.0,
        1.0,
        "share of the shorter of a pass's math time and memory time hidden under the longer: a pass is a "
        "sequence of kernels (weight matmuls, attention, norms), each bound by its own resource and run "
        "one after another, so its time lies between max(T_math, T_mem) (1, the ideal roofline) and "
        "T_math + T_mem (0)",
        default=1.0,
        default_source="the ideal roofline: math and memory traffic overlap completely (Williams, Waterman "
        "and Patterson 2009)",
    ),
}
assert tuple(TERMS) == tuple(f.name for f in dataclasses.fields(EngineProfile))


@dataclass(frozen=True)
class ProfileEntry:
    """One profile: name, description, the raw file content, and its spec."""

    name: str
    path: Path
    data: dict[str, Any]
    spec: EngineProfile

    def interval(
        self, gpu: str | None = None, scenario: str | None = None, model: str | None = None
    ) -> tuple[float, float]:
        """The profile's stated 80% interval of ln(measured speed / predicted speed), from its
        [fit] record. On a GPU and a model the fit measured (``fitted_gpus``, ``fitted_models``):
        its own residuals, those of the ``scenario`` where the fit recorded them apart
        ([fit.scenario_intervals]). On any other GPU (datasheet only) or model: the wider errors
        of held-out fits (``sweep calibrate --hold-out gpu,model``: leaving each GPU or model
        out), the widest of those that apply, any recorded one where the one that applies was
        not run. No GPU given counts as a GPU the fit did not measure; no model given, or a fit
        that did not record its models, as one it did; a fit that did not record its GPUs
        measured none. (NaN, NaN) for a profile never fitted. A
        rate r lies in [r e^lo, r e^hi], a time t in [t e^-hi, t e^-lo]."""
        record = self.data.get("fit", {})
        own_fit = _pair(record, "log_error_p10", "log_error_p90")
        if own_fit is None:
            return math.nan, math.nan
        held = {field: pair for field in HOLDOUT_FIELDS if (pair := _holdout(record, field)) is not None}
        unseen = self.unseen(gpu, model)
        if unseen and held:
            applying = [held[f] for f in unseen if f in held] or list(held.values())
            return min(p[0] for p in applying), max(p[1] for p in applying)
        table = record.get("scenario_intervals")
        own = table.get(scenario) if isinstance(table, dict) else None
        if own is None:
            return own_fit
        if not (isinstance(own, list) and len(own) == 2 and all(isinstance(v, float) for v in own)):
            raise SpecError(f"{self.path}: [fit.scenario_intervals] {scenario} must be [p10, p90]")
        return own[0], own[1]

    def unseen(self, gpu: str | None = None, model: str | None = None) -> list[str]:
        """Which of the point's GPU and model (``HOLDOUT_FIELDS``) the profile's fit did not
        measure: no GPU given, or a fit that recorded none, counts as unseen; no model given, or a
        fit that did not record its models, as seen."""
        record = self.data.get("fit", {})
        gpus = str(record.get("fitted_gpus", "")).split(",")
        models = str(record["fitted_models"]).split(",") if "fitted_models" in record else None
        seen = {"gpu": gpu in gpus, "model": models is None or model is None or model in models}
        return [field for field in HOLDOUT_FIELDS if not seen[field]]

    def covariance(self) -> tuple[tuple[str, ...], tuple[tuple[float, ...], ...]] | None:
        """The fitted terms and their covariance (term units squared, one row per term in the
        order of ``free_terms``) that ``sweep calibrate`` records in [fit.covariance]; None for a
        profile never fitted or fitted before the record held it."""
        record = self.data.get("fit", {})
        table = record.get("covariance")
        if table is None:
            return None
        names = tuple(n for n in str(record.get("free_terms", "")).split(",") if n)
        rows = tuple(tuple(table.get(n, ())) for n in names) if isinstance(table, dict) else ()
        ok = (
            names
            and set(table) == set(names)
            and all(len(r) == len(names) and all(isinstance(v, float) and math.isfinite(v) for v in r) for r in rows)
            and all(rows[i][i] >= 0.0 for i in range(len(names)))
        )
        if not ok:
            raise SpecError(
                f"{self.path}: [fit.covariance] must hold one row of {len(names)} finite numbers for each of "
                f"free_terms ({', '.join(names)}), with non-negative variances"
            )
        return names, rows


HOLDOUT_FIELDS = ("gpu", "model")
"""What a fit's held-out intervals may leave out: a GPU or a model it did not measure."""


def _pair(record: dict[str, Any], lo_key: str, hi_key: str) -> tuple[float, float] | None:
    lo, hi = record.get(lo_key), record.get(hi_key)
    return (lo, hi) if isinstance(lo, float) and isinstance(hi, float) else None


def _holdout(record: dict[str, Any], field: str) -> tuple[float, float] | None:
    """The held-out interval of leaving each ``field`` out: ``holdout_<field>_log_error_p10/p90``,
    or the unprefixed ``holdout_log_error_p10/p90`` of the fit's ``holdout_field`` (default gpu)."""
    named = _pair(record, f"holdout_{field}_log_error_p10", f"holdout_{field}_log_error_p90")
    if named is not None or record.get("holdout_field", "gpu") != field:
        return named
    return _pair(record, "holdout_log_error_p10", "holdout_log_error_p90")


def profile_names() -> list[str]:
    """Names of the profiles shipped in grids/profiles/, sorted."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def spec_from_terms(where: str, terms: dict[str, Any]) -> EngineProfile:
    """Validate a profile's ``[terms]`` table (each ``{value, source}``) into an EngineProfile."""
    unknown = sorted(set(terms) - set(TERMS), key=str)
    for name, entry in terms.items():
        if isinstance(entry, dict) and set(entry) - {"value", "source", "units"}:
            raise SpecError(f"{where}: term '{name}' has unknown keys; expected value, source, units")
    if unknown:
        raise SpecError(f"{where}: unknown term '{unknown[0]}'; expected: {', '.join(TERMS)}")
    values = {}
    for name, term in TERMS.items():
        entry = terms.get(name)
        if entry is None and term.default is not None:
            entry = {"value": term.default, "source": term.default_source}
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: missing term '{name}' ({{ value = ..., source = \"...\" }})")
        text(f"{where} term '{name}'", entry, "source")
        value = number(f"{where} term '{name}'", entry, "value", positive=False, allow_inf=math.isinf(term.upper))
        if not term.lower <= value <= term.upper:
            raise SpecError(
                f"{where}: term '{name}' = {value:g} is outside its physical range "
                f"[{term.lower:g}, {term.upper:g}] {term.units}"
            )
        values[name] = value
    return float64_leaves(EngineProfile, values)


def load_profile(name_or_path: str) -> ProfileEntry:
    """A profile by name (``roofline``, ``article``) or path to a profile TOML."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PROFILES_DIR / f"{name_or_path}.toml"
        if not is_file(path):
            raise SpecError(
                f"unknown profile '{name_or_path}'; expected a path to a profile TOML "
                f"or one of: {', '.join(profile_names())}"
            )
    data = read_toml(path)
    terms = data.get("terms")
    if not isinstance(terms, dict):
        raise SpecError(f"{path}: missing [terms] table")
    if not isinstance(data.get("fit", {}), dict):
        raise SpecError(f"{path}: [fit] must be a table (the record of the fit)")
    for key in ("name", "description"):
        if not isinstance(data.get(key, ""), str):
            raise SpecError(f"{path}: '{key}' must be a string")
    return ProfileEntry(path.stem, path, data, spec_from_terms(str(path), terms))


def term_source(entry: ProfileEntry, name: str) -> str:
    """The source of term ``name`` in a profile: as its file states it, or the term's default
    source where the file predates the term (``Term.default``)."""
    listed = entry.data["terms"].get(name)
    return listed["source"] if isinstance(listed, dict) else TERMS[name].default_source


def _toml_value(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_profile(
    path: Path, name: str, description: str, values: dict[str, float], sources: dict[str, str], fit: dict[str, Any]
) -> None:
    """Write a profile TOML: every term with value, units and source, and a [fit] record."""
    lines = [
        "# Engine profile written by `sweep calibrate`; see [fit] for the data and the errors.",
        f"name = {_toml_string(name)}",
        f"description = {_toml_string(description)}",
        "",
        "[terms]",
    ]
    for term, meta in TERMS.items():
        lines.append(
            f"{term} = {{ value = {_toml_value(values[term])}, units = {_toml_string(meta.units)}, "
            f"source = {_toml_string(sources[term])} }}"
        )
    lines += ["", "[fit]"]
    for key, value in fit.items():
        if isinstance(value, dict):
            continue
        lines.append(f"{key} = {_toml_string(value) if isinstance(value, str) else _toml_value(value)}")
    for key, value in fit.items():
        if isinstance(value, dict):
            lines += ["", f"[fit.{key}]"]
            for k, v in value.items():
                if isinstance(v, (list, tuple)):
                    text_value = "[" + ", ".join(_toml_value(x) for x in v) + "]"
                else:
                    text_value = _toml_string(v) if isinstance(v, str) else _toml_value(v)
                lines.append(f"{_toml_string(k)} = {text_value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    spec_from_terms(str(path), read_toml(path)["terms"])  # what was written loads back
