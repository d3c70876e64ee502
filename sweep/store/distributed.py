"""Scale out: the chunks of a sweep as Dask tasks, each worker writing its own zarr regions.

``--scheduler local[:N]`` starts a LocalCluster of N single-threaded worker processes on this
machine; ``--scheduler tcp://HOST:PORT`` uses a running Dask scheduler whose workers can reach
the store (any fsspec URL they share). The client writes the store's metadata and coordinates
before submitting any chunk. A worker compiles the kernels once per process (the plan is cached
by the sweep's identity), evaluates a chunk, writes its region, then marks it done; a chunk whose
worker dies is rerun by Dask elsewhere, and its writes are idempotent.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

from grids.errors import SpecError
from grids.sweeps import SweepSpec

# Worker processes each run single-threaded Blosc: N processes share the cores without
# oversubscribing them (with two Blosc threads per worker a 2e8-point sweep on 2 cores took 52.4 s
# instead of 47.9 s). XLA keeps its defaults: XLA flags are part of the key of the on-disk
# compilation cache, so workers with other flags could not load the program a single-process run
# (or ``sweep bench``) compiled and would each compile it again (a first Dask run took 1.7x the
# single-process time instead of 1.3x); the chunk programs use about one core anyway.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "BLOSC_NTHREADS": "1"}

_PLANS: dict[str, object] = {}


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """'local' -> ('local', cores); 'local:4' -> ('local', 4); 'tcp://h:p' -> ('address', 'tcp://h:p')."""
    import os

    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2]
        if n and (not n.isdigit() or int(n) < 1):
            raise SpecError(f"argument --scheduler: expected local[:N] with N a positive integer, got {text!r}")
        return "local", int(n) if n else (os.cpu_count() or 1)
    if "://" in text:
        return "address", text
    raise SpecError(
        f"argument --scheduler: expected local, local:N or a scheduler address like tcp://HOST:8786, got {text!r}"
    )


@contextmanager
def client_for(scheduler: str) -> Iterator[object]:
    """A Dask client for ``scheduler``, with its LocalCluster when asked for one."""
    from distributed import Client, LocalCluster

    kind, value = parse_scheduler(scheduler)
    if kind == "local":
        with (
            LocalCluster(
                n_workers=int(value),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env=WORKER_ENV,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        with Client(str(value), timeout="30s") as client:
            yield client


def _plan_on_worker(spec: SweepSpec, chunk_points: int | None):
    """The compiled plan of this sweep in this worker process (built once, then reused)."""
    from sweep.engine.plan import make_plan

    key = json.dumps([spec.axes, spec.fixed, spec.precision, chunk_points or spec.chunk_points], default=str)
    if key not in _PLANS:
        _PLANS[key] = make_plan(spec, chunk_points)
    return _PLANS[key]


def warm_task(spec: SweepSpec, chunk_points: int | None) -> None:
    """Import, build the plan and load (or compile) its program on a worker, before any chunk."""
    plan = _plan_on_worker(spec, chunk_points)
    plan.evaluate(next(plan.chunk_ids()))


def warm_workers(client, spec: SweepSpec, chunk_points: int | None) -> list:
    """Start warming every worker now; returns the futures (the caller need not wait for them)."""
    workers = list(client.scheduler_info()["workers"])
    return [
        client.submit(warm_task, spec, chunk_points, workers=[w], allow_other_workers=False, pure=False)
        for w in workers
    ]


def chunk_task(spec: SweepSpec, url: str, chunk_points: int | None, chunk_id: tuple[int, ...]) -> int:
    """Evaluate one chunk on a worker, write its zarr region, mark it done; return its points."""
    import zarr

    from sweep.store.write import write_chunk

    plan = _plan_on_worker(spec, chunk_points)
    results = plan.evaluate(chunk_id)
    write_chunk(zarr.open_group(url, mode="r+"), plan, chunk_id, results)
    return math.prod(s.stop - s.start for s in plan.region(chunk_id))


def run_chunks(client, spec: SweepSpec, url: str, chunk_points: int | None, todo: list[tuple[int, ...]], bar) -> None:
    """Submit every missing chunk as a task and wait for all; progress as they complete."""
    from distributed import as_completed

    futures = [
        client.submit(
            chunk_task, spec, url, chunk_points, c, key=f"sweep-chunk-{'-'.join(map(str, c))}", pure=False, retries=2
        )
        for c in todo
    ]
    for future in as_completed(futures):
        bar.update(future.result())
