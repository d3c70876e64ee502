"""Parameter counts and weight bytes of a decoder-only transformer, dense or mixture of experts.

Reference: the article "LLM inference economics from first principles" (Tensor Economics, 2025),
section "Model parameters"; Llama 3.3 70B has exactly 70,553,706,496 parameters. MoE: Mixtral of
Experts (Jiang et al., 2024, arXiv:2401.04088) "46.7B total, 12.9B active"; MLA: DeepSeek-V3
technical report (arXiv:2412.19437), section 2.1.1.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from kernels import xp
from kernels._types import BoolScalar, Scalar
from kernels.specs import ModelSpec


class ParamCounts(NamedTuple):
    """Parameters per component of the whole model [1]."""

    embedding: Scalar  # V*D token embedding
    attention: Scalar  # L * (q, k, v, o projections and their biases; MLA's compressions)
    mlp: Scalar  # (L - L_moe) dense SwiGLU MLPs + L_moe shared experts
    experts: Scalar  # L_moe * E routed experts (all of them)
    router: Scalar  # L_moe routers (D x E, plus a bias of E)
    norms: Scalar  # L * n_norms RMSNorm scales + q/k norms + the final norm
    lm_head: Scalar  # V*D unless tied to the embedding
    total: Scalar
    active: Scalar  # total without the E - k routed experts a token does not use, per MoE layer


def is_moe(model: ModelSpec) -> BoolScalar:
    """Whether some blocks route tokens to experts (a bool, rank 0)."""
    return xp.greater(model.n_experts, 0.0)


def is_mla(model: ModelSpec) -> BoolScalar:
    """Whether attention is multi-head latent attention (a bool, rank 0)."""
    return xp.greater(model.kv_lora_rank, 0.0)


def attention_params_per_layer(model: ModelSpec) -> Scalar:
    """Weights of one attention block [1].

    GQA: A_attn = D*(N*H) [q] + 2*D*(K*H) [k, v] + (N*H)*D [o] + bias*(N*H + 2*K*H)
    MLA: A_attn = q + D*(c + r) + c + c*N*(d_nope + d_v) [kv_a, its norm, kv_b] + N*d_v*D [o],
         q = D*q_c + q_c + q_c*N*(d_nope + r) with a query compression q_c, else D*N*(d_nope + r)
         (DeepSeek-V3 report, eqs. 1-11).

    With grouped-query attention (K < N) the k and v projections are N/K times smaller than q.
    """
    d, n = model.d_model, model.n_heads
    q_dim = n * model.d_head
    kv_dim = model.n_kv_heads * model.d_head
    gqa = 2.0 * d * q_dim + 2.0 * d * kv_dim + model.qkv_bias * (q_dim + 2.0 * kv_dim)
    c, qc, r = model.kv_lora_rank, model.q_lora_rank, model.qk_rope_head_dim
    d_qk = model.qk_nope_head_dim + r
    q = xp.where(qc > 0.0, d * qc + qc + qc * n * d_qk, d * n * d_qk)
    kv = d * (c + r) + c + c * n * (model.qk_nope_head_dim + model.v_head_dim)
    o = n * model.v_head_dim * d
    return xp.where(is_mla(model), q + kv + o, gqa)


def mlp_params_per_layer(model: ModelSpec) -> Scalar:
    """Weights of one dense SwiGLU MLP: gate, up (D x F) and down (F x D) [1]."""
    return 3.0 * model.d_model * model.d_ffn


def expert_params(model: ModelSpec) -> Scalar:
    """Weights of one routed expert, a SwiGLU MLP of width F_e (+ gpt-oss's biases) [1].

    A_e = 3 D F_e + bias (2 F_e + D)
    """
    return 3.0 * model.d_model * model.d_ffn_expert + model.expert_bias * (2.0 * model.d_ffn_expert + model.d_model)


def param_counts(model: ModelSpec) -> ParamCounts:
    """All parameters, by component, and the active ones.

    P = V*D + L*(A_attn + n_norms D + 2 qk_norm H) + (L - L_moe) 3 D F
        + L_moe (E A_e + D E + router_bias E + 3 D F_s) + D + (1 - tied)*V*D
    P_active = P - L_moe (E - k) A_e

    Llama 3.3 70B: 2*128,256*8,192 + 80*855,654,400 + 8,192 = 70,553,706,496.

    Both counts include the embedding and the LM head. Model cards differ in what they count:
    Mixtral (12.9B active), Qwen3 (22B) and DeepSeek-V3 (37B) count both; gpt-oss (5.1B active,
    model card table 1) counts the unembedding but not the embedding table (a row gather).
    """
    embedding = model.vocab * model.d_model
    attention = model.n_layers * attention_params_per_layer(model)
    moe = model.n_moe_layers
    mlp = (model.n_layers - moe) * mlp_params_per_layer(model) + moe * 3.0 * model.d_model * model.d_ffn_shared
    experts = moe * model.n_experts * expert_params(model)
    router = moe * model.n_experts * (model.d_model + model.router_bias)
    norms = (model.n_norms * model.n_layers + 1.0) * model.d_model + model.n_layers * model.qk_norm * 2.0 * model.d_head
    lm_head = (1.0 - model.tied_embeddings) * model.vocab * model.d_model
    total = embedding + attention + mlp + experts + router + norms + lm_head
    active = total - moe * (model.n_experts - model.experts_per_token) * expert_params(model)
    return ParamCounts(embedding, attention, mlp, experts, router, norms, lm_head, total, active)


def weight_bytes(model: ModelSpec, weight_bytes_per_elem: Scalar) -> Scalar:
    """Bytes of all weights of one replica [byte]: M_w = P * b_w (141.1 GB for 70B in bf16)."""
    return param_counts(model).total * weight_bytes_per_elem


def weight_bytes_per_gpu(
    model: ModelSpec, weight_bytes_per_elem: Scalar, tp: Scalar, pp: Scalar, expert_gpus: Scalar
) -> Scalar:
    """Bytes of weights each GPU holds [byte]: the stage's share of the layers (1/pp), of it 1/P
    for everything but the routed experts, which are spread over ``expert_gpus`` GPUs (P, or
    P * dp under expert parallelism).

    M_w,gpu = b_w ( (P_total - P_experts) / P + P_experts / N ) / pp
    """
    counts = param_counts(model)
    return weight_bytes_per_elem * ((counts.total - counts.experts) / tp + counts.experts / expert_gpus) / pp


def head_extra_bytes_per_param(weight_bytes_per_elem: Scalar, head_16bit: Scalar) -> Scalar:
    """Bytes each embedding and LM-head parameter holds beyond the weight format, where the
    engine keeps them in 16 bits (``EngineProfile.head_16bit``): 2 - b_w for narrower formats,
    else 0 [byte]."""
    return head_16bit * xp.maximum(2.0 - weight_bytes_per_elem, 0.0)


def draft_model(model: ModelSpec) -> ModelSpec:
    """The multi-token-prediction (MTP) head of ``model``: one block (MoE if the model has MoE
    layers), full attention, the same widths, vocabulary and embeddings (DeepSeek-V3 report,
    arXiv:2412.19437, section 2.2: the MTP module shares the embedding and the output head)."""
    one = xp.ones_like(model.n_layers)
    return dataclasses.replace(
        model,
        n_layers=one,
        n_moe_layers=xp.where(model.n_moe_layers > 0.0, one, 0.0 * one),
        n_window_layers=0.0 * one,
    )


def head_weight_bytes_per_gpu(
    model: ModelSpec, weight_bytes_per_elem: Scalar, tp: Scalar, expert_gpus: Scalar
) -> Scalar:
    """Bytes each GPU of the stage holding the MTP head adds for its own weights [byte].

    M_head = b_w ( (P_head - P_experts) / P + P_experts / N ),
    P_head = P(draft) - V D (embedding) - V D (LM head, both shared with the target) + 2 D^2

    2 D^2: the projection M of the concatenated normalised hidden state and embedding, D x 2D
    (DeepSeek-V3 report, eq. 21).
    """
    counts = param_counts(draft_model(model))
    own = counts.total - counts.embedding - counts.lm_head + 2.0 * model.d_model * model.d_model
    return weight_bytes_per_elem * ((own - counts.experts) / tp + counts.experts / expert_gpus)


def idle_experts(model: ModelSpec, tokens: Scalar) -> Scalar:
    """Expected routed experts of one MoE layer that none of ``tokens`` tokens uses [1].

    E_idle(n) = E (1 - k/E)^n

    Assumes uniform, independent routing: each token misses a given expert with probability
    1 - k/E. Real routers are imbalanced, so more experts stay idle (this is a bound from below).
    Zero for a dense model (E = 0). Needs n >= 1.
    """

    def moe() -> Scalar:
        safe_e = xp.where(model.n_experts > 0.0, model.n_experts, 1.0)
        # exp(n log1p(-k/E)), not a power: the logarithm depends on the model only, so a sweep takes
        # it once per model and only the exponential runs per design point (k = E gives exp(-inf) = 0).
        return model.n_experts * xp.exp(tokens * xp.log1p(-model.experts_per_token / safe_e))

    # A branch on the architecture: where the model is not batched (the engine maps over models)
    # a dense model skips the exponential; under vmap over models both run and one is selected.
    return xp.cond(is_moe(model), moe, lambda: xp.zeros_like(tokens))


def experts_touched(model: ModelSpec, tokens: Scalar) -> Scalar:
    """Expected distinct routed experts of one MoE layer that ``tokens`` tokens use [1]:
    E_touched(n) = E (1 - (1 - k/E)^n) (uniform routing, see ``idle_experts``)."""
    return model.n_experts - idle_experts(model, tokens)


def streamed_params(model: ModelSpec, reads_embedding: Scalar, tokens: Scalar) -> Scalar:
    """Parameters read from memory by one forward step over ``tokens`` tokens [1].

    P_read = P_all - L_moe E_idle(n) A_e,   P_all = P - (1 - e) * (1 - tied) * V*D

    Every weight matrix is read once per step, but of the routed experts only those the step's
    tokens use (``experts_touched``): for MoE, decode's weight read grows with the batch. Of an
    untied embedding table only the rows of the step's tokens are gathered (negligible), so it is
    not streamed unless ``reads_embedding`` e = 1 (the article's convention: all 141 GB of Llama
    3.3 70B read per step). A tied table is read in full anyway, as the LM head.
    """
    return all_streamed_params(model, reads_embedding) - idle_expert_params(model) * idle_experts(model, tokens)


def all_streamed_params(model: ModelSpec, reads_embedding: Scalar) -> Scalar:
    """P_all: the parameters a step reads when it touches every expert [1]."""
    counts = param_counts(model)
    return counts.total - (1.0 - reads_embedding) * (1.0 - model.tied_embeddings) * counts.embedding


def idle_expert_params(model: ModelSpec) -> Scalar:
    """Parameters one idle expert per MoE layer leaves unread: L_moe A_e [1]."""
    return model.n_moe_layers * expert_params(model)
