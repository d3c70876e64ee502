"""What a new user tripped on (issue 11): every stored variable is a metric, text coordinates
read without a unit, best() gives a Dataset, a custom model is labelled by its file name, a log
range never shrinks silently, `sweep query --vars` takes coordinates, `sweep show | head` is quiet."""

import shutil
import subprocess
import sys

import pytest
import xarray as xr

from grids.axes import AXES
from grids.errors import SpecError
from grids.models import MODELS_DIR
from grids.sweeps import validate
from kernels.point import METRICS
from sweep.api import compute, run_sweep
from sweep.engine.label import INTERVAL_VARIABLES
from sweep.query.accessor import best_rows

RAW = {
    "name": "newuser",
    "axes": {
        "model": ["llama-3.1-8b"],
        "gpu": ["h100-sxm", "h200"],
        "tp": [1, 2],
        "batch": [1, 16],
        "input_len": [1024],
        "output_len": [128],
    },
}


@pytest.fixture(scope="module")
def ds():
    return compute(validate(RAW, "test"))


def test_stored_variables_are_exactly_the_metrics(ds):
    readouts = {name for name, axis in AXES.items() if axis.readout is not None and name not in RAW["axes"]}
    held = set(RAW["axes"].get("scenario", [RAW.get("fixed", {}).get("scenario", AXES["scenario"].default)]))
    # a metric of one scenario (the poisson percentiles) is stored only by a sweep holding it
    metrics = {name for name, info in METRICS.items() if not info.scenarios or held & set(info.scenarios)}
    assert metrics != set(METRICS)
    assert set(ds.data_vars) == metrics | readouts | set(INTERVAL_VARIABLES)
    for name in metrics:
        info = METRICS[name]
        assert ds[name].attrs["units"] == info.units and ds[name].attrs["long_name"] == info.long_name


def test_text_coordinates_carry_no_unit(ds):
    assert ds["model"].attrs["units"] == "" and ds["gpu"].attrs["long_name"] == "GPU"
    assert ds["tp"].attrs["units"] == "GPU"


def test_best_is_a_dataset(ds):
    best = ds.econ.best("usd_per_mtok_output", ["gpu", "tp", "batch"], "ttft_s<=10")
    assert isinstance(best, xr.Dataset) and set(best.dims) == {"model", "input_len", "output_len"}
    chosen = ds.sel(model="llama-3.1-8b", input_len=1024, output_len=128).usd_per_mtok_output
    assert best.usd_per_mtok_output.item() == pytest.approx(float(chosen.min()))
    assert best.gpu.item() in ("h100-sxm", "h200") and best.tp.item() in (1, 2)


def test_custom_model_is_labelled_by_its_file_name(tmp_path):
    path = tmp_path / "my-model.json"
    shutil.copy(MODELS_DIR / "llama-3.1-8b.json", path)
    ds = compute(validate(dict(RAW, axes=dict(RAW["axes"], model=[str(path), "llama-3.1-8b"])), "test"))
    assert ds.model.values.tolist() == ["my-model", "llama-3.1-8b"]
    with pytest.raises(SpecError, match="duplicate"):
        validate(
            dict(RAW, axes=dict(RAW["axes"], model=[str(path), str(tmp_path / ".." / path.parent.name / path.name)])),
            "t",
        )


def test_log_range_that_rounds_to_repeats_is_refused():
    batch = {"start": 1, "stop": 512, "num": 21, "scale": "log"}
    with pytest.raises(SpecError, match="21 values round to 19 distinct whole numbers"):
        validate(dict(RAW, axes=dict(RAW["axes"], batch=batch)), "spec.toml")
    ok = validate(dict(RAW, axes=dict(RAW["axes"], batch={"start": 1, "stop": 512, "num": 10, "scale": "log"})), "s")
    assert ok.axes["batch"] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


@pytest.mark.slow
def test_query_vars_take_coordinates_and_show_into_head_is_quiet(tmp_path):
    store = run_sweep(validate(RAW, "test"), tmp_path / "s.zarr", progress=False)
    cli = [sys.executable, "-m", "sweep.cli"]
    out = subprocess.run([*cli, "query", store, "--vars", "tp,ttft_s", "--csv"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split(",")[-1] == "ttft_s" and "tp" in out.stdout.splitlines()[0]
    # A reader that leaves at once (`sweep show STORE | head -0`): the pipe is closed before any write.
    proc = subprocess.Popen([*cli, "show", store], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait() == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_best_table_columns_follow_the_sweep_dim_order(ds):
    """Selected scalar coordinates come out of xarray in no fixed order; the table gives the
    sweep's order (it once swapped input_len and profile between runs of one command)."""
    picked = ds.econ.sel(input_len="1024", output_len="128")
    best = picked.econ.best("usd_per_mtok_output", ["tp", "batch"], columns=["ttft_s"])
    order = list(map(str, ds.dims))
    table = best_rows(best, "usd_per_mtok_output", order)
    keys = [c for c in table.columns if c in best.coords]
    assert keys == [d for d in order if d in keys] and set(keys) == set(order)
    assert list(table.columns[len(keys) :]) == ["usd_per_mtok_output", "ttft_s"]
