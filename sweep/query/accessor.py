"""``ds.econ``: domain helpers on sweep Datasets (an accessor, never a Dataset subclass)."""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from grids.errors import SpecError

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+|inf)\s*$")


def parse_condition(text: str) -> tuple[str, str, float]:
    """'user_tok_s>=30' -> ('user_tok_s', '>=', 30.0)."""
    match = CONDITION.match(text)
    expected = "expected VARIABLE OP NUMBER with OP one of >=, <=, >, <, =="
    if not match:
        raise SpecError(f"condition {text!r}: {expected}")
    try:
        value = float(match.group(3))
    except ValueError:
        raise SpecError(f"condition {text!r}: '{match.group(3)}' is not a number; {expected}") from None
    return match.group(1), match.group(2), value


@xr.register_dataset_accessor("econ")
class EconAccessor:
    """Queries on a sweep: ``ds.econ.feasible()``, ``ds.econ.where('ttft_s<=1')``, ``ds.econ.best(...)``."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def _var(self, name: str) -> xr.DataArray:
        if name not in self._ds.data_vars:
            raise SpecError(
                f"unknown variable '{name}'; expected one of: {', '.join(sorted(map(str, self._ds.data_vars)))}"
            )
        return self._ds[name]

    def mask(self, *conditions: str) -> xr.DataArray:
        """Boolean mask of feasible points meeting every condition ('user_tok_s>=30', ...)."""
        mask = self._ds["feasible"]
        for text in conditions:
            name, op, value = parse_condition(text)
            mask = mask & OPS[op](self._var(name), value)
        return mask

    def feasible(self) -> xr.Dataset:
        """The Dataset with infeasible points set to NaN."""
        return self._ds.where(self._ds["feasible"])

    def where(self, *conditions: str) -> xr.Dataset:
        """The Dataset with points failing any condition (or infeasible) set to NaN."""
        return self._ds.where(self.mask(*conditions))

    def interval(self, name: str) -> tuple[xr.DataArray, xr.DataArray]:
        """p10 and p90 of a latency, throughput or cost variable under each point's profile's
        stated 80% interval (``interval_log_p10/p90``; NaN where the profile states none), widened
        by the point's spread from the fitted terms where the sweep stored it (``term_intervals``).

        Example: ``lo, hi = ds.econ.interval("usd_per_mtok_output")``."""
        from kernels.point import INTERVAL_METRICS, TERMS_LOG_SD, interval, widen_interval

        if name not in INTERVAL_METRICS:
            raise SpecError(f"no interval for '{name}'; intervals exist for: {', '.join(INTERVAL_METRICS)}")
        value = self._var(name)
        stated = self._ds["interval_log_p10"], self._ds["interval_log_p90"]
        if TERMS_LOG_SD[name] in self._ds:  # a sweep with term_intervals: each point's own spread
            stated = widen_interval(*stated, self._ds[TERMS_LOG_SD[name]])
        lo, hi = interval(value, name, *stated)
        attrs = dict(value.attrs)
        return (
            lo.assign_attrs(attrs, long_name=f"{attrs.get('long_name', name)}, 10th percentile"),
            hi.assign_attrs(attrs, long_name=f"{attrs.get('long_name', name)}, 90th percentile"),
        )

    def sel(self, **selection: object) -> xr.Dataset:
        """``Dataset.sel`` with values cast to each coordinate's type (CLI strings welcome)."""
        cast = {}
        for dim, value in selection.items():
            if dim not in self._ds.dims:
                raise SpecError(f"unknown dimension '{dim}'; expected one of: {', '.join(map(str, self._ds.dims))}")
            coord = self._ds[dim]
            try:
                cast[dim] = int(str(value)) if np.issubdtype(coord.dtype, np.integer) else str(value)
            except ValueError:
                raise SpecError(f"{dim}={value}: expected a whole number; values: {coord.values.tolist()}") from None
            if cast[dim] not in set(coord.values.tolist()):
                raise SpecError(f"{dim}={value}: not on the axis; values: {coord.values.tolist()}")
        return self._ds.sel(cast)

    def best(
        self,
        metric: str,
        over: Sequence[str],
        *conditions: str,
        maximize: bool = False,
        columns: Sequence[str] = (),
    ) -> xr.Dataset:
        """For each combination of the other dims, the point over ``over`` that minimises (or
        maximises) ``metric`` among feasible points meeting ``conditions``.

        Returns a Dataset over the other dims: ``metric`` and ``columns`` at the chosen point, and
        the chosen value of each ``over`` dim as a coordinate. Where no point qualifies, the
        variables are NaN (and the coordinates meaningless).

        Example: for each model the cheapest (gpu, tp, batch) with user_tok_s >= 30, ttft_s <= 1:
        ``ds.econ.best("usd_per_mtok_output", ["gpu", "tp", "batch"], "user_tok_s>=30", "ttft_s<=1")``
        """
        over = list(over)
        if not over:
            raise SpecError("--over: expected at least one dimension to choose over")
        for dim in over:
            if dim not in self._ds.dims:
                raise SpecError(f"unknown dimension '{dim}' in --over; expected: {', '.join(map(str, self._ds.dims))}")
        names = [metric, *(c for c in columns if c != metric)]
        for name in names:
            self._var(name)
        target = self._var(metric).where(self.mask(*conditions))
        flat = target.stack(_cfg=over).fillna(-np.inf if maximize else np.inf)
        index = (flat.argmax("_cfg") if maximize else flat.argmin("_cfg")).compute()
        chosen = self._ds[names].assign({metric: target}).stack(_cfg=over).isel(_cfg=index).drop_vars("_cfg")
        found = np.isfinite(chosen[metric])
        best = chosen.where(found).assign_coords({d: chosen[d] for d in over})
        return best.transpose(*(d for d in self._ds.dims if d in best.dims))  # the sweep's dim order


def best_rows(best: xr.Dataset, metric: str, order: Sequence[str] = ()) -> pd.DataFrame:
    """A result of ``ds.econ.best`` as a table: one row per combination of the other dims where a
    point qualifies; columns the coordinates (in ``order``, the sweep's dim order, then any
    others), then the variables. xarray does not keep selected scalar coordinates in a fixed
    order, so the order is given rather than taken from ``best``."""
    frame = best.to_dataframe().reset_index()
    rank = {name: i for i, name in enumerate(order)}
    keys = sorted((c for c in frame.columns if c in best.coords), key=lambda c: rank.get(c, len(rank)))
    frame = frame[keys + [c for c in frame.columns if c not in keys]]
    return frame.dropna(subset=[metric]).reset_index(drop=True)
