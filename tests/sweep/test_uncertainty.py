"""The fitted terms' uncertainty (Laplace approximation) and its share of the stated interval.

The measurements here are the model's own predictions under a known profile, scaled by a fixed
pattern of +-5% (no shared/benchmarks needed): the fit then has a known residual spread."""

import math
from pathlib import Path

import numpy as np
import pytest

from grids.errors import SpecError
from grids.profiles import load_profile
from kernels.point import Z_80, widen_interval
from sweep.calibration.fit import FIT_BOUNDS, fit
from sweep.calibration.measurements import Measurement
from sweep.calibration.predict import build_points, predict, with_terms
from sweep.calibration.uncertainty import PRIOR_PRECISION, log_sd, term_covariance
from sweep.calibration.validate import calibrate, cross_validate, report
from sweep.query.explain import explain

FREE = ("kv_bw_eff", "step_overhead_s", "pcie_link_eff")


def _rows(gpu: str = "h100-sxm", model: str = "llama-3.1-8b", tp: int = 1, where: Path | None = None):
    """Static-batch throughput of ``vllm`` at 12 batch sizes and 2 lengths, scaled by +-5%; with
    ``where``, their file is written there (calibrate records each file's hash)."""
    name = f"{gpu}.csv" if where is None else str(where / f"{gpu}.csv")
    truth = load_profile("vllm").spec
    rows = [
        Measurement(model, gpu, tp, float(b), float(i), 128.0, "static", "output_tok_s", 1.0, file=name)
        for i in (512, 2048)
        for b in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192)
    ]
    pred = np.asarray(predict(truth, build_points(rows)))
    noise = np.tile([1.05, 0.95, 1.0], len(rows) // 3)
    if where is not None:
        Path(name).write_text("the model's own predictions, scaled\n")
    return [
        Measurement(r.model, r.gpu, r.tp, r.batch, r.input_len, r.output_len, r.scenario, r.metric, v, file=r.file)
        for r, v in zip(rows, pred * noise)
    ]


@pytest.fixture(scope="module")
def fitted():
    rows = _rows()
    return rows, fit(rows, load_profile("vllm-base").spec, FREE, starts=2).profile


def test_a_term_the_points_cannot_see_keeps_its_prior(fitted):
    # One H100 over NVLink at TP 1: no all-reduce, so pcie_link_eff leaves every prediction
    # unchanged and its variance is the uniform prior's over its search box, width^2 / 12.
    rows, profile = fitted
    cov = term_covariance(profile, FREE, build_points(rows))
    lo, hi = FIT_BOUNDS["pcie_link_eff"]
    assert cov[2, 2] == pytest.approx((hi - lo) ** 2 / PRIOR_PRECISION, rel=1e-9)
    assert cov[0, 2] == pytest.approx(0.0, abs=1e-12) and cov[1, 2] == pytest.approx(0.0, abs=1e-15)
    # the terms the batch sweep does pin down are known far better than their boxes
    for i, term in enumerate(FREE[:2]):
        width = FIT_BOUNDS[term][1] - FIT_BOUNDS[term][0]
        assert 0.0 < cov[i, i] < 0.05 * width**2 / PRIOR_PRECISION


def test_covariance_is_the_gauss_newton_inverse_by_finite_differences(fitted):
    rows, profile = fitted
    points = build_points(rows)
    values = np.array([float(getattr(profile, n)) for n in FREE[:2]])
    base = np.log(np.asarray(predict(profile, points)))
    jac = np.empty((len(rows), 2))
    for j in range(2):
        step = 1e-6 * values[j]
        moved = values.copy()
        moved[j] += step
        jac[:, j] = (np.log(np.asarray(predict(with_terms(profile, FREE[:2], moved), points))) - base) / step
    r = base - np.log(points.measured)
    s2 = np.sum(r * r) / (len(rows) - 2)
    width = np.array([FIT_BOUNDS[n][1] - FIT_BOUNDS[n][0] for n in FREE[:2]])
    precision = (jac * width).T @ (jac * width) / s2 + PRIOR_PRECISION * np.eye(2)
    expect = np.linalg.inv(precision) * np.outer(width, width)
    np.testing.assert_allclose(term_covariance(profile, FREE[:2], points), expect, rtol=1e-4)


def test_log_sd_propagates_the_covariance(fitted):
    rows, profile = fitted
    points = build_points(rows)
    cov = np.diag([1e-4, 0.0, 0.0])  # kv_bw_eff alone uncertain, sd 0.01
    sd = log_sd(profile, FREE, cov, points)
    kv = float(profile.kv_bw_eff)
    moved = with_terms(profile, ("kv_bw_eff",), np.array([kv * (1 + 1e-6)]))
    slope = (np.log(np.asarray(predict(moved, points))) - np.log(np.asarray(predict(profile, points)))) / (kv * 1e-6)
    np.testing.assert_allclose(sd, np.abs(slope) * 0.01, rtol=1e-4)
    # the KV read weighs more at large batch: so does the uncertainty of its efficiency
    assert sd[11] > 3 * sd[0]


def test_widen_adds_in_variance_about_the_centre():
    lo, hi = widen_interval(np.array([-0.2, -0.2, 0.1]), np.array([0.1, 0.1, 0.3]), np.array([0.0, 0.1, math.nan]))
    assert lo[0] == pytest.approx(-0.2) and hi[0] == pytest.approx(0.1)  # no uncertainty: as stated
    half = math.sqrt(0.15**2 + (Z_80 * 0.1) ** 2)
    assert (lo[1], hi[1]) == pytest.approx((-0.05 - half, -0.05 + half))
    assert (lo[2], hi[2]) == pytest.approx((0.1, 0.3))  # NaN sd: nothing to add


def test_calibrate_records_the_covariance_and_validate_widens(tmp_path):
    rows = _rows(where=tmp_path)
    out = tmp_path / "mine.toml"
    calibrate(rows, "vllm-base", FREE, out, "mine", "test", "test")
    names, matrix = load_profile(str(out)).covariance()
    assert names == FREE
    cov = np.asarray(matrix)
    np.testing.assert_allclose(cov, cov.T)
    assert cov[2, 2] == pytest.approx((FIT_BOUNDS["pcie_link_eff"][1] - FIT_BOUNDS["pcie_link_eff"][0]) ** 2 / 12)
    stated = load_profile(str(out)).interval("h100-sxm")
    points = report(rows, str(out))["points"]
    # every point's interval contains the residuals', each by its own share of the terms' spread
    widths = np.array([math.log(p["predicted_p90"] / p["predicted_p10"]) for p in points])
    assert widths.min() >= (stated[1] - stated[0]) * (1 - 1e-9)
    assert widths.max() > (stated[1] - stated[0]) * 1.01 and np.ptp(widths) > 1e-3


def test_a_malformed_covariance_is_refused(tmp_path):
    out = tmp_path / "mine.toml"
    calibrate(_rows(where=tmp_path), "vllm-base", FREE[:2], out, "mine", "test", "test")
    text = out.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('"kv_bw_eff" = [', '"kv_bw_eff" = [-1.0, '))
    with pytest.raises(SpecError, match="covariance"):
        load_profile(str(bad)).covariance()
    assert load_profile("roofline").covariance() is None


