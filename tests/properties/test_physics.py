"""Physical properties the cost model must have, whatever the design point (STYLE.md, "Tests"):
monotonicity in context, batch and bandwidth, the roofline bounds, cost accounting, causal
attention, KV-cache linearity, and agreement of a vmapped grid with a loop of points."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from kernels.flops import prefill_flops
from kernels.memory import kv_cache_bytes
from kernels.point import evaluate
from kernels.roofline import decode_step, decode_step_time, decode_time, prefill_time
from kernels.specs import Workload
from tests import specs
from tests.properties.strategies import architectures, points
from tests.specs import f64

# Jitted once at import; every example has the same rank-0 shapes, so each compiles once. Only the
# scenarios drawn (_SCENARIO) are compiled: those with random arrivals cost ~30 s each.
EVALUATE = jax.jit(lambda *specs: evaluate(*specs, codes=(0, 1, 2)))


@jax.jit
def _phases(model, gpu, dep, wl, profile):
    """Prefill pass and the summed decode steps (max(O - 1, 1) of them) of one static batch."""
    steps = jnp.maximum(wl.output_len - 1.0, 1.0)
    return (
        prefill_time(model, gpu, dep, wl, profile),
        decode_time(decode_step(model, gpu, dep, profile), wl.input_len, steps),
    )


@jax.jit
def _decode_step_time(model, gpu, dep, profile, context_len):
    return decode_step_time(decode_step(model, gpu, dep, profile), context_len)


def _specs(pt: dict, **over):
    """(model, gpu, deployment, workload, profile) of a drawn point, with fields overridden."""
    pt = {**pt, **over}
    return tuple(specs.drawn_point(pt, parallel=False))[
        :5
    ]  # one replica (pp = dp = 1), as these were written; no ownership


def _step_total(pt: dict, context_len: float, **over) -> float:
    m, g, dep, _, p = _specs(pt, **over)
    return float(_decode_step_time(m, g, dep, p, f64(context_len)).total_s)


_CONTEXT = st.integers(0, 1_000_000)
_BATCH = st.integers(1, 512)
_SCENARIO = st.sampled_from([0, 1, 2])  # static, concurrency, max_throughput


@given(points(), _CONTEXT, _CONTEXT)
def test_decode_step_never_faster_with_longer_context(pt, t1, t2):
    t1, t2 = sorted((t1, t2))
    assert _step_total(pt, t1) <= _step_total(pt, t2)


@given(points(), _BATCH, _BATCH, _CONTEXT)
def test_decode_step_never_faster_with_larger_batch(pt, b1, b2, context):
    b1, b2 = sorted((b1, b2))
    assert _step_total(pt, context, batch=b1) <= _step_total(pt, context, batch=b2)


@given(points())
def test_phase_time_between_roofline_bounds(pt):
    """max(T_math, T_mem) <= T <= T_math + T_mem + T_comm + T_overhead, prefill and decode."""
    for phase in _phases(*_specs(pt)):
        c, m, comm, over, total = (float(x) for x in phase)
        assert min(c, m, comm, over) >= 0.0
        # rtol 1e-12 on both bounds: the decode total sums max(f, g) as a closed-form series while
        # its compute_s and memory_s are count * mean, so the two round differently (by ~1e-15).
        assert max(c, m) <= total * (1.0 + 1e-12)
        assert total <= (c + m + comm + over) * (1.0 + 1e-12)


@given(points(), st.floats(1.0, 100.0), _SCENARIO)
def test_more_bandwidth_never_slows_a_step_or_request(pt, factor, scenario):
    pt = dict(pt, scenario=scenario)
    faster = dict(pt["g"], hbm_bytes_per_s=pt["g"]["hbm_bytes_per_s"] * factor)
    slow, fast = _specs(pt), _specs(pt, g=faster)
    a, b = EVALUATE(*slow), EVALUATE(*fast)
    # The decode sum and the mean over a static batch's requests are closed forms whose rounding
    # (~1e-15 relative) does not follow the bandwidth; 1e-12 is well above it and far below any
    # physical effect.
    assert float(b.tpot_s) <= float(a.tpot_s) * (1.0 + 1e-12)
    # Steady states with prompts in whole pieces queue them (kernels.scenarios._prompt_wait): a
    # faster decode sends the prompts sooner to a compute-bound prefill, whose queue may grow,
    # and TTFT with it, as at the bottleneck of any closed loop.
    queued = scenario != 0 and pt["p"]["chunked_prefill"] and pt["p"]["prefill_chunk_tokens"] > 0
    if not queued:
        assert float(b.ttft_s) <= float(a.ttft_s) * (1.0 + 1e-12)
        assert float(b.e2e_s) <= float(a.e2e_s) * (1.0 + 1e-12)
    # One decode step is a max of terms each monotone in bandwidth: exact.
    assert _step_total(pt, pt["input_len"], g=faster) <= _step_total(pt, pt["input_len"])


@given(points(), _SCENARIO)
def test_cost_times_tokens_is_price(pt, scenario):
    """$/Mtoken * token/s * 3600 s/h / 1e6 = $/h of the replica's GPUs."""
    out = EVALUATE(*_specs(pt, scenario=scenario))
    np.testing.assert_allclose(
        float(out.usd_per_mtok_output) * float(out.output_tok_s) * 3600 / 1e6,
        pt["g"]["usd_per_hour"] * pt["tp"],
        rtol=1e-12,
    )


