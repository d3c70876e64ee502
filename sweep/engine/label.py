"""The Dataset skeleton of a sweep: coordinates and variables with their attrs (units, long names,
flags), provenance, and the parameter counts per model, with lazy (never computed) data that
``compute`` fills in memory and ``sweep.store.write`` lays out in zarr."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from grids.axes import AXES, stack
from grids.models import load_model
from grids.profiles import load_profile
from grids.sweeps import SweepSpec
from kernels.params import param_counts
from kernels.point import METRICS, TERMS_LOG_SD
from kernels.roofline import BOTTLENECKS
from sweep.engine.plan import Plan, spec_profiles
from sweep.engine.provenance import provenance

if TYPE_CHECKING:
    import xarray as xr


def params_by_model(spec: SweepSpec) -> np.ndarray:
    """Parameter counts per model in float64 (float32 cannot hold 70,553,706,496 exactly)."""
    with jax.enable_x64(True):
        counts = jax.jit(jax.vmap(param_counts))(stack([load_model(k).spec for k in spec.axes["model"]]))
        return np.asarray(counts.total, np.float64)


COORD_DTYPES = {"integer": np.int64, "float": np.float64}
"""Coordinate dtype of a numeric axis kind; names are variable-length strings."""


def _dtype(name: str, float_dtype: Any) -> Any:
    if name not in METRICS:  # a spread from the fitted terms (TERMS_LOG_SD): the sweep's float
        return float_dtype
    return {"bool": np.bool_, "int8": np.int8, "float64": np.float64}.get(METRICS[name].dtype, float_dtype)


def variable_attrs(name: str) -> dict[str, Any]:
    """CF attributes of a metric's data variable (kernels.point.METRICS; the bottleneck's flags;
    a metric's spread from the fitted terms, kernels.point.TERMS_LOG_SD)."""
    spread_of = {v: k for k, v in TERMS_LOG_SD.items()}
    if name in spread_of:
        metric = METRICS[spread_of[name]]
        return dict(
            units="1",
            long_name=f"sd of ln {metric.long_name} from the profile's fitted terms",
            description="standard deviation of the log of the metric from the covariance of the terms its "
            "profile's fit recorded ([fit.covariance]), by forward-mode derivatives of the point's program; "
            "ds.econ.interval widens the stated interval by it (0: a profile never fitted)",
            source="sweep.calibration.uncertainty (Laplace approximation of the fit); kernels.sensitivity.terms_log_sd",
        )
    info = METRICS[name]
    attrs: dict[str, Any] = dict(
        units=info.units, long_name=info.long_name, description=info.description, source=info.source
    )
    if name == "bottleneck":
        attrs.update(flag_values=list(range(len(BOTTLENECKS))), flag_meanings=" ".join(BOTTLENECKS))
    return attrs


INTERVAL_VARIABLES = {
    "interval_log_p10": "10th percentile",
    "interval_log_p90": "90th percentile",
}
"""The profile's stated 80% interval, stored per profile: ``ds.econ.interval(name)`` turns it into
p10 and p90 of any latency, throughput or cost (``kernels.point.INTERVAL_METRICS``)."""


def stated_interval(spec: SweepSpec) -> dict[str, Any]:
    """Each profile's stated 80% interval of ln(measured speed / predicted speed) for each model
    on each GPU (narrower for a model and GPU its fit measured) under each scenario (where its fit
    recorded one apart), over the profile and scenario dims where they are swept and the model
    and gpu dims (NaN for a profile never fitted: no interval is claimed)."""
    import xarray as xr

    swept = "profile" in spec.axes
    names = spec_profiles(spec)
    scenarios = spec.axes.get("scenario") or [spec.fixed.get("scenario") or AXES["scenario"].default]
    entries = [load_profile(n) for n in names]  # each file read once
    models = spec.coords("model")  # a config.json path by its stem, as the model coordinate
    bounds = np.asarray(
        [[[[e.interval(g, s, m) for s in scenarios] for g in spec.axes["gpu"]] for m in models] for e in entries],
        dtype=np.float64,
    )  # (profile, model, gpu, scenario, 2)
    dims = ("profile",) * swept + ("model", "gpu") + ("scenario",) * ("scenario" in spec.axes)
    out = {}
    for column, (name, which) in enumerate(INTERVAL_VARIABLES.items()):
        values = bounds[..., column]
        values = values if "scenario" in spec.axes else values[..., 0]
        values = values if swept else values[0]
        attrs = {
            "units": "1",
            "long_name": f"{which} of ln(measured / predicted speed)",
            "description": "the engine profile's stated 80% interval from its calibration: its own errors "
            "on a GPU and model it was fitted to (its scenario's own where the fit recorded them apart), its "
            "held-out errors (sweep calibrate --hold-out gpu,model) on any other; "
            "a rate lies in [r e^p10, r e^p90], a time or "
            "cost in [t e^-p90, t e^-p10] four times in five; NaN: the profile states none",
        }
        out[name] = xr.Variable(dims, values, attrs=attrs)
    return out


def template(plan: Plan) -> xr.Dataset:
    """The sweep's Dataset with lazy (never computed) data: coordinates, attrs and encodings."""
    import dask.array as da  # here, not at import: Dask workers only write chunks (~0.8 s less to start)
    import xarray as xr

    coords = {}
    for dim in plan.spec.axes:
        kind = AXES[dim].kind
        data = np.asarray(plan.spec.coords(dim), dtype=COORD_DTYPES.get(kind, object))
        if data.dtype == object:
            data = data.astype(np.dtypes.StringDType())
        coords[dim] = xr.Variable(dim, data, attrs=AXES[dim].attrs())
    data_vars = {}
    for name in plan.stored:
        dtype = _dtype(name, plan.dtype)
        lazy = da.zeros(plan.shape, chunks=plan.chunks, dtype=dtype)
        data_vars[name] = xr.Variable(plan.dims, lazy, attrs=variable_attrs(name))
    data_vars["params_total"] = xr.Variable("model", params_by_model(plan.spec), attrs=variable_attrs("params_total"))
    for name, value in plan.spec.fixed.items():  # the value a point used, where an axis records it
        readout = AXES[name].readout
        if readout is not None:
            dims, values = readout(plan.spec.axes, value)
            data_vars[name] = xr.Variable(dims, values, attrs=AXES[name].attrs())
    data_vars.update(stated_interval(plan.spec))
    ds = xr.Dataset(data_vars, coords=coords, attrs=provenance(plan.spec, plan.chunks))
    ds.attrs.update(sweep_complete=0, chunks_total=plan.n_chunks)
    return ds