def test_held_out_coverage_counts_the_terms_uncertainty(fitted):
    # Fitted on H100 SXM alone (TP 1: no link), A100 PCIe at TP 2 needs pcie_link_eff, which the
    # H100 points cannot see: its prior spread widens those points' intervals far beyond what
    # the H100 fit leaves on its own points.
    rows, profile = fitted
    points = build_points(rows)
    own = float(np.median(log_sd(profile, FREE, term_covariance(profile, FREE, points), points)))
    held = {
        g["gpu"]: g for g in cross_validate(rows + _rows("a100-pcie-80gb", "llama-3.1-8b", 2), "vllm-base", FREE, "gpu")
    }
    a100 = held["a100-pcie-80gb"]
    assert a100["param_log_sd_median"] > 5 * own
    assert a100["coverage_80"] >= a100["coverage_80_residuals_only"]


def test_explain_widens_by_the_same_spread_as_validate():
    # explain differentiates the float64 numpy model by central differences, validate the JAX
    # model by forward mode: the same point's spread agrees, and its p10/p90 contain the residuals'.
    row = Measurement(
        "llama-3.3-70b", "a100-pcie-80gb", 4, math.nan, 2000.0, 300.0, "max_throughput", "output_tok_s", 1.0
    )
    entry = load_profile("trtllm")
    names, matrix = entry.covariance()
    (expect,) = log_sd(entry.spec, names, np.asarray(matrix), build_points([row]))
    out = explain("llama-3.3-70b", "a100-pcie-80gb", 4, 1, 2000, 300, profile="trtllm", scenario="max_throughput")
    sd = out["interval_terms_log_sd"]["output_tok_s"]
    assert sd == pytest.approx(expect, rel=1e-3) and sd > 0.005
    lo, hi = entry.interval("a100-pcie-80gb")
    assert out["output_tok_s_p10"] < out["output_tok_s"] * math.exp(lo)
    assert out["output_tok_s_p90"] > out["output_tok_s"] * math.exp(hi)
    assert explain("llama-3.1-8b", "h100-sxm", 1, 8, 512, 64, profile="roofline")["interval_terms_log_sd"] == {}


