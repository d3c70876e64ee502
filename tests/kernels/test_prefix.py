"""Prefix caching (kernels.prefix, the cached_prefix_fraction axis): prefill FLOPs of the new
tokens, TTFT in every scenario, the capacity, and explain."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grids.axes import design_inputs
from kernels.flops import prefill_flops
from kernels.memory import kv_bytes_per_token_per_gpu, memory_plan
from kernels.point import design_point, evaluate_point
from sweep.query.explain import explain
from sweep.query.explain_text import render

BASE = dict(model="llama-3.1-8b", gpu="h100-sxm", tp=1, batch=1, profile="vllm")


def f64(x: float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def metrics(**values):
    return evaluate_point(design_point(**design_inputs(dict(BASE, **values))))


@pytest.mark.parametrize("model", ["llama-3.1-8b", "gemma-3-27b", "deepseek-v3"])
@pytest.mark.parametrize(("input_len", "fraction", "cached"), [(2048, 0.5, 1024), (2000, 0.37, 740), (4097, 0.9, 3687)])
def test_prefill_flops_are_those_of_the_prompt_less_the_cached_prefix(model, input_len, fraction, cached):
    # Causal attention: the prefill of I tokens with c cached computes F(I) - F(c), the FLOPs of a
    # c-token prefill that no longer runs, except its LM head: each pass computes the logits of its
    # last token once (kernels.flops.prefill_flops), so F(I) - F(c) + 2 D V.
    m = metrics(model=model, input_len=input_len, output_len=16, cached_prefix_fraction=fraction)
    spec = design_point(**design_inputs(dict(BASE, model=model, input_len=1, output_len=1))).model
    causal = f64(1.0)  # the vllm profile counts causal attention
    full, prefix = prefill_flops(spec, f64(input_len), causal), prefill_flops(spec, f64(cached), causal)
    expected = float(full.total) - float(prefix.total) + 2.0 * float(spec.d_model) * float(spec.vocab)
    assert float(m.prefill_flops) == pytest.approx(expected, rel=1e-12)
    assert float(m.prefill_flops) < float(full.total)


def test_the_article_convention_attends_every_new_query_to_all_keys():
    # full (non-causal) counting: n new queries x I keys per layer, not I^2 - c^2
    spec = design_point(**design_inputs(dict(BASE, input_len=1, output_len=1))).model
    m = metrics(input_len=1000, output_len=16, cached_prefix_fraction=0.25, profile="article")
    full = prefill_flops(spec, f64(1000.0), f64(0.0))
    per_pair = (float(full.attention)) / (1000.0 * 1000.0)
    n = 750.0
    dense = float(full.weights + full.elementwise) * n / 1000.0
    expected = dense + per_pair * n * 1000.0 + float(full.lm_head)
    assert float(m.prefill_flops) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scenario", ["static", "concurrency", "poisson", "disaggregated"])
def test_ttft_falls_with_the_cached_fraction_in_every_scenario(scenario):
    # at the same load: the batch, the concurrency or the request rate
    values = dict(input_len=8192, output_len=128, batch=8, scenario=scenario, request_rate=0.5)
    ttft = [float(metrics(**values, cached_prefix_fraction=f).ttft_s) for f in (0.0, 0.5, 0.9)]
    assert all(math.isfinite(t) for t in ttft), ttft
    assert ttft[0] > ttft[1] > ttft[2], ttft


def test_max_throughput_prefills_faster_and_serves_more():
    # max_throughput fills the memory, which the shared prefix enlarges: one prompt's prefill
    # pass and the throughput improve, though the mean TTFT of a fuller engine need not
    values = dict(input_len=8192, output_len=128, scenario="max_throughput")
    runs = [metrics(**values, cached_prefix_fraction=f) for f in (0.0, 0.5, 0.9)]
    prefill = [float(m.prefill_s) for m in runs]
    served = [float(m.output_tok_s) for m in runs]
    assert prefill[0] > prefill[1] > prefill[2] and served[0] < served[1] < served[2], (prefill, served)


def test_zero_fraction_is_the_plain_prompt_exactly():
    # f = 0: the prefill counts the whole prompt (kernels.flops.prefill_flops) and the capacity is
    # the memory plan without a shared prefix, number for number (the golden sweep checks the rest)
    values = dict(input_len=3000, output_len=200, batch=16, scenario="concurrency")
    point = design_point(**design_inputs(dict(BASE, **values)))
    m = evaluate_point(point)
    whole = prefill_flops(point.model, f64(3000.0), point.profile.causal_attention).total
    assert float(m.prefill_flops) == float(whole)
    plan = memory_plan(point.model, point.gpu, point.dep, point.profile, f64(3199.0))
    assert float(m.max_batch) == float(plan.max_batch) and float(plan.kv_shared_bytes_per_gpu) == 0.0


def test_the_shared_prefix_is_held_once_so_more_sequences_fit():
    # max_batch = floor((f_kv (u M - M_w) - c m) / ((T - c) m)), m = 2 L K H b_kv per token
    values = dict(input_len=8192, output_len=512, profile="roofline")
    tokens = 8192 + 512 - 1
    point = design_point(**design_inputs(dict(BASE, **values)))
    m_tok = float(kv_bytes_per_token_per_gpu(point.model, f64(1.0), f64(2.0)))
    assert m_tok == 2 * 32 * 8 * 128 * 2
    budget = 80e9 * float(point.profile.mem_usable_frac) - float(metrics(**values).weight_bytes)
    budget *= float(point.profile.kv_free_frac)
    batches = []
    for f in (0.0, 0.5, 0.9):
        c = math.floor(f * 8192)
        m = metrics(**values, cached_prefix_fraction=f)
        assert float(m.max_batch) == math.floor((budget - c * m_tok) / ((tokens - c) * m_tok)), f
        batches.append(float(m.max_batch))
    assert batches[0] < batches[1] < batches[2], batches


def test_explain_shows_the_prefix_and_the_speculation():
    out = explain(
        model="llama-3.1-8b",
        gpu="h100-sxm",
        tp=1,
        batch=1,
        input_len=2048,
        output_len=256,
        cached_prefix_fraction=0.5,
        draft_tokens=3,
        draft_acceptance=0.8,
    )
    assert out["cached_tokens"] == 1024 and out["draft_tokens"] == 3
    assert out["tokens_per_round"] == pytest.approx((1 - 0.8**4) / 0.2, rel=1e-12)
    assert out["tpot_s"] == pytest.approx(out["plain_step_s"] / out["speculative_speedup"], rel=0.01)
    text = render(out)
    assert "1,024 tokens (50%) are in the prefix cache" in text
    assert "an MTP head drafts 3 tokens per round" in text
    json.dumps(out)


def test_a_disaggregated_prefill_moves_only_the_new_tokens_kv():
    # the decode ranks hold the shared prefix: half the prompt cached, half the bytes moved
    values = dict(input_len=8192, output_len=128, scenario="disaggregated", request_rate=0.5, tp=2)
    whole, half = (float(metrics(**values, cached_prefix_fraction=f).kv_transfer_s) for f in (0.0, 0.5))
    assert half == pytest.approx(0.5 * whole, rel=1e-12)
