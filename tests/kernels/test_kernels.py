"""Unit tests of the kernels: parameter counts of published models, KV-cache accounting under
grouped-query attention and tensor parallelism, infeasible points as data, compile once."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from kernels.memory import kv_bytes_per_token_per_gpu, kv_cache_bytes, kv_heads_per_gpu
from kernels.params import param_counts
from kernels.point import METRICS, TIMED_FIELDS, evaluate, mask_infeasible
from kernels.roofline import peak_flop_per_s
from tests import specs
from tests.specs import f64

# Architectures as in each model's Hugging Face config.json (copies in grids/models/).
LLAMA_31_8B = specs.LLAMA_8B
QWEN25_7B = dict(
    n_layers=28,
    d_model=3584,
    n_heads=28,
    n_kv_heads=4,
    d_head=128,
    d_ffn=18944,
    vocab=152064,
    tied_embeddings=0,
    qkv_bias=1,
)
MISTRAL_7B_V03 = dict(specs.LLAMA_8B, vocab=32768)  # Llama 3.1 8B's shapes with a 32,768-token vocabulary
ROOFLINE = specs.ROOFLINE


@pytest.mark.parametrize(
    "arch, expected",
    [
        # meta-llama/Llama-3.1-8B model card: "8.03B" parameters. By hand:
        # 2 * 128,256 * 4,096 (embedding + LM head) = 1,050,673,152
        # + 32 * (2 * 4096^2 [q, o] + 2 * 4096 * 1024 [k, v] + 3 * 4096 * 14336 [MLP] + 2 * 4096 [norms])
        #   = 32 * 218,112,000 = 6,979,584,000
        # + 4,096 (final norm)                                         = 8,030,261,248.
        (LLAMA_31_8B, 8_030_261_248),
        # Qwen/Qwen2.5-7B model card: "7.61B" parameters (q, k, v carry biases). By hand:
        # 2 * 152,064 * 3,584 (embedding + LM head) = 1,089,994,752
        # + 28 * (2 * 3584^2 + 2 * 3584 * 512 + (3584 + 2 * 512) [biases] + 3 * 3584 * 18944 + 2 * 3584)
        #   = 28 * 233,057,792 = 6,525,618,176
        # + 3,584 (final norm)                                         = 7,615,616,512.
        (QWEN25_7B, 7_615_616_512),
        # mistralai/Mistral-7B-v0.3 model card: "7.25B" parameters (vocabulary extended to 32,768).
        # By hand: 2 * 32,768 * 4,096 = 268,435,456 + 6,979,584,000 (same blocks as Llama 3.1 8B)
        # + 4,096                                                      = 7,248,023,552.
        (MISTRAL_7B_V03, 7_248_023_552),
    ],
)
def test_param_counts_of_published_models(arch, expected):
    assert float(param_counts(specs.model(arch)).total) == expected


def test_qwen_biases_add_q_plus_2kv_per_layer():
    with_bias, without = specs.model(QWEN25_7B), specs.model(dict(QWEN25_7B, qkv_bias=0))
    # 28 layers * (28 * 128 + 2 * 4 * 128) bias entries.
    assert float(param_counts(with_bias).total - param_counts(without).total) == 28 * (3584 + 1024)


def test_tied_embeddings_drop_the_lm_head():
    tied = specs.model(dict(LLAMA_31_8B, tied_embeddings=1))
    assert float(param_counts(tied).total) == 8_030_261_248 - 128_256 * 4_096


def test_gqa_kv_bytes_are_n_heads_over_n_kv_heads_smaller():
    # Llama 3.3 70B: 64 query heads share 8 KV heads; the MHA variant has 64 KV heads.
    gqa = specs.model(specs.LLAMA_70B)
    mha = specs.model(dict(specs.LLAMA_70B, n_kv_heads=64))
    args = (f64(4096.0), f64(7.0), f64(2.0))
    assert float(kv_cache_bytes(mha, *args)) == 8.0 * float(kv_cache_bytes(gqa, *args))
    for tp in (1.0, 2.0, 4.0, 8.0):
        ratio = kv_bytes_per_token_per_gpu(mha, f64(tp), f64(2.0)) / kv_bytes_per_token_per_gpu(gqa, f64(tp), f64(2.0))
        assert float(ratio) == 8.0


@pytest.mark.parametrize("tp, heads", [(1, 8), (2, 4), (4, 2), (8, 1), (16, 1), (64, 1)])
def test_kv_heads_split_then_replicated(tp, heads):
    """8 KV heads over P GPUs: 8/P each while P <= 8, then one replicated head per GPU."""
    model = specs.model(specs.LLAMA_70B)
    assert float(kv_heads_per_gpu(model, f64(tp))) == heads
    # Llama 3.3 70B, bf16: 2 * 80 layers * 128 * 2 bytes = 40,960 bytes per KV head per token.
    assert float(kv_bytes_per_token_per_gpu(model, f64(tp), f64(2.0))) == heads * 40_960


def _h100_70b(tp, batch=1, compute_dtype="bf16", input_len=2048, output_len=128, profile=ROOFLINE):
    pt = specs.point(
        p=profile, tp=tp, batch=batch, compute_dtype=compute_dtype, input_len=input_len, output_len=output_len
    )
    return evaluate(*pt)


def test_tp_not_dividing_heads_is_infeasible():
    # 64 query heads: tp 4 divides them, tp 3 and tp 6 do not, though all three fit in memory.
    assert bool(_h100_70b(4).feasible)
    for tp in (3, 6):
        out = _h100_70b(tp)
        assert not bool(out.feasible)
        assert float(out.max_batch) >= 1  # memory is not what fails
        assert int(out.bottleneck) == 4  # "capacity": the code of a point that cannot run


def test_weights_not_fitting_is_infeasible():
    # The article: 141 GB of Llama 3.3 70B weights do not fit in one 80 GB H100.
    out = _h100_70b(1)
    assert not bool(out.feasible) and float(out.max_batch) == 0.0
    assert math.isfinite(float(out.tpot_s))  # evaluate still reports times, as the article does


def test_mask_infeasible_nans_every_timed_field_and_keeps_the_rest():
    raw = _h100_70b(3)  # a static batch
    masked = mask_infeasible(raw)
    for name in TIMED_FIELDS:
        if METRICS[name].scenarios and "static" not in METRICS[name].scenarios:
            assert math.isnan(float(getattr(raw, name))), name  # another scenario's metric: none here
        else:
            assert math.isfinite(float(getattr(raw, name))), name
        assert math.isnan(float(getattr(masked, name))), name
    for name in set(raw._fields) - set(TIMED_FIELDS):
        np.testing.assert_array_equal(np.asarray(getattr(masked, name)), np.asarray(getattr(raw, name)), err_msg=name)
    assert float(masked.params_total) == 70_553_706_496


def test_mask_infeasible_keeps_feasible_points():
    raw = _h100_70b(4)
    masked = mask_infeasible(raw)
    for name in raw._fields:
        np.testing.assert_array_equal(np.asarray(getattr(masked, name)), np.asarray(getattr(raw, name)))


def test_fp4_on_h100_has_no_peak_and_is_infeasible():
    # H100 has no fp4 tensor path (NaN in the catalogue); bf16 (0) and fp8 (1) exist.
    gpu = specs.gpu(specs.H100)
    assert math.isnan(float(peak_flop_per_s(gpu, f64(3.0))))
    assert float(peak_flop_per_s(gpu, f64(0.0))) == 989e12
    assert float(peak_flop_per_s(gpu, f64(1.0))) == 1979e12
    assert math.isnan(float(peak_flop_per_s(gpu, f64(7.0))))  # no such code
    assert bool(_h100_70b(4, compute_dtype=1).feasible)
    fp4 = _h100_70b(4, compute_dtype=3)
    assert not bool(fp4.feasible)
    assert math.isnan(float(mask_infeasible(fp4).tpot_s))


def test_second_call_with_new_values_does_not_recompile():
    """Optax-style: specs hold no static fields, so new values with the same shapes reuse the
    compiled program. A Python side effect in the traced function counts traces."""
    traces = []

    @jax.jit
    def point(model, gpu, dep, wl, profile):
        traces.append(1)
        return evaluate(model, gpu, dep, wl, profile, codes=(0, 2))  # compiles static and max_throughput only

    first = point(
        specs.model(specs.LLAMA_70B),
        specs.gpu(specs.H100),
        specs.deployment(4, 8),
        specs.workload(2048, 128),
        specs.profile(ROOFLINE),
    )
    second = point(
        specs.model(LLAMA_31_8B),
        specs.gpu(dict(specs.H100, hbm_bytes_per_s=4.8e12)),
        specs.deployment(1, 32, weight_dtype="fp8", compute_dtype="fp8", scenario="max_throughput"),
        specs.workload(100, 7),
        specs.profile(specs.ARTICLE),
    )
    assert len(traces) == 1
    assert point._cache_size() == 1
    assert float(first.params_total) == 70_553_706_496
    assert float(second.params_total) == 8_030_261_248  # the new values were used


def test_first_prompt_alone_then_the_others_in_one_pass():
    """LMDeploy 0.1 (TurboMind's loop admits the requests waiting when a pass starts): of B
    requests that arrive together the first is prefilled alone, the other B - 1 together in the
    next pass, so TTFT_mean = [P(1) + (B - 1) (P(1) + P(B - 1))] / B and TTFT_min = P(1), with
    P(k) a pass over k prompts (a static batch's own prefill_s). One request: the same either
    way. The measured file shows it: Llama 2 7B, 2048-token prompts, batch 16: mean TTFT 2.897 s
    = 20 x the shortest (0.143 s), where one first-come-first-served pass gives at most
    (B + 1) / 2 = 8.5 x (shared/benchmarks/lmdeploy_a100_fp16.csv)."""
    import dataclasses

    from grids.profiles import load_profile

    alone = load_profile("lmdeploy").spec
    fcfs = dataclasses.replace(alone, prefill_first_alone=f64(0.0))

    def run(prof, batch):
        return evaluate(
            *specs.point("llama-2-7b", "a100-sxm-80gb", prof, tp=1, batch=batch, input_len=2048, output_len=128)
        )

    p1, p15 = float(run(alone, 1).prefill_s), float(run(alone, 15).prefill_s)
    b16 = run(alone, 16)
    assert float(b16.ttft_s) == pytest.approx((p1 + 15.0 * (p1 + p15)) / 16.0, rel=1e-12)
    assert float(b16.ttft_min_s) == pytest.approx(p1, rel=1e-12)
    assert float(run(fcfs, 1).ttft_s) == pytest.approx(float(run(alone, 1).ttft_s), rel=1e-12)
    ratio = {name: float(r.ttft_s) / float(r.ttft_min_s) for name, r in (("alone", b16), ("fcfs", run(fcfs, 16)))}
    assert ratio["fcfs"] <= 8.5 < 12.0 < ratio["alone"] < 16.0  # measured: 20.3 (2.897 s / 0.143 s)
    # Throughput is the same either way: only the order of the first tokens changes.
    assert float(b16.output_tok_s) == pytest.approx(float(run(fcfs, 16).output_tok_s), rel=1e-12)


def test_paged_engine_prefills_every_prompt_that_fits_before_any_wave():
    """Issue 12, LMDeploy's batch 64 at 128/2048 on one A100 80GB: the 64 sequences of 2175
    tokens do not all fit (two waves, so the second half waited ~17 s for its first token), but
    their 128-token prompts do, and a paged engine admits them all at once: every first token
    comes from one pass over the 64 prompts. Reserving prompt + output per sequence keeps the
    waves. Throughput is the same either way (the waves still finish the work)."""
    import dataclasses

    from grids.profiles import load_profile

    base = load_profile("lmdeploy-base").spec
    runs = {}
    for paged in (0.0, 1.0):
        prof = dataclasses.replace(base, kv_paged=f64(paged), mem_usable_frac=f64(1.0), kv_free_frac=f64(0.5))
        pt = specs.point("llama-2-7b", "a100-sxm-80gb", prof, tp=1, batch=64, input_len=128, output_len=2048)
        runs[paged] = evaluate(*pt)
    reserved, paged = runs[0.0], runs[1.0]
    assert float(reserved.max_batch) < 64  # the full-length sequences do not all fit
    assert float(reserved.ttft_s) > 5.0 and float(paged.ttft_s) < 1.0
    np.testing.assert_allclose(float(paged.output_tok_s), float(reserved.output_tok_s), rtol=1e-12)
