"""Floating-point operations of one forward pass, per operation, with the article's counts.

A pass processes ``n`` new tokens of one sequence whose queries see ``pairs`` (query, key)
combinations in each full-attention layer and ``pairs_window`` in each sliding-window layer.
Prefill of T tokens: n = T and pairs = T^2 (the article: every query attends to every key) or
T(T+1)/2 (causal). Decode of one token after T cached: n = 1 and pairs = T + 1. A matrix product
of (m x k) by (k x n) costs 2mkn FLOPs.

Reference: the article "LLM inference economics from first principles", section "Prefill";
Llama 3.3 70B prefill of 2048 tokens: about 291.48 TFLOPs. MoE: only the k routed experts a token
uses compute (plus shared experts and the router). MLA: DeepSeek-V3 report (arXiv:2412.19437),
section 2.1.1, with the decode-time weight absorption of its section 3.
"""

from __future__ import annotations

from typing import NamedTuple

from kernels import xp
from kernels._types import Scalar
from kernels.params import is_mla
from kernels.specs import ModelSpec


class OpFlops(NamedTuple):
    """FLOPs per operation, summed over all L blocks [FLOP] (GQA; MLA in brackets)."""

    rmsnorm: Scalar  # n_norms * (4nD + 2n) per block
    q: Scalar  # 2 n D (N H)  [MLA: 2 n D q_c + 2 n q_c N (d_nope + r)]
    k: Scalar  # 2 n D (K H)  [MLA: kv_a, 2 n D (c + r)]
    v: Scalar  # 2 n D (K H)  [MLA: kv_b, or its absorption, 2 n N c (d_nope + d_v)]
    rope: Scalar  # 6 n D (the article's count)
    qk: Scalar  # 2 * pairs * (N H)  [MLA: 2 pairs N (d_nope + r), absorbed 2 pairs N (c + r)]
    softmax: Scalar  # 5 * pairs * N
    av: Scalar  # 2 * pairs * (N H)  [MLA: 2 pairs N d_v, absorbed 2 pairs N c]
    o: Scalar  # 2 n (N H) D  [MLA: 2 n N d_v D]
    router: Scalar  # 2 n D E per MoE block
    gate: Scalar  # 2 n D F_tok, F_tok = F per dense block, k F_e + F_s per MoE block
    up: Scalar  # 2 n D F_tok
    silu: Scalar  # 5 n F_tok
    product: Scalar  # n F_tok, gate * up elementwise
    down: Scalar  # 2 n F_tok D


def ffn_width(model: ModelSpec) -> Scalar:
    """SwiGLU inner width one token passes through, summed over all blocks [1].

    F_tok = (L - L_moe) F + L_moe (k F_e + F_s)
    """
    moe = model.n_moe_layers
    return (model.n_layers - moe) * model.d_ffn + moe * (
        model.experts_per_token * model.d_ffn_expert + model.d_ffn_shared
    )


def op_flops(model: ModelSpec, n: Scalar, pairs: Scalar, pairs_window: Scalar, absorbed: Scalar) -> OpFlops:
    """FLOPs of all blocks for ``n`` new tokens and the attention pairs of each kind of layer.

    ``absorbed`` (MLA only): 1.0 attends in the latent space (decode: W_UK folded into the query,
    W_UV applied after attention), 0.0 decompresses K and V per head first (prefill). Both cost
    2 n N c (d_nope + d_v) outside attention; they differ per (query, key) pair.
    """
    d, layers, heads = model.d_model, model.n_layers, model.n_heads
    all_pairs = (layers - model.n_window_layers) * pairs + model.n_window_layers * pairs_window
    q_dim, kv_dim = heads * model.d_head, model.n_kv_heads * model.d_head
    mla = is_mla(model)
    c, qc, r = model.kv_lora_rank, model.q_lora_rank, model.qk_rope_head_dim
    nope, dv = model.qk_nope_head_dim, model.v_head_dim
    q_mla = xp.where(qc > 0.0, 2.0 * n * d * qc + 2.0 * n * qc * heads * (nope + r), 2.0 * n * d * heads * (nope + r))
    qk_width = xp.where(mla, heads * xp.where(absorbed > 0.0, c + r, nope + r), q_dim)
    av_width = xp.where(mla, heads * xp.where(absorbed > 0.0, c, dv), q_dim)
    f_tok = ffn_width(model)
    return OpFlops(
        rmsnorm=layers * model.n_norms * (4.0 * n * d + 2.0 * n),
        q=layers * xp.where(mla, q_mla, 2.0 * n * d * q_dim),
        k=layers * xp.where(mla, 2.0 * n * d * (c + r), 2.0 * n * d * kv_dim),
        v=layers * xp.where(mla, 2.0 * n * heads * c * (nope + dv), 2.0 * n * d * kv_dim),
        rope=layers * 6.0 * n * d,
        qk=2.0 * all_pairs * qk_width,
        softmax=5.0 * all_pairs * heads,
        av=2.0 * all_pairs * av_width,
        o=layers * 2.0 * n * xp.where(mla, heads * dv, q_dim) * d,
        router=model.n_moe_layers * 2.0 * n * d * model.n_experts,
        gate=2.0 * n * d * f_tok,
        up=2.0 * n * d * f_tok,
        silu=5.0 * n * f_tok,
        product=n * f_tok,
        down=2.0 * n * f_tok * d,
    )


