"""Memory: KV-cache size, what fits on the GPUs, and the largest batch that fits.

Reference: the article "LLM inference economics from first principles", section "KV cache";
Llama 3.3 70B in bf16 holds 671,088,640 bytes of KV cache per 2048-token sequence. MLA caches
one latent of c + r values per token and layer (DeepSeek-V3 report, arXiv:2412.19437, eq. 1-5):
61 x (512 + 64) x 2 = 70,272 bytes per token in bf16.
"""

from __future__ import annotations

from typing import NamedTuple

from kernels import xp
from kernels._types import BoolScalar, Scalar
from kernels.comm import expert_group
from kernels.params import (
    head_extra_bytes_per_param,
    head_weight_bytes_per_gpu,
    is_mla,
    param_counts,
    weight_bytes_per_gpu,
)
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec


def kv_heads_per_gpu(model: ModelSpec, tp: Scalar) -> Scalar:
    """KV heads each of P GPUs holds: ceil(K / P); heads are replicated when P > K [1]."""
    return xp.ceil(model.n_kv_heads / tp)


def kv_elems_per_token_per_layer(model: ModelSpec, tp: Scalar) -> Scalar:
    """Cached values one token adds to one layer on each GPU [1].

    e_kv = 2 ceil(K / P) H (one K and one V per KV head), or c + r for MLA: the latent and the
    RoPE key are shared by all heads, so tensor parallelism replicates them on every GPU.
    """
    return xp.where(
        is_mla(model), model.kv_lora_rank + model.qk_rope_head_dim, 2.0 * kv_heads_per_gpu(model, tp) * model.d_head
    )


def cached_layer_tokens(model: ModelSpec, seq_len: Scalar) -> Scalar:
    """Tokens held in the KV cache of a sequence of T tokens, summed over layers [token].

    (L - L_w) T + L_w min(T, W): a sliding-window layer keeps only its last W tokens.
    """
    full = model.n_layers - model.n_window_layers
    return full * seq_len + model.n_window_layers * xp.minimum(seq_len, model.window)


def kv_cache_bytes(model: ModelSpec, seq_len: Scalar, batch: Scalar, kv_bytes_per_elem: Scalar) -> Scalar:
    """Bytes of K and V cache held for ``batch`` sequences of ``seq_len`` tokens, all GPUs [byte].

    M_kv = e_kv(1) * b_kv * ((L - L_w) T + L_w min(T, W)) * B;  dense: 2 * L * K * H * T * B * b_kv
    """
    return (
        kv_elems_per_token_per_layer(model, xp.ones_like(seq_len))
        * kv_bytes_per_elem
        * cached_layer_tokens(model, seq_len)
        * batch
    )


def kv_bytes_per_token_per_gpu(model: ModelSpec, tp: Scalar, kv_bytes_per_elem: Scalar) -> Scalar:
    """KV-cache bytes one token adds on each GPU while the context is shorter than any window
    [byte/token].

    m_kv = L * e_kv(P) * b_kv;  dense: 2 * L * ceil(K / P) * H * b_kv
    """
    return model.n_layers * kv_elems_per_token_per_layer(model, tp) * kv_bytes_per_elem


def kv_bytes_per_seq_per_gpu(model: ModelSpec, tp: Scalar, kv_bytes_per_elem: Scalar, seq_len: Scalar) -> Scalar:
    """KV-cache bytes of one sequence of T tokens on each GPU [byte]: e_kv(P) b_kv cached_layer_tokens."""
    return kv_elems_per_token_per_layer(model, tp) * kv_bytes_per_elem * cached_layer_tokens(model, seq_len)


class MemoryPlan(NamedTuple):
    """Where one GPU's memory goes, for sequences of T = input_len + output_len tokens."""

    weight_bytes_per_gpu: Scalar  # M_w,gpu: M_w / P without pipeline or expert parallelism [byte]
    kv_bytes_per_token_per_gpu: Scalar  # m_kv / pp, inside every window [byte/token]
    kv_bytes_per_seq_per_gpu: Scalar  # one sequence of T tokens, its stage's layers, less the shared prefix [byte]
    kv_budget_bytes_per_gpu: Scalar  # f_kv (u * M_gpu - M_w,gpu - M_r), may be negative [byte]
    max_batch: Scalar  # sequences of T tokens per micro-batch that fit, capped by the engine's limit [sequence]
    weights_fit: BoolScalar  # the weights alone fit in usable memory
    kv_shared_bytes_per_gpu: Scalar  # the cached prefix, held once for all sequences [byte]


