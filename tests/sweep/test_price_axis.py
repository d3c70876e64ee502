"""The price axis usd_per_gpu_hour (grids/axes.py): costs in exact proportion to the price, the
catalogue price by default and readable from the dataset, explain agreeing with the sweep."""

import json
import subprocess
import sys

import numpy as np
import pytest

from grids.gpus import load_gpus
from grids.sweeps import validate
from sweep.api import compute, explain

RAW = {
    "name": "price",
    "axes": {
        "model": ["llama-3.1-8b"],
        "gpu": ["h100-sxm", "a100-sxm-80gb"],
        "tp": [1, 2],
        "batch": [1, 64],
        "input_len": [1024],
        "output_len": [256],
        "usd_per_gpu_hour": [1.5, 3.0],
    },
    "engine": {"precision": "float64"},
}
COSTS = ("usd_per_mtok_output", "usd_per_mtok_input")


@pytest.fixture(scope="module")
def swept():
    return compute(validate(RAW, "test"))


def test_costs_in_exact_proportion_to_price(swept):
    for name in COSTS:
        low, high = (swept[name].sel(usd_per_gpu_hour=p) for p in (1.5, 3.0))
        assert np.isfinite(low.values).any()
        np.testing.assert_allclose(high.values, 2.0 * low.values, rtol=1e-12)
    # nothing else depends on the price
    for name in ("ttft_s", "tpot_s", "output_tok_s", "feasible"):
        np.testing.assert_array_equal(swept[name].sel(usd_per_gpu_hour=1.5), swept[name].sel(usd_per_gpu_hour=3.0))
    coord = swept["usd_per_gpu_hour"]
    assert coord.dtype == np.float64 and coord.attrs["units"] == "USD/h" and coord.attrs["long_name"]


def test_catalogue_price_by_default_and_readable(swept):
    axes = {k: v for k, v in RAW["axes"].items() if k != "usd_per_gpu_hour"}
    ds = compute(validate(dict(RAW, axes=axes), "test"))
    gpus = load_gpus()
    price = ds["usd_per_gpu_hour"]  # the price each point used: a variable over gpu
    assert price.dims == ("gpu",) and price.attrs["units"] == "USD/h"
    for gpu in axes["gpu"]:
        catalogue = gpus[gpu].table["usd_per_hour"]
        assert price.sel(gpu=gpu).item() == catalogue
        np.testing.assert_allclose(
            ds.usd_per_mtok_output.sel(gpu=gpu).values,
            swept.usd_per_mtok_output.sel(gpu=gpu, usd_per_gpu_hour=1.5).values * catalogue / 1.5,
            rtol=1e-12,
        )


def test_fixed_price_is_recorded():
    axes = {k: v for k, v in RAW["axes"].items() if k != "usd_per_gpu_hour"}
    ds = compute(validate(dict(RAW, axes=axes, fixed={"usd_per_gpu_hour": 1.5}), "test"))
    np.testing.assert_array_equal(ds["usd_per_gpu_hour"].values, [1.5, 1.5])
    swept = compute(validate(RAW, "test"))
    np.testing.assert_allclose(
        ds.usd_per_mtok_output.values, swept.usd_per_mtok_output.sel(usd_per_gpu_hour=1.5).values, rtol=1e-12
    )


def test_explain_matches_the_sweep(swept):
    point = swept.sel(gpu="h100-sxm", tp=2, batch=64, input_len=1024, output_len=256, model="llama-3.1-8b")
    result = explain("llama-3.1-8b", "h100-sxm", 2, 64, 1024, 256, usd_per_gpu_hour=1.5)
    for name in COSTS:
        assert result[name] == pytest.approx(point[name].sel(usd_per_gpu_hour=1.5).item(), rel=1e-12)
    assert result["usd_per_hour"] == pytest.approx(1.5 * 2)


@pytest.mark.slow
def test_explain_cli_flag(swept):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "explain",
            "--model",
            "llama-3.1-8b",
            "--gpu",
            "h100-sxm",
            "--tp",
            "2",
            "--batch",
            "64",
            "--input",
            "1024",
            "--output",
            "256",
            "--usd-per-gpu-hour",
            "1.5",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    point = swept.sel(gpu="h100-sxm", tp=2, batch=64, input_len=1024, output_len=256, model="llama-3.1-8b")
    assert result["usd_per_mtok_output"] == pytest.approx(
        point.usd_per_mtok_output.sel(usd_per_gpu_hour=1.5).item(), rel=1e-12
    )
    assert result["usd_per_gpu_hour"] == 1.5
