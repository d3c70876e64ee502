"""Display units people read. Only this layer converts from SI; every label says which unit."""

from __future__ import annotations

import math


def si(value: float, unit: str) -> str:
    """A value with a decimal prefix: 2.9e14 FLOP -> '291.53 TFLOP'; 1.4e11 byte -> '141.11 GB'."""
    if value is None or not math.isfinite(value):
        return f"{value} {unit}"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:,.2f} {prefix}{unit}"
    return f"{value:,.4g} {unit}"


def seconds(value: float) -> str:
    """Seconds shown as s, ms or us, whichever reads best."""
    if value is None or not math.isfinite(value):
        return str(value)
    if abs(value) >= 1.0:
        return f"{value:,.3f} s"
    if abs(value) >= 1e-3:
        return f"{value * 1e3:,.3f} ms"
    return f"{value * 1e6:,.3f} us"


def gigabytes(value: float) -> str:
    """Bytes as decimal GB (1e9 bytes), said as such."""
    return f"{value / 1e9:,.3f} GB"
