"""GPUs: the TOML catalogue ``grids/gpus.toml`` (datasheet numbers with sources), as GPUSpec."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grids._values import float64_leaves, number, text
from grids.errors import SpecError
from grids.files import read_toml
from kernels.specs import GPUSpec

GPUS_FILE = Path(__file__).parent / "gpus.toml"

OPTIONAL = (
    "flop_per_s_fp8",
    "flop_per_s_int8",
    "flop_per_s_fp4",
    "link_bytes_per_s",
    "network_bytes_per_s",
    "usd_per_hour",
    "tdp_w",
    "capex_usd",
)
"""Fields that may be ``nan``: the chip lacks the feature (a design point needing it is then
infeasible), or it has no market or purchase price (rented or owned costs are then NaN)."""

DERIVED = ("link_kind",)
"""GPUSpec fields derived from text fields rather than read as numbers."""

LIMITS = {
    "flop_per_s_bf16": 1e18,
    "flop_per_s_fp8": 1e18,
    "flop_per_s_int8": 1e18,
    "flop_per_s_fp4": 1e18,
    "hbm_bytes": 1e14,
    "hbm_bytes_per_s": 1e15,
    "link_bytes_per_s": 1e15,
    "network_bytes_per_s": 1e15,
    "gpus_per_node": 2**16,
    "n_sm": 2**20,
    "tdp_w": 1e5,
    "usd_per_hour": 1e4,
    "capex_usd": 1e8,
}
"""Plausible maximum of each number, 100 to 1000 times the largest catalogued (B200's 9e15 fp4
FLOP/s, MI300X's 512 GB and 8 TB/s, NVLink 5's 900 GB/s, $5/GPU-hour, $40,000): beyond, a unit slip."""

TEXT_FIELDS = ("name", "vendor", "interconnect", "source", "accessed", "price_source", "price_accessed", "capex_source")


@dataclass(frozen=True)
class GPUEntry:
    """One catalogue GPU: key, the raw table (names, sources, dates) and its spec."""

    key: str
    table: dict[str, Any]
    spec: GPUSpec


def spec_from_table(where: str, table: dict[str, Any]) -> GPUSpec:
    """Validate one catalogue table and build its GPUSpec; ``where`` names file and entry."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table of GPU fields")
    for key in TEXT_FIELDS:
        text(where, table, key)
    fields = [f.name for f in dataclasses.fields(GPUSpec)]
    known = set(fields) - set(DERIVED) | set(TEXT_FIELDS) | {"notes"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field '{unknown[0]}'; expected fields: {', '.join(sorted(known))}")
    values = {
        name: number(
            where,
            table,
            name,
            allow_nan=name in OPTIONAL,
            integer=name in ("gpus_per_node", "n_sm"),
            maximum=LIMITS.get(name),
        )
        for name in fields
        if name not in DERIVED
    }
    values["link_kind"] = link_kind(table["interconnect"])
    return float64_leaves(GPUSpec, values)


LINK_KINDS = ("nvlink", "pcie", "infinity fabric")
"""Names of the ``GPUSpec.link_kind`` codes, in code order, as ``interconnect`` begins."""


def link_kind(interconnect: str) -> float:
    """The code of the fabric the catalogue's ``interconnect`` names: NVLink (and none, which
    has no bandwidth anyway) 0, PCIe through the host's switches and root complexes 1, AMD's
    Infinity Fabric mesh 2."""
    name = interconnect.strip().lower()
    return next((float(i) for i, kind in enumerate(LINK_KINDS) if name.startswith(kind)), 0.0)


def load_gpus(path: Path = GPUS_FILE) -> dict[str, GPUEntry]:
    """Every GPU of a catalogue file, validated, in file order."""
    data = read_toml(path)
    return {key: GPUEntry(key, table, spec_from_table(f"{path} [{key}]", table)) for key, table in data.items()}


def load_gpu(key: str, path: Path = GPUS_FILE) -> GPUEntry:
    """One GPU by catalogue key."""
    data = read_toml(path)
    if key not in data:
        raise SpecError(f"unknown GPU '{key}'; expected one of: {', '.join(data)} (from {path})")
    return GPUEntry(key, data[key], spec_from_table(f"{path} [{key}]", data[key]))
