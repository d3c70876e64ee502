"""Calibration against shared/benchmarks (vLLM static batches on H100, the article's data)."""

import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from grids.errors import SpecError
from grids.gpus import load_gpus
from grids.models import load_model
from grids.profiles import TERMS, load_profile
from kernels.point import evaluate
from sweep.calibration.fit import FIT_BOUNDS, errors, fit, row_weights
from sweep.calibration.measurements import Measurement, load_measurements
from sweep.calibration.predict import build_points, predict
from sweep.calibration.validate import calibrate, parse_grid, report
from tests.specs import deployment, on_host, workload

BENCH = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
FILES = {
    "8b": (BENCH / "llama_31_8b_2000in_300out.json", "llama-3.1-8b", 1),
    "70b": (BENCH / "llama_33_70b_2000in_300out.json", "llama-3.3-70b", 4),
}
VLLM_FREE = ("matmul_eff", "kv_bw_eff", "step_overhead_s", "allreduce_latency_s")
# shared/ lies beside the checkout (developers and CI); elsewhere these tests skip, never under CI.
pytestmark = pytest.mark.skipif(
    not BENCH.exists() and not os.environ.get("CI"), reason="shared/benchmarks is not beside this checkout"
)


def _rows(*keys):
    rows = []
    for key in keys:
        path, model, tp = FILES[key]
        rows += load_measurements([str(path)], model, "h100-sxm", tp)
    return rows


@pytest.mark.parametrize("key", ["8b", "70b"])
def test_shipped_profile_error_per_file(key):
    """Issue 4: MAPE <= 5% and largest error <= 12% on each file; the datasheet roofline is far off."""
    rep = report(_rows(key), "vllm-h100")
    assert rep["mape"] <= 0.05 and rep["max_abs_pct_error"] <= 0.12
    assert rep["datasheet"]["mape"] > 0.5  # the pure roofline overestimates throughput ~2x here


def test_fit_reproduces_shipped_profile_and_is_physical():
    rows = _rows("8b", "70b")
    result = fit(rows, load_profile("vllm-base").spec, VLLM_FREE)
    shipped = load_profile("vllm-h100").spec
    for term in VLLM_FREE:
        lo, hi = FIT_BOUNDS[term]
        value = result.terms[term]
        assert lo < value < hi, f"{term} = {value} sits on a bound of [{lo}, {hi}]"
        # The fit is deterministic (fixed starts), so the shipped profile is what it gives.
        np.testing.assert_allclose(value, float(getattr(shipped, term)), rtol=1e-4, err_msg=term)
    # Physically plausible ranges for vLLM on H100 (prefill MFU, KV-read bandwidth, overheads).
    assert 0.25 <= result.terms["matmul_eff"] <= 0.8
    assert 0.3 <= result.terms["kv_bw_eff"] <= 0.95
    assert 1e-4 <= result.terms["step_overhead_s"] <= 1e-2
    assert 2e-6 <= result.terms["allreduce_latency_s"] <= 6e-5


@pytest.mark.parametrize("train", [(1, 4, 16, 64, 256), (2, 8, 32, 128, 512)])
def test_generalises_to_held_out_batch_sizes(train):
    """Fitted on half of the batch sizes, predicts the other half: MAPE within 8%, and no point
    further off than 9% (measured: 8.6% at worst, Llama 3.3 70B at batch 128)."""
    rows = _rows("8b", "70b")
    fitted = fit([r for r in rows if r.batch in train], load_profile("vllm-base").spec, VLLM_FREE)
    held = [r for r in rows if r.batch not in train]
    points = build_points(held)
    e = errors(np.asarray(predict(fitted.profile, points)), points.measured)
    assert e["predicted_points"] == len(held)
    assert e["mape"] <= 0.08 and e["max_abs_pct_error"] <= 0.09


def _throughput(model, batch, input_len, output_len=300, tp=1):
    profile = load_profile("vllm-h100").spec
    from grids.gpus import load_gpu

    specs = (load_model(model).spec, load_gpu("h100-sxm").spec, deployment(tp, batch), workload(input_len, output_len))
    return evaluate(*on_host(*specs, profile))


