"""Stores that cannot be corrupted quietly (issue 15): one writer at a time (a lock that names its
holder, and is taken over once its process is gone), per-chunk checksums that ``sweep verify``
reads back, ``--repair`` that leaves the store identical to a clean run, and readers that name the
remedy instead of a codec's traceback."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

from grids.errors import SpecError
from grids.sweeps import validate
from sweep.cli import main
from sweep.store.errors import StoreLockedError
from sweep.store.lock import LOCK
from sweep.store.read import CHECKSUMS, PROGRESS
from sweep.store.run import run_sweep

RAW = {
    "name": "safety",
    "axes": {
        "model": ["llama-3.1-8b"],
        "gpu": ["h100-sxm", "l4"],
        "tp": [1],
        "batch": [1, 8, 64],
        "input_len": [512],
        "output_len": [128],
    },
    "engine": {"chunk_points": 3},
}
"""Two chunks of three points (one per GPU); dims of one value are not mapped, so it compiles fast."""

SPEC_TOML = """name = "safety"
[axes]
model = ["llama-3.1-8b"]
gpu = ["h100-sxm", "l4"]
tp = [1]
batch = [1, 8, 64]
input_len = [512]
output_len = [128]
[engine]
chunk_points = 3
"""


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A store of RAW, written once by an uninterrupted run (the reference of every repair)."""
    return run_sweep(validate(RAW, "test"), tmp_path_factory.mktemp("clean") / "s.zarr", progress=False)


def _copy(clean: str, tmp_path) -> str:
    path = tmp_path / "s.zarr"
    shutil.copytree(clean, path)
    return str(path)


def _same_as(clean: str, path: str) -> None:
    """Identical arrays, coordinates and attrs (but the creation time), and identical records of
    progress and checksums."""
    a = xr.open_zarr(clean, consolidated=False, zarr_format=3).load()
    b = xr.open_zarr(path, consolidated=False, zarr_format=3).load()
    b.attrs["created_utc"] = a.attrs["created_utc"]
    xr.testing.assert_identical(a, b)
    for record in (PROGRESS, CHECKSUMS):
        np.testing.assert_array_equal(
            zarr.open_array(clean, path=record, mode="r")[...], zarr.open_array(path, path=record, mode="r")[...]
        )


def _lock(path, pid: int) -> None:
    """A writer lock of ``pid`` on this host, as ``sweep run`` writes one."""
    lock = os.path.join(path, LOCK)
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "w") as f:
        json.dump(dict(pid=pid, hostname=socket.gethostname(), started_utc="2026-01-01T00:00:00+00:00"), f)


def _flip(path: str, key: str, at: int) -> None:
    """Invert one byte of a stored chunk file."""
    with open(os.path.join(path, key), "r+b") as f:
        data = bytearray(f.read())
        data[at] ^= 0xFF
        f.seek(0)
        f.write(data)


@pytest.mark.parametrize("holder", ["another process", "this process"])
def test_live_lock_refuses_a_second_writer(tmp_path, capsys, holder):
    """(a) A lock held by a live process: `sweep run` refuses in one line, exit 2, naming the store
    and the holder's pid, before anything is computed or written; the lock stays the holder's."""
    spec_file = tmp_path / "safety.toml"
    spec_file.write_text(SPEC_TOML)
    store = tmp_path / "s.zarr"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid = sleeper.pid if holder == "another process" else os.getpid()
        _lock(store, pid)
        before = (store / LOCK).read_text()
        assert main(["run", str(spec_file), "-o", str(store), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("sweep run: error: ")
        assert str(store) in err and f"pid {pid}" in err
        assert sorted(p.name for p in store.rglob("*")) == ["_progress", "writer.lock"]  # nothing written
        assert (store / LOCK).read_text() == before
        with pytest.raises(StoreLockedError, match=f"pid {pid}"):
            run_sweep(validate(RAW, "test"), store, progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stale_lock_is_taken_over(clean, tmp_path, capsys):
    """(b) A lock whose pid no longer exists on this host is reported in one line and taken over;
    the run completes, and releases the lock."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid now names no process
    store = tmp_path / "s.zarr"
    _lock(store, gone.pid)
    run_sweep(validate(RAW, "test"), store, progress=False)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"stale writer lock of pid {gone.pid}" in err
    assert not (store / LOCK).exists()
    _same_as(clean, str(store))


def test_lock_released_on_error(clean, tmp_path, monkeypatch):
    """The lock goes with the writer whatever ends it: a refused spec, or an error mid-run (a store
    that was never made leaves no directory behind)."""
    other = validate(dict(RAW, axes=dict(RAW["axes"], batch=[1, 2])), "test")
    store = _copy(clean, tmp_path)
    with pytest.raises(SpecError, match="different sweep"):
        run_sweep(other, store, progress=False)
    assert not os.path.exists(os.path.join(store, LOCK))

    def fail(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr("sweep.store.run._run", fail)
    with pytest.raises(RuntimeError, match="killed"):
        run_sweep(other, tmp_path / "new.zarr", progress=False)
    assert not (tmp_path / "new.zarr").exists()


def test_clean_store_verifies(clean, capsys):
    """(d) Every chunk of a clean store matches its checksum: exit 0 and a one-line summary."""
    assert main(["verify", clean]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "clean: 2 of 2 chunks" in out


DAMAGE = {
    # (file, byte): what it does to the store
    "data byte": ("ttft_s/c/0/1/0/0/0/0", -1),  # decodes silently to another number: only the checksum tells
    "header byte": ("ttft_s/c/0/1/0/0/0/0", 0),  # Blosc refuses to decode it
    "coordinate": ("batch/c/0", -1),  # an array written once: the whole store is rebuilt
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_verify_finds_and_repair_mends(clean, tmp_path, capsys, damage):
    """(c) One flipped byte in one chunk file of a complete store: `sweep verify` names the variable
    and chunk and exits 1; `sweep verify --repair` recomputes it, and the store is then identical to
    a clean run of the same spec and verifies clean."""
    store = _copy(clean, tmp_path)
    key, at = DAMAGE[damage]
    _flip(store, key, at)
    assert main(["verify", store]) == 1
    out = capsys.readouterr().out.splitlines()
    named = "batch: " if damage == "coordinate" else "ttft_s chunk (0, 1, 0, 0, 0, 0) [ttft_s/c/0/1"
    assert len(out) == 2 and named in out[0] and "damaged:" in out[1] and "--repair" in out[1]
    if damage == "header byte":  # a reader names the store and the remedy in one line, exit 2
        assert main(["query", store, "--vars", "ttft_s"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and store in err and "sweep verify --repair" in err
    assert main(["verify", "--repair", "-q", store]) == 0
    assert "repaired" in capsys.readouterr().out
    _same_as(clean, store)
    assert main(["verify", store]) == 0
