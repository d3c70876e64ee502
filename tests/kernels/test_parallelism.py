"""Pipeline, data and expert parallelism, and groups that span nodes (issue 7): numbers worked by
hand from the formulas of kernels.comm and kernels.params, and the physical consequences a buyer
relies on (pipelining fits a model that tensor parallelism alone cannot; data parallelism scales
throughput at the same price per token; expert parallelism spreads the experts, not the rest)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grids.gpus import load_gpus
from grids.models import load_model
from grids.profiles import load_profile
from grids.sweeps import validate
from kernels.comm import comm_time
from kernels.params import param_counts
from kernels.point import evaluate
from sweep.api import compute
from sweep.query.explain import explain
from tests import specs
from tests.specs import f64

H100 = load_gpus()["h100-sxm"].spec
H200 = load_gpus()["h200"].spec
ROOFLINE = load_profile("roofline").spec


def _explain(model: str, **kw) -> dict:
    args = dict(gpu="h100-sxm", tp=8, batch=8, input_len=1024, output_len=64)
    return explain(model, **{**args, **kw})


def test_pipeline_fits_what_tensor_parallelism_alone_cannot():
    # Llama 3.1 405B in bf16: 810 GB of weights, 101 GB per GPU at tp 8 (> 80 GB of an H100);
    # two pipeline stages of 8 GPUs hold 50.7 GB each.
    one, two = _explain("llama-3.1-405b"), _explain("llama-3.1-405b", pp=2)
    assert not one["feasible"] and two["feasible"]
    assert two["weight_bytes"] == pytest.approx(one["weight_bytes"] / 2, rel=1e-12)
    assert two["gpus"] == 16 and two["batch_in_flight"] == 2 * 8  # two micro-batches of 8
    assert two["usd_per_hour"] == pytest.approx(16 * float(H100.usd_per_hour))


def test_pipeline_stage_boundary_crosses_the_network_once_per_pass():
    # tp 8 x pp 2 = 16 H100s span two 8-GPU nodes: one stage boundary per pass, over the 50 GB/s
    # NIC (grids/gpus.toml), carrying B tokens' activations: alpha + B * D * 2 bytes / 50e9.
    model = load_model("llama-3.1-405b").spec
    batch = 32.0
    base = specs.deployment(8, batch)
    t1 = comm_time(model, H100, base, ROOFLINE, f64(batch))
    t2 = comm_time(model, H100, dataclasses.replace(base, pp=f64(2.0)), ROOFLINE, f64(batch))
    hop = float(ROOFLINE.allreduce_latency_s) + batch * 16384 * 2.0 / 50e9
    assert float(t2.total_s - t1.total_s) == pytest.approx(hop, rel=1e-12)


def test_pipeline_keeps_latency_and_multiplies_throughput_inside_a_node():
    # Llama 3.1 8B, tp 2 x pp 2 = 4 GPUs of one node: a micro-batch's pass sums the stages (the
    # same roofline terms as tp 2 alone) plus one stage boundary; pp micro-batches are in flight.
    kw = dict(
        model="llama-3.1-8b", gpu="h100-sxm", tp=2, batch=16, input_len=512, output_len=128, scenario="concurrency"
    )
    one, two = explain(**kw), explain(**kw, pp=2)
    assert two["tpot_s"] > one["tpot_s"]  # the stage boundary adds a transfer per step
    assert two["tpot_s"] == pytest.approx(one["tpot_s"], rel=1e-3)
    assert two["output_tok_s"] == pytest.approx(2 * one["output_tok_s"], rel=1e-3)
    assert two["usd_per_mtok_output"] == pytest.approx(one["usd_per_mtok_output"], rel=1e-3)


def test_data_parallel_ranks_scale_throughput_at_the_same_price_per_token():
    kw = dict(model="llama-3.3-70b", gpu="h100-sxm", tp=4, batch=32, input_len=2048, output_len=256)
    one, three = explain(**kw), explain(**kw, dp=3)
    for key in (
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "usd_per_mtok_output",
        "usd_per_mtok_input",
        "max_batch",
        "weight_bytes",
        "kv_cache_bytes",
    ):
        assert three[key] == pytest.approx(one[key], rel=1e-12), key
    assert three["output_tok_s"] == pytest.approx(3 * one["output_tok_s"], rel=1e-12)
    assert three["gpus"] == 12 and three["output_tok_s_per_gpu"] == pytest.approx(one["output_tok_s_per_gpu"])


def test_expert_parallelism_spreads_the_experts_only():
    # DeepSeek-V3 over tp 8 x dp 4 = 32 H200s: each GPU holds 1/8 of the non-expert weights and
    # 1/32 of the routed experts (256 per layer -> 8 per GPU).
    counts = param_counts(load_model("deepseek-v3").spec)
    experts, rest = float(counts.experts), float(counts.total - counts.experts)
    got = explain(
        "deepseek-v3",
        gpu="h200",
        tp=8,
        batch=8,
        input_len=1024,
        output_len=64,
        dp=4,
        expert_parallel=True,
        weight_dtype="fp8",
    )
    assert got["weight_bytes"] == pytest.approx((rest / 8 + experts / 32) * 1.0, rel=1e-12)
    off = explain("deepseek-v3", gpu="h200", tp=8, batch=8, input_len=1024, output_len=64, dp=4, weight_dtype="fp8")
    assert off["weight_bytes"] == pytest.approx(float(counts.total) / 8, rel=1e-12)
    assert got["max_batch"] > off["max_batch"]  # the memory expert parallelism frees holds KV cache


def test_all_to_all_dispatch_and_combine_by_hand():
    # Mixtral 8x7B (32 MoE layers, k = 2, D = 4096, no shared experts), tp 4 x dp 2 = 8 H100s of
    # one node under expert parallelism, B = 64 tokens per rank: each MoE layer sends each GPU's
    # 64/4 tokens to 2 experts, 7/8 of them elsewhere, twice (dispatch, combine), over NVLink
    # (450 GB/s), instead of its MLP all-reduce; the attention all-reduces stay.
    model = load_model("mixtral-8x7b").spec
    profile = dataclasses.replace(ROOFLINE, allreduce_latency_s=f64(0.0))
    dep = specs.deployment(4, 64, dp=2, expert_parallel=1.0)
    got = float(comm_time(model, H100, dep, profile, f64(64.0)).total_s)
    message = 64 * 4096 * 2.0
    allreduces = 32 * 2.0 * (3 / 4) * message / 450e9  # 32 attention all-reduces, ring factor 2
    a2a = 2 * 32 * (message / 4 * 2 * (7 / 8)) / 450e9
    assert got == pytest.approx(allreduces + a2a, rel=1e-12)


def test_expert_parallelism_beyond_a_node_uses_the_network():
    model = load_model("mixtral-8x7b").spec
    profile = dataclasses.replace(ROOFLINE, allreduce_latency_s=f64(0.0))
    inside = specs.deployment(8, 64, dp=1, expert_parallel=1.0)
    across = specs.deployment(8, 64, dp=2, expert_parallel=1.0)  # 16 GPUs, two nodes
    t_in = float(comm_time(model, H100, inside, profile, f64(64.0)).total_s)
    t_out = float(comm_time(model, H100, across, profile, f64(64.0)).total_s)
    allreduces = 32 * 2.0 * (7 / 8) * 64 * 4096 * 2.0 / 450e9
    assert t_in == pytest.approx(allreduces + 2 * 32 * (64 / 8 * 2 * 4096 * 2.0 * 7 / 8) / 450e9, rel=1e-12)
    assert t_out == pytest.approx(allreduces + 2 * 32 * (64 / 8 * 2 * 4096 * 2.0 * 15 / 16) / 50e9, rel=1e-12)


def test_a_gpu_without_a_known_network_cannot_span_nodes():
    # A100 PCIe: one GPU per scale-up domain... the catalogue gives no network figure (NaN).
    gpus = load_gpus()
    key = next(k for k, g in gpus.items() if np.isnan(float(g.spec.network_bytes_per_s)))
    nodes = int(gpus[key].spec.gpus_per_node)
    within = explain("llama-3.1-8b", gpu=key, tp=1, batch=1, input_len=128, output_len=8, pp=nodes)
    across = explain("llama-3.1-8b", gpu=key, tp=1, batch=1, input_len=128, output_len=8, pp=2 * nodes)
    assert within["feasible"] and not across["feasible"]


def test_pipeline_needs_a_layer_per_stage():
    assert not _explain("llama-3.1-8b", tp=1, pp=33)["feasible"]  # 32 layers
    assert "stage would hold none" in _explain("llama-3.1-8b", tp=1, pp=33)["infeasible_reason"]


def test_parallelism_axes_in_one_sweep():
    ds = compute(
        validate(
            {
                "name": "parallel",
                "axes": {
                    "model": ["llama-3.1-8b", "mixtral-8x7b"],
                    "gpu": ["h100-sxm"],
                    "tp": [1, 2],
                    "batch": [1, 16],
                    "input_len": [512],
                    "output_len": [64],
                    "pp": [1, 2],
                    "dp": [1, 2],
                    "expert_parallel": ["off", "on"],
                },
                "engine": {"precision": "float64"},
            },
            "test",
        )
    )
    assert ds.sizes["pp"] == 2 and ds.sizes["expert_parallel"] == 2
    for dim in ("pp", "dp"):
        assert ds[dim].attrs["units"] == "1" and ds[dim].attrs["long_name"]
    assert ds["expert_parallel"].attrs["units"] == "" and ds["expert_parallel"].attrs["long_name"]  # a name
    # A dense model ignores expert parallelism; independent data-parallel ranks double throughput.
    dense = ds.sel(model="llama-3.1-8b")
    np.testing.assert_array_equal(
        dense.output_tok_s.sel(expert_parallel="on").values, dense.output_tok_s.sel(expert_parallel="off").values
    )
    off = ds.output_tok_s.sel(expert_parallel="off")
    np.testing.assert_allclose(off.sel(dp=2).values, 2 * off.sel(dp=1).values, rtol=1e-12)
    point = dict(
        model="mixtral-8x7b",
        gpu="h100-sxm",
        tp=2,
        batch=16,
        input_len=512,
        output_len=64,
        pp=2,
        dp=2,
        expert_parallel="on",
    )
    got = ds.sel(**point)
    want = evaluate(
        load_model("mixtral-8x7b").spec,
        H100,
        specs.deployment(2, 16, pp=2, dp=2, expert_parallel=1.0),
        specs.workload(512, 64),
        load_profile("roofline").spec,
    )
    np.testing.assert_allclose(float(got.tpot_s), float(want.tpot_s), rtol=1e-12)
