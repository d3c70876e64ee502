"""Zarr stores: round trip, resume after a kill, completeness, nothing lost on bad input."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
import zarr

from grids.errors import SpecError
from grids.sweeps import load_sweep, validate
from sweep.api import compute, open_sweep, run_sweep
from sweep.store.read import PROGRESS, SMALL_STORE_BYTES, IncompleteStoreWarning, data_bytes

RAW = {
    "name": "store-test",
    "axes": {
        "model": ["llama-3.1-8b", "llama-3.3-70b"],
        "gpu": ["h100-sxm", "l4"],
        "tp": [1, 2, 8],
        "batch": [1, 4, 32],
        "input_len": [256, 4096],
        "output_len": [1, 128],
        "kv_dtype": ["bf16", "fp8"],
    },
    "engine": {"chunk_points": 40},
}


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    """Identical in every value, coordinate and attribute but the creation time."""
    b = b.copy()
    b.attrs["created_utc"] = a.attrs["created_utc"]
    xr.testing.assert_identical(a, b)


def test_round_trip_identical(tmp_path):
    spec = validate(RAW, "test")
    in_memory = compute(spec)
    path = run_sweep(spec, tmp_path / "s.zarr", progress=False)
    stored = open_sweep(path).load()
    _same(in_memory, stored)
    for name in list(stored.data_vars) + list(stored.coords):
        attrs = stored[name].attrs
        assert "units" in attrs and attrs.get("long_name"), name
        # names (catalogue keys, choices) carry units "" so that hvplot labels read "model", not "model [1]"
        assert bool(attrs["units"]) == (stored[name].dtype.kind != "T"), name
    # a small store reads without dask (a one-line query pays for no graph or scheduler); asked
    # for, or above SMALL_STORE_BYTES, it is chunked like the store; the values are the same
    assert data_bytes(path) < SMALL_STORE_BYTES and open_sweep(path)["ttft_s"].chunks is None
    chunked = open_sweep(path, dask=True)
    assert chunked["ttft_s"].chunks is not None
    _same(stored, chunked.load())
    assert stored.params_total.dtype == np.float64 and stored.ttft_s.dtype == np.float32
    assert stored.params_total.sel(model="llama-3.3-70b").item() == 70_553_706_496  # the article


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    spec = validate(RAW, "test")
    full = open_sweep(run_sweep(spec, tmp_path / "full.zarr", progress=False)).load()
    path = run_sweep(spec, tmp_path / "part.zarr", progress=False, max_chunks=3)
    with pytest.warns(IncompleteStoreWarning, match="3 of"):
        open_sweep(path)
    with pytest.raises(SpecError, match="incomplete"):
        open_sweep(path, allow_incomplete=False)
    run_sweep(spec, path, progress=False)
    _same(full, open_sweep(path).load())


@pytest.mark.slow
def test_killed_run_resumes_to_identical_store(tmp_path):
    """SIGKILL a real `sweep run` after some chunks are done; the rerun fills only the rest."""
    raw = dict(RAW, axes=dict(RAW["axes"], batch=[1, 2, 4, 8, 16, 32, 64]), engine={"chunk_points": 8})
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        'name = "store-test"\n[axes]\n'
        + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in raw["axes"].items())
        + "[engine]\nchunk_points = 8\n"
    )
    path = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "sweep.cli", "run", str(spec_file), "-o", str(path), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            done = int(zarr.open_array(str(path), path=PROGRESS, mode="r")[...].sum())
        except Exception:  # the store is still being created
            done = 0
        if done >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    total = int(np.prod(zarr.open_array(str(path), path=PROGRESS, mode="r").shape))
    assert 5 <= done < total, f"kill landed at {done} of {total} chunks"
    assert not zarr.open_group(str(path), mode="r").attrs["sweep_complete"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    full = open_sweep(run_sweep(load_sweep(str(spec_file)), tmp_path / "full.zarr", progress=False)).load()
    _same(full, open_sweep(path).load())


def test_bad_spec_writes_nothing(tmp_path):
    bad = dict(RAW, axes=dict(RAW["axes"], model=["llama-3.1-8b", "no-such-model"]))
    with pytest.raises(SpecError, match="no-such-model"):
        run_sweep(validate(bad, "bad.toml"), tmp_path / "bad.zarr", progress=False)
    assert not (tmp_path / "bad.zarr").exists()


def test_other_spec_does_not_overwrite(tmp_path):
    path = run_sweep(validate(RAW, "test"), tmp_path / "s.zarr", progress=False)
    before = open_sweep(path).load()
    other = validate(dict(RAW, axes=dict(RAW["axes"], batch=[2, 8])), "other")
    with pytest.raises(SpecError, match="--overwrite"):
        run_sweep(other, path, progress=False)
    _same(before, open_sweep(path).load())
    run_sweep(other, path, progress=False, overwrite=True)
    assert open_sweep(path).batch.values.tolist() == [2, 8]
