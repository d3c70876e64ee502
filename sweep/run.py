"""``sweep run``: evaluate a sweep chunk by chunk into a zarr store, resumably, with progress."""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import zarr
from tqdm import tqdm

from grids.sweeps import SweepSpec, load_sweep
from sweep import store
from sweep.engine import Plan, make_plan

OUTPUTS = Path("outputs")


def default_store(spec: SweepSpec) -> Path:
    return OUTPUTS / f"{spec.name}.zarr"


def run_sweep(spec: SweepSpec | str, out: str | Path | None = None, *, overwrite: bool = False,
              progress: bool = True, chunk_points: int | None = None, max_chunks: int | None = None) -> Path:
    """Evaluate every missing chunk of ``spec`` into ``out`` (default outputs/<name>.zarr).

    Compute and storage overlap: while chunk i is compressed and written by a writer thread,
    chunk i+1 is evaluated; at most two chunks are held in memory. ``max_chunks`` stops after that
    many chunks (for tests of interrupted runs).
    """
    spec = load_sweep(spec) if isinstance(spec, str) else spec
    path = Path(out) if out is not None else default_store(spec)
    plan = make_plan(spec, chunk_points)
    state = store.create(path, plan, overwrite)
    if state == "complete":
        return path
    done = store.done_chunks(path)
    todo = [c for c in plan.chunk_ids() if not done[c]]
    points = sum(math.prod(s.stop - s.start for s in plan.region(c)) for c in todo)
    root = zarr.open_group(str(path), mode="r+")
    bar = tqdm(total=points, unit="pt", unit_scale=True, disable=not progress, smoothing=0.1,
               desc=f"{spec.name} ({len(todo)} of {plan.n_chunks} chunks)")
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future | None = None
        for count, chunk_id in enumerate(todo):
            if max_chunks is not None and count >= max_chunks:
                break
            results = plan.evaluate(chunk_id)
            if pending is not None:
                pending.result()
            pending = writer.submit(store.write_chunk, root, plan, chunk_id, results)
            pending.add_done_callback(lambda _f, n=next(iter(results.values())).size: bar.update(n))
        if pending is not None:
            pending.result()
    bar.close()
    if store.done_chunks(path).all():
        store.finish(path)
    return path


def plan_for(spec: SweepSpec, chunk_points: int | None = None) -> Plan:
    return make_plan(spec, chunk_points)
