"""Writing zarr stores of sweeps: created with all metadata first (the engine's Dataset skeleton),
filled chunk region by chunk region, each chunk's checksums recorded and the chunk marked done after
its data (layout: ``sweep.store.read``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import fsspec
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from grids.errors import SpecError
from sweep.engine.label import template
from sweep.engine.plan import Plan
from sweep.engine.provenance import spec_identity, store_version
from sweep.store.lock import held, lock_file
from sweep.store.read import CHECKSUM_ALGORITHM, CHECKSUMS, PROGRESS, _exists, checksum, done_chunks, location

if TYPE_CHECKING:
    import xarray as xr

COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
"""Fast byte-shuffled LZ4: float32 metrics compress several-fold, NaN (infeasible) regions to nearly nothing."""


def _remove(url: str) -> None:
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(root, recursive=True)


def _occupied(url: str) -> bool:
    """Whether anything is at ``url`` but the writer lock this process holds (and its directory)."""
    if not _exists(url):
        return False
    lock = lock_file(url)
    if lock is None or not held(url):
        return True
    return any(not _lock_entry(entry, lock) for entry in [*lock.parent.parent.iterdir(), *lock.parent.iterdir()])


def _lock_entry(entry: Path, lock: Path) -> bool:
    """The lock's directory, the lock, or a lock file of another process (its temporary or stale copy)."""
    return entry == lock.parent or (entry.parent == lock.parent and entry.name.startswith(lock.name))


def _clear(url: str) -> None:
    """Remove the store at ``url``, all but the writer lock this process holds while it writes."""
    lock = lock_file(url)
    if lock is None or not held(url):
        _remove(url)
        return
    for entry in [*lock.parent.parent.iterdir(), *lock.parent.iterdir()]:
        if _lock_entry(entry, lock):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _encoding(ds: xr.Dataset, plan: Plan) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    for name in plan.stored:
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
    if _occupied(url) and not overwrite:
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
        _clear(url)
    try:
        _create(url, plan)
    except OSError:  # a full disk: a store whose metadata is not all written is none to resume
        if _exists(url):
            _clear(url)
        raise
    return status


def _create(url: str, plan: Plan) -> None:
    """The store's metadata (the Dataset's skeleton), its record of progress and of checksums."""
    ds = template(plan)
    mode: Literal["w", "a"] = "w"
    if held(url):
        # Mode "a", not "w": "w" empties the directory, writer lock included (nothing else is left
        # in it); and its directory is made a group first, or zarr would warn it is no zarr node.
        zarr.open_group(url, path=PROGRESS.rpartition("/")[0], mode="a", zarr_format=3)
        mode = "a"
    ds.to_zarr(url, mode=mode, compute=False, consolidated=False, encoding=_encoding(ds, plan), zarr_format=3)
    root = zarr.open_group(url, mode="r+")
    root.create_array(PROGRESS, shape=plan.grid, chunks=(1,) * len(plan.grid), dtype=bool, fill_value=False)
    _create_checksums(root, plan)


def _create_checksums(root: zarr.Group, plan: Plan) -> None:
    """The array of per-chunk checksums (one zarr chunk per engine chunk, like the progress), and in
    its attrs those of the arrays written once, now (coordinates, per-model values), read back."""
    written_once = {name: checksum(np.asarray(array[...])) for name, array in root.arrays() if name not in plan.stored}
    n = len(plan.stored)
    sums = root.create_array(
        CHECKSUMS, shape=(*plan.grid, n), chunks=(*(1,) * len(plan.grid), n), dtype="uint32", fill_value=0
    )
    sums.attrs.update(
        algorithm=CHECKSUM_ALGORITHM, variables=list(plan.stored), written_once=written_once, sweep_name=plan.spec.name
    )


def write_chunk(root: zarr.Group, plan: Plan, chunk_id: tuple[int, ...], results: dict[str, np.ndarray]) -> None:
    """Write one chunk's metrics into its region, record their checksums, then mark it done (in
    that order: a chunk marked done has its data and checksums whole)."""
    region = plan.region(chunk_id)
    sums: dict[str, int] = {}
    for name, values in results.items():
        # Written whatever the values: zarr's default first scans each chunk for all-fill (NaN)
        # values to skip it, which cost ~25% of the write time (measured on the bench grid).
        array = root[name]
        assert isinstance(array, zarr.Array)
        stored = np.asarray(values, dtype=array.dtype)  # as zarr stores them (no copy if already so)
        array.with_config({"write_empty_chunks": True})[region] = stored
        sums[name] = checksum(stored)
    record = root.get(CHECKSUMS)  # absent from stores made before checksums were recorded
    if isinstance(record, zarr.Array):
        names = record.attrs["variables"]
        assert isinstance(names, list)
        record[chunk_id] = np.array([sums[str(name)] for name in names], dtype=np.uint32)
    progress = root[PROGRESS]
    assert isinstance(progress, zarr.Array)
    progress[chunk_id] = True


def finish(path: str | Path) -> None:
    """Mark the store complete once every chunk is done."""
    if not done_chunks(path).all():
        raise RuntimeError(f"{location(path)}: not every chunk is written")
    root = zarr.open_group(location(path), mode="r+")
    root.attrs["sweep_complete"] = 1


def write_dataset(ds: xr.Dataset, path: str | Path, overwrite: bool = False) -> str:
    """Write a Dataset computed in memory (``sweep optimize``) as a complete store at ``path``;
    an existing path is replaced only with ``overwrite``."""
    url = location(path)
    if _exists(url):
        if not overwrite:
            raise SpecError(f"{url}: exists; choose another -o or pass --overwrite")
        _remove(url)
    enc = {name: {"compressors": [COMPRESSOR]} for name in ds.data_vars}
    ds.to_zarr(url, mode="w", consolidated=False, encoding=enc, zarr_format=3)
    return url
