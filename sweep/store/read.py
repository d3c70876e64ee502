"""Reading zarr stores of sweeps. Imports neither JAX nor the engine, so opening a store is fast.

Layout: the Dataset's variables at the root (one zarr chunk per engine chunk), and a boolean
array ``_progress/chunk_done`` with one element (and one zarr chunk) per engine chunk, set only
after that chunk's data is written. A rerun computes only chunks not marked done; the root attr
``sweep_complete`` turns true after the last one. Nothing is pickled; strings are vlen UTF-8.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

if TYPE_CHECKING:
    import xarray as xr

PROGRESS = "_progress/chunk_done"

# Below this many bytes of data a store is read with plain lazily indexed arrays instead of
# dask: an answer from a small store then costs no dask graph and no scheduler (import of
# `distributed` included), which is most of the time of a one-line `sweep query`. 256 MB is a
# small share of any machine that runs sweeps; above it, dask keeps memory bounded by chunk.
SMALL_STORE_BYTES = 256e6


def location(path: str | Path) -> str:
    """A store location as zarr and fsspec take it: a local path or any fsspec URL (s3://, gs://...)."""
    return str(path)


def _exists(url: str) -> bool:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    return fs.exists(root)


class IncompleteStoreWarning(UserWarning):
    """The store was opened before its sweep finished."""


def done_chunks(path: str | Path) -> np.ndarray:
    """Boolean array over the chunk grid: which chunks are written."""
    return np.asarray(zarr.open_array(location(path), path=PROGRESS, mode="r")[...])


def data_bytes(path: str | Path) -> int:
    """Uncompressed bytes of every array in a store (metadata only, nothing is read)."""
    group = zarr.open_group(location(path), mode="r", zarr_format=3)
    return sum(array.nbytes for _, array in group.arrays())


def open_sweep(path: str | Path, *, allow_incomplete: bool = True, dask: bool | None = None) -> xr.Dataset:
    """Open a sweep store lazily. An incomplete store says so (warning, or error if not allowed).

    ``dask``: variables as dask arrays chunked like the store (True), or as lazily indexed
    arrays that load on first use (False); by default dask only above ``SMALL_STORE_BYTES``.
    """
    import xarray as xr

    url = location(path)
    if not _exists(url):
        raise _spec_error(f"{url}: no such store")
    try:
        if dask is None:
            dask = data_bytes(url) > SMALL_STORE_BYTES
        ds = xr.open_zarr(url, consolidated=False, zarr_format=3, chunks="auto" if dask else None)
    except (zarr.errors.GroupNotFoundError, FileNotFoundError, ValueError, KeyError) as err:
        raise _spec_error(f"{url}: not a sweep store ({err})") from None
    if not ds.attrs.get("sweep_complete"):
        done = int(done_chunks(url).sum())
        message = (
            f"{url}: incomplete sweep, {done} of {ds.attrs.get('chunks_total')} chunks written; "
            "unwritten points read as NaN. Rerun `sweep run` with the same spec to finish it."
        )
        if not allow_incomplete:
            raise _spec_error(message)
        import warnings

        warnings.warn(message, IncompleteStoreWarning, stacklevel=2)
    return ds


def _spec_error(message: str) -> Exception:
    """``grids.errors.SpecError``, imported when raised: importing ``grids`` imports JAX."""
    from grids.errors import SpecError

    return SpecError(message)
