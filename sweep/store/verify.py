"""``sweep verify``: re-read every chunk of a store against the checksums recorded when it was
written (``_progress/checksum``, layout in ``sweep.store.read``), and repair what does not match.

A chunk is damaged when it cannot be decoded (Blosc refuses a flipped header byte) or when its
values are not those written (a flipped data byte decodes silently to other numbers; a deleted
chunk file reads as NaN). Only chunks marked done are checked: the others hold nothing yet.
Repair marks the damaged chunks not done and lets ``run_sweep``, on the spec the store records,
compute them again, so the store ends identical to a clean run; damage to an array written once
(a coordinate) or to the progress record rebuilds the whole store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

from sweep.store.errors import CorruptStoreError
from sweep.store.lock import lock_file, writer_lock
from sweep.store.read import (
    CHECKSUMS,
    PROGRESS,
    SMALL_STORE_BYTES,
    _exists,
    _spec_error,
    checksum,
    data_bytes,
    done_chunks,
    location,
)

if TYPE_CHECKING:
    from grids.sweeps import SweepSpec


@dataclass(frozen=True)
class Damage:
    """One array, or one chunk of it, that does not read back as written."""

    variable: str
    chunk: tuple[int, ...] | None  # the engine chunk; None: the whole array (written once, or missing)
    reason: str

    def __str__(self) -> str:
        if self.chunk is None:
            return f"{self.variable}: {self.reason}"
        index = [*self.chunk, 0] if self.variable == CHECKSUMS else list(self.chunk)
        key = f"{self.variable}/c/{'/'.join(map(str, index))}"
        return f"{self.variable} chunk {self.chunk} [{key}]: {self.reason}"


@dataclass(frozen=True)
class Verification:
    """What ``verify_store`` read, and what it found damaged."""

    store: str
    chunks_checked: int  # chunks marked done, each read in every chunked variable
    chunks_total: int
    variables: int  # chunked variables
    written_once: int  # arrays written once at creation (coordinates, per-model values)
    damage: tuple[Damage, ...]
    checksums: bool  # False: a store made before checksums were recorded; only decoding was checked

    @property
    def clean(self) -> bool:
        return not self.damage

    @property
    def damaged_chunks(self) -> list[tuple[int, ...]]:
        return sorted({d.chunk for d in self.damage if d.chunk is not None})

    def summary(self) -> str:
        """One line: what was checked and what was found."""
        checked = (
            f"{self.chunks_checked} of {self.chunks_total} chunks x {self.variables} variables and "
            f"{self.written_once} arrays written once"
        )
        how = "match their checksums" if self.checksums else "decode (made before checksums were recorded)"
        if self.clean:
            return f"{self.store}: clean: {checked} {how}"
        whole = sum(d.chunk is None for d in self.damage)
        return (
            f"{self.store}: damaged: {len(self.damaged_chunks)} chunks and {whole} whole arrays (checked {checked}); "
            f"`sweep verify --repair {self.store}` recomputes them"
        )


def verify_store(path: str | Path) -> Verification:
    """Read every done chunk of every chunked variable, and every array written once, and compare
    each with its recorded checksum (without checksums recorded: check that it decodes)."""
    url = _require_store(path)
    root = zarr.open_group(url, mode="r")
    record = root.get(CHECKSUMS)
    try:
        done = done_chunks(url)
    except FileNotFoundError:
        if isinstance(record, zarr.Array):  # made by `sweep run` (checksums are recorded beside the progress)
            return Verification(url, 0, 0, 0, 0, (Damage(PROGRESS, None, "missing"),), False)
        # e.g. `sweep optimize -o`: written whole, not chunk by chunk
        raise _spec_error(f"{url}: records no chunks (not made by `sweep run`); nothing to verify") from None
    except Exception as err:  # any failure to read the record of progress is damage to it
        return Verification(url, 0, 0, 0, 0, (Damage(PROGRESS, None, _failed(err)),), False)
    if root.attrs.get("sweep_complete") and not done.all():  # a chunk of the record lost or flipped
        reason = f"the store is marked complete, but {int((~done).sum())} of {done.size} chunks are not marked done"
        return Verification(url, 0, done.size, 0, 0, (Damage(PROGRESS, None, reason),), False)
    written_once: dict[str, int | None]
    if isinstance(record, zarr.Array):
        variables = [str(v) for v in _list(record.attrs["variables"])]
        written_once = {str(k): int(v) for k, v in _dict(record.attrs["written_once"]).items()}
    else:
        variables = [str(a.basename) for a in _chunked(root, done.shape)]
        written_once = {name: None for name, _ in root.arrays() if name not in variables}
    damage = [d for name, expected in written_once.items() if (d := _check_whole(root, name, expected))]
    chunked: dict[str, zarr.Array] = {}
    for name in variables:
        array = root.get(name)
        if isinstance(array, zarr.Array):
            chunked[name] = array
        else:
            damage.append(Damage(name, None, "missing"))
    ids = [tuple(int(i) for i in c) for c in np.argwhere(done)]
    for chunk_id in ids:
        damage += _check_chunk(record if isinstance(record, zarr.Array) else None, variables, chunked, chunk_id)
    return Verification(
        url, len(ids), done.size, len(variables), len(written_once), tuple(damage), isinstance(record, zarr.Array)
    )


VERIFY_ON_READ_BYTES = SMALL_STORE_BYTES
"""Stores up to this many bytes of data are verified whole before a command draws from them
(``check_intact``): about a second; a larger store is read as it is, and a chunk that cannot be
decoded still fails in one line (``sweep.store.read.reading``)."""


def check_intact(path: str | Path, *, limit_bytes: float = VERIFY_ON_READ_BYTES) -> None:
    """Before ``sweep plot``, ``report`` or ``explore`` draw from a store: if it holds at most
    ``limit_bytes`` of data, verify it and raise ``CorruptStoreError`` naming the store and its
    first damaged chunk or array (a flipped data byte or a deleted chunk decodes silently to other
    numbers or NaN: only the checksums tell). A store not made by ``sweep run`` is not checked."""
    from grids.errors import SpecError

    url = location(path)
    if data_bytes(url) > limit_bytes:
        return
    try:
        found = verify_store(url)
    except SpecError:  # records no chunks (`sweep optimize -o`): nothing to check it against
        return
    if found.clean:
        return
    more = f" (and {len(found.damage) - 1} more)" if len(found.damage) > 1 else ""
    raise CorruptStoreError(
        f"{url}: damaged: {found.damage[0]}{more}; `sweep verify {url}` lists the damage and "
        f"`sweep verify --repair {url}` recomputes it"
    )


def _chunked(root: zarr.Group, grid: tuple[int, ...] | None = None) -> list[zarr.Array]:
    """The arrays written chunk by chunk: those the checksum record names, or else (a store made
    before it) those whose zarr chunks tile the progress grid."""
    record = root.get(CHECKSUMS)
    if isinstance(record, zarr.Array):
        found = [root.get(str(name)) for name in _list(record.attrs["variables"])]
        return [a for a in found if isinstance(a, zarr.Array)]
    if grid is None:
        progress = root[PROGRESS]
        assert isinstance(progress, zarr.Array)
        grid = progress.shape
    return [a for _, a in root.arrays() if a.ndim == len(grid) and a.cdata_shape == grid]


def _require_store(path: str | Path) -> str:
    url = location(path)
    if not _exists(url):
        raise _spec_error(f"{url}: no such store")
    try:
        zarr.open_group(url, mode="r")
    except Exception as err:
        lock = lock_file(url)
        writing = " (a writer holds its lock: it may still be being made)" if lock and lock.exists() else ""
        raise CorruptStoreError(f"{url}: its metadata {_failed(err)}{writing}; it cannot be verified") from None
    return url


def _failed(err: BaseException) -> str:
    return f"cannot be read ({type(err).__name__}: {err})"


def _list(value: object) -> list:
    assert isinstance(value, list)
    return value


def _dict(value: object) -> dict:
    assert isinstance(value, dict)
    return value


def _check_whole(root: zarr.Group, name: str, expected: int | None) -> Damage | None:
    array = root.get(name)
    if not isinstance(array, zarr.Array):
        return Damage(name, None, "missing")
    try:
        found = checksum(np.asarray(array[...]))
    except Exception as err:
        return Damage(name, None, _failed(err))
    if expected is not None and found != expected:
        return Damage(name, None, f"checksum mismatch (recorded {expected:#010x}, read {found:#010x})")
    return None


def _check_chunk(
    record: zarr.Array | None, variables: list[str], chunked: dict[str, zarr.Array], chunk_id: tuple[int, ...]
) -> list[Damage]:
    """The damage in one done chunk: each variable's region decoded and compared with its checksum."""
    expected: np.ndarray | None = None
    if record is not None:
        try:
            expected = np.asarray(record[chunk_id])
        except Exception as err:
            return [Damage(CHECKSUMS, chunk_id, _failed(err))]
    damage = []
    for i, name in enumerate(variables):
        array = chunked.get(name)
        if array is None:
            continue
        region = tuple(slice(k * c, min((k + 1) * c, n)) for k, c, n in zip(chunk_id, array.chunks, array.shape))
        try:
            found = checksum(np.asarray(array[region]))
        except Exception as err:
            damage.append(Damage(name, chunk_id, _failed(err)))
            continue
        if expected is not None and found != int(expected[i]):
            reason = f"checksum mismatch (recorded {int(expected[i]):#010x}, read {found:#010x})"
            damage.append(Damage(name, chunk_id, reason))
    return damage