SWEEP = """
name = "spread"
[axes]
model = ["llama-3.1-8b"]
gpu = ["h100-sxm", "a100-pcie-80gb"]
tp = [1, 2]
batch = [1, 32]
input_len = [2000]
output_len = [300]
profile = ["trtllm", "roofline"]
[fixed]
scenario = "concurrency"
[engine]
term_intervals = true
"""


def test_a_sweep_stores_each_points_spread_and_widens_its_interval(tmp_path):
    import sweep.query.accessor  # noqa: F401 (ds.econ)
    from grids.sweeps import load_sweep
    from kernels.point import TERMS_LOG_SD
    from sweep.engine.compute import compute

    path = tmp_path / "spread.toml"
    path.write_text(SWEEP)
    ds = compute(load_sweep(str(path)))
    at = dict(model="llama-3.1-8b", input_len=2000, output_len=300)
    for gpu, tp, batch in (("a100-pcie-80gb", 2, 32), ("h100-sxm", 1, 1)):
        want = explain("llama-3.1-8b", gpu, tp, batch, 2000, 300, profile="trtllm", scenario="concurrency")
        for name, sd in want["interval_terms_log_sd"].items():
            got = float(ds[TERMS_LOG_SD[name]].sel(gpu=gpu, tp=tp, batch=batch, profile="trtllm", **at))
            assert got == pytest.approx(sd, rel=2e-3, abs=1e-6), (gpu, tp, batch, name)
    assert float(ds[TERMS_LOG_SD["output_tok_s"]].sel(profile="roofline").max()) == 0.0  # never fitted
    lo, hi = ds.econ.interval("output_tok_s")
    ratio = (hi / ds["output_tok_s"]).sel(profile="trtllm")
    stated = np.exp(ds["interval_log_p90"].sel(profile="trtllm"))
    assert bool((ratio >= stated * (1 - 1e-6)).all()) and bool((ratio > stated * 1.0001).any())
    assert (
        ds[TERMS_LOG_SD["ttft_s"]].attrs["units"] == "1"
        and "fitted terms" in ds[TERMS_LOG_SD["ttft_s"]].attrs["long_name"]
    )


def test_term_intervals_must_be_a_boolean(tmp_path):
    from grids.sweeps import load_sweep

    path = tmp_path / "bad.toml"
    path.write_text(SWEEP.replace("term_intervals = true", 'term_intervals = "yes"'))
    with pytest.raises(SpecError, match="term_intervals"):
        load_sweep(str(path))


def _fitted(tmp_path: Path, fit: str) -> Path:
    """A profile of the roofline's terms with the [fit] record ``fit`` (TOML text)."""
    from grids.profiles import PROFILES_DIR

    profile = tmp_path / "p.toml"
    profile.write_text((PROFILES_DIR / "roofline.toml").read_text() + "\n" + fit)
    return profile


def test_each_scenario_states_its_own_interval(tmp_path):
    # A fit to two scenarios records each one's own 10th-90th percentiles; a GPU the fit measured
    # gets its scenario's, any other GPU and an unrecorded scenario keep the pooled ones.
    from sweep.calibration.validate import SCENARIO_MIN_POINTS, row_intervals, scenario_intervals

    rows = _rows()  # static, 24 points
    pred = np.asarray(predict(load_profile("vllm").spec, build_points(rows)))
    other = [
        Measurement(r.model, r.gpu, r.tp, r.batch, r.input_len, r.output_len, "concurrency", r.metric, r.value * 1.3)
        for r in rows
    ]
    both = scenario_intervals(rows + other, np.concatenate([pred, pred]))
    assert set(both) == {"static", "concurrency"}
    assert both["concurrency"][0] == pytest.approx(both["static"][0] + math.log(1.3))  # its own errors, 30% off
    assert scenario_intervals(rows, pred) == {}  # one scenario: the pooled interval says it all
    few = other[: SCENARIO_MIN_POINTS - 1]
    assert set(scenario_intervals(rows + few, np.concatenate([pred, pred[: len(few)]]))) == {"static"}
    assert row_intervals(rows[:1] + few[:1], (-0.5, 0.5), {"static": [-0.1, 0.1]}).tolist() == [
        [-0.1, 0.1],
        [-0.5, 0.5],
    ]
    profile = _fitted(
        tmp_path,
        '[fit]\nlog_error_p10 = -0.5\nlog_error_p90 = 0.5\nfitted_gpus = "h100-sxm"\n'
        "holdout_log_error_p10 = -0.3\nholdout_log_error_p90 = 0.2\n"
        '\n[fit.scenario_intervals]\n"concurrency" = [-0.05, 0.06]\n',
    )
    entry = load_profile(str(profile))
    assert entry.interval("h100-sxm", "concurrency") == (-0.05, 0.06)
    assert entry.interval("h100-sxm", "static") == (-0.5, 0.5)
    assert entry.interval("h200", "concurrency") == (-0.3, 0.2)
    # explain and a sweep over the scenario state the same
    out = explain("llama-3.1-8b", "h100-sxm", 1, 8, 512, 64, profile=str(profile), scenario="concurrency")
    assert (out["interval_log_p10"], out["interval_log_p90"]) == (-0.05, 0.06)
    from grids.sweeps import load_sweep
    from sweep.engine.label import stated_interval

    spec_path = tmp_path / "s.toml"
    spec_path.write_text(
        SWEEP.replace('profile = ["trtllm", "roofline"]', f'profile = ["{profile}", "roofline"]')
        .replace('[fixed]\nscenario = "concurrency"\n', "")
        .replace("[axes]\n", '[axes]\nscenario = ["static", "concurrency"]\n')
    )
    lo = stated_interval(load_sweep(str(spec_path)))["interval_log_p10"]
    assert lo.dims == ("profile", "model", "gpu", "scenario")
    assert lo.values[0, 0, 0].tolist() == [-0.5, -0.05] and lo.values[0, 0, 1].tolist() == [-0.3, -0.3]


