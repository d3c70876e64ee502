"""Hypothesis strategies for one design point, as the plain dicts ``tests/reference.py`` takes.

Ranges are those of real hardware and real decoder-only models (dense, MoE, MLA, sliding
windows), widened a little so the
edges (one layer, one head, zero overheads, an engine limit of one sequence) are reached too.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

TP_VALUES = (1, 2, 4, 8, 16)


def _pos(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


@st.composite
def architectures(draw) -> dict:
    """A dense decoder-only transformer: N query heads, K | N key/value heads, D a multiple of N."""
    # Powers of two are drawn often so that tp divides the heads (and points can be feasible).
    n_heads = draw(st.one_of(st.sampled_from([8, 16, 32, 64, 128]), st.integers(1, 128)))
    n_kv_heads = draw(st.sampled_from([k for k in range(1, n_heads + 1) if n_heads % k == 0]))
    n_layers = draw(st.integers(1, 128))
    return dict(
        n_layers=n_layers,
        d_model=n_heads * draw(st.integers(8, 256)),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_head=draw(st.integers(32, 256)),
        d_ffn=draw(st.integers(64, 65536)),
        vocab=draw(st.integers(256, 262144)),
        tied_embeddings=draw(st.sampled_from([0, 1])),
        qkv_bias=draw(st.sampled_from([0, 1])),
        **draw(extensions(n_layers)),
    )


@st.composite
def extensions(draw, n_layers: int) -> dict:
    """MoE, MLA, sliding-window and norm fields: each drawn on a third of the architectures, the
    rest dense (an empty dict: the reference's and tests.specs' dense defaults). Sizes stay where
    parameter counts are below 2^53, so kernels and reference agree on them exactly."""
    out: dict = {}
    if draw(st.integers(0, 2)) == 0:
        n_experts = draw(st.integers(1, 64))
        out.update(
            n_experts=n_experts,
            experts_per_token=draw(st.integers(1, n_experts)),
            d_ffn_expert=draw(st.integers(16, 4096)),
            d_ffn_shared=draw(st.one_of(st.just(0), st.integers(16, 4096))),
            n_moe_layers=draw(st.integers(0, n_layers)),
            expert_bias=draw(st.sampled_from([0, 1])),
            router_bias=draw(st.sampled_from([0, 1])),
        )
    if draw(st.integers(0, 2)) == 0:
        out.update(
            kv_lora_rank=draw(st.integers(16, 1024)),
            q_lora_rank=draw(st.one_of(st.just(0), st.integers(16, 2048))),
            qk_rope_head_dim=draw(st.integers(0, 128)),
            qk_nope_head_dim=draw(st.integers(16, 256)),
            v_head_dim=draw(st.integers(16, 256)),
        )
    if draw(st.integers(0, 2)) == 0:
        out.update(window=draw(st.integers(1, 8192)), n_window_layers=draw(st.integers(0, n_layers)))
    if draw(st.booleans()):
        out.update(n_norms=draw(st.sampled_from([2, 4])), qk_norm=draw(st.sampled_from([0, 1])))
    return out


@st.composite
def gpus(draw) -> dict:
    """An accelerator with every peak finite (datasheet ranges: L4 ... B200, 8 GB ... 512 GB)."""
    bf16 = draw(_pos(20e12, 5e15))
    return dict(
        flop_per_s_bf16=bf16,
        flop_per_s_fp8=bf16 * draw(_pos(1.0, 2.0)),
        flop_per_s_int8=bf16 * draw(_pos(1.0, 2.0)),
        flop_per_s_fp4=bf16 * draw(_pos(1.0, 4.0)),
        hbm_bytes=draw(_pos(8e9, 512e9)),
        hbm_bytes_per_s=draw(_pos(0.1e12, 8e12)),
        link_bytes_per_s=draw(_pos(16e9, 1.8e12)),
        link_kind=draw(st.sampled_from([0, 1, 2])),
        network_bytes_per_s=draw(_pos(12.5e9, 100e9)),
        gpus_per_node=draw(st.sampled_from([1, 2, 4, 8, 16, 72])),
        n_sm=draw(st.integers(1, 304)),
        tdp_w=draw(_pos(50.0, 1500.0)),
        usd_per_hour=draw(_pos(0.1, 20.0)),
        capex_usd=draw(_pos(1e3, 1e5)),
    )


@st.composite
def profiles(draw) -> dict:
    """An engine profile inside the physical ranges of ``grids.profiles.TERMS``."""
    zero_or = lambda hi: st.one_of(st.just(0.0), _pos(0.0, hi))  # noqa: E731
    return dict(
        causal_attention=draw(st.sampled_from([0, 1])),
        allreduce_volume_factor=draw(st.sampled_from([1, 2])),
        reads_embedding=draw(st.sampled_from([0, 1])),
        matmul_eff=draw(_pos(0.05, 1.0)),
        matmul_tokens_half=draw(zero_or(1e5)),
        attn_eff=draw(_pos(0.05, 1.0)),
        weight_bw_eff=draw(_pos(0.05, 1.0)),
        kv_bw_eff=draw(_pos(0.05, 1.0)),
        kv_parallel_half=draw(zero_or(1e3)),
        step_overhead_s=draw(zero_or(0.1)),
        prefill_overhead_s=draw(zero_or(1.0)),
        allreduce_latency_s=draw(zero_or(1e-3)),
        link_eff=draw(_pos(0.05, 1.0)),
        pcie_link_eff=draw(_pos(0.05, 1.0)),
        if_link_eff=draw(_pos(0.05, 1.0)),
        chunked_prefill=draw(st.sampled_from([0, 1])),
        prefill_chunk_tokens=draw(st.sampled_from([0.0, math.inf]) | st.integers(1, 4096).map(float)),
        mem_usable_frac=draw(_pos(0.05, 1.0)),
        kv_free_frac=draw(_pos(0.05, 1.0)),
        kv_paged=draw(st.sampled_from([0, 1])),
        max_num_seqs=draw(st.one_of(st.just(math.inf), st.integers(1, 1024).map(float))),
        max_num_tokens=draw(st.one_of(st.just(math.inf), st.integers(1, 16384).map(float))),
        prefill_first_alone=draw(st.sampled_from([0, 1])),
        # Neutral: the reference (sweep/bench/reference.py) predates these terms; the kernels'
        # own tests cover them (tests/kernels/test_trtllm_terms.py).
        attn_len_half=0.0,
        attn_bf16_peak=0.0,
        mem_reserved_bytes=0.0,
        head_16bit=0.0,
        pcie_latency_extra_s=0.0,
        roof_overlap=draw(st.sampled_from([0.0, 0.5, 1.0])),
    )


@st.composite
def points(draw, max_output: int = 300) -> dict:
    """One design point: architecture, GPU, profile, tp, batch, lengths and number formats.

    ``output_len`` stays moderate because the reference loops over decode steps.
    """
    return dict(
        m=draw(architectures()),
        g=draw(gpus()),
        p=draw(profiles()),
        tp=draw(st.sampled_from(TP_VALUES)),
        batch=draw(st.integers(1, 512)),
        input_len=draw(st.integers(1, 200_000)),
        output_len=draw(st.integers(1, max_output)),
        w_bytes=draw(st.sampled_from([0.5, 1.0, 2.0])),
        kv_bytes=draw(st.sampled_from([1.0, 2.0])),
        compute_dtype=draw(st.sampled_from([0, 1, 2, 3])),
        pp=draw(st.sampled_from([1, 1, 2, 4])),
        dp=draw(st.sampled_from([1, 1, 2, 4])),
        expert_parallel=draw(st.booleans()),
    )
