"""The Python API, mirroring the CLI: ``compute`` a sweep in memory, ``run_sweep`` it to zarr,
``open_sweep`` a store, ``explain`` one point. Importing it registers the ``ds.econ`` accessor."""

from __future__ import annotations

import numpy as np
import xarray as xr

import sweep.accessor  # noqa: F401  (registers ds.econ)
from grids.sweeps import SweepSpec, load_sweep
from sweep.engine import make_plan
from sweep.explain import explain
from sweep.run import run_sweep
from sweep.store import open_sweep, template

__all__ = ["compute", "explain", "load_sweep", "open_sweep", "run_sweep"]


def compute(spec: SweepSpec | str, chunk_points: int | None = None) -> xr.Dataset:
    """Evaluate a whole sweep in memory and return the labelled Dataset (the store's content)."""
    spec = load_sweep(spec) if isinstance(spec, str) else spec
    plan = make_plan(spec, chunk_points)
    ds = template(plan)
    arrays = {name: np.empty(plan.shape, dtype=ds[name].dtype) for name in ds.data_vars if name != "params_total"}
    for chunk_id in plan.chunk_ids():
        region = plan.region(chunk_id)
        for name, values in plan.evaluate(chunk_id).items():
            arrays[name][region] = values
    for name, values in arrays.items():
        ds[name] = ds[name].copy(data=values)
    ds.attrs["sweep_complete"] = 1
    return ds
