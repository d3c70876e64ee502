"""Elasticities (kernels/sensitivity.py) by forward-mode autodiff equal central finite
differences of the same kernels in float64 numpy; the elasticity of rented $/Mtok to the price is
exactly 1; explain and sweep optimize carry them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grids.axes import design_inputs
from grids.sweeps import validate
from kernels.point import design_point, evaluate_point
from kernels.sensitivity import ELASTIC_METRICS, GPU_NUMBERS, scaled
from sweep.cli import main
from sweep.engine.optimize import optimize, parse_slo
from sweep.query.explain import point_elasticities

POINTS = [
    dict(model="llama-3.3-70b", gpu="h100-sxm", tp=4, batch=32, input_len=2048, output_len=500, scenario="concurrency"),
    dict(model="llama-3.1-8b", gpu="a100-sxm-80gb", tp=1, batch=64, input_len=8192, output_len=256),  # static
    dict(model="mixtral-8x7b", gpu="h200", tp=2, batch=128, input_len=1024, output_len=1024, weight_dtype="fp8"),
]


def _central_difference(values: dict, h: float = 1e-6) -> dict[str, np.ndarray]:
    point = design_point(**design_inputs(dict(values, profile="vllm")))  # float64 numpy
    out = {m: np.zeros(len(GPU_NUMBERS)) for m in ELASTIC_METRICS}
    base = evaluate_point(point)
    for j in range(len(GPU_NUMBERS)):
        up, down = np.ones(len(GPU_NUMBERS)), np.ones(len(GPU_NUMBERS))
        up[j], down[j] = 1 + h, 1 - h
        with np.errstate(all="ignore"):
            hi, lo = evaluate_point(scaled(point, up)), evaluate_point(scaled(point, down))
        for m in ELASTIC_METRICS:
            out[m][j] = (getattr(hi, m) - getattr(lo, m)) / (2 * h) / getattr(base, m)
    return out


@pytest.mark.parametrize("values", POINTS, ids=lambda v: v["model"])
def test_elasticities_equal_central_finite_differences(values):
    result = point_elasticities(dict(values, profile="vllm"))  # one compiled program for every point
    auto = {m: np.asarray([result[m][k] for k in GPU_NUMBERS]) for m in ELASTIC_METRICS}
    fd = _central_difference(values)
    for m in ELASTIC_METRICS:
        np.testing.assert_allclose(auto[m], fd[m], rtol=1e-4, atol=1e-7, err_msg=m)
    price = list(GPU_NUMBERS).index("usd_per_hour")
    assert auto["usd_per_mtok_output"][price] == 1.0  # exactly: cost is linear in the price
    # something physical matters: bandwidth or compute moves the cost
    assert auto["usd_per_mtok_output"][:2].min() < -0.1


def test_explain_and_optimize_carry_them(capsys):
    args = ["explain", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "16", "--input", "1024"]
    assert main([*args, "--output", "256", "--profile", "vllm", "--sensitivity", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["elasticity"]) == set(ELASTIC_METRICS)
    assert d["elasticity"]["usd_per_mtok_output"]["usd_per_hour"] == 1.0
    raw = dict(
        name="s",
        axes=dict(model=["llama-3.1-8b"], gpu=["h100-sxm"], tp=[1], batch=[16], input_len=[1024], output_len=[256]),
        fixed=dict(profile="vllm", scenario="concurrency"),
        engine=dict(precision="float64"),
    )
    ds = optimize(validate(raw, "t"), [parse_slo("user_tok_s>=30")], sensitivity=True)
    e = ds.elasticity_usd_per_mtok_output.squeeze()
    assert list(e.gpu_number.values) == list(GPU_NUMBERS) and e.attrs["units"] == "1"
    assert float(e.sel(gpu_number="usd_per_hour")) == 1.0
