"""A GPU type per pool in the disaggregated scenario (the ``prefill_gpu`` axis, kernels/disaggregated.py):
the default and the decode GPU named explicitly are the same point, a mixed pair against its
simulation, a faster prefill GPU lowers TTFT and not TPOT, the KV cache crosses the network
between two types, each pool's GPUs priced and powered as their own, the prefill precision
resolved on the prefill GPU, the engine's sweep over the axis, and explain naming both GPUs."""

from __future__ import annotations

import math

import pytest

from grids.axes import AXES, design_inputs
from grids.errors import SpecError
from grids.gpus import load_gpus
from kernels.disaggregated import kv_transfer, same_gpu
from kernels.ownership import owned_cost
from kernels.point import Metrics, evaluate_point
from sweep.bench.simulate import compare
from tests.kernels.test_disaggregated import at_rate, point


def explained(**values):
    """``sweep explain`` of ``point(**values)``."""
    from sweep.api import explain

    base = dict(scenario="disaggregated", request_rate=1.0, prefill_instances=2, prefill_tp=4, dp=2, profile="vllm")
    values = {**base, **values}
    return explain("llama-3.3-70b", values.pop("gpu", "h100-sxm"), 4, 1, 2048, 128, **values)


def same(a: Metrics, b: Metrics) -> None:
    """Every metric bit for bit (NaN where the other is NaN)."""
    for name in Metrics._fields:
        x, y = float(getattr(a, name)), float(getattr(b, name))
        assert x == y or (math.isnan(x) and math.isnan(y)), (name, x, y)


@pytest.mark.parametrize(
    "values",
    [
        dict(),  # 16 GPUs: the network
        dict(prefill_instances=1, dp=1),  # 8 GPUs in one node: NVLink
        dict(usd_per_gpu_hour=5.0, capex_usd_per_gpu=20000.0),  # the overrides price both pools
        dict(weight_dtype="fp8", gpu="a100-sxm-80gb", request_rate=0.5),  # fp8 weights in bf16 on both
        dict(scenario="poisson"),  # a scenario of one pool
    ],
)
def test_prefill_gpu_of_the_decode_type_is_the_default(values):
    gpu = values.get("gpu", "h100-sxm")
    same(evaluate_point(point(**values)), evaluate_point(point(**values, prefill_gpu=gpu)))


def test_the_prefill_gpu_is_the_decode_gpu_by_default():
    assert AXES["prefill_gpu"].default is None
    p = point(usd_per_gpu_hour=5.0)
    assert bool(same_gpu(p.prefill_gpu, p.gpu))  # the very spec, the price override included
    assert float(p.prefill_gpu.usd_per_hour) == 5.0
    assert not bool(same_gpu(point(prefill_gpu="h200").prefill_gpu, p.gpu))
    assert float(p.dep.prefill_compute_dtype) == float(p.dep.compute_dtype)


def test_scenarios_of_one_pool_ignore_the_prefill_gpu():
    for scenario in ("static", "poisson"):
        same(
            evaluate_point(point(scenario=scenario, batch=8)),
            evaluate_point(point(scenario=scenario, batch=8, prefill_gpu="a100-sxm-80gb")),
        )


@pytest.mark.unchecked
@pytest.mark.parametrize(
    "prefill_gpu, gpu, rate",
    [
        # prefill on H100, decode on H200: the prefill instances bind (highest sustainable rate
        # 12.2 requests/s by bisection, sweep.bench.simulate.highest_rate), 8 is 2/3 of it
        ("h100-sxm", "h200", 8.0),
        # prefill on A100 (312 TFLOP/s bf16, against 989 on H100): its highest rate is 5.35 requests/s
        ("a100-sxm-80gb", "h100-sxm", 3.5),
    ],
)
def test_a_mixed_pair_matches_its_simulation(prefill_gpu, gpu, rate):
    # The targets of test_disaggregated.py::test_scenario_matches_its_simulation. The simulation
    # runs the prompts on the prefill GPU and the KV cache over the network: with the A100's
    # prefill taken on the H100 its TTFT would be 2.3 times shorter and fail here.
    p = at_rate(point(prefill_gpu=prefill_gpu, gpu=gpu), rate)
    assert bool(evaluate_point(p).feasible)
    errors = compare(p, 3000, seed=1)
    assert abs(errors["ttft_mean"]) <= 0.05 and abs(errors["ttft_p90"]) <= 0.10, errors
    for name in ("tpot", "e2e"):
        assert abs(errors[f"{name}_mean"]) <= 0.03 and abs(errors[f"{name}_p90"]) <= 0.05, errors