def repair_store(
    path: str | Path, *, progress: bool = False, report: Callable[[Verification], None] | None = None
) -> tuple[Verification, Verification]:
    """Verify the store under its writer lock and recompute what is damaged with ``run_sweep`` on
    the spec the store records, and any chunk not yet written (an earlier repair or run stopped
    by a full disk: the same command resumes it); returns the verification before and after
    (``report`` is called with the first before anything is recomputed). Raises ``CorruptStoreError`` if the store is
    still damaged afterwards, or if its spec cannot be recovered."""
    from sweep.store.run import run_sweep
    from sweep.store.write import _clear

    url = _require_store(path)
    with writer_lock(url):
        found = verify_store(url)
        if report is not None:
            report(found)
        if found.clean and zarr.open_group(url, mode="r").attrs.get("sweep_complete"):
            return found, found
        spec, chunk_points = stored_spec(url)  # clean yet incomplete: a repair or run stopped part way
        if any(d.chunk is None for d in found.damage):
            _clear(url)  # an array written once, or the progress record: the whole store is rebuilt
        elif found.damage:
            root = zarr.open_group(url, mode="r+")
            progress_array = root[PROGRESS]
            assert isinstance(progress_array, zarr.Array)
            for chunk_id in found.damaged_chunks:
                progress_array[chunk_id] = False
            root.attrs["sweep_complete"] = 0
        run_sweep(spec, url, progress=progress, chunk_points=chunk_points)
        after = verify_store(url)
    if not after.clean:
        raise CorruptStoreError(f"{url}: still damaged after repair: {after.damage[0]}")
    return found, after


