"""``compute``: a whole sweep evaluated in memory, as the labelled Dataset its store would hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from grids.sweeps import SweepSpec, load_sweep
from sweep.engine.label import template
from sweep.engine.plan import make_plan

if TYPE_CHECKING:
    import xarray as xr


def compute(spec: SweepSpec | str, chunk_points: int | None = None) -> xr.Dataset:
    """Evaluate a whole sweep in memory and return the labelled Dataset (the store's content)."""
    spec = load_sweep(spec) if isinstance(spec, str) else spec
    plan = make_plan(spec, chunk_points)
    ds = template(plan)
    arrays = {name: np.empty(plan.shape, dtype=ds[name].dtype) for name in plan.stored}
    for chunk_id in plan.chunk_ids():
        region = plan.region(chunk_id)
        for name, values in plan.evaluate(chunk_id).items():
            arrays[name][region] = values
    for name, values in arrays.items():
        ds[name] = ds[name].copy(data=values)
    ds.attrs["sweep_complete"] = 1
    return ds
