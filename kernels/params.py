"""Parameter counts and weight bytes of a dense decoder-only transformer.

Reference: the article "LLM inference economics from first principles" (Tensor Economics, 2025),
section "Model parameters"; Llama 3.3 70B has exactly 70,553,706,496 parameters.
"""

from __future__ import annotations

from typing import NamedTuple

from kernels._types import Scalar
from kernels.specs import ModelSpec


class ParamCounts(NamedTuple):
    """Parameters per component of the whole model [1]."""

    embedding: Scalar  # V*D token embedding
    attention: Scalar  # L * (q, k, v, o projections and their biases)
    mlp: Scalar  # L * (gate, up, down)
    norms: Scalar  # L * 2 RMSNorm scales + the final norm
    lm_head: Scalar  # V*D unless tied to the embedding
    total: Scalar


def attention_params_per_layer(model: ModelSpec) -> Scalar:
    """Weights of one attention block [1].

    A_attn = D*(N*H) [q] + 2*D*(K*H) [k, v] + (N*H)*D [o] + bias*(N*H + 2*K*H)

    With grouped-query attention (K < N) the k and v projections are N/K times smaller than q.
    """
    q_dim = model.n_heads * model.d_head
    kv_dim = model.n_kv_heads * model.d_head
    weights = 2.0 * model.d_model * q_dim + 2.0 * model.d_model * kv_dim
    return weights + model.qkv_bias * (q_dim + 2.0 * kv_dim)


def mlp_params_per_layer(model: ModelSpec) -> Scalar:
    """Weights of one SwiGLU MLP: gate, up (D x F) and down (F x D) [1]."""
    return 3.0 * model.d_model * model.d_ffn


def param_counts(model: ModelSpec) -> ParamCounts:
    """All parameters, by component.

    P = V*D + L*(A_attn + A_mlp + 2D) + D + (1 - tied)*V*D

    Llama 3.3 70B: 2*128,256*8,192 + 80*855,654,400 + 8,192 = 70,553,706,496.
    """
    embedding = model.vocab * model.d_model
    attention = model.n_layers * attention_params_per_layer(model)
    mlp = model.n_layers * mlp_params_per_layer(model)
    norms = (2.0 * model.n_layers + 1.0) * model.d_model
    lm_head = (1.0 - model.tied_embeddings) * model.vocab * model.d_model
    total = embedding + attention + mlp + norms + lm_head
    return ParamCounts(embedding, attention, mlp, norms, lm_head, total)


def weight_bytes(model: ModelSpec, weight_bytes_per_elem: Scalar) -> Scalar:
    """Bytes of all weights of one replica [byte]: M_w = P * b_w (141.1 GB for 70B in bf16)."""
    return param_counts(model).total * weight_bytes_per_elem


def streamed_params(model: ModelSpec, reads_embedding: Scalar) -> Scalar:
    """Parameters read from memory by one forward step [1].

    P_read = P - (1 - e) * (1 - tied) * V*D

    Every weight matrix is read once per step. Of an untied embedding table only the rows of the
    step's tokens are gathered (negligible), so it is not streamed unless ``reads_embedding``
    e = 1 (the article's convention: all 141 GB of Llama 3.3 70B read per step). A tied table is
    read in full anyway, as the LM head.
    """
    counts = param_counts(model)
    skipped = (1.0 - reads_embedding) * (1.0 - model.tied_embeddings) * counts.embedding
    return counts.total - skipped