def test_a_faster_prefill_gpu_lowers_ttft_and_leaves_tpot():
    # bf16 dense peaks (grids/gpus.toml): A100 312, H100 989, B200 2250 TFLOP/s; an 8k-token
    # prompt of a 70B model on 4 GPUs is compute-bound, so the prefill pass shortens in that order.
    ms = {
        g: evaluate_point(point(prefill_gpu=g, input_len=8192, request_rate=0.5))
        for g in ("a100-sxm-80gb", "h100-sxm", "b200")
    }
    slow, mid, fast = ms["a100-sxm-80gb"], ms["h100-sxm"], ms["b200"]
    assert all(bool(m.feasible) for m in ms.values())
    assert float(slow.prefill_s) > float(mid.prefill_s) > float(fast.prefill_s)
    assert float(slow.ttft_s) > float(mid.ttft_s) > float(fast.ttft_s)
    assert float(slow.ttft_p90_s) > float(mid.ttft_p90_s) > float(fast.ttft_p90_s)
    assert float(mid.prefill_s) / float(fast.prefill_s) > 1.5
    for m in (slow, fast):  # the decode ranks are the same H100s
        assert float(m.tpot_s) == float(mid.tpot_s)
        assert float(m.output_tok_s) == float(mid.output_tok_s)


def test_two_types_move_the_kv_cache_over_the_slower_network():
    # One node's worth (1 x 4 + 1 x 4 GPUs): NVLink between H100s (450 GB/s), the network between
    # an A100 (25 GB/s per GPU, grids/gpus.toml) and an H100 (50 GB/s): the slower, 25 GB/s.
    for prefill_gpu, link in (("h100-sxm", 450e9), ("h200", 50e9), ("a100-sxm-80gb", 25e9)):
        p = point(prefill_instances=1, dp=1, prefill_gpu=prefill_gpu)
        kv = kv_transfer(p.model, p.gpu, p.dep, p.wl, p.prefill_gpu)
        assert float(kv.link_bytes_per_s) == link, prefill_gpu
        # the bytes are the pools' shards whatever the GPUs: 1/4 of 2 x 80 x 8 x 128 x 2 bytes x 2048 tokens
        assert float(kv.send_bytes) == float(kv.receive_bytes) == 2 * 80 * 2 * 128 * 2 * 2048
        assert float(evaluate_point(p).kv_transfer_s) == pytest.approx(float(kv.send_bytes) / link, rel=1e-12)
    # A link given on the axis is the link, whatever the types.
    p = point(prefill_gpu="h200", kv_link_bytes_per_s=10e9)
    assert float(kv_transfer(p.model, p.gpu, p.dep, p.wl, p.prefill_gpu).link_bytes_per_s) == 10e9


def test_cost_counts_each_pool_at_its_own_price():
    # 3 prefill instances of tp 2 on H100 SXM ($2.99/h) and 2 decode ranks of tp 4 on H200 ($3.59/h), grids/gpus.toml
    values = dict(prefill_instances=3, prefill_tp=2, tp=4, dp=2, request_rate=1.5, prefill_gpu="h100-sxm", gpu="h200")
    m = evaluate_point(point(**values))
    tokens_per_hour = 1.5 * 128 * 3600.0
    assert bool(m.feasible)
    assert float(m.usd_per_mtok_output) == pytest.approx((6 * 2.99 + 8 * 3.59) / tokens_per_hour * 1e6, rel=1e-12)
    assert float(m.output_tok_s_per_gpu) == pytest.approx(1.5 * 128 / 14, rel=1e-12)
    # usd_per_gpu_hour prices the decode GPU; the prefill GPU of another type keeps its catalogue price
    priced = evaluate_point(point(**values, usd_per_gpu_hour=5.0))
    assert float(priced.usd_per_mtok_output) == pytest.approx((6 * 2.99 + 8 * 5.0) / tokens_per_hour * 1e6, rel=1e-12)
    # owned: each pool's GPUs at their own capital, energy and hosting, and power
    p = point(**values)
    h100, h200 = owned_cost(p.prefill_gpu, p.own), owned_cost(p.gpu, p.own)
    owned = 6 * float(h100.usd_per_hour) + 8 * float(h200.usd_per_hour)
    assert float(h100.usd_per_hour) != float(h200.usd_per_hour)
    assert float(m.usd_per_hour_owned) == pytest.approx(owned, rel=1e-12)
    assert float(m.usd_per_mtok_output_owned) == pytest.approx(owned / tokens_per_hour * 1e6, rel=1e-12)
    assert float(m.rent_break_even_usd_per_gpu_hour) == pytest.approx(owned / 14, rel=1e-12)
    watts = 6 * float(h100.facility_w) + 8 * float(h200.facility_w)
    assert float(m.joules_per_output_token) == pytest.approx(watts / (1.5 * 128), rel=1e-12)
    # the catalogue prices the test relies on
    gpus = load_gpus()
    assert (gpus["h100-sxm"].table["usd_per_hour"], gpus["h200"].table["usd_per_hour"]) == (2.99, 3.59)


