"""The Python API, mirroring the CLI: ``compute`` a sweep in memory, ``run_sweep`` it to zarr,
``open_sweep`` a store (``verify_store``, ``repair_store`` it), ``explain`` one point, ``plot``,
``write_report``, ``serve``. Importing it registers the ``ds.econ`` accessor. Re-exports only: no
other sweep module imports this one."""

from __future__ import annotations

import xarray as xr

import sweep.query.accessor  # noqa: F401  (registers ds.econ)
from grids.sweeps import load_sweep
from sweep.engine.compute import compute
from sweep.query.explain import explain
from sweep.store.read import open_sweep
from sweep.store.run import run_sweep
from sweep.store.verify import repair_store, verify_store

__all__ = [
    "compute",
    "explain",
    "load_sweep",
    "open_sweep",
    "plot",
    "repair_store",
    "run_sweep",
    "serve",
    "verify_store",
    "write_report",
]


def plot(ds: xr.Dataset, kind: str, sel: dict | None = None):
    """A figure of the sweep (``sweep plot``): see ``sweep.viz.figures.KINDS``."""
    from sweep.viz.figures import plot as _plot

    return _plot(ds, kind, sel or {})


def write_report(spec_or_store, out):
    """A self-contained HTML report (``sweep report``)."""
    from sweep.viz.report import write_report as _write

    return _write(spec_or_store, out)


def serve(store, port: int = 5006, address: str = "127.0.0.1"):
    """The Panel explorer, on 127.0.0.1 unless ``address`` says otherwise (``sweep explore``)."""
    from sweep.viz.explore import serve as _serve

    return _serve(store, port, address=address)
