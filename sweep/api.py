"""The Python API, mirroring the CLI: ``compute`` a sweep in memory, ``run_sweep`` it to zarr,
``open_sweep`` a store, ``explain`` one point. Importing it registers the ``ds.econ`` accessor."""

from __future__ import annotations

import numpy as np
import xarray as xr

import sweep.accessor  # noqa: F401  (registers ds.econ)
from grids.sweeps import SweepSpec, load_sweep
from sweep.engine import STORED, make_plan
from sweep.explain import explain
from sweep.run import run_sweep
from sweep.store import open_sweep, template

__all__ = ["compute", "explain", "load_sweep", "open_sweep", "plot", "run_sweep", "serve", "write_report"]


def plot(ds: xr.Dataset, kind: str, sel: dict | None = None):
    """A figure of the sweep (``sweep plot``): see ``sweep.plots.KINDS``."""
    from sweep.plots import plot as _plot

    return _plot(ds, kind, sel or {})


def write_report(spec_or_store, out):
    """A self-contained HTML report (``sweep report``)."""
    from sweep.report import write_report as _write

    return _write(spec_or_store, out)


def serve(store, port: int = 5006):
    """The Panel explorer on 127.0.0.1 (``sweep explore``)."""
    from sweep.explore import serve as _serve

    return _serve(store, port)


def compute(spec: SweepSpec | str, chunk_points: int | None = None) -> xr.Dataset:
    """Evaluate a whole sweep in memory and return the labelled Dataset (the store's content)."""
    spec = load_sweep(spec) if isinstance(spec, str) else spec
    plan = make_plan(spec, chunk_points)
    ds = template(plan)
    arrays = {name: np.empty(plan.shape, dtype=ds[name].dtype) for name in STORED}
    for chunk_id in plan.chunk_ids():
        region = plan.region(chunk_id)
        for name, values in plan.evaluate(chunk_id).items():
            arrays[name][region] = values
    for name, values in arrays.items():
        ds[name] = ds[name].copy(data=values)
    ds.attrs["sweep_complete"] = 1
    return ds
