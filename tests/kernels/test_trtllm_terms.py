"""The profile terms added for TensorRT-LLM (issue 12): a prompt's attention efficiency by its
length, attention at the 16-bit peak under fp8 weights, memory the engine holds beside weights
and KV cache, an LM head and embedding kept in 16 bits, and how far a pass's math and memory
time overlap. Each defaults to the behaviour from
before it existed, so profiles written before them (and the golden store) do not move."""

from __future__ import annotations

import dataclasses
import math

import pytest

from grids.profiles import TERMS, load_profile
from kernels.comm import comm_time
from kernels.memory import memory_plan
from kernels.roofline import (
    attention_peak_flop_per_s,
    decode_step,
    decode_step_time,
    decode_time,
    prefill_pass,
    prefill_terms,
    prompt_attention_efficiency,
    roof,
    weight_read_s,
)
from tests import specs
from tests.specs import f64


def _with(point, **terms):
    return dataclasses.replace(point.profile, **{k: f64(v) for k, v in terms.items()})


def test_prompt_attention_efficiency_halves_at_its_half_length():
    # e(L) = e_max L / (L + L_half): e_max / 2 at L = L_half, e_max with L_half = 0.
    p = specs.point(p=specs.ROOFLINE)
    half = _with(p, attn_eff=0.354, attn_len_half=307.0)  # scripts/device/README.md, H100 FA2 fit
    assert float(prompt_attention_efficiency(half, f64(307.0))) == pytest.approx(0.177, rel=1e-12)
    assert float(prompt_attention_efficiency(half, f64(2048.0))) == pytest.approx(0.354 * 2048 / 2355, rel=1e-12)
    assert float(prompt_attention_efficiency(_with(p, attn_eff=0.354), f64(16.0))) == pytest.approx(0.354, rel=1e-12)


def test_prefill_attention_time_grows_by_the_half_length_per_query():
    # Attention time F_attn / (e(I) peak) = F_attn (I + L_half) / (e_max I peak): the other terms stay.
    p = specs.point(p=specs.ROOFLINE, tp=1, batch=1, input_len=1024, output_len=1)
    flat = prefill_terms(p.model, p.gpu, p.dep, p.wl, p.profile)
    slow = prefill_terms(p.model, p.gpu, p.dep, p.wl, _with(p, attn_len_half=1024.0))
    # Llama 3.3 70B, causal: (4 H + 5) N L pairs FLOPs (QK^T and AV 2 H each, softmax 5 per head
    # and pair; kernels.flops), pairs = I (I + 1) / 2 = 524,800; L_half = I doubles the time.
    attn_s = (4.0 * 128 + 5.0) * 64 * 80 * 1024 * 1025 / 2 / 989e12
    assert float(slow.compute_per_prompt_s - flat.compute_per_prompt_s) == pytest.approx(attn_s, rel=1e-9)
    assert float(slow.memory_per_prompt_s) == float(flat.memory_per_prompt_s)


def test_attention_at_the_16_bit_peak_under_fp8_matmuls():
    p = specs.point(p=specs.ROOFLINE, tp=2, weight_dtype="fp8", kv_dtype="fp8", compute_dtype="fp8")
    assert float(attention_peak_flop_per_s(p.gpu, p.dep, p.profile)) == 2 * 1979e12  # the fp8 peak (H100)
    assert float(attention_peak_flop_per_s(p.gpu, p.dep, _with(p, attn_bf16_peak=1.0))) == 2 * 989e12


def test_reserved_memory_comes_off_before_the_kv_share():
    # budget = f_kv (u M - W - M_r): 0.9 (80e9 - 70,553,706,496 - 5e9) on one H100, fp8 weights.
    p = specs.point(p=specs.ROOFLINE, tp=1, weight_dtype="fp8", kv_dtype="fp8")
    base = _with(p, kv_free_frac=0.9)
    free = memory_plan(p.model, p.gpu, p.dep, base, f64(2000.0))
    held = memory_plan(p.model, p.gpu, p.dep, _with(p, kv_free_frac=0.9, mem_reserved_bytes=5e9), f64(2000.0))
    assert float(free.kv_budget_bytes_per_gpu) == pytest.approx(0.9 * (80e9 - 70_553_706_496), rel=1e-12)
    assert float(free.kv_budget_bytes_per_gpu - held.kv_budget_bytes_per_gpu) == pytest.approx(4.5e9, rel=1e-9)
    # 163,840 fp8 bytes per token (2 x 80 layers x 8 KV heads x 128) x 2000 tokens per sequence
    assert float(held.max_batch) == (0.9 * (80e9 - 70_553_706_496 - 5e9)) // (163_840 * 2000)


def test_a_16_bit_head_under_fp8_weights():
    # Llama 3.3 70B: embedding and LM head 128,256 x 8,192 = 1,050,673,152 parameters each; at
    # fp8 each holds one byte more in 16 bits. Memory: both; a decode step's read: the LM head
    # (the embedding is gathered, not streamed).
    p = specs.point(p=specs.ROOFLINE, tp=2, batch=1, weight_dtype="fp8", kv_dtype="fp8")
    sixteen = _with(p, head_16bit=1.0)
    plain = memory_plan(p.model, p.gpu, p.dep, p.profile, f64(100.0)).weight_bytes_per_gpu
    held = memory_plan(p.model, p.gpu, p.dep, sixteen, f64(100.0)).weight_bytes_per_gpu
    assert float(held - plain) == 2 * 1_050_673_152 / 2
    read = weight_read_s(p.model, p.gpu, p.dep, sixteen) - weight_read_s(p.model, p.gpu, p.dep, p.profile)
    assert float(read) == pytest.approx(1_050_673_152 / 2 / 3.35e12, rel=1e-12)
    bf16 = specs.point(p=specs.ROOFLINE, tp=2, batch=1, weight_dtype="bf16")
    assert float(
        memory_plan(bf16.model, bf16.gpu, bf16.dep, _with(bf16, head_16bit=1.0), f64(1.0)).weight_bytes_per_gpu
    ) == (float(memory_plan(bf16.model, bf16.gpu, bf16.dep, bf16.profile, f64(1.0)).weight_bytes_per_gpu))


