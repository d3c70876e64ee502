"""Dask: the same sweep on a LocalCluster of worker processes gives the same store, even when a
worker is killed mid-run."""

import logging
import os
import signal
import threading
import time

import pytest
import xarray as xr

from grids.errors import SpecError
from grids.sweeps import validate
from sweep.api import open_sweep, run_sweep
from sweep.store.distributed import WORKER_ENV, parse_scheduler
from sweep.store.read import done_chunks

RAW = {
    "name": "dask-test",
    "axes": {
        "model": ["llama-3.1-8b", "llama-3.3-70b", "mistral-7b"],
        "gpu": ["h100-sxm", "a100-sxm-80gb", "l40s"],
        "tp": [1, 2, 4],
        "batch": [1, 4, 16, 64],
        "input_len": [256, 2048, 8192],
        "output_len": [1, 256],
    },
    "engine": {"chunk_points": 24},
}


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    b = b.copy()
    b.attrs["created_utc"] = a.attrs["created_utc"]
    xr.testing.assert_identical(a, b)


def test_parse_scheduler():
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    for bad in ("local:0", "local:x", "somewhere"):
        with pytest.raises(SpecError, match="--scheduler"):
            parse_scheduler(bad)


@pytest.mark.slow
def test_local_cluster_store_identical_to_single_process(tmp_path):
    spec = validate(RAW, "test")
    single = open_sweep(run_sweep(spec, tmp_path / "single.zarr", progress=False)).load()
    dask = open_sweep(run_sweep(spec, tmp_path / "dask.zarr", progress=False, scheduler="local:2")).load()
    _same(single, dask)


@pytest.mark.slow
def test_worker_killed_mid_run_still_completes_identically(tmp_path):
    from distributed import Client, LocalCluster

    spec = validate(RAW, "test")
    path = tmp_path / "killed.zarr"
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env=WORKER_ENV,
        ) as cluster,
        Client(cluster) as client,
    ):
        errors: list[BaseException] = []

        def run() -> None:
            try:
                run_sweep(spec, path, progress=False, scheduler=cluster.scheduler_address)
            except BaseException as err:  # re-raised in the test's thread below
                errors.append(err)

        runner = threading.Thread(target=run)
        runner.start()
        deadline, killed = time.time() + 120, None
        while time.time() < deadline and runner.is_alive() and killed is None:
            try:
                done = int(done_chunks(path).sum())
            except Exception:  # the store is still being created
                done = 0
            if done >= 3:
                pids = client.run(os.getpid)
                killed = next(iter(pids.values()))
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        runner.join(timeout=300)
        assert killed is not None, "the run ended before a worker could be killed"
        assert not errors, errors
    total = done_chunks(path)
    assert total.all()
    single = open_sweep(run_sweep(spec, tmp_path / "single.zarr", progress=False)).load()
    _same(single, open_sweep(path).load())
