"""A store records the code version that made it (package version, kernels/, grids/ code and
catalogue files); a rerun after any of them changed recomputes instead of mixing chunks made by
two versions of the model."""

import shutil

import pytest
import xarray as xr
import zarr

import grids.dtypes
from grids.sweeps import validate
from sweep.api import open_sweep, run_sweep

RAW = {
    "name": "identity",
    "axes": {
        "model": ["llama-3.1-8b"],
        "gpu": ["h100-sxm", "l4"],
        "tp": [1, 2],
        "batch": [1, 8, 64],
        "input_len": [512, 4096],
        "output_len": [128],
    },
    "engine": {"chunk_points": 6},
}


def _done(path) -> int:
    from sweep.store.read import PROGRESS

    return int(zarr.open_array(str(path), path=PROGRESS, mode="r")[...].sum())


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    b = b.copy()
    b.attrs["created_utc"] = a.attrs["created_utc"]
    xr.testing.assert_identical(a, b)


@pytest.fixture
def changed_dtypes(tmp_path, monkeypatch):
    """grids/dtypes.toml with bf16 stored in 8 bits: every weight and KV byte count changes."""
    copy = tmp_path / "dtypes.toml"
    shutil.copy(grids.dtypes.DTYPES_FILE, copy)
    text = copy.read_text()
    copy.write_text(text.replace("[bf16]\nbits = 16", "[bf16]\nbits = 8", 1))
    assert copy.read_text() != text

    def apply():
        monkeypatch.setattr(grids.dtypes, "DTYPES_FILE", copy)
        grids.dtypes.load_dtypes.cache_clear()

    yield apply
    grids.dtypes.load_dtypes.cache_clear()


def test_resume_after_catalogue_change_recomputes(tmp_path, changed_dtypes):
    spec = validate(RAW, "test")
    path = tmp_path / "s.zarr"
    run_sweep(spec, path, progress=False, max_chunks=3)
    assert _done(path) == 3
    changed_dtypes()
    run_sweep(spec, path, progress=False, max_chunks=1)
    assert _done(path) == 1, "the chunks of the old catalogue were kept"
    run_sweep(spec, path, progress=False)
    fresh = run_sweep(spec, tmp_path / "fresh.zarr", progress=False)
    _same(open_sweep(fresh).load(), open_sweep(path).load())


def test_complete_store_is_recomputed_after_kernel_change(tmp_path, monkeypatch):
    from sweep.engine import provenance

    spec = validate(RAW, "test")
    path = run_sweep(spec, tmp_path / "s.zarr", progress=False)
    before = open_sweep(path).attrs["code_version"]
    kernels = tmp_path / "kernels"
    shutil.copytree(provenance.KERNELS_DIR, kernels)
    (kernels / "economics.py").write_text((kernels / "economics.py").read_text() + "\n# a change\n")
    monkeypatch.setattr(provenance, "KERNELS_DIR", kernels)
    run_sweep(spec, path, progress=False, max_chunks=2)
    assert _done(path) == 2 and not zarr.open_group(str(path), mode="r").attrs["sweep_complete"]
    run_sweep(spec, path, progress=False)
    assert open_sweep(path).attrs["code_version"] != before
