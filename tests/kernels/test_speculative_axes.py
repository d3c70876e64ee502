"""Speculative decoding as sweep axes (draft_tokens, draft_acceptance): through the sweep engine
and ``evaluate_point``, against kernels.speculative's closed form, and the MTP head's memory."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from grids.axes import design_inputs
from grids.sweeps import validate
from kernels.memory import memory_plan
from kernels.point import design_point, evaluate_point
from kernels.speculative import speculation
from sweep.engine.compute import compute

BATCHES = [1, 8, 64, 512, 2048]
BASE = dict(model="llama-3.1-8b", gpu="h100-sxm", tp=1, input_len=128, output_len=2, profile="roofline")


def f64(x: float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@pytest.fixture(scope="module")
def swept():
    """One compiled float64 sweep: batch x draft_tokens x draft_acceptance, static scenario.
    output_len = 2: one decode step, at context I, so TPOT is that step (a round / E)."""
    raw = {
        "name": "speculative",
        "axes": {
            **{k: [v] for k, v in BASE.items()},
            "batch": BATCHES,
            "draft_tokens": [0, 3],
            "draft_acceptance": [0.6, 0.8],
        },
        "engine": {"precision": "float64"},
    }
    return compute(validate(raw, "test"))


@pytest.mark.parametrize("acceptance", [0.6, 0.8])
def test_swept_speedup_against_batch_is_the_closed_form(swept, acceptance):
    tpot = swept["tpot_s"].sel(draft_acceptance=acceptance).squeeze(drop=True)
    speedup = (tpot.sel(draft_tokens=0) / tpot.sel(draft_tokens=3)).values
    for batch, got in zip(BATCHES, speedup):
        p = design_point(**design_inputs(dict(BASE, batch=batch)))
        closed = speculation(p.model, p.gpu, p.dep, p.profile, f64(128.0), f64(3.0), f64(acceptance))
        assert got == pytest.approx(float(closed.speedup), rel=1e-12), batch
    # memory-bound up to batch 64: speculation pays; compute-bound from 512 on: the verify pass
    # of 4 tokens per sequence costs ~4 plain steps for E < 4 tokens, so it does not
    assert all(x > 1.5 for x in speedup[:3]) and all(x < 1.0 for x in speedup[3:]), speedup


def test_zero_draft_tokens_is_the_plain_path_exactly(swept):
    # k = 0 in a sweep where k is an axis (both branches evaluated, one selected) equals a sweep
    # without the axes, number for number, whatever the acceptance
    raw = {"name": "plain", "axes": {**{k: [v] for k, v in BASE.items()}, "batch": BATCHES}, "engine": {}}
    raw["engine"] = {"precision": "float64"}
    plain = compute(validate(raw, "test"))
    for a in (0.6, 0.8):
        spec = swept.sel(draft_tokens=0, draft_acceptance=a)
        for name in plain.data_vars:
            np.testing.assert_array_equal(spec[name].squeeze().values, plain[name].squeeze().values, err_msg=name)


@pytest.mark.parametrize("scenario", ["static", "concurrency", "poisson", "disaggregated"])
def test_every_scenario_decodes_faster_at_batch_one(scenario):
    # batch 1 (or a low request rate) is memory-bound: TPOT falls by about E / (1 + k T_d / T)
    values = dict(BASE, output_len=256, batch=1, scenario=scenario, request_rate=0.05)
    plain = evaluate_point(design_point(**design_inputs(values)))
    fast = evaluate_point(design_point(**design_inputs(dict(values, draft_tokens=3, draft_acceptance=0.8))))
    assert bool(plain.feasible) and bool(fast.feasible)
    ratio = float(plain.tpot_s) / float(fast.tpot_s)
    assert 1.8 < ratio < 2.952, ratio  # E = (1 - 0.8^4) / 0.2 = 2.952 is the bound of free drafts
    assert float(fast.ttft_s) == pytest.approx(float(plain.ttft_s), rel=0.05)  # prefill unchanged


def test_max_throughput_holds_fewer_sequences_and_pays_at_large_batch_less():
    values = dict(BASE, output_len=256, batch=1, scenario="max_throughput")
    plain = evaluate_point(design_point(**design_inputs(values)))
    fast = evaluate_point(design_point(**design_inputs(dict(values, draft_tokens=3, draft_acceptance=0.8))))
    assert float(fast.batch_in_flight) < float(plain.batch_in_flight)
    assert float(fast.output_tok_s) < float(plain.output_tok_s)  # compute-bound at ~3,000 sequences


def test_the_mtp_heads_weights_and_kv_layer_shrink_the_capacity():
    # Llama 3.1 8B (config.json): D 4096, 32 heads, 8 KV heads of 128, F 14336, 2 norms per block.
    # The head: one block, its two norms and the final norm, and the 2D x D projection
    # (DeepSeek-V3 report eq. 21); embedding and LM head shared with the target.
    d, f, kv = 4096, 14336, 8 * 128
    attention = d * d + 2 * d * kv + d * d
    head_params = attention + 3 * d * f + 3 * d + 2 * d * d
    assert head_params == 251_670_528
    values = dict(BASE, input_len=2048, output_len=256, batch=1)
    plain = design_point(**design_inputs(values))
    spec = design_point(**design_inputs(dict(values, draft_tokens=2, draft_acceptance=0.7)))
    m0, m1 = evaluate_point(plain), evaluate_point(spec)
    assert float(m1.weight_bytes) - float(m0.weight_bytes) == 2.0 * head_params  # bf16
    # one more layer of KV cache per sequence: 2 K H b_kv = 4,096 bytes per token
    tokens = 2048 + 256 - 1
    plan = memory_plan(plain.model, plain.gpu, plain.dep, plain.profile, f64(tokens))
    per_seq = float(plan.kv_bytes_per_seq_per_gpu) + 4096.0 * tokens
    budget = float(plain.profile.kv_free_frac) * (
        float(plain.profile.mem_usable_frac) * 80e9 - float(m0.weight_bytes) - 2.0 * head_params
    )
    assert float(m1.max_batch) == math.floor(budget / per_seq) < float(m0.max_batch)


def test_kv_cache_metric_counts_the_head_layer():
    values = dict(BASE, input_len=1000, output_len=25, batch=4)
    m0 = evaluate_point(design_point(**design_inputs(values)))
    m1 = evaluate_point(design_point(**design_inputs(dict(values, draft_tokens=1))))
    layers = 32
    assert float(m1.kv_cache_bytes) == pytest.approx(float(m0.kv_cache_bytes) * (layers + 1) / layers, rel=1e-12)


def test_acceptance_must_lie_below_one():
    from grids.errors import SpecError

    with pytest.raises(SpecError, match="below 1"):
        design_inputs(dict(BASE, batch=1, draft_tokens=3, draft_acceptance=1.0))
    p = design_point(**design_inputs(dict(BASE, batch=1, draft_tokens=3, draft_acceptance=0.0)))
    # a = 0: every round emits one token after k useless drafts: slower than plain
    m = evaluate_point(p)
    plain = evaluate_point(p._replace(dep=dataclasses.replace(p.dep, draft_tokens=f64(0.0))))
    assert float(m.tpot_s) > float(plain.tpot_s)
