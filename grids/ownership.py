"""Ownership terms (``grids/ownership.toml``): each one's default, units, meaning and source, read
by the axis registry (``grids.axes``), which makes every term a float axis."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from grids._values import float64_leaves, number, read_toml, text
from grids.errors import SpecError
from kernels.specs import Ownership

OWNERSHIP_FILE = Path(__file__).parent / "ownership.toml"


@dataclass(frozen=True)
class OwnershipTerm:
    """One ownership term: its default value and what it means."""

    name: str
    value: float
    units: str
    long_name: str
    description: str
    source: str
    zero_allowed: bool  # 0 is a meaningful value (no interest, no hosting fee)


@functools.lru_cache(maxsize=1)
def load_ownership(path: Path = OWNERSHIP_FILE) -> dict[str, OwnershipTerm]:
    """Every term of ``kernels.specs.Ownership``, in field order, validated."""
    data = read_toml(path)
    fields = [f.name for f in dataclasses.fields(Ownership)]
    missing = [f for f in fields if f not in data]
    unknown = sorted(set(data) - set(fields))
    if missing or unknown:
        raise SpecError(
            f"{path}: {'missing term ' + repr(missing[0]) if missing else 'unknown term ' + repr(unknown[0])}; "
            f"expected the terms: {', '.join(fields)}"
        )
    out = {}
    for name in fields:
        table, where = data[name], f"{path} [{name}]"
        if not isinstance(table, dict):
            raise SpecError(f"{where}: expected a table with value, units, long_name, description, source")
        zero = table.get("zero_allowed", False)
        if not isinstance(zero, bool):
            raise SpecError(f"{where}: field 'zero_allowed' must be true or false")
        value = number(where, table, "value", positive=not zero)
        if value < 0:
            raise SpecError(f"{where}: field 'value' must not be negative, got {value:g}")
        units, long_name, description, source = (
            text(where, table, k) for k in ("units", "long_name", "description", "source")
        )
        out[name] = OwnershipTerm(name, value, units, long_name, description, source, zero)
    return out


def default_ownership() -> Ownership:
    """The ownership terms at their defaults, as a spec (float64 leaves)."""
    return float64_leaves(Ownership, {name: term.value for name, term in load_ownership().items()})
