"""Design points for tests, built like everywhere else: axis values -> ``grids.axes.design_inputs``
-> ``kernels.point.design_point``. Models, GPUs and profiles may be plain dicts (the reference's
inputs) or catalogue keys."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grids.axes import AXES, design_inputs
from kernels.point import DesignPoint, design_point
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


def _spec(value: Any, make) -> Any:
    return make(value) if isinstance(value, dict) else value


def point(m: Any = None, g: Any = None, p: Any = None, **values: Any) -> DesignPoint:
    """One design point from named values: axis values (``tp=4, weight_dtype="fp8",
    scenario="concurrency"``, grids/axes.py) or, for what no axis value expresses (a drawn byte
    width, a scenario code), the kernel inputs of ``design_point`` by name
    (``weight_bytes_per_elem=0.5, compute_dtype=3, scenario=1``). ``m``, ``g``, ``p`` are dicts,
    specs or catalogue keys (default Llama 3.3 70B, the article's H100 and the article's profile).
    Unset lengths are 1 token."""
    values = {"input_len": 1, "output_len": 1, **values}
    axes = {k: v for k, v in values.items() if k in AXES and (AXES[k].kind != "choice" or isinstance(v, str))}
    axes.update(model=_spec(m or LLAMA_70B, model), gpu=_spec(g or H100, gpu), profile=_spec(p or ARTICLE, profile))
    named = design_inputs(axes)
    named.update({k: v for k, v in values.items() if k not in axes})
    return design_point(**jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.float64), named))


def drawn_point(pt: dict, parallel: bool = True) -> DesignPoint:
    """The design point of a point drawn by ``tests.properties.strategies.points`` (plain dicts and
    raw kernel inputs: byte widths and codes); without ``parallel``, pp = dp = 1 and expert
    parallelism off whatever was drawn."""
    extra = {}
    if parallel:
        extra = dict(pp=pt.get("pp", 1), dp=pt.get("dp", 1), expert_parallel=float(pt.get("expert_parallel", 0)))
    return point(
        pt["m"],
        pt["g"],
        pt["p"],
        tp=pt["tp"],
        batch=pt["batch"],
        input_len=pt["input_len"],
        output_len=pt["output_len"],
        weight_bytes_per_elem=pt["w_bytes"],
        kv_bytes_per_elem=pt["kv_bytes"],
        compute_dtype=pt["compute_dtype"],
        scenario=pt.get("scenario", 0),
        **extra,
    )


def deployment(tp, batch, **axes: Any) -> Deployment:
    """The Deployment of ``point(tp=tp, batch=batch, **axes)``."""
    return point(tp=tp, batch=batch, **axes).dep


def workload(input_len, output_len) -> Workload:
    return Workload(
        input_len=f64(input_len),
        output_len=f64(output_len),
        request_rate=f64(1.0),
        cached_prefix_fraction=f64(0.0),
        input_len_spread=f64(0.0),
        output_len_spread=f64(0.0),
    )


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
# Llama 3.1 8B, from its config.json (meta-llama/Llama-3.1-8B).
LLAMA_8B = dict(
    n_layers=32,
    d_model=4096,
    n_heads=32,
    n_kv_heads=8,
    d_head=128,
    d_ffn=14336,
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
    link_kind=0,
    network_bytes_per_s=50e9,
    gpus_per_node=8,
    n_sm=132,
    tdp_w=700,
    usd_per_hour=2.99,
    capex_usd=27500.0,  # grids/gpus.toml [h100-sxm]
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
    link_eff=1,
    pcie_link_eff=1,
    if_link_eff=1,
    chunked_prefill=0,
    prefill_chunk_tokens=0,
    mem_usable_frac=1,
    kv_free_frac=1,
    kv_paged=0,
    max_num_seqs=float("inf"),
    max_num_tokens=float("inf"),
    prefill_first_alone=0,
    attn_len_half=0,
    attn_bf16_peak=0,
    mem_reserved_bytes=0,
    head_16bit=0,
    pcie_latency_extra_s=0,
    roof_overlap=1,
)
# The article's profile with causal attention, a ring all-reduce and no embedding read: the
# roofline a hand calculation follows.
ROOFLINE = dict(ARTICLE, causal_attention=1, allreduce_volume_factor=2, reads_embedding=0)


def on_host(*specs):
    """``specs`` with numpy float64 leaves, so that the kernels evaluate them in numpy on the host
    (kernels/xp.py) instead of op by op in JAX: one point in milliseconds, no compile."""
    return tuple(jax.tree.map(np.asarray, specs))
