"""The engine: vmapped chunks equal point-by-point evaluation; one compile per chunk shape."""

import dataclasses

import numpy as np
import pytest

from grids.gpus import load_gpus
from grids.models import load_model
from grids.ownership import default_ownership
from grids.profiles import load_profile
from grids.sweeps import validate
from kernels.point import evaluate, mask_infeasible
from sweep.engine.plan import STORED, chunk_shape, make_plan
from tests.specs import deployment, on_host, workload

RAW = {
    "name": "small",
    "axes": {
        "model": ["llama-3.1-8b", "llama-3.3-70b"],
        "gpu": ["h100-sxm", "a100-sxm-40gb"],
        "tp": [1, 4],
        "batch": [1, 8, 64],
        "input_len": [128, 2048, 32768],
        "output_len": [1, 64],
        "profile": ["article", "roofline"],
    },
    "engine": {"precision": "float64", "chunk_points": 25},
}


def test_chunk_shape_fills_inner_dims_first():
    assert chunk_shape((2, 3, 4, 5), 20) == (1, 1, 4, 5)
    assert chunk_shape((2, 3, 4, 5), 50) == (1, 2, 4, 5)
    assert chunk_shape((2, 3, 4, 5), 1000) == (2, 3, 4, 5)
    assert chunk_shape((2, 3, 4, 5), 3) == (1, 1, 1, 3)


def test_vmapped_chunks_equal_point_loop():
    """Every point of every (edge-padded) chunk equals a direct evaluation of that point."""
    spec = validate(RAW, "test")
    plan = make_plan(spec)
    assert plan.chunks[-4:] == (2, 3, 2, 2) and plan.n_chunks > 1  # 3 batch sizes in chunks of 2: padded
    gpus = load_gpus()

    def point(*specs):
        """One point on the host: no second compiled program."""
        return mask_infeasible(evaluate(*on_host(*specs)))

    checked = 0
    for chunk_id in plan.chunk_ids():
        region = plan.region(chunk_id)
        out = plan.evaluate(chunk_id)
        for local in np.ndindex(*out["ttft_s"].shape):
            idx = {dim: sl.start + i for dim, sl, i in zip(plan.dims, region, local)}
            coords = {dim: spec.axes[dim][idx[dim]] for dim in plan.dims}
            expected = point(
                load_model(coords["model"]).spec,
                gpus[coords["gpu"]].spec,
                deployment(coords["tp"], coords["batch"]),
                workload(coords["input_len"], coords["output_len"]),
                load_profile(coords["profile"]).spec,
                default_ownership(),
            )
            for name in STORED:
                np.testing.assert_allclose(
                    out[name][local], np.asarray(getattr(expected, name)), rtol=1e-12, err_msg=f"{name} at {coords}"
                )
            checked += 1
    assert checked == spec.n_points


def test_second_sweep_with_same_shapes_compiles_nothing():
    spec = validate(RAW, "test")
    plan = make_plan(spec)
    plan.evaluate((0,) * len(plan.dims))
    compiled = plan.fn._cache_size()
    other = dict(RAW, axes=dict(RAW["axes"], batch=[2, 16, 128], input_len=[256, 1024, 8192], gpu=["h200", "mi300x"]))
    plan2 = make_plan(validate(other, "test"))
    plan2.evaluate((0,) * len(plan2.dims))
    plan2.evaluate(tuple(g - 1 for g in plan2.grid))  # the padded last chunk too
    assert plan2.fn is plan.fn and plan.fn._cache_size() == compiled


@pytest.mark.parametrize("precision", ["float32"])
def test_float32_sweep_within_1e6_of_float64(precision):
    """The fast float32 path stays within the relative error STYLE allows (1e-6, plus the ulp of
    the stored float32 value itself) of the exact float64 path; both agree on feasibility."""
    exact = make_plan(validate(RAW, "test"))
    fast = make_plan(validate(dict(RAW, engine={"precision": precision, "chunk_points": 25}), "test"))
    for chunk_id in exact.chunk_ids():
        a, b = exact.evaluate(chunk_id), fast.evaluate(chunk_id)
        np.testing.assert_array_equal(a["feasible"], b["feasible"])
        np.testing.assert_array_equal(a["bottleneck"], b["bottleneck"])
        for name in STORED:
            if name in ("feasible", "bottleneck"):
                continue
            np.testing.assert_allclose(b[name], a[name], rtol=2e-6, err_msg=name)


def test_spec_dataclass_is_frozen():
    spec = validate(RAW, "test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