def test_pcie_latency_adds_per_ring_step_over_pcie_only():
    # 2 L = 160 all-reduces of Llama 3.3 70B at TP 4, each alpha over NVLink, alpha + 20 us per
    # step of a ring, 2 (P - 1) = 6 steps, over PCIe.
    nvlink = specs.point(p=specs.ROOFLINE, tp=4, batch=1)
    pcie = specs.point(g=dict(specs.H100, link_kind=1, link_bytes_per_s=32e9), p=specs.ROOFLINE, tp=4, batch=1)
    for pt, extra in ((nvlink, 0.0), (pcie, 160 * 6 * 20e-6)):
        plain = comm_time(pt.model, pt.gpu, pt.dep, _with(pt, allreduce_latency_s=5e-6), f64(1.0))
        slow = comm_time(
            pt.model, pt.gpu, pt.dep, _with(pt, allreduce_latency_s=5e-6, pcie_latency_extra_s=20e-6), f64(1.0)
        )
        assert float(plain.latency_s) == pytest.approx(160 * 5e-6, rel=1e-12)
        assert float(slow.latency_s - plain.latency_s) == pytest.approx(extra, abs=1e-15)
        assert float(slow.bandwidth_s) == float(plain.bandwidth_s)


@pytest.mark.parametrize("name", ["vllm", "vllm-h100", "lmdeploy", "article", "roofline"])
def test_profiles_without_the_terms_keep_their_behaviour(name):
    entry = load_profile(name)
    for term in ("attn_len_half", "attn_bf16_peak", "mem_reserved_bytes", "head_16bit", "pcie_latency_extra_s"):
        assert TERMS[term].default == 0.0
        assert float(getattr(entry.spec, term)) == 0.0
    assert TERMS["roof_overlap"].default == 1.0 and float(entry.spec.roof_overlap) == 1.0


def test_roof_overlap_runs_from_the_rooflines_max_to_the_sum():
    # roof(c, m) = max(c, m) + (1 - overlap) min(c, m): 3 ms of math and 5 of memory traffic.
    c, m = f64(3e-3), f64(5e-3)
    assert float(roof(c, m, f64(1.0))) == pytest.approx(5e-3, rel=1e-15)
    assert float(roof(c, m, f64(0.0))) == pytest.approx(8e-3, rel=1e-15)
    assert float(roof(m, c, f64(0.25))) == pytest.approx(5e-3 + 0.75 * 3e-3, rel=1e-15)


@pytest.mark.parametrize("overlap", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("first,steps", [(2000.0, 300.0), (10.0, 4000.0)])
def test_summed_decode_steps_equal_the_steps_one_by_one(overlap, first, steps):
    # decode_time sums the steps' roof over the contexts in closed form; one by one it is a loop.
    # 8B at batch 320 turns from compute- to memory-bound as the context grows (a kink inside).
    p = specs.point("llama-3.1-8b", p=specs.ROOFLINE, tp=1, batch=320, input_len=1, output_len=2)
    step = decode_step(p.model, p.gpu, p.dep, _with(p, roof_overlap=overlap))
    total = float(decode_time(step, f64(first), f64(steps)).total_s)
    one_by_one = math.fsum(float(decode_step_time(step, f64(first + t)).total_s) for t in range(int(steps)))
    assert total == pytest.approx(one_by_one, rel=1e-9)


def test_no_overlap_adds_the_shorter_time_to_every_pass():
    # A prefill pass and a decode step at overlap 0 take their math plus their memory time.
    p = specs.point(p=specs.ROOFLINE, tp=1, batch=8, input_len=1024, output_len=2)
    prof = _with(p, roof_overlap=0.0)
    one = prefill_pass(prefill_terms(p.model, p.gpu, p.dep, p.wl, prof), f64(8.0))
    assert float(one.total_s) == pytest.approx(float(one.compute_s + one.memory_s + one.comm_s + one.overhead_s))
    d = decode_step_time(decode_step(p.model, p.gpu, p.dep, prof), f64(1024.0))
    assert float(d.total_s) == pytest.approx(float(d.compute_s + d.memory_s + d.comm_s + d.overhead_s))


def test_explain_states_how_a_pass_adds_compute_and_memory():
    # trtllm adds them (roof_overlap 0) and explain says so; the roofline's max (vllm, 1) needs
    # no words.
    from sweep.query.explain import explain
    from sweep.query.explain_text import render

    added = explain("llama-3.1-8b", "h100-sxm", 1, 8, 1024, 64, profile="trtllm")
    assert added["roof_overlap"] == 0.0 and "roof_overlap 0" in render(added)
    maxed = explain("llama-3.1-8b", "h100-sxm", 1, 8, 1024, 64, profile="vllm")
    assert maxed["roof_overlap"] == 1.0 and "roof_overlap" not in render(maxed)
