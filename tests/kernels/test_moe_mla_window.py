"""Mixture of experts, multi-head latent attention, sliding windows and quantised weights
(issue 7): golden parameter counts from the model cards, DeepSeek-V3's KV cache, windows that stop
growing, weight formats with their scale overhead, and one compile for dense and MoE models."""

from __future__ import annotations

import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from grids.models import load_model
from grids.sweeps import validate
from kernels.flops import window_pairs
from kernels.memory import kv_bytes_per_token_per_gpu, kv_cache_bytes
from kernels.params import param_counts, streamed_params
from kernels.roofline import decode_step, decode_step_time, decode_time
from sweep.api import compute
from sweep.engine.plan import INPUT_KEYS, lift, make_plan, point
from sweep.query.explain import explain
from tests import specs
from tests.specs import f64


def _explain(model: str, **kw) -> dict:
    args = dict(gpu="h200", tp=8, batch=1, input_len=1024, output_len=1)
    return explain(model, **{**args, **kw})


# --- golden parameter counts -------------------------------------------------------------------


def test_cli_explain_reports_total_and_active_params():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "explain",
            "--model",
            "mixtral-8x7b",
            "--gpu",
            "h200",
            "--tp",
            "8",
            "--batch",
            "1",
            "--input",
            "1024",
            "--output",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    d = json.loads(out.stdout)
    # Mistral AI, "Mixtral of experts" (2023-12-11) and arXiv:2401.04088: 46.7B total parameters,
    # 12.9B used per token (2 of 8 experts). Within 1%.
    np.testing.assert_allclose(d["params_total"], 46.7e9, rtol=0.01)
    np.testing.assert_allclose(d["params_active"], 12.9e9, rtol=0.01)
    # Exact count from config.json (grids/models/SOURCES.toml): 32 x (attention 41,943,040 + router
    # 32,768 + 8 experts x 176,160,768 + norms 8,192) + 2 x 32,000 x 4,096 + 4,096.
    assert d["params_total"] == 46_702_792_704
    assert d["params_active"] == 46_702_792_704 - 32 * 6 * 176_160_768


@pytest.mark.parametrize(
    "model, total, rtol_total, active, rtol_active",
    [
        # DeepSeek-V3 model card (huggingface.co/deepseek-ai/DeepSeek-V3): "671B total parameters with
        # 37B activated for each token", the 61 main layers without the multi-token-prediction module.
        ("deepseek-v3", 671e9, 0.02, 37e9, 0.03),
        # Qwen3-235B-A22B model card: "Number of Parameters: 235B in total and 22B activated".
        ("qwen3-235b-a22b", 235e9, 0.01, 22e9, 0.02),
    ],
)
def test_model_card_params(model, total, rtol_total, active, rtol_active):
    d = _explain(model)
    np.testing.assert_allclose(d["params_total"], total, rtol=rtol_total)
    np.testing.assert_allclose(d["params_active"], active, rtol=rtol_active)


def test_deepseek_v3_exact_params():
    # grids/models/SOURCES.toml: the 61 main layers hold 671,026,419,200 parameters (MLA with
    # q_lora_rank 1536, 3 dense layers of 18,432, 58 MoE layers of 256 routed + 1 shared expert of
    # 2,048 and a router with its e_score_correction_bias).
    counts = param_counts(load_model("deepseek-v3").spec)
    assert float(counts.total) == 671_026_419_200
    assert float(counts.total - counts.active) == 58 * 248 * 3 * 7168 * 2048


def test_gpt_oss_120b_params():
    d = _explain("gpt-oss-120b")
    # OpenAI gpt-oss model card (arXiv:2508.10925), table 1: 116.83B total; 5.13B active per token,
    # a count that includes the unembedding but not the embedding table (we count both, so the
    # model card's figure is params_active - params_embedding; 5.1B in the HF card's text).
    np.testing.assert_allclose(d["params_total"], 116.83e9, rtol=1e-3)
    np.testing.assert_allclose(d["params_active"] - d["params_embedding"], 5.13e9, rtol=1e-3)
    np.testing.assert_allclose(d["params_active"] - d["params_embedding"], 5.1e9, rtol=0.01)


# --- MLA KV cache --------------------------------------------------------------------------------


def test_deepseek_v3_kv_cache_bytes_per_token():
    # DeepSeek-V3 caches the latent (kv_lora_rank 512) and the RoPE key (64) per token and layer:
    # 61 x (512 + 64) x 2 bytes = 70,272 bytes per token in bf16, replicated on every GPU under TP.
    spec = load_model("deepseek-v3").spec
    for tp in (1.0, 8.0):
        assert float(kv_bytes_per_token_per_gpu(spec, f64(tp), f64(2.0))) == 70_272
    assert float(kv_cache_bytes(spec, f64(1000.0), f64(3.0), f64(2.0))) == 3 * 1000 * 70_272
    assert float(kv_cache_bytes(spec, f64(1000.0), f64(1.0), f64(1.0))) == 1000 * 70_272 / 2  # fp8