@given(points(), _BATCH, _BATCH)
def test_latency_never_falls_as_batch_grows(pt, b1, b2):
    """Static scenario: a larger batch shares the weight reads but never finishes any sooner."""
    b1, b2 = sorted((b1, b2))
    small, large = EVALUATE(*_specs(pt, batch=b1)), EVALUATE(*_specs(pt, batch=b2))
    # rtol: see test_more_bandwidth_never_slows_a_step_or_request (closed-form rounding).
    # Mean over requests: one more request either joins the last wave (which then takes longer)
    # or starts a new wave after every other request.
    assert float(small.e2e_s) <= float(large.e2e_s) * (1.0 + 1e-12)
    if b2 <= float(large.batch_in_flight):
        # One wave: every request sees every decode step of the whole batch. (Beyond what runs
        # together -- memory, or the engine's token budget max_num_tokens -- the static batch runs
        # in waves and the request-mean TPOT can fall: the last, smaller wave decodes faster.)
        assert float(small.tpot_s) <= float(large.tpot_s) * (1.0 + 1e-12)
        assert float(small.prefill_s) <= float(large.prefill_s)


# Found by hypothesis (shrunk): a compute-bound prefill of 1-token prompts with a thin-matrix
# penalty (matmul_tokens_half = 25): TTFT 3.4418e-7 s at batch 1, 3.4337e-7 s at batch 2.
_THIN_PREFILL = dict(
    m=dict(
        n_layers=1, d_model=64, n_heads=8, n_kv_heads=1, d_head=32, d_ffn=64, vocab=256, tied_embeddings=0, qkv_bias=0
    ),
    g=dict(
        flop_per_s_bf16=20e12,
        flop_per_s_fp8=20e12,
        flop_per_s_int8=20e12,
        flop_per_s_fp4=20e12,
        hbm_bytes=8e9,
        hbm_bytes_per_s=100e9,
        link_bytes_per_s=16e9,
        link_kind=0,
        network_bytes_per_s=12.5e9,
        gpus_per_node=1,
        n_sm=1,
        tdp_w=50.0,
        usd_per_hour=1.0,
        capex_usd=1.0e4,
    ),
    p=dict(specs.ARTICLE, reads_embedding=0, matmul_eff=0.5, matmul_tokens_half=25.0),
    tp=1,
    batch=1,
    input_len=1,
    output_len=1,
    w_bytes=0.5,
    kv_bytes=1.0,
    compute_dtype=0,
)


@given(points(), _BATCH, _BATCH)
@example(_THIN_PREFILL, 1, 2)
def test_ttft_never_falls_as_batch_grows(pt, b1, b2):
    """Static scenario: the mean time to first token never falls as requests are added (one more
    request is served after the others of its wave, or in a new wave after all of them)."""
    b1, b2 = sorted((b1, b2))
    small, large = EVALUATE(*_specs(pt, batch=b1)), EVALUATE(*_specs(pt, batch=b2))
    # rtol: see test_more_bandwidth_never_slows_a_step_or_request (closed-form rounding).
    assert float(small.ttft_s) <= float(large.ttft_s) * (1.0 + 1e-12)


def _llama_8b_short_prompts(batch: int):
    """Llama 3.1 8B on one H100, roofline profile, 16-token prompts: a weight-read-bound prefill."""
    pt = dict(
        m=specs.LLAMA_8B,
        g=specs.H100,
        p=specs.ROOFLINE,
        tp=1,
        batch=batch,
        input_len=16,
        output_len=2,
        w_bytes=2.0,
        kv_bytes=2.0,
        compute_dtype=0,
    )
    return EVALUATE(*_specs(pt))


