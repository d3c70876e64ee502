"""The frozen golden sweep: every number a small sweep stores is compared with the committed
store tests/golden/golden-sweep.zarr, made from tests/golden/golden-sweep.toml.

The committed store was computed by the engine before the refactor of issue 11 (commit history:
"golden sweep frozen"); a change of any stored value fails here. ``pytest --regen-golden``
rewrites it deliberately, and the commit that does so must say why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import xarray as xr

from grids.sweeps import load_sweep
from sweep.api import compute

HERE = Path(__file__).parent
SPEC = HERE / "golden-sweep.toml"
STORE = HERE / "golden-sweep.zarr"


def test_golden_sweep_unchanged(request):
    ds = compute(load_sweep(str(SPEC)))
    if request.config.getoption("--regen-golden"):
        if STORE.exists():
            shutil.rmtree(STORE)
        ds.drop_attrs().to_zarr(STORE, mode="w", consolidated=False, zarr_format=3)
        pytest.skip("golden store regenerated; commit it and say why")
    golden = xr.open_zarr(STORE, consolidated=False, zarr_format=3).load()
    assert set(golden.data_vars) <= set(ds.data_vars), "a stored variable disappeared"
    assert golden.sizes == ds.sizes
    for name in golden.data_vars:
        # float64 sweep: the same formulas give the same numbers to a few ulps.
        xr.testing.assert_allclose(
            ds[name].load().reset_coords(drop=True), golden[name].reset_coords(drop=True), rtol=1e-12, atol=0
        )
