"""Floating-point operations of one forward pass, per operation, with the article's counts.

A pass processes ``n`` new tokens of one sequence whose queries see ``pairs`` (query, key)
combinations in total. Prefill of T tokens: n = T and pairs = T^2 (the article: every query
attends to every key) or T(T+1)/2 (causal). Decode of one token after T cached: n = 1 and
pairs = T + 1. A matrix product of (m x k) by (k x n) costs 2mkn FLOPs.

Reference: the article "LLM inference economics from first principles", section "Prefill";
Llama 3.3 70B prefill of 2048 tokens: about 291.48 TFLOPs.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from kernels._types import Scalar
from kernels.specs import ModelSpec


class BlockFlops(NamedTuple):
    """FLOPs of one transformer block, per operation [FLOP]."""

    rmsnorm: Scalar  # two RMSNorms: 2 * (4nD + 2n)
    q: Scalar  # 2 n D (N H)
    k: Scalar  # 2 n D (K H)
    v: Scalar  # 2 n D (K H)
    rope: Scalar  # 6 n D (the article's count)
    qk: Scalar  # 2 * pairs * (N H)
    softmax: Scalar  # 5 * pairs * N
    av: Scalar  # 2 * pairs * (N H)
    o: Scalar  # 2 n (N H) D
    gate: Scalar  # 2 n D F
    up: Scalar  # 2 n D F
    silu: Scalar  # 5 n F
    product: Scalar  # n F, gate * up elementwise
    down: Scalar  # 2 n F D


def block_flops(model: ModelSpec, n: Scalar, pairs: Scalar) -> BlockFlops:
    """FLOPs of one block for ``n`` new tokens and ``pairs`` attention (query, key) pairs."""
    d, f = model.d_model, model.d_ffn
    q_dim = model.n_heads * model.d_head
    kv_dim = model.n_kv_heads * model.d_head
    return BlockFlops(
        rmsnorm=2.0 * (4.0 * n * d + 2.0 * n),
        q=2.0 * n * d * q_dim,
        k=2.0 * n * d * kv_dim,
        v=2.0 * n * d * kv_dim,
        rope=6.0 * n * d,
        qk=2.0 * pairs * q_dim,
        softmax=5.0 * pairs * model.n_heads,
        av=2.0 * pairs * q_dim,
        o=2.0 * n * q_dim * d,
        gate=2.0 * n * d * f,
        up=2.0 * n * d * f,
        silu=5.0 * n * f,
        product=n * f,
        down=2.0 * n * f * d,
    )


def attention_pairs(seq_len: Scalar, causal: Scalar) -> Scalar:
    """(query, key) pairs of a prefill of T tokens [1].

    pairs = T^2 (full, the article) if causal == 0, T(T+1)/2 if causal == 1.
    """
    full = seq_len * seq_len
    return full + causal * (0.5 * seq_len * (seq_len + 1.0) - full)


class PassFlops(NamedTuple):
    """FLOPs of one forward pass of one sequence, grouped by what runs them [FLOP]."""

    weights: Scalar  # matmuls against weights (q, k, v, o, gate, up, down) of all L blocks
    attention: Scalar  # QK^T, softmax and AV of all L blocks
    elementwise: Scalar  # RMSNorm, RoPE, SiLU, product of all L blocks
    lm_head: Scalar  # 2 D V per token whose logits are needed
    total: Scalar


def pass_flops(model: ModelSpec, n: Scalar, pairs: Scalar, logits: Scalar) -> PassFlops:
    """FLOPs of a pass over ``n`` new tokens, ``pairs`` attention pairs, ``logits`` LM-head rows.

    Prefill needs logits for its last token only (logits = 1); each decode step for one.
    """
    b = block_flops(model, n, pairs)
    layers = model.n_layers
    weights = layers * (b.q + b.k + b.v + b.o + b.gate + b.up + b.down)
    attention = layers * (b.qk + b.softmax + b.av)
    elementwise = layers * (b.rmsnorm + b.rope + b.silu + b.product)
    lm_head = 2.0 * model.d_model * model.vocab * logits
    return PassFlops(weights, attention, elementwise, lm_head,
                     weights + attention + elementwise + lm_head)


def prefill_flops(model: ModelSpec, seq_len: Scalar, causal: Scalar) -> PassFlops:
    """FLOPs of the prefill of one prompt of T tokens (the LM head on the last token only)."""
    return pass_flops(model, seq_len, attention_pairs(seq_len, causal), jnp.ones_like(seq_len))


def decode_flops(model: ModelSpec, context_len: Scalar) -> PassFlops:
    """FLOPs to generate one token after T cached tokens: attention over T + 1 keys.

    Llama 3.3 70B after a 2048-token prompt: about 0.14 TFLOPs (the article, "Decode").
    """
    one = jnp.ones_like(context_len)
    return pass_flops(model, one, context_len + 1.0, one)