def attention_pairs(seq_len: Scalar, causal: Scalar) -> Scalar:
    """(query, key) pairs of a prefill of T tokens in a full-attention layer [1].

    pairs = T^2 (full, the article) if causal == 0, T(T+1)/2 if causal == 1.
    """
    full = seq_len * seq_len
    return full + causal * (0.5 * seq_len * (seq_len + 1.0) - full)


def window_pairs(seq_len: Scalar, window: Scalar, causal: Scalar) -> Scalar:
    """(query, key) pairs of a prefill of T tokens in a sliding-window layer [1].

    A query attends to itself and at most W earlier tokens (the W tokens the layer keeps):
    causal: sum_{i=0}^{T-1} (min(i, W) + 1) = T + T(T-1)/2 if T <= W + 1,
                                              else T + W(W+1)/2 + (T - 1 - W) W;
    the article's full count: T min(T, W + 1).
    """
    full = seq_len * xp.minimum(seq_len, window + 1.0)
    return full + causal * (causal_window_pairs(seq_len, window) - full)


def causal_window_pairs(seq_len: Scalar, window: Scalar) -> Scalar:
    """The causal count of ``window_pairs``: T + T(T-1)/2 if T <= W + 1, else T + W(W+1)/2 + (T - 1 - W) W [1]."""
    inside = 0.5 * seq_len * (seq_len - 1.0)
    beyond = 0.5 * window * (window + 1.0) + (seq_len - 1.0 - window) * window
    return seq_len + xp.where(seq_len <= window + 1.0, inside, beyond)


class PassFlops(NamedTuple):
    """FLOPs of one forward pass of one sequence, grouped by what runs them [FLOP]."""

    weights: Scalar  # matmuls against weights (projections, router, active experts) of all L blocks
    attention: Scalar  # QK^T, softmax and AV of all L blocks
    elementwise: Scalar  # RMSNorm, RoPE, SiLU, product of all L blocks
    lm_head: Scalar  # 2 D V per token whose logits are needed
    total: Scalar


def pass_flops(
    model: ModelSpec, n: Scalar, pairs: Scalar, pairs_window: Scalar, logits: Scalar, absorbed: Scalar
) -> PassFlops:
    """FLOPs of a pass over ``n`` new tokens, its attention pairs, ``logits`` LM-head rows.

    Prefill needs logits for its last token only (logits = 1); each decode step for one.
    """
    b = op_flops(model, n, pairs, pairs_window, absorbed)
    weights = b.q + b.k + b.v + b.o + b.router + b.gate + b.up + b.down
    attention = b.qk + b.softmax + b.av
    elementwise = b.rmsnorm + b.rope + b.silu + b.product
    lm_head = 2.0 * model.d_model * model.vocab * logits
    return PassFlops(weights, attention, elementwise, lm_head, weights + attention + elementwise + lm_head)


def prefill_flops(model: ModelSpec, seq_len: Scalar, causal: Scalar) -> PassFlops:
    """FLOPs of the prefill of one prompt of T tokens (the LM head on the last token only)."""
    one = xp.ones_like(seq_len)
    return pass_flops(
        model, seq_len, attention_pairs(seq_len, causal), window_pairs(seq_len, model.window, causal), one, 0.0 * one
    )


def decode_flops(model: ModelSpec, context_len: Scalar) -> PassFlops:
    """FLOPs to generate one token after T cached tokens: attention over T + 1 keys in a full
    layer, min(T, W) + 1 in a sliding-window layer.

    Llama 3.3 70B after a 2048-token prompt: about 0.14 TFLOPs (the article, "Decode").
    """
    one = xp.ones_like(context_len)
    return pass_flops(model, one, context_len + 1.0, xp.minimum(context_len, model.window) + 1.0, one, one)