def test_longer_prompts_lower_throughput():
    rates = [float(_throughput("llama-3.1-8b", 32, n).output_tok_s) for n in (512, 2048, 8192, 32768)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_kv_term_linear_in_context():
    from grids.gpus import load_gpu
    from kernels.roofline import decode_step, decode_step_time

    step = decode_step(
        load_model("llama-3.1-8b").spec, load_gpu("h100-sxm").spec, deployment(1, 16), load_profile("vllm-h100").spec
    )
    mem = [
        float(decode_step_time(step, jnp.asarray(float(t))).memory_s) - float(step.memory_0_s)
        for t in (1000, 2000, 4000)
    ]
    np.testing.assert_allclose([mem[1] / mem[0], mem[2] / mem[0]], [2.0, 4.0], rtol=1e-12)


def test_throughput_never_falls_as_batch_grows_while_it_fits():
    batches = range(1, 400, 7)
    points = [_throughput("llama-3.3-70b", b, 2035, tp=4) for b in batches]
    max_batch = float(points[0].max_batch)
    inside = [float(p.output_tok_s) for b, p in zip(batches, points) if b <= max_batch]
    assert len(inside) > 10 and all(a <= b for a, b in zip(inside, inside[1:]))


def test_calibrate_writes_a_loadable_profile(tmp_path):
    out = tmp_path / "mine.toml"
    result = calibrate(_rows("8b"), "vllm-base", ("kv_bw_eff", "step_overhead_s"), out, "mine", "test", "test")
    profile = load_profile(str(out))
    assert profile.name == "mine" and set(result["terms"]) == {"kv_bw_eff", "step_overhead_s"}
    assert float(profile.spec.kv_bw_eff) == pytest.approx(result["terms"]["kv_bw_eff"])
    assert profile.data["fit"]["points"] == 10.0
    for term in TERMS:
        assert profile.data["terms"][term]["source"]


def test_calibrate_grid_and_file_weights(tmp_path):
    # A term the gradient cannot fit is tried at each --grid value; the choice and the weighting
    # are recorded. (Static batches never share a step with a prompt: both values fit alike.)
    out = tmp_path / "grid.toml"
    grid = parse_grid(["prefill_chunk_tokens=1024,inf"], ("kv_bw_eff",))
    result = calibrate(_rows("8b"), "vllm-base", ("kv_bw_eff",), out, "g", "test", "test", None, "files", grid)
    profile = load_profile(str(out))
    assert float(profile.spec.prefill_chunk_tokens) == result["terms"]["prefill_chunk_tokens"] == 1024.0
    assert "chosen by sweep calibrate" in profile.data["terms"]["prefill_chunk_tokens"]["source"]
    assert profile.data["fit"]["weights"] == "files"
    assert profile.data["fit"]["grid"] == "prefill_chunk_tokens=1024,inf"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("prefill_chunk_tokens", "TERM=V1"),
        ("nonsense=1", "TERM=V1"),
        ("kv_bw_eff=0.5", "already in --free"),
        ("prefill_chunk_tokens=-1", "needs values in"),
        ("prefill_chunk_tokens=a", "must be numbers"),
    ],
)
def test_grid_refused(text, match):
    with pytest.raises(SpecError, match=match):
        parse_grid([text], ("kv_bw_eff",))


def test_row_weights_each_file_alike():
    rows = _rows("8b", "70b")[:3] + load_measurements([str(SHARED_FILES["nim"])])
    w = row_weights(rows, "files")
    assert w.sum() == pytest.approx(len(rows)) and w[0] == w[1] == w[2]
    assert w[:3].sum() == pytest.approx(w[3:].sum())  # the files weigh alike, not their points
    assert (row_weights(rows, "points") == 1.0).all()


def test_calibrate_refuses_unknown_term(tmp_path):
    with pytest.raises(SpecError, match="cannot be fitted"):
        calibrate(_rows("8b"), "vllm-base", ("mem_usable_frac",), tmp_path / "x.toml", "x", "x", "x")


def test_json_without_model_flags_is_refused():
    with pytest.raises(SpecError, match="--model"):
        load_measurements([str(FILES["8b"][0])])


