"""Display units people read: the one place where SI values become GB, ms, tokens/s, $/Mtok, for
figures, tables and ``sweep explain`` alike; every label says which unit.

Every sweep variable is stored in SI base units (byte, s, FLOP, token/s, USD/Mtoken: its ``units``
attr). A figure shows ``value / scale`` and says the display unit in its axis label, so "GB" here
always means 1e9 bytes (never 2^30) and "ms" 1e-3 s. Text (``sweep explain``) uses ``si``,
``seconds`` and ``gigabytes``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # annotations only: explain's text loads no xarray (1.5-2.5 s)
    import xarray as xr


class Unit(NamedTuple):
    """How to show a quantity: divide the SI value by ``scale``, label it ``label``."""

    scale: float
    label: str


BY_SI_UNIT = {
    "byte": Unit(1e9, "GB"),
    "FLOP": Unit(1e12, "TFLOP"),
    "s": Unit(1.0, "s"),
    "token/s": Unit(1.0, "tokens/s"),
    "token/s/GPU": Unit(1.0, "tokens/s per GPU"),
    "USD/Mtoken": Unit(1.0, "$/Mtok"),
    "USD/h": Unit(1.0, "$/h"),
    "USD": Unit(1.0, "$"),
    "J/token": Unit(1.0, "J/token"),
    "sequence": Unit(1.0, "sequences"),
    "token": Unit(1.0, "tokens"),
    "GPU": Unit(1.0, "GPUs"),
    "1": Unit(1.0, ""),
}
"""Display unit of each SI unit of the stored variables (decimal prefixes: GB = 1e9 bytes)."""

BY_VARIABLE = {
    "params_total": Unit(1e9, "billion"),
    "ttft_s": Unit(1e-3, "ms"),
    "tpot_s": Unit(1e-3, "ms"),
    "prefill_s": Unit(1e-3, "ms"),
    "allreduce_s_per_token": Unit(1e-6, "µs"),
}
"""Variables shown in another unit than their SI unit's default (latencies people quote in ms)."""

GPU_FIELDS = {
    "hbm_bytes": ("memory per GPU", Unit(1e9, "GB")),
    "hbm_bytes_per_s": ("memory bandwidth", Unit(1e12, "TB/s")),
    "flop_per_s_bf16": ("dense bf16 peak", Unit(1e12, "TFLOP/s")),
    "flop_per_s_fp8": ("dense fp8 peak", Unit(1e12, "TFLOP/s")),
    "link_bytes_per_s": ("scale-up link per direction", Unit(1e9, "GB/s")),
    "usd_per_hour": ("price per GPU-hour", Unit(1.0, "$/h")),
}
"""Display of GPU catalogue fields (grids/gpus.toml, SI values)."""


def unit_of(name: str, si_unit: str) -> Unit:
    """The display unit of variable ``name`` whose SI unit is ``si_unit``."""
    if name in BY_VARIABLE:
        return BY_VARIABLE[name]
    return BY_SI_UNIT.get(si_unit, Unit(1.0, si_unit))


def label(long_name: str, unit: Unit | str) -> str:
    """An axis label: 'KV cache per GPU (GB)'; no brackets for dimensionless quantities."""
    text = unit.label if isinstance(unit, Unit) else unit
    return f"{long_name} ({text})" if text else long_name


def to_display(da: xr.DataArray) -> xr.DataArray:
    """``da`` divided into its display unit; attrs ``units`` become the display unit and
    ``si_units``/``display_scale`` say what was done."""
    unit = unit_of(str(da.name), da.attrs.get("units", "1"))
    out = da / unit.scale if unit.scale != 1.0 else da.copy()
    out.attrs = dict(da.attrs, units=unit.label, si_units=da.attrs.get("units", "1"), display_scale=unit.scale)
    return out.rename(da.name)


def var_label(ds: xr.Dataset, name: str) -> str:
    """Axis label of a data variable or coordinate from its ``long_name`` and display unit."""
    attrs = ds[name].attrs
    return label(attrs.get("long_name", name), unit_of(name, attrs.get("units", "1")))


def fmt_number(value: float, digits: int = 3) -> str:
    """A number for a table or label: 3 significant digits, thousands separators, no exponent
    between 1e-3 and 1e9 ('nan' stays 'n/a')."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    value = float(value)
    if value == 0.0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= 9 or magnitude < -3:
        return f"{value:.{digits - 1}e}"
    decimals = max(digits - 1 - magnitude, 0)
    return f"{value:,.{decimals}f}"


def fmt_display(name: str, si_unit: str, value: float) -> str:
    """One SI value in its display unit with the unit: ('ttft_s', 's', 0.31) -> '310 ms'."""
    unit = unit_of(name, si_unit)
    text = fmt_number(float(value) / unit.scale)
    return f"{text} {unit.label}".rstrip() if text != "n/a" else text


def tokens(value: float) -> str:
    """A token count for tick labels: 512, 2k, 128k, 1M (binary-friendly: 2048 -> '2k')."""
    value = float(value)
    for factor, suffix in ((2**20, "M"), (2**10, "k")):
        if value >= factor and value % factor == 0:
            return f"{int(value // factor)}{suffix}"
    return f"{value:,.0f}"


def log2_ticks(values: np.ndarray | list[float], labeller=tokens) -> list[tuple[float, str]]:
    """Ticks at the powers of two spanning ``values`` (at most about 10 of them), labelled."""
    finite = np.asarray([v for v in np.asarray(values, dtype=float).ravel() if np.isfinite(v) and v > 0])
    if finite.size == 0:
        return []
    lo, hi = math.floor(math.log2(finite.min())), math.ceil(math.log2(finite.max()))
    step = max(1, math.ceil((hi - lo + 1) / 10))
    return [(float(2**k), labeller(2**k)) for k in range(lo, hi + 1, step)]


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