def test_ttft_never_falls_as_batch_grows_nor_beats_one_prompt_alone():
    """Regression: a weight-read-bound prefill of b prompts once gave a mean TTFT of
    P(b)(b+1)/(2b), i.e. 0.75 P(2) < P(1) at batch 2 (an earlier kernels/scenarios.py)."""
    one, two = _llama_8b_short_prompts(1), _llama_8b_short_prompts(2)
    assert float(two.max_batch) >= 2  # one wave: no waiting for earlier waves
    # Every first token needs a forward pass over all the weights: no sooner than one prompt alone.
    assert float(two.ttft_s) >= float(one.prefill_s)
    assert float(one.ttft_s) <= float(two.ttft_s)


@given(architectures(), st.integers(1, 1_000_000))
def test_causal_attention_never_costs_more_than_full(arch, seq_len):
    m, s = specs.model(arch), f64(seq_len)
    causal, full = prefill_flops(m, s, f64(1.0)), prefill_flops(m, s, f64(0.0))
    assert float(causal.attention) <= float(full.attention)
    assert float(causal.total) <= float(full.total)
    # Only attention differs between the two conventions.
    assert float(causal.weights) == float(full.weights)
    if seq_len == 1:
        assert float(causal.attention) == float(full.attention)
    else:
        assert float(causal.attention) < float(full.attention)


@given(points(), st.integers(1, 1_000_000))
def test_kv_cache_linear_in_context(pt, context):
    # Sliding-window layers stop growing at their window (tests/kernels/test_moe_mla_window.py):
    # with them the cache grows at most linearly; without them exactly so.
    m, _, dep, _, p = _specs(pt)
    one = kv_cache_bytes(m, f64(context), dep.batch, dep.kv_bytes_per_elem)
    two = kv_cache_bytes(m, f64(2 * context), dep.batch, dep.kv_bytes_per_elem)
    assert float(one) <= float(two) <= 2.0 * float(one)
    pt = dict(pt, m=dict(pt["m"], n_window_layers=0))
    m, _, dep, _, p = _specs(pt)
    one = kv_cache_bytes(m, f64(context), dep.batch, dep.kv_bytes_per_elem)
    two = kv_cache_bytes(m, f64(2 * context), dep.batch, dep.kv_bytes_per_elem)
    assert float(two) == 2.0 * float(one)  # doubling is exact in binary floating point
    # The stored metric holds the sequences in flight at I + O - 1 tokens: with O = 1 and one
    # sequence (in flight whatever fits), doubling I doubles it.
    a = EVALUATE(*_specs(pt, batch=1, input_len=context, output_len=1))
    b = EVALUATE(*_specs(pt, batch=1, input_len=2 * context, output_len=1))
    assert float(b.kv_cache_bytes) == 2.0 * float(a.kv_cache_bytes)


BATCHES = (1.0, 3.0, 16.0, 128.0, 500.0)
INPUT_LENS = (1.0, 100.0, 2048.0, 32768.0, 2e6)  # 2M tokens: one sequence's KV cache does not fit


def _grid_point(batch, input_len):
    """Llama 3.3 70B on 8 x H100, roofline profile, 200 output tokens, one (batch, input_len)."""
    dep = dataclasses.replace(specs.deployment(8, 1), batch=batch)
    prof = specs.profile(
        dict(
            specs.ARTICLE,
            causal_attention=1,
            allreduce_volume_factor=2,
            matmul_tokens_half=64,
            kv_parallel_half=2,
            step_overhead_s=1e-3,
            allreduce_latency_s=5e-6,
            mem_usable_frac=0.9,
        )
    )
    return evaluate(
        specs.model(specs.LLAMA_70B),
        specs.gpu(specs.H100),
        dep,
        Workload(input_len, f64(200.0), f64(1.0), f64(0.0), f64(0.0), f64(0.0)),
        prof,
    )


def test_vmap_grid_equals_loop_of_points():
    """As diffrax's test_vmap: nested vmaps (batch outer, input_len inner) == a Python loop."""
    grid = jax.jit(jax.vmap(jax.vmap(_grid_point, in_axes=(None, 0)), in_axes=(0, None)))(
        jnp.asarray(BATCHES), jnp.asarray(INPUT_LENS)
    )
    point = jax.jit(_grid_point)
    assert grid.tpot_s.shape == (len(BATCHES), len(INPUT_LENS))
    for i, b in enumerate(BATCHES):
        for j, s in enumerate(INPUT_LENS):
            one = point(f64(b), f64(s))
            for name, value in one._asdict().items():
                np.testing.assert_allclose(
                    np.asarray(getattr(grid, name)[i, j]),
                    np.asarray(value),
                    rtol=1e-12,
                    err_msg=f"{name} at batch {b}, input_len {s}",
                )
    feasible = np.asarray(grid.feasible)
    assert feasible.any() and not feasible.all()  # the grid spans both kinds of point