def test_csv_rows_validated(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text(
        "model,gpu,tp,batch,input_len,output_len,scenario,metric,value\n"
        "llama-3.1-8b,h100-sxm,1,4,128,128,static,throughput,10\n"
    )
    with pytest.raises(SpecError, match="line 2.*metric"):
        load_measurements([str(bad)])


def test_fp8_measurements_are_predicted_at_fp8_compute():
    # A measurement in fp8 runs fp8 weights on fp8 tensor cores, as a sweep's fp8 weight format
    # does: the prediction equals the kernels at compute code 1 (fp8), not bf16. Prefill of 8
    # prompts of 8k tokens on an H100 is compute-bound, so the two precisions differ.
    row = Measurement(
        "llama-3.1-8b", "h100-sxm", 1, 8.0, 8192.0, 2.0, "static", "ttft_s", 1.0, weight_dtype="fp8", kv_dtype="fp8"
    )
    got = float(predict(load_profile("roofline").spec, build_points([row]))[0])
    args = (
        load_model("llama-3.1-8b").spec,
        load_gpus()["h100-sxm"].spec,
        None,
        workload(8192.0, 2.0),
        load_profile("roofline").spec,
    )
    at = {
        code: float(
            evaluate(
                args[0], args[1], deployment(1, 8, weight_dtype="fp8", kv_dtype="fp8", compute_dtype=code), *args[3:]
            ).ttft_s
        )
        for code in ("bf16", "fp8")
    }
    assert got == pytest.approx(at["fp8"], rel=1e-12) and at["fp8"] < at["bf16"]


# The engine profiles of issue 12 against their own files (regression guards at today's errors,
# measured 2026-11-27 by `sweep validate --by file`; the targets are not all met yet).
SHARED_FILES = {
    "trt": BENCH / "trtllm_v0_14_max_throughput.csv",
    "nim": BENCH / "nim_llama33_70b_2xh100_concurrency.csv",
    "mi300x": BENCH / "mi300x_vllm_0_7_3_static.csv",
    "lmdeploy": BENCH / "lmdeploy_a100_fp16.csv",
}


TRT_BOUND = 0.12
"""`trtllm` on its TensorRT-LLM 0.14 tables: 11.14% (2026-11-28, a pass's math and memory time
added, roof_overlap 0), 14.39% with the roofline's max, 14.69% before the 16-bit LM head."""

NIM_TRTLLM_BOUNDS = {"ttft_s": 0.10, "tpot_s": 0.10, "output_tok_s": 0.10}
"""Issue 14's targets for `trtllm` on the NIM file; measured 7.5%, 4.5%, 3.4% (2026-11-28; 5.9%,
3.8%, 2.6% with the roofline's max)."""

# (file, profile, metric or None for all) -> largest MAPE allowed
PROFILE_BOUNDS = {
    ("mi300x", "vllm", None): 0.06,  # 5.1%
    # 8.3% and 8.2% over all 9 points each (6.3% and 5.5% over the 5 that fitted before concurrency
    # 100-250 queued for a slot: vLLM's capacity at 5000/500 comes out below NIM's)
    ("nim", "vllm", "tpot_s"): 0.09,  # the vLLM physics transfers to NIM's decode
    ("nim", "vllm", "output_tok_s"): 0.09,
    ("trt", "trtllm", None): TRT_BOUND,
    ("lmdeploy", "lmdeploy", "output_tok_s"): 0.10,  # 8.8% (11.2% before prefill_first_alone)
    ("lmdeploy", "lmdeploy", "tpot_s"): 0.095,  # 8.4% (8.9%)
    # 20.2% (29.8% with every prompt of a burst in one FCFS pass; 87% before KV admission at prompt size)
    ("lmdeploy", "lmdeploy", "ttft_s"): 0.22,
    ("lmdeploy", "lmdeploy", "ttft_min_s"): 0.14,  # 12.9% (33.9%)
}


@pytest.mark.slow
@pytest.mark.parametrize("key", ["mi300x", "nim", "trt", "lmdeploy"])
def test_engine_profiles_on_their_files(key):
    rows = load_measurements([str(SHARED_FILES[key])])
    points = build_points(rows)  # one compiled program per file, every profile through it
    for (file, profile, metric), bound in PROFILE_BOUNDS.items():
        if file != key:
            continue
        pred = np.asarray(predict(load_profile(profile).spec, points))
        pick = np.array([metric is None or r.metric == metric for r in rows])
        got = errors(pred[pick], points.measured[pick])["mape"]
        assert got <= bound, (file, profile, metric, got)


def test_trtllm_profile_on_the_nim_file():
    """Issue 14: NIM 1.8 (TensorRT-LLM) on 2 x H100 at concurrency 1-250, closed loop, under the
    shipped `trtllm` profile (fitted to it and the TensorRT-LLM tables together): every point
    predicted (concurrency 100-250 exceeds what fits: the requests beyond it queue), MAPE <= 10%
    on each of TTFT, TPOT and throughput."""
    rows = load_measurements([str(SHARED_FILES["nim"])])
    points = build_points(rows)
    pred = np.asarray(predict(load_profile("trtllm").spec, points))
    assert np.isfinite(pred).all(), [r.batch for r, p in zip(rows, pred) if not np.isfinite(p)]
    for metric, bound in NIM_TRTLLM_BOUNDS.items():
        pick = np.array([r.metric == metric for r in rows])
        assert pick.sum() == 9
        got = errors(pred[pick], points.measured[pick])["mape"]
        assert got <= bound, (metric, got)


@pytest.mark.parametrize("key", ["8b", "70b"])
def test_vllm_profile_on_the_h100_files(key):
    """The `vllm` profile, fitted to these and the MI300X file together: MAPE <= 5% on each."""
    assert report(_rows(key), "vllm")["mape"] <= 0.05
