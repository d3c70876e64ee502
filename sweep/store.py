"""Zarr stores of sweeps: created with all metadata first, filled chunk region by chunk region.

Layout: the Dataset's variables at the root (one zarr chunk per engine chunk), and a boolean
array ``_progress/chunk_done`` with one element (and one zarr chunk) per engine chunk, set only
after that chunk's data is written. A rerun computes only chunks not marked done; the root attr
``sweep_complete`` turns true after the last one. Nothing is pickled; strings are vlen UTF-8.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from grids.axes import AXES
from grids.errors import SpecError
from kernels.point import METRICS
from kernels.roofline import BOTTLENECKS
from sweep.engine import STORED, Plan, params_by_model
from sweep.provenance import provenance, spec_identity, store_version

if TYPE_CHECKING:
    import xarray as xr

PROGRESS = "_progress/chunk_done"
COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
"""Fast byte-shuffled LZ4: float32 metrics compress several-fold, NaN (infeasible) regions to nearly nothing."""


def location(path: str | Path) -> str:
    """A store location as zarr and fsspec take it: a local path or any fsspec URL (s3://, gs://...)."""
    return str(path)


def _exists(url: str) -> bool:
    fs, root = fsspec.core.url_to_fs(url)
    return fs.exists(root)


def _remove(url: str) -> None:
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(root, recursive=True)


class IncompleteStoreWarning(UserWarning):
    """The store was opened before its sweep finished."""


COORD_DTYPES = {"integer": np.int64, "float": np.float64}
"""Coordinate dtype of a numeric axis kind; names are variable-length strings."""


def _dtype(name: str, float_dtype: Any) -> Any:
    return {"bool": np.bool_, "int8": np.int8, "float64": np.float64}.get(METRICS[name].dtype, float_dtype)


def variable_attrs(name: str) -> dict[str, Any]:
    """CF attributes of a metric's data variable (kernels.point.METRICS; the bottleneck's flags)."""
    info = METRICS[name]
    attrs: dict[str, Any] = dict(
        units=info.units, long_name=info.long_name, description=info.description, source=info.source
    )
    if name == "bottleneck":
        attrs.update(flag_values=list(range(len(BOTTLENECKS))), flag_meanings=" ".join(BOTTLENECKS))
    return attrs


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
    for name in STORED:
        dtype = _dtype(name, plan.dtype)
        lazy = da.zeros(plan.shape, chunks=plan.chunks, dtype=dtype)
        data_vars[name] = xr.Variable(plan.dims, lazy, attrs=variable_attrs(name))
    data_vars["params_total"] = xr.Variable("model", params_by_model(plan.spec), attrs=variable_attrs("params_total"))
    for name, value in plan.spec.fixed.items():  # the value a point used, where an axis records it
        readout = AXES[name].readout
        if readout is not None:
            dims, values = readout(plan.spec.axes, value)
            data_vars[name] = xr.Variable(dims, values, attrs=AXES[name].attrs())
    ds = xr.Dataset(data_vars, coords=coords, attrs=provenance(plan.spec, plan.chunks))
    ds.attrs.update(sweep_complete=0, chunks_total=plan.n_chunks)
    return ds


def _encoding(ds: xr.Dataset, plan: Plan) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    for name in STORED:
        fill = np.nan if np.issubdtype(ds[name].dtype, np.floating) else None
        enc[name] = {"chunks": plan.chunks, "compressors": [COMPRESSOR], "fill_value": fill}
    return enc


def create(path: str | Path, plan: Plan, overwrite: bool) -> str:
    """Prepare ``path`` for ``plan``: 'new', 'resume' (same spec, unfinished), 'complete', or
    'recomputed' (same spec, made by another version of the code or catalogues: started afresh,
    so that no store mixes chunks of two versions of the model).

    An existing store made by another spec is replaced only with ``overwrite``.
    """
    url = location(path)
    status = "new"
    if _exists(url) and not overwrite:
        try:
            attrs = dict(zarr.open_group(url, mode="r").attrs)
        except (zarr.errors.GroupNotFoundError, FileNotFoundError, ValueError):
            raise SpecError(f"{url}: exists and is not a sweep store; choose another -o or pass --overwrite") from None
        if attrs.get("spec_identity") != spec_identity(plan.spec, plan.chunks):
            raise SpecError(
                f"{url}: holds a different sweep (spec or chunking changed); pass --overwrite to replace it"
            )
        if attrs.get("code_version") == store_version(plan.spec):
            return "complete" if attrs.get("sweep_complete") else "resume"
        status = "recomputed"
    if _exists(url):
        _remove(url)
    ds = template(plan)
    ds.to_zarr(url, mode="w", compute=False, consolidated=False, encoding=_encoding(ds, plan), zarr_format=3)
    root = zarr.open_group(url, mode="r+")
    root.create_array(PROGRESS, shape=plan.grid, chunks=(1,) * len(plan.grid), dtype=bool, fill_value=False)
    return status


def done_chunks(path: str | Path) -> np.ndarray:
    """Boolean array over the chunk grid: which chunks are written."""
    return np.asarray(zarr.open_array(location(path), path=PROGRESS, mode="r")[...])


def write_chunk(root: zarr.Group, plan: Plan, chunk_id: tuple[int, ...], results: dict[str, np.ndarray]) -> None:
    """Write one chunk's metrics into its region, then mark it done (in that order)."""
    region = plan.region(chunk_id)
    for name, values in results.items():
        # Written whatever the values: zarr's default first scans each chunk for all-fill (NaN)
        # values to skip it, which cost ~25% of the write time (measured on the bench grid).
        array = root[name]
        assert isinstance(array, zarr.Array)
        array.with_config({"write_empty_chunks": True})[region] = values
    progress = root[PROGRESS]
    assert isinstance(progress, zarr.Array)
    progress[chunk_id] = True


def finish(path: str | Path) -> None:
    """Mark the store complete once every chunk is done."""
    if not done_chunks(path).all():
        raise RuntimeError(f"{location(path)}: not every chunk is written")
    root = zarr.open_group(location(path), mode="r+")
    root.attrs["sweep_complete"] = 1


def open_sweep(path: str | Path, *, allow_incomplete: bool = True) -> xr.Dataset:
    """Open a sweep store lazily. An incomplete store says so (warning, or error if not allowed)."""
    import xarray as xr

    url = location(path)
    if not _exists(url):
        raise SpecError(f"{url}: no such store")
    try:
        ds = xr.open_zarr(url, consolidated=False, zarr_format=3)
    except (zarr.errors.GroupNotFoundError, FileNotFoundError, ValueError, KeyError) as err:
        raise SpecError(f"{url}: not a sweep store ({err})") from None
    if not ds.attrs.get("sweep_complete"):
        done = int(done_chunks(url).sum())
        message = (
            f"{url}: incomplete sweep, {done} of {ds.attrs.get('chunks_total')} chunks written; "
            "unwritten points read as NaN. Rerun `sweep run` with the same spec to finish it."
        )
        if not allow_incomplete:
            raise SpecError(message)
        import warnings

        warnings.warn(message, IncompleteStoreWarning, stacklevel=2)
    return ds