class Capacity(NamedTuple):
    """Sequences per micro-batch that fit, by how the sequences' lengths line up [sequence]."""

    lockstep: Scalar  # all at their longest together, I + O - 1 tokens (a static batch)
    staggered: Scalar  # spread evenly over their lives (steady states): paged, at the mean context
    admitted: Scalar  # prompts a paged engine admits at once, each holding I tokens (else = lockstep)


def memory_plan(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    profile: EngineProfile,
    seq_len: Scalar,
    shared_len: Scalar | None = None,
) -> MemoryPlan:
    """Split usable memory between weights and KV cache and find the largest batch.

    B_max = min( floor((f_kv (u * M_gpu - M_w,gpu - M_r) - M_seq(c)) / (pp * (M_seq(T) - M_seq(c)))), B_engine )
    per micro-batch

    u is the usable fraction of device memory (``mem_usable_frac``: vLLM's
    gpu_memory_utilization), f_kv the share of what the weights leave that the engine gives the
    KV cache (``kv_free_frac``: TensorRT-LLM's kv_cache_free_gpu_memory_fraction), M_r what the
    engine holds beside weights and KV cache (``mem_reserved_bytes``), B_engine the engine's limit
    on sequences in flight (``max_num_seqs``), M_seq(T) one sequence's KV cache per GPU (its
    stage's L/pp layers), M_w,gpu the weights per GPU (``weight_bytes_per_gpu``; with the
    profile's ``head_16bit``, the embedding and LM head in 16 bits, ``head_extra_bytes_per_param``). The
    article: on 2 x H100 the 141 GB of Llama 3.3 70B fill 88% of memory and leave 19 GB for KV cache.

    ``shared_len`` c: the cached prefix (``kernels.prefix``), one copy per GPU shared by all
    sequences, each of which then owns T - c tokens (default 0). With speculative decoding
    (``draft_tokens`` > 0) the MTP head's weights (``head_weight_bytes_per_gpu``) and its one
    layer of KV cache per sequence count on top, taken on every stage (the one holding the head
    binds).
    """
    head = xp.where(dep.draft_tokens > 0.0, 1.0, 0.0)
    group = expert_group(dep)
    w = weight_bytes_per_gpu(model, dep.weight_bytes_per_elem, dep.tp, dep.pp, group)
    w = w + head * head_weight_bytes_per_gpu(model, dep.weight_bytes_per_elem, dep.tp, group)
    counts = param_counts(model)
    extra = head_extra_bytes_per_param(dep.weight_bytes_per_elem, profile.head_16bit)
    w = w + extra * (counts.embedding + counts.lm_head) / (dep.tp * dep.pp)
    head_kv = head * kv_elems_per_token_per_layer(model, dep.tp) * dep.kv_bytes_per_elem
    m_kv = kv_bytes_per_token_per_gpu(model, dep.tp, dep.kv_bytes_per_elem) / dep.pp + head_kv

    def m_seq(tokens: Scalar) -> Scalar:
        return kv_bytes_per_seq_per_gpu(model, dep.tp, dep.kv_bytes_per_elem, tokens) / dep.pp + head_kv * tokens

    shared = m_seq(0.0 * seq_len if shared_len is None else shared_len)
    own = m_seq(seq_len) - shared
    budget = profile.kv_free_frac * (profile.mem_usable_frac * gpu.hbm_bytes - w - profile.mem_reserved_bytes)
    # Each stage holds its layers' cache of all pp micro-batches: pp * B sequences, and the prefix once.
    fit = xp.floor(xp.maximum(budget - shared, 0.0) / (dep.pp * own))
    return MemoryPlan(w, m_kv, own, budget, xp.minimum(fit, profile.max_num_seqs), budget > 0.0, shared)
