"""Small validators shared by the catalogue loaders (files are read by ``grids.files``)."""

from __future__ import annotations

import math
import sys
from typing import Any, TypeVar

import numpy as np

from grids.errors import SpecError
from grids.files import read_toml

__all__ = ["float64_leaves", "is_number", "number", "read_toml", "shorten", "text"]

T = TypeVar("T")


def is_number(value: Any) -> bool:
    """A JSON or TOML number (not a bool) that float() can hold: an integer beyond float64's range
    (``10**400``) is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def number(
    where: str,
    table: dict[str, Any],
    key: str,
    *,
    positive: bool = True,
    allow_nan: bool = False,
    integer: bool = False,
    allow_inf: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """``table[key]`` as a float, checked; ``where`` names the file and entry for messages.
    ``minimum`` and ``maximum`` bound it (inclusive): the plausible range of the field."""
    if key not in table:
        raise SpecError(f"{where}: missing field '{key}'")
    value = table[key]
    if not is_number(value):
        raise SpecError(f"{where}: field '{key}' must be a number, got {shorten(value)}")
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
    if minimum is not None and value < minimum:
        raise SpecError(f"{where}: field '{key}' must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        limit = f"{maximum:,.0f}" if float(maximum).is_integer() and maximum < 1e16 else f"{maximum:g}"
        raise SpecError(f"{where}: field '{key}' = {value:g} is beyond its plausible maximum {limit}")
    return value


def shorten(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a message stays one short line (an
    integer too long to print whole is described by its size)."""
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * math.log10(2))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