def test_the_prefill_precision_is_its_gpus_own():
    # fp8 weights: the H100 decode ranks compute in fp8, the A100 prefill instances (no fp8 tensor
    # cores) in bf16, the weight format's fallback (grids/dtypes.toml); an explicit fp8 cannot run there.
    p = point(weight_dtype="fp8", prefill_gpu="a100-sxm-80gb", request_rate=0.5)
    assert (float(p.dep.compute_dtype), float(p.dep.prefill_compute_dtype)) == (1.0, 0.0)
    assert bool(evaluate_point(p).feasible)
    forced = dict(weight_dtype="fp8", compute_dtype="fp8", prefill_gpu="a100-sxm-80gb", request_rate=0.5)
    assert not bool(evaluate_point(point(**forced)).feasible)
    assert explained(**forced)["infeasible_reason"] == "the prefill GPU a100-sxm-80gb has no fp8 tensor path"


def test_a_prefill_gpu_too_small_for_the_weights_cannot_run():
    # 70B in bf16 on one prefill GPU: 141 GB of weights beside 80 GB of H100 memory, while H200's
    # decode ranks at tp 4 hold theirs.
    assert not bool(evaluate_point(point(gpu="h200", prefill_gpu="h100-sxm", prefill_tp=1)).feasible)
    reason = explained(gpu="h200", prefill_gpu="h100-sxm", prefill_tp=1)["infeasible_reason"]
    assert reason.startswith("a prefill instance (1 x h100-sxm, weights 141.1 GB per GPU) cannot hold"), reason
    assert bool(evaluate_point(point(gpu="h200", prefill_gpu="h100-sxm", prefill_tp=2)).feasible)


def test_the_axis_is_checked_like_gpu():
    with pytest.raises(SpecError, match="unknown GPU 'h1000'"):
        design_inputs(dict(model="llama-3.3-70b", gpu="h100-sxm", tp=1, input_len=1, output_len=1, prefill_gpu="h1000"))
    assert AXES["prefill_gpu"].cast("h200") == "h200"
    assert "h200" in AXES["prefill_gpu"].choices()


@pytest.fixture(scope="module")
def engine_sweep():
    from grids.sweeps import validate
    from sweep.engine.compute import compute

    raw = {
        "name": "disaggregated-gpus",
        "axes": {
            "model": ["llama-3.3-70b"],
            "gpu": ["h100-sxm", "h200"],
            "tp": [4],
            "batch": [1],
            "input_len": [2048],
            "output_len": [128],
            "prefill_gpu": ["h100-sxm", "a100-sxm-80gb"],
            "request_rate": [1.0, 3.0],
        },
        "fixed": {"scenario": "disaggregated", "profile": "vllm", "dp": 2, "prefill_instances": 2},
    }
    return compute(validate(raw, "test"))


def test_a_sweep_over_the_prefill_gpu_stores_what_the_host_evaluates(engine_sweep):
    ds = engine_sweep
    assert list(ds["prefill_gpu"].values) == ["h100-sxm", "a100-sxm-80gb"]
    assert ds["prefill_gpu"].attrs["long_name"] == "prefill GPU"
    names = ("ttft_s", "ttft_p90_s", "tpot_p90_s", "kv_transfer_s", "utilization", "usd_per_mtok_output")
    for gpu, prefill_gpu, rate in (
        ("h100-sxm", "h100-sxm", 1.0),
        ("h100-sxm", "a100-sxm-80gb", 3.0),
        ("h200", "h100-sxm", 3.0),
        ("h200", "a100-sxm-80gb", 1.0),
    ):
        host = evaluate_point(point(gpu=gpu, prefill_gpu=prefill_gpu, request_rate=rate))
        cell = ds.sel(gpu=gpu, prefill_gpu=prefill_gpu, request_rate=rate)
        assert bool(cell["feasible"].squeeze()) == bool(host.feasible)
        for name in names:
            stored, expected = float(cell[name].squeeze()), float(getattr(host, name))
            if math.isnan(expected):
                assert math.isnan(stored), name
            else:
                assert stored == pytest.approx(expected, rel=1e-3), (name, gpu, prefill_gpu, rate)  # float32 sweep


def test_explain_names_both_pools_gpus():
    from sweep.api import explain
    from sweep.query.explain_text import render

    values = dict(scenario="disaggregated", prefill_instances=3, prefill_tp=2, dp=2, request_rate=1.5, profile="vllm")
    d = explain("llama-3.3-70b", "h200", 4, 1, 2048, 128, prefill_gpu="h100-sxm", **values)
    assert (d["gpu"], d["prefill_gpu"], d["gpus"]) == ("h200", "h100-sxm", 14)
    assert d["usd_per_hour"] == pytest.approx(6 * 2.99 + 8 * 3.59, rel=1e-12)
    assert d["prefill_peak_flop_per_s"] == load_gpus()["h100-sxm"].table["flop_per_s_bf16"]
    text = render(d)
    assert "prefill 3 x tp 2 on h100-sxm + decode tp 4 x pp 1 x dp 2 on h200" in text
    assert "6 x h100-sxm at $2.99 + 8 x h200 at $3.59" in text
    plain = explain("llama-3.3-70b", "h200", 4, 1, 2048, 128, **values)
    assert plain["prefill_gpu"] == "h200"
    assert "on h100-sxm" not in render(plain)
