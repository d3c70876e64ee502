"""Build spec pytrees from plain dicts (the reference's inputs), for tests."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from kernels.specs import DENSE_DEFAULTS, Deployment, EngineProfile, GPUSpec, ModelSpec, Workload


def f64(x) -> jnp.ndarray:
    """A rank-0 float64 array."""
    return jnp.asarray(float(x), dtype=jnp.float64)


def _make(cls, values: dict):
    names = [f.name for f in dataclasses.fields(cls)]
    return cls(**{n: jnp.asarray(float(values[n]), dtype=jnp.float64) for n in names})


def model(values: dict) -> ModelSpec:
    """A ModelSpec; the MoE, MLA and sliding-window fields default to a dense model's."""
    return _make(ModelSpec, {**DENSE_DEFAULTS, **values})


def gpu(values: dict) -> GPUSpec:
    return _make(GPUSpec, values)


def profile(values: dict) -> EngineProfile:
    return _make(EngineProfile, values)


def deployment(
    tp, batch, w_bytes=2.0, kv_bytes=2.0, act_bytes=2.0, compute_dtype=0, scenario=0, pp=1, dp=1, expert_parallel=0
) -> Deployment:
    return _make(
        Deployment,
        dict(
            tp=tp,
            batch=batch,
            weight_bytes_per_elem=w_bytes,
            kv_bytes_per_elem=kv_bytes,
            act_bytes_per_elem=act_bytes,
            compute_dtype=compute_dtype,
            scenario=scenario,
            pp=pp,
            dp=dp,
            expert_parallel=expert_parallel,
        ),
    )


def workload(input_len, output_len) -> Workload:
    return _make(Workload, dict(input_len=input_len, output_len=output_len))


# Llama 3.3 70B, from its config.json (meta-llama/Llama-3.3-70B-Instruct).
LLAMA_70B = dict(
    n_layers=80,
    d_model=8192,
    n_heads=64,
    n_kv_heads=8,
    d_head=128,
    d_ffn=28672,
    vocab=128256,
    tied_embeddings=0,
    qkv_bias=0,
)
# H100 SXM as the article uses it: 989 TFLOP/s dense bf16, 3350 GB/s, 80 GB, NVLink 450 GB/s.
H100 = dict(
    flop_per_s_bf16=989e12,
    flop_per_s_fp8=1979e12,
    flop_per_s_int8=1979e12,
    flop_per_s_fp4=float("nan"),
    hbm_bytes=80e9,
    hbm_bytes_per_s=3.35e12,
    link_bytes_per_s=450e9,
    network_bytes_per_s=50e9,
    gpus_per_node=8,
    n_sm=132,
    tdp_w=700,
    usd_per_hour=2.99,
)
ARTICLE = dict(
    causal_attention=0,
    allreduce_volume_factor=1,
    reads_embedding=1,
    matmul_eff=1,
    matmul_tokens_half=0,
    attn_eff=1,
    weight_bw_eff=1,
    kv_bw_eff=1,
    kv_parallel_half=0,
    step_overhead_s=0,
    prefill_overhead_s=0,
    allreduce_latency_s=0,
    mem_usable_frac=1,
    max_num_seqs=float("inf"),
)