# --- sliding windows -----------------------------------------------------------------------------


def test_sliding_window_layer_kv_stops_growing_past_window():
    spec = load_model("gpt-oss-120b").spec  # 18 full and 18 sliding layers, window 128
    per_layer_token = 2 * 8 * 64 * 2  # K and V, 8 KV heads of 64, bf16
    kv = lambda t: float(kv_cache_bytes(spec, f64(t), f64(1.0), f64(2.0)))  # noqa: E731
    assert kv(100) == 36 * 100 * per_layer_token  # inside the window every layer grows
    assert kv(128) == 36 * 128 * per_layer_token
    assert kv(5000) - kv(1000) == 18 * 4000 * per_layer_token  # past it only the full layers do
    only_window = specs.model(dict(specs.LLAMA_70B, window=1024, n_window_layers=80))
    assert float(kv_cache_bytes(only_window, f64(1024.0), f64(1.0), f64(2.0))) == float(
        kv_cache_bytes(only_window, f64(100_000.0), f64(1.0), f64(2.0))
    )


def test_gemma_3_layers_and_defaults():
    entry = load_model("gemma-3-27b")
    # Gemma3TextConfig defaults, absent from the published config.json: every 6th layer global.
    assert entry.defaults == {
        "vocab_size": 262208,
        "tie_word_embeddings": True,
        "sliding_window_pattern": 6,
        "max_position_embeddings": 131072,
    }
    assert float(entry.spec.n_window_layers) == 52 and float(entry.spec.window) == 1024


@pytest.mark.parametrize("seq_len, window", [(1, 0), (5, 0), (1, 3), (4, 3), (5, 3), (6, 3), (1000, 128), (7, 100)])
@pytest.mark.parametrize("causal", [0.0, 1.0])
def test_window_prefill_pairs_match_explicit_count(seq_len, window, causal):
    # Query i (0-based) sees itself and min(i, W) earlier tokens; the article's convention sees
    # min(T, W + 1) keys per query.
    want = sum(min(i, window) + 1 for i in range(seq_len)) if causal else seq_len * min(seq_len, window + 1)
    assert float(window_pairs(f64(seq_len), f64(window), f64(causal))) == want


def _step_and_points(model_values: dict, batch: float = 4.0):
    model, gpu = specs.model(model_values), specs.gpu(specs.H100)
    dep, prof = specs.deployment(1, batch), specs.profile(dict(specs.ARTICLE, causal_attention=1))
    return decode_step(model, gpu, dep, prof)


@pytest.mark.parametrize("first, steps", [(0, 50), (10, 200), (100, 5), (127, 2), (128, 40), (500, 300)])
def test_decode_sum_splits_at_window_and_matches_step_loop(first, steps):
    # An 8B-like model with half its layers windowed at W = 128, memory-bound at small contexts and
    # compute-bound (1 TFLOP/s) past a crossover, so the roofline switches inside the range.
    values = dict(specs.LLAMA_70B, n_layers=4, window=128, n_window_layers=2)
    step = _step_and_points(values, batch=64.0)
    step = step._replace(compute_per_token_s=step.compute_per_token_s * 50.0)
    loop = sum(float(decode_step_time(step, f64(t)).total_s) for t in range(first, first + steps))
    closed = decode_time(step, f64(first), f64(steps))
    np.testing.assert_allclose(float(closed.total_s), loop, rtol=1e-12)
    want_mem = sum(float(decode_step_time(step, f64(t)).memory_s) for t in range(first, first + steps))
    np.testing.assert_allclose(float(closed.memory_s), want_mem, rtol=1e-12)


def test_window_layer_decode_memory_stops_growing():
    step = _step_and_points(dict(specs.LLAMA_70B, window=256, n_window_layers=80))
    mem = [float(decode_step_time(step, f64(t)).memory_s) for t in (100, 256, 1000, 100_000)]
    assert mem[0] < mem[1] == mem[2] == mem[3]


# --- MoE weight reads ----------------------------------------------------------------------------