def test_a_model_the_fit_did_not_measure_gets_the_held_out_models_interval(tmp_path):
    profile = _fitted(
        tmp_path,
        '[fit]\nlog_error_p10 = -0.1\nlog_error_p90 = 0.1\nfitted_gpus = "h100-sxm"\n'
        'fitted_models = "llama-3.1-8b"\nholdout_field = "gpu"\n'
        "holdout_log_error_p10 = -0.3\nholdout_log_error_p90 = 0.2\n"
        "holdout_model_log_error_p10 = -0.25\nholdout_model_log_error_p90 = 0.35\n",
    )
    entry = load_profile(str(profile))
    assert entry.interval("h100-sxm", "static", "llama-3.1-8b") == (-0.1, 0.1)  # both measured
    assert entry.interval("h200", "static", "llama-3.1-8b") == (-0.3, 0.2)  # a datasheet-only GPU
    assert entry.interval("h100-sxm", "static", "qwen2.5-7b") == (-0.25, 0.35)  # a model not measured
    assert entry.interval("h200", "static", "qwen2.5-7b") == (-0.3, 0.35)  # both: the wider side of each
    assert entry.interval("h100-sxm") == (-0.1, 0.1)  # no model named: as a measured one
    out = explain("qwen2.5-7b", "h100-sxm", 1, 8, 512, 64, profile=str(profile))
    assert (out["interval_log_p10"], out["interval_log_p90"]) == (-0.25, 0.35) and out["interval_unseen"] == ["model"]
    from sweep.query.explain_text import render

    assert "from its calibration, for a model it did not measure" in render(out)


def test_calibrate_holds_out_gpus_and_models(tmp_path):
    rows = _rows(where=tmp_path) + _rows("a100-pcie-80gb", "llama-3.1-8b", 2, where=tmp_path)
    rows += [
        Measurement(
            r.model.replace("llama-3.1-8b", "qwen2.5-7b"),
            r.gpu,
            r.tp,
            r.batch,
            r.input_len,
            r.output_len,
            r.scenario,
            r.metric,
            r.value,
            file=r.file,
        )
        for r in rows[:12]
    ]
    out = tmp_path / "mine.toml"
    result = calibrate(rows, "vllm-base", FREE[:2], out, "mine", "test", "test", ("gpu", "model"))
    record = load_profile(str(out)).data["fit"]
    assert record["holdout_field"] == "gpu" and record["fitted_models"] == "llama-3.1-8b,qwen2.5-7b"
    for key in ("holdout_log_error_p10", "holdout_model_log_error_p10", "holdout_model_coverage_80"):
        assert isinstance(record[key], float)
    assert {g["held_out"] for g in result["hold_out"]} == {"gpu", "model"}


def test_holding_out_a_field_of_one_value_is_refused_before_any_fit(tmp_path):
    with pytest.raises(SpecError, match="one model only"):
        calibrate(_rows(where=tmp_path), "vllm-base", FREE, tmp_path / "x.toml", "x", "x", "x", ("model", "gpu"))
    assert not (tmp_path / "x.toml").exists()
