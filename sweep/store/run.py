"""``sweep run``: evaluate a sweep chunk by chunk into a zarr store, resumably, with progress."""

from __future__ import annotations

import math
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import zarr
from tqdm import tqdm

from grids.sweeps import SweepSpec, load_sweep
from sweep.engine.plan import Plan, make_plan
from sweep.store.errors import InterruptedRunError
from sweep.store.lock import writer_lock
from sweep.store.read import _exists, done_chunks, location
from sweep.store.write import create, finish, write_chunk

OUTPUTS = Path("outputs")


def default_store(spec: SweepSpec) -> str:
    return str(OUTPUTS / f"{spec.name}.zarr")


def run_sweep(
    spec: SweepSpec | str,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    chunk_points: int | None = None,
    max_chunks: int | None = None,
    scheduler: str | None = None,
) -> str:
    """Evaluate every missing chunk of ``spec`` into ``out`` (default outputs/<name>.zarr; any
    fsspec URL). Returns the store's location.

    In process (``scheduler`` None), compute and storage overlap: while chunk i is compressed and
    written by a writer thread, chunk i+1 is evaluated; at most two chunks are held in memory.
    With ``scheduler`` (``local[:N]`` or ``tcp://HOST:PORT``) chunks run as Dask tasks
    (``sweep.store.distributed``). ``max_chunks`` stops after that many chunks (tests of interrupted runs).

    A local store is locked while it is written (``sweep.store.lock``): a second writer gets
    ``StoreLockedError`` before anything is computed or changed.
    """
    spec = load_sweep(spec) if isinstance(spec, str) else spec
    url = location(out) if out is not None else default_store(spec)
    try:
        with writer_lock(url):
            if scheduler is None:
                return _run(spec, url, overwrite, progress, chunk_points, max_chunks, None)
            from sweep.store.distributed import client_for, warm_workers

            with client_for(scheduler) as client:
                warm_workers(client, spec, chunk_points)  # workers import and compile while the store is made
                return _run(spec, url, overwrite, progress, chunk_points, max_chunks, client)
    except InterruptedRunError:
        raise  # a nested run (``sweep verify --repair``) said it already
    except OSError as err:  # a full disk, a permission: say what is left and how to go on
        cause = err.strerror or str(err)
        raise InterruptedRunError(err.errno, f"{cause}; {left_behind(url)}", err.filename) from err


def left_behind(url: str) -> str:
    """What a run stopped by an OSError left at ``url``, and how to go on: chunks marked done are
    whole (``write_chunk`` marks a chunk after its data and checksums; zarr writes each file to a
    temporary name first), so the same command resumes from them."""
    if not _exists(url):
        return f"nothing was written to {url}; once fixed, the same command starts it"
    try:
        complete = bool(zarr.open_group(url, mode="r").attrs.get("sweep_complete"))
        done = done_chunks(url)
    except (zarr.errors.NodeNotFoundError, FileNotFoundError):  # only a stale lock directory is there
        return f"nothing of the sweep was kept in {url}; once fixed, the same command starts it"
    if complete:
        return f"{url} is complete and unchanged"
    return (
        f"{url} is incomplete: {int(done.sum())} of {done.size} chunks written and kept; "
        "once fixed (space freed), the same command resumes it"
    )


def _run(
    spec: SweepSpec, url: str, overwrite: bool, progress: bool, chunk_points: int | None, max_chunks: int | None, client
) -> str:
    plan = make_plan(spec, chunk_points)
    status = create(url, plan, overwrite)
    if status == "complete":
        return url
    if status == "recomputed":
        print(
            f"sweep run: {url} was made by another version of the code or catalogues; recomputing every chunk",
            file=sys.stderr,
        )
    done = done_chunks(url)
    todo = [c for c in plan.chunk_ids() if not done[c]][:max_chunks]
    points = sum(math.prod(s.stop - s.start for s in plan.region(c)) for c in todo)
    bar = tqdm(
        total=points,
        unit="pt",
        unit_scale=True,
        disable=not progress,
        smoothing=0.1,
        desc=f"{spec.name} ({len(todo)} of {plan.n_chunks} chunks)",
    )
    try:
        if client is None:
            _run_in_process(plan, url, todo, bar)
        else:
            from sweep.store.distributed import run_chunks

            run_chunks(client, spec, url, chunk_points, todo, bar)
    finally:
        bar.close()  # ends the bar's line, so that an error's line starts a line of its own
    if done_chunks(url).all():
        finish(url)
    return url


def _run_in_process(plan: Plan, url: str, todo: list[tuple[int, ...]], bar: tqdm) -> None:
    root = zarr.open_group(url, mode="r+")
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future | None = None
        for chunk_id in todo:
            results = plan.evaluate(chunk_id)
            if pending is not None:
                pending.result()
            pending = writer.submit(write_chunk, root, plan, chunk_id, results)
            points = int(next(iter(results.values())).size)

            def advance(_done: Future, n: int = points) -> None:
                bar.update(n)

            pending.add_done_callback(advance)
        if pending is not None:
            pending.result()
