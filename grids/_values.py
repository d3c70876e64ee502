"""Small validators shared by the catalogue loaders."""

from __future__ import annotations

import math
import sys
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from grids.errors import SpecError

T = TypeVar("T")


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


def float64_leaves(cls: type[T], values: dict[str, float]) -> T:
    """A spec dataclass of float64 rank-0 leaves: JAX arrays where JAX's 64-bit mode is on (tests,
    float64 sweeps, explain), numpy arrays otherwise, where JAX would silently make them float32
    (the engine and explain convert them inside their own 64-bit scope)."""
    jax = sys.modules.get("jax")  # not imported: nothing to convert for (explain, catalog run in numpy)
    if jax is not None and jax.config.read("jax_enable_x64"):
        return cls(**{k: jax.numpy.asarray(v, dtype=np.float64) for k, v in values.items()})
    return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in values.items()})