TITLE = re.compile(r"LLM inference economics sweep '(?P<name>.*)'")
"""The title ``sweep.engine.provenance`` gives a store: its sweep's name, for stores that predate
the name in the checksum record."""


def stored_spec(path: str | Path) -> tuple[SweepSpec, int]:
    """The sweep spec a store records (its attrs), validated again, and the chunk points that give
    its chunk shape; raises ``CorruptStoreError`` if the result is not the store's sweep."""
    from grids.errors import SpecError
    from grids.sweeps import validate
    from sweep.engine.plan import chunk_shape
    from sweep.engine.provenance import spec_identity

    url = location(path)
    root = zarr.open_group(url, mode="r")
    attrs = dict(root.attrs)
    record = root.get(CHECKSUMS)
    try:
        recorded = json.loads(str(attrs["sweep_spec"]))
        name = record.attrs["sweep_name"] if isinstance(record, zarr.Array) else None
        match = TITLE.fullmatch(str(attrs.get("title", "")))
        name = name or (match["name"] if match else "recovered")
        chunk_points = math.prod(_chunked(root)[0].chunks)
        raw = dict(
            name=name,
            description=attrs.get("description", ""),
            axes=recorded["axes"],
            fixed=recorded["fixed"],
            engine=dict(chunk_points=chunk_points, precision=recorded["precision"]),
        )
        spec = validate(raw, str(recorded.get("source", url)))
    except (KeyError, IndexError, TypeError, ValueError, SpecError) as err:
        raise CorruptStoreError(f"{url}: its sweep spec cannot be recovered from its attrs ({err})") from None
    if spec_identity(spec, chunk_shape(spec.shape, chunk_points)) != attrs.get("spec_identity"):
        raise CorruptStoreError(f"{url}: the sweep spec in its attrs does not match its spec_identity")
    return spec, chunk_points
