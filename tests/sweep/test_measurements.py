"""Measurements say what ran (issue 12): formats, compute precision, parallelism and engine as
optional CSV columns, validated by the sweep axes; a weight format runs on its own tensor cores
where the GPU has them."""

import jax
import pytest

from grids.errors import SpecError
from grids.profiles import load_profile
from kernels.point import evaluate
from sweep.calibration.measurements import load_measurements
from sweep.calibration.predict import build_points, predict
from tests.specs import point

HEADER = "model,gpu,tp,batch,input_len,output_len,scenario,metric,value"


def _csv(tmp_path, extra_header: str, *rows: str):
    path = tmp_path / "m.csv"
    path.write_text("\n".join([HEADER + extra_header, *rows]) + "\n")
    return str(path)


def test_nvfp4_measurement_is_expressible(tmp_path):
    # NVFP4 as TensorRT-LLM runs it on Blackwell: fp4 weights, fp8 KV cache, fp4 matmuls
    f = _csv(
        tmp_path,
        ",weight_dtype,kv_dtype,compute_dtype,pp,dp,expert_parallel,engine",
        "llama-3.3-70b,b200,1,8,1024,128,static,output_tok_s,100,nvfp4,fp8,fp4,1,2,off,TensorRT-LLM 1.0",
    )
    (row,) = load_measurements([f])
    assert (row.weight_dtype, row.kv_dtype, row.compute_dtype, row.pp, row.dp) == ("nvfp4", "fp8", "fp4", 1, 2)
    assert row.engine == "TensorRT-LLM 1.0" and row.precision == "nvfp4/kv-fp8"
    assert predict(load_profile("roofline").spec, build_points([row]))[0] > 0


def test_precision_is_the_shorthand_and_refuses_a_kv_format_it_cannot_be(tmp_path):
    (row,) = load_measurements([_csv(tmp_path, ",precision", "llama-3.1-8b,h100-sxm,1,8,128,128,static,e2e_s,1,fp8")])
    assert (row.weight_dtype, row.kv_dtype, row.compute_dtype) == ("fp8", "fp8", "auto")
    with pytest.raises(SpecError, match="line 2: precision 'nvfp4' cannot store the KV cache; give the kv_dtype"):
        load_measurements([_csv(tmp_path, ",precision", "llama-3.1-8b,b200,1,8,128,128,static,e2e_s,1,nvfp4")])
    (row,) = load_measurements(
        [_csv(tmp_path, ",precision,kv_dtype", "llama-3.1-8b,b200,1,8,128,128,static,e2e_s,1,nvfp4,fp8")]
    )
    assert (row.weight_dtype, row.kv_dtype) == ("nvfp4", "fp8")


@pytest.mark.parametrize(
    ("extra", "cell", "message"),
    [
        ("", "", "column 'tp': expected whole numbers, got 1.5"),
        (",pp", ",0", "column 'pp' must be positive"),
        (",expert_parallel", ",maybe", "column 'expert_parallel': unknown expert parallelism 'maybe'"),
        (",compute_dtype", ",fp6", "column 'compute_dtype': unknown compute precision 'fp6'"),
        (",precision,weight_dtype", ",fp8,bf16", "precision 'fp8' and weight_dtype 'bf16' disagree"),
    ],
)
def test_design_columns_are_validated_by_the_axes(tmp_path, extra, cell, message):
    tp = "1.5" if not extra else "1"
    f = _csv(tmp_path, extra, f"llama-3.1-8b,h100-sxm,{tp},8,128,128,static,e2e_s,1{cell}")
    with pytest.raises(SpecError, match="line 2: " + message.replace("(", r"\(")):
        load_measurements([f])


def test_a_weight_format_runs_on_its_own_tensor_cores_where_the_gpu_has_them():
    """nvfp4 weights: fp4 matmuls on B200 (which has fp4 tensor cores), bf16 on H100 (which has
    not); fp8 weights on A100 (no fp8 tensor cores) run W8A16 instead of being infeasible."""
    with jax.enable_x64(True):
        for gpu, weights, expected in (
            ("b200", "nvfp4", 3.0),
            ("h100-sxm", "nvfp4", 0.0),
            ("a100-sxm-80gb", "fp8", 0.0),
        ):
            pt = point(
                "llama-3.1-8b", gpu, "roofline", tp=1, batch=64, input_len=4096, output_len=2, weight_dtype=weights
            )
            assert float(pt.dep.compute_dtype) == expected, (gpu, weights)
            assert bool(evaluate(*pt).feasible)
        fast = point("llama-3.1-8b", "b200", "roofline", batch=64, input_len=4096, output_len=2, weight_dtype="nvfp4")
        slow = point(
            "llama-3.1-8b",
            "b200",
            "roofline",
            batch=64,
            input_len=4096,
            output_len=2,
            weight_dtype="nvfp4",
            compute_dtype="bf16",
        )
        assert float(evaluate(*fast).ttft_s) < 0.5 * float(evaluate(*slow).ttft_s)  # prefill is compute-bound


