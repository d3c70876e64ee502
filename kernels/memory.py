"""Memory: KV-cache size, what fits on the GPUs, and the largest batch that fits.

Reference: the article "LLM inference economics from first principles", section "KV cache";
Llama 3.3 70B in bf16 holds 671,088,640 bytes of KV cache per 2048-token sequence.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels._types import BoolScalar, Scalar
from kernels.params import weight_bytes
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec


def kv_cache_bytes(model: ModelSpec, seq_len: Scalar, batch: Scalar,
                   kv_bytes_per_elem: Scalar) -> Scalar:
    """Bytes of K and V cache held for ``batch`` sequences of ``seq_len`` tokens [byte].

    M_kv = 2 * L * K * H * T * B * b_kv        (one K and one V per layer)
    """
    return (2.0 * model.n_layers * model.n_kv_heads * model.d_head
            * seq_len * batch * kv_bytes_per_elem)


def kv_heads_per_gpu(model: ModelSpec, tp: Scalar) -> Scalar:
    """KV heads each of P GPUs holds: ceil(K / P); heads are replicated when P > K [1]."""
    return jnp.ceil(model.n_kv_heads / tp)


def kv_bytes_per_token_per_gpu(model: ModelSpec, tp: Scalar, kv_bytes_per_elem: Scalar) -> Scalar:
    """KV-cache bytes one token adds on each GPU of a tensor-parallel group [byte/token].

    m_kv = 2 * L * ceil(K / P) * H * b_kv
    """
    return 2.0 * model.n_layers * kv_heads_per_gpu(model, tp) * model.d_head * kv_bytes_per_elem


class MemoryPlan(NamedTuple):
    """Where one GPU's memory goes, for sequences of T = input_len + output_len tokens."""

    weight_bytes_per_gpu: Scalar  # M_w / P [byte]
    kv_bytes_per_token_per_gpu: Scalar  # m_kv [byte/token]
    kv_budget_bytes_per_gpu: Scalar  # u * M_gpu - M_w / P, may be negative [byte]
    max_batch: Scalar  # sequences of T tokens that fit, capped by the engine's limit [sequence]
    weights_fit: BoolScalar  # the weights alone fit in usable memory


def memory_plan(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile,
                seq_len: Scalar) -> MemoryPlan:
    """Split usable memory between weights and KV cache and find the largest batch.

    B_max = min( floor((u * M_gpu - M_w / P) / (m_kv * T)), B_engine )

    u is the usable fraction of device memory (``mem_usable_frac``), B_engine the engine's limit
    on sequences in flight (``max_num_seqs``). The article: on 2 x H100 the 141 GB of Llama 3.3 70B
    fill 88% of memory and leave 19 GB for KV cache.
    """
    w = weight_bytes(model, dep.weight_bytes_per_elem) / dep.tp
    m_kv = kv_bytes_per_token_per_gpu(model, dep.tp, dep.kv_bytes_per_elem)
    budget = profile.mem_usable_frac * gpu.hbm_bytes - w
    fit = jnp.floor(jnp.maximum(budget, 0.0) / (m_kv * seq_len))
    return MemoryPlan(w, m_kv, budget, jnp.minimum(fit, profile.max_num_seqs), budget > 0.0)
