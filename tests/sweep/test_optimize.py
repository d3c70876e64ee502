"""The SLO optimum (kernels/optimum.py, sweep optimize): equal to a brute-force search over a
step-1 batch grid, independent of the spec's batch grid, its binding constraint, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from grids.errors import SpecError
from grids.sweeps import validate
from sweep.api import compute
from sweep.cli import main
from sweep.engine.optimize import optimize, parse_slo

SLOS = [parse_slo("user_tok_s>=30"), parse_slo("ttft_s<=2")]
BATCHES = list(range(1, 301))  # beyond vllm's max_num_seqs (256), the largest batch limit here

RAW = {
    "name": "optimum",
    "axes": {
        "model": ["llama-3.1-8b"],
        "gpu": ["h100-sxm", "a100-sxm-80gb", "l4"],
        "tp": [1, 2],
        "batch": BATCHES,
        "input_len": [1024, 4096],
        "output_len": [256],
        "scenario": ["static", "concurrency"],
    },
    "fixed": {"profile": "vllm"},
    "engine": {"precision": "float64"},
}


@pytest.fixture(scope="module")
def optimum() -> xr.Dataset:
    return optimize(validate(RAW, "test"), SLOS)


def test_optimum_equals_brute_force_on_a_step_1_batch_grid(optimum):
    grid = compute(validate(RAW, "test"))
    ok = grid.feasible & (grid.user_tok_s >= 30) & (grid.ttft_s <= 2)
    brute = grid.usd_per_mtok_output.where(ok).min("batch")
    solved = optimum.usd_per_mtok_output
    assert solved.dims == brute.dims
    found = np.isfinite(brute.values)
    assert found.sum() >= 10 and (~found).sum() >= 1  # some configurations meet the objectives, some cannot
    np.testing.assert_array_equal(np.isfinite(solved.values), found)
    np.testing.assert_allclose(solved.values[found], brute.values[found], rtol=0.01)
    # the optimal batch is the brute-force argmin wherever the minimum is unique to 1e-9
    at = grid.usd_per_mtok_output.where(ok).fillna(np.inf).argmin("batch").values + 1
    np.testing.assert_array_equal(optimum.optimal_batch.values[found], at[found])
    # both kinds of binding constraint occur: the batch limit and an objective
    codes = set(np.unique(optimum.binding.values[found]))
    assert 0 in codes and codes & {1, 2}
    assert (optimum.binding.values[~found] == -1).all()


def test_the_answer_does_not_depend_on_the_batch_grid(optimum):
    coarse = optimize(validate(dict(RAW, axes=dict(RAW["axes"], batch=[1, 8, 64])), "test"), SLOS)
    for name in ("optimal_batch", "usd_per_mtok_output", "ttft_s", "binding"):
        np.testing.assert_array_equal(coarse[name].values, optimum[name].values)


def test_binding_names_what_one_more_request_breaks(optimum):
    flags = optimum.binding.attrs["flag_meanings"].split()
    assert flags == ["none_met", "batch_limit", "user_tok_s>=30", "ttft_s<=2"]
    met = optimum.binding.values >= 1
    # at the optimum every objective holds; one more request breaks the named one
    assert (optimum.user_tok_s.values[met] >= 30).all() and (optimum.ttft_s.values[met] <= 2).all()
    assert "batch" not in optimum.dims and optimum.optimal_batch.attrs["units"] == "sequence"


def test_slo_parsing_refuses_bad_objectives():
    assert parse_slo(" ttft_s <= 1.5 ") == ("ttft_s", "<=", 1.5)
    for bad, words in [
        ("ttft_s<1", "expected METRIC<=NUMBER"),
        ("nope>=3", "unknown metric"),
        ("ttft_s<=abc", "not a number"),
        ("ttft_s<=-1", "positive"),
        ("usd_per_mtok_output<=1", "unknown metric"),
    ]:
        with pytest.raises(SpecError, match=words):
            parse_slo(bad)
    with pytest.raises(SpecError, match="unknown objective"):
        optimize(validate(RAW, "test"), SLOS, minimize="ttft_s")


def test_cli_writes_the_optimum(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "o"\n[axes]\nmodel = ["llama-3.1-8b"]\ngpu = ["h100-sxm", "a100-sxm-80gb", "l4"]\ntp = [1, 2]\n'
        "batch = [1]\ninput_len = [1024, 4096]\noutput_len = [256]\n"
        'scenario = ["static", "concurrency"]\n[fixed]\nprofile = "vllm"\n[engine]\nprecision = "float64"\n'
    )
    out = tmp_path / "opt.zarr"
    args = ["optimize", str(spec), "--slo", "user_tok_s>=30", "--slo", "ttft_s<=2", "-o", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "configurations of 'o'" in printed and "optimum ->" in printed
    stored = xr.open_zarr(out, consolidated=False).load()
    np.testing.assert_allclose(
        stored.usd_per_mtok_output.values, optimize(validate(RAW, "test"), SLOS).usd_per_mtok_output.values
    )
    assert main(args) == 2  # an existing store is not replaced without --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["optimize", str(spec)]) == 2
    assert "give at least one objective" in capsys.readouterr().err