def test_moe_decode_weight_read_grows_with_batch():
    spec = load_model("mixtral-8x7b").spec
    counts = param_counts(spec)
    read = [float(streamed_params(spec, f64(1.0), f64(b))) for b in (1, 2, 4, 16, 64)]
    # One token uses k = 2 of 8 experts: exactly the active parameters (embedding streamed, e = 1).
    np.testing.assert_allclose(read[0], float(counts.active), rtol=1e-12)
    # B tokens touch E (1 - (1 - k/E)^B) experts per layer under uniform routing.
    expert = 3 * 4096 * 14336
    for b, r in zip((2, 4, 16, 64), read[1:]):
        np.testing.assert_allclose(r, float(counts.active) + 32 * expert * (8 * (1 - 0.75**b) - 2), rtol=1e-12)
    assert read == sorted(read) and read[-1] < float(counts.total)
    np.testing.assert_allclose(read[-1], float(counts.total), rtol=1e-6)


def test_dense_weight_read_does_not_depend_on_tokens():
    m = specs.model(specs.LLAMA_70B)
    assert (
        float(streamed_params(m, f64(1.0), f64(1.0)))
        == float(streamed_params(m, f64(1.0), f64(512.0)))
        == 70_553_706_496
    )


# --- weight formats ------------------------------------------------------------------------------


def test_fp8_halves_weight_bytes_and_memory_bound_decode_step():
    # One GPU (no all-reduce), batch 1: the step reads the weights plus one token of KV cache
    # (bf16 in both), so halving the weights nearly halves it.
    bf16 = _explain("llama-3.1-8b", tp=1, input_len=1, output_len=2)
    fp8 = _explain("llama-3.1-8b", tp=1, input_len=1, output_len=2, weight_dtype="fp8")
    assert fp8["weight_bytes"] == bf16["weight_bytes"] / 2 == 8_030_261_248
    assert bf16["decode_bottleneck"] == fp8["decode_bottleneck"] == "memory"
    np.testing.assert_allclose(fp8["decode_step_memory_s"] / bf16["decode_step_memory_s"], 0.5, rtol=1e-4)
    np.testing.assert_allclose(fp8["decode_step_s"] / bf16["decode_step_s"], 0.5, rtol=1e-4)


@pytest.mark.parametrize(
    "dtype, bits",
    [
        ("int4", 4 + 16 / 128),  # GPTQ: one fp16 scale per group of 128 weights = 4.125 bits
        ("fp4", 4 + 8 / 32),  # MXFP4 (OCP MX v1.0): one E8M0 scale per block of 32 = 4.25 bits
        ("nvfp4", 4 + 8 / 16),  # NVFP4: one E4M3 scale per block of 16 = 4.5 bits
    ],
)
def test_4bit_weights_include_scale_overhead(dtype, bits):
    d = _explain("llama-3.1-8b", tp=1, weight_dtype=dtype)
    assert d["weight_bytes"] == 8_030_261_248 * bits / 8
    assert d["compute_dtype"] == "bf16"  # W4A16 by default


def test_compute_dtype_without_peak_is_infeasible():
    d = _explain("llama-3.1-8b", tp=1, weight_dtype="fp4", compute_dtype="fp4")  # H200 has no fp4 path
    assert not d["feasible"] and "fp4" in d["infeasible_reason"]


# --- one compile for dense and MoE models with dtype axes ----------------------------------------


def test_dense_and_moe_models_with_dtype_axes_compile_once():
    spec = validate(
        {
            "name": "mixed",
            "axes": {
                "model": ["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gpt-oss-20b", "gemma-3-27b"],
                "gpu": ["h200", "b200"],
                "tp": [1, 8],
                "batch": [1, 64],
                "input_len": [128, 4096],
                "output_len": [1, 300],
                "weight_dtype": ["bf16", "fp8", "int4", "fp4"],
                "kv_dtype": ["bf16", "fp8"],
            },
            "engine": {"chunk_points": 100, "precision": "float64"},
        },
        "test",
    )
    plan = make_plan(spec)
    plan.fn = lift(
        point, plan.dims, INPUT_KEYS, plan.padded_chunks
    )  # a fresh jit, so its cache holds this sweep's programs only
    for chunk_id in plan.chunk_ids():
        plan.evaluate(chunk_id)
    assert plan.n_chunks > 10 and plan.fn._cache_size() == 1
    ds = compute(spec)
    fp8, bf16 = (ds.weight_bytes.sel(model="mixtral-8x7b", weight_dtype=w) for w in ("fp8", "bf16"))
    np.testing.assert_array_equal(fp8.values * 2, bf16.values)
    feasible = ds.feasible.sel(model="deepseek-v3", gpu="h200", tp=8, kv_dtype="bf16")
    assert bool(feasible.sel(weight_dtype="fp8").any()) and not bool(feasible.sel(weight_dtype="bf16").any())
    assert jnp.isfinite(ds.tpot_s.sel(model="gpt-oss-20b", weight_dtype="fp4").values).any()