def test_validate_by_groups_errors(tmp_path):
    """`sweep validate --by gpu,metric`: per group the points, MAPE, median absolute error and
    the signed bias (median of predicted / measured - 1), computed here by hand."""
    import numpy as np

    from sweep.calibration.validate import group_errors, parse_by

    f = _csv(
        tmp_path,
        "",
        "llama-3.1-8b,h100-sxm,1,8,128,128,static,e2e_s,1.0",
        "llama-3.1-8b,h100-sxm,1,16,128,128,static,e2e_s,2.0",
        "llama-3.1-8b,h100-sxm,1,32,128,128,static,e2e_s,4.0",
        "llama-3.1-8b,h200,1,8,128,128,static,e2e_s,1.0",
    )
    rows = load_measurements([f])
    predicted = np.array([1.1, 1.6, 4.4, np.nan])  # +10%, -20%, +10%; the h200 point not predicted
    groups = group_errors(rows, predicted, parse_by("gpu,metric"))
    h100, h200 = groups
    assert (h100["gpu"], h100["metric"], h100["points"], h100["predicted_points"]) == ("h100-sxm", "e2e_s", 3, 3)
    assert h100["mape"] == pytest.approx((0.1 + 0.2 + 0.1) / 3)
    assert h100["median_abs_error"] == pytest.approx(0.1) and h100["bias"] == pytest.approx(0.1)
    assert h200["predicted_points"] == 0 and np.isnan(h200["mape"])
    with pytest.raises(SpecError, match="--by: unknown field 'colour'"):
        parse_by("gpu,colour")


@pytest.mark.slow
def test_hold_out_recovers_a_profile_that_made_the_data(tmp_path):
    """Measurements made by the model itself (vllm-base with matmul_eff 0.4, kv_bw_eff 0.6) on
    two GPUs: leaving one GPU out, the fit on the other predicts it to rounding, because the
    efficiencies are fractions of each GPU's datasheet and transfer."""
    import dataclasses

    import numpy as np

    from sweep.calibration.measurements import Measurement
    from sweep.calibration.validate import cross_validate

    truth = dataclasses.replace(load_profile("vllm-base").spec, matmul_eff=np.float64(0.4), kv_bw_eff=np.float64(0.6))
    shapes = [(b, i, o) for b in (1, 16, 64) for i, o in ((2048, 2), (128, 512))]
    rows = [
        Measurement("llama-3.1-8b", gpu, 1, float(b), float(i), float(o), "static", "e2e_s", 1.0)
        for gpu in ("h100-sxm", "a100-sxm-80gb")
        for b, i, o in shapes
    ]
    made = np.asarray(predict(truth, build_points(rows)))
    rows = [dataclasses.replace(r, value=float(v)) for r, v in zip(rows, made)]
    held = cross_validate(rows, "vllm-base", ("matmul_eff", "kv_bw_eff"), "gpu")
    assert [g["gpu"] for g in held] == ["h100-sxm", "a100-sxm-80gb"]
    for group in held:
        assert group["train_points"] == group["points"] == len(shapes)
        assert group["mape"] < 1e-3, group
        # the interval from the training fit's residuals is as narrow as the fit is exact
        assert group["interval_log_p90"] - group["interval_log_p10"] < 1e-3
        assert 0.0 <= group["coverage_80"] <= 1.0 and len(group["held_out_log_errors"]) == len(shapes)


