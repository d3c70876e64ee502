"""Small validators shared by the catalogue loaders."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from grids.errors import SpecError


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning syntax errors into a SpecError naming the file."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML ({err})") from None


def number(
    where: str,
    table: dict[str, Any],
    key: str,
    *,
    positive: bool = True,
    allow_nan: bool = False,
    integer: bool = False,
    allow_inf: bool = False,
) -> float:
    """``table[key]`` as a float, checked; ``where`` names the file and entry for messages."""
    if key not in table:
        raise SpecError(f"{where}: missing field '{key}'")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: field '{key}' must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        if allow_nan:
            return value
        raise SpecError(f"{where}: field '{key}' must be a number, not nan")
    if math.isinf(value) and not allow_inf:
        raise SpecError(f"{where}: field '{key}' must be finite, got {value:g}")
    if positive and not value > 0:
        raise SpecError(f"{where}: field '{key}' must be positive, got {value:g}")
    if integer and value != math.floor(value):
        raise SpecError(f"{where}: field '{key}' must be a whole number, got {value:g}")
    return value


def text(where: str, table: dict[str, Any], key: str) -> str:
    """``table[key]`` as a non-empty string."""
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: field '{key}' must be a non-empty string")
    return value