def test_stated_interval_reaches_validate(tmp_path):
    """A profile whose fit record states an 80% interval of the speed error gives
    predicted_p10 / predicted_p90 per point in `validate --json`, and `--by` counts the points
    inside it; held-out quantiles win over in-sample ones."""
    import math

    import numpy as np

    from grids.profiles import PROFILES_DIR, load_profile
    from sweep.calibration.validate import log_error_interval, report

    profile = tmp_path / "p.toml"
    profile.write_text(
        (PROFILES_DIR / "roofline.toml").read_text()
        + "\n[fit]\nlog_error_p10 = -0.5\nlog_error_p90 = 0.5\n"
        + "holdout_log_error_p10 = -0.2\nholdout_log_error_p90 = 0.1\n"
    )
    assert load_profile(str(profile)).interval() == (-0.2, 0.1)
    assert all(math.isnan(x) for x in load_profile("roofline").interval())
    # a GPU the fit measured gets the fit's own (narrower) interval; any other the held-out one
    measured = tmp_path / "m.toml"
    measured.write_text(profile.read_text() + 'fitted_gpus = "h100-sxm,mi300x"\n')
    assert load_profile(str(measured)).interval("h100-sxm") == (-0.5, 0.5)
    assert load_profile(str(measured)).interval("h200") == (-0.2, 0.1)
    rows = load_measurements(
        [
            _csv(
                tmp_path,
                "",
                "llama-3.1-8b,h100-sxm,1,8,1024,128,static,e2e_s,1.0",
                "llama-3.1-8b,h100-sxm,1,64,1024,128,static,e2e_s,1.0",
            )
        ]
    )
    rep = report(rows, str(profile), ("gpu",))
    pred = np.array([p["predicted"] for p in rep["points"]])
    for p in rep["points"]:  # a time: the engine 20% slower .. 10% faster in the log
        assert p["predicted_p10"] == pytest.approx(p["predicted"] * math.exp(-0.1))
        assert p["predicted_p90"] == pytest.approx(p["predicted"] * math.exp(0.2))
    inside = np.mean([(-0.2 <= -math.log(1.0 / x) <= 0.1) for x in pred])
    assert rep["groups"][0]["coverage_80"] == pytest.approx(inside)
    # the interval of a fit: the 10th and 90th percentiles of ln(measured / predicted)
    lo, hi = log_error_interval(rows, np.array([1.0 / math.exp(-1.0), 1.0 / math.exp(1.0)]))
    assert (lo, hi) == pytest.approx((-0.8, 0.8))


def test_sweeps_and_explain_carry_the_stated_interval(tmp_path):
    """Beside every central value: a sweep stores each profile's stated interval and
    ds.econ.interval gives p10/p90 of a rate (scaled by e^p10 .. e^p90) and of a time or cost
    (mirrored); `sweep explain` gives the same numbers; a profile never fitted states none."""
    import math

    import numpy as np

    from grids.profiles import PROFILES_DIR
    from grids.sweeps import validate
    from sweep.api import compute
    from sweep.query.explain import explain

    profile = tmp_path / "fitted.toml"
    profile.write_text(
        (PROFILES_DIR / "roofline.toml").read_text() + "\n[fit]\nlog_error_p10 = -0.3\nlog_error_p90 = 0.2\n"
    )
    raw = {
        "name": "iv",
        "axes": {
            "model": ["llama-3.1-8b"],
            "gpu": ["h100-sxm"],
            "tp": [1],
            "batch": [1, 8],
            "input_len": [512],
            "output_len": [64],
            "profile": [str(profile), "roofline"],
        },
    }
    ds = compute(validate(raw, "test"))
    assert ds.interval_log_p10.sel(profile="fitted").item() == -0.3
    assert np.isnan(ds.interval_log_p90.sel(profile="roofline").item())
    lo, hi = ds.econ.interval("output_tok_s")
    rate = ds.output_tok_s.sel(profile="fitted")
    np.testing.assert_allclose(lo.sel(profile="fitted"), rate * math.exp(-0.3))
    np.testing.assert_allclose(hi.sel(profile="fitted"), rate * math.exp(0.2))
    lo, hi = ds.econ.interval("usd_per_mtok_output")
    cost = ds.usd_per_mtok_output.sel(profile="fitted")
    np.testing.assert_allclose(lo.sel(profile="fitted"), cost * math.exp(-0.2))
    np.testing.assert_allclose(hi.sel(profile="fitted"), cost * math.exp(0.3))
    assert bool(np.isnan(hi.sel(profile="roofline")).all())
    with pytest.raises(SpecError, match="no interval for 'weight_bytes'"):
        ds.econ.interval("weight_bytes")
    one = explain("llama-3.1-8b", "h100-sxm", 1, 8, 512, 64, profile=str(profile))
    point = ds.sel(profile="fitted", batch=8).squeeze()
    assert one["ttft_s_p10"] == pytest.approx(float(point.ttft_s) * math.exp(-0.2), rel=1e-5)
    assert one["output_tok_s_p90"] == pytest.approx(float(point.output_tok_s) * math.exp(0.2), rel=1e-5)


def test_explain_text_states_the_interval_or_its_absence():
    from sweep.query.explain import explain
    from sweep.query.explain_text import render

    fitted = render(explain("llama-3.1-8b", "h100-sxm", 1, 8, 1024, 128, profile="vllm"))
    assert "80% interval (profile vllm, from its calibration, which measured this GPU and model): TTFT" in fitted
    bare = render(explain("llama-3.1-8b", "h100-sxm", 1, 8, 1024, 128, profile="roofline"))
    assert "profile roofline states no error interval" in bare
