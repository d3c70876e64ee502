"""Roofline time of prefill and of decode, with the decode sum over output tokens in closed form.

A phase takes overhead + roof(T_math, T_mem) + T_comm: math and memory traffic overlap, up to
the engine's ``roof_overlap`` (``roof``); the all-reduces of tensor parallelism do not.
Reference: the article "LLM inference economics from first principles", sections "Prefill" and
"Decode"; scaling-book, "Roofline".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from kernels import xp
from kernels._types import Leaf, Scalar
from kernels.comm import comm_time, expert_group, expert_group_tokens
from kernels.flops import pass_flops
from kernels.memory import kv_bytes_per_seq_per_gpu, kv_elems_per_token_per_layer, kv_heads_per_gpu
from kernels.params import (
    all_streamed_params,
    head_extra_bytes_per_param,
    idle_expert_params,
    idle_experts,
    param_counts,
)
from kernels.prefix import cached_tokens, new_tokens, prefill_new_flops
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload

BOTTLENECKS = ("compute", "memory", "communication", "overhead", "capacity")
"""Names of the bottleneck codes, in code order."""


def peak_flop_per_s(gpu: GPUSpec, compute_dtype: Scalar) -> Scalar:
    """Dense peak of the chosen compute precision [FLOP/s]; NaN where the chip lacks it."""
    return xp.select(
        [compute_dtype == 0.0, compute_dtype == 1.0, compute_dtype == 2.0, compute_dtype == 3.0],
        [gpu.flop_per_s_bf16, gpu.flop_per_s_fp8, gpu.flop_per_s_int8, gpu.flop_per_s_fp4],
        xp.nan,
    )


def matmul_efficiency(profile: EngineProfile, tokens: Scalar) -> Scalar:
    """Achieved fraction of peak for weight matmuls with ``tokens`` rows per step [1].

    e_mm(n) = e_max * n / (n + n_half): thin matrices (few tokens per step) cannot fill the
    tensor cores; n_half = 0 gives the constant e_max.
    """
    return profile.matmul_eff * tokens / (tokens + profile.matmul_tokens_half)


def kv_read_efficiency(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile) -> Scalar:
    """Achieved fraction of bandwidth when reading the KV cache in one decode step [1].

    e_kv = e_max * w / (w + w_half), w = B * ceil(K/P) / n_SM: attention kernels parallelise over
    sequences and KV heads, so a step with fewer work items than multiprocessors leaves bandwidth
    unused. w_half = 0 gives the constant e_max.
    """
    work = dep.batch * kv_heads_per_gpu(model, dep.tp) / gpu.n_sm
    return profile.kv_bw_eff * work / (work + profile.kv_parallel_half)


def attention_peak_flop_per_s(gpu: GPUSpec, dep: Deployment, profile: EngineProfile) -> Scalar:
    """Peak of the P GPUs for attention math [FLOP/s]: the 16-bit tensor peak where the engine
    computes attention in bf16/fp16 whatever format its weight matmuls use (``attn_bf16_peak``:
    an fp8 model's QK^T and AV in 16-bit), else the compute format's (``peak_flop_per_s``)."""
    own = peak_flop_per_s(gpu, dep.compute_dtype)
    return dep.tp * xp.where(profile.attn_bf16_peak > 0.0, gpu.flop_per_s_bf16, own)


def prompt_attention_efficiency(profile: EngineProfile, prompt_len: Scalar) -> Scalar:
    """Achieved fraction of the attention peak in the prefill of a prompt of L tokens [1].

    e_attn(L) = e_max L / (L + L_half): each query tile pays a fixed cost (loading Q, the softmax
    epilogue, writing O) amortised over the keys it visits, which grow with L. L_half = 0 gives
    the constant e_max. Measured (causal FlashAttention-2, bf16, Llama-70B heads, H100):
    e_max = 0.354, L_half = 307 tokens (scripts/device/README.md, "Causal prefill attention").
    """
    return profile.attn_eff * prompt_len / (prompt_len + profile.attn_len_half)


class PhaseTime(NamedTuple):
    """Time of a phase split into its roofline terms [s]."""

    compute_s: Scalar  # FLOPs / achieved FLOP/s
    memory_s: Scalar  # bytes / achieved bandwidth
    comm_s: Scalar  # all-reduces
    overhead_s: Scalar  # fixed per-pass cost
    total_s: Scalar  # overhead + max(compute, memory) + comm


def roof(compute_s: Leaf, memory_s: Leaf, overlap: Leaf) -> Leaf:
    """Time of a pass's math and memory traffic [s]: max(c, m) + (1 - overlap) min(c, m).

    A pass is a sequence of kernels (the weight matmuls, attention, norms and activations of every
    layer), each bound by its own resource and run one after another; within a kernel math and
    loads overlap. So the pass takes between max(c, m), where every kernel has the pass's mix (the
    ideal roofline, Williams, Waterman and Patterson 2009: overlap 1), and c + m, where each kernel
    is bound by one of them alone (overlap 0). Equal to overlap max(c, m) + (1 - overlap)(c + m),
    so sums of it over contexts stay closed form."""
    return xp.maximum(compute_s, memory_s) + (1.0 - overlap) * xp.minimum(compute_s, memory_s)


def phase_time(compute_s: Scalar, memory_s: Scalar, comm_s: Scalar, overhead_s: Scalar, overlap: Scalar) -> PhaseTime:
    return PhaseTime(compute_s, memory_s, comm_s, overhead_s, overhead_s + roof(compute_s, memory_s, overlap) + comm_s)


def weight_read_s(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile, tokens: Scalar | None = None
) -> Scalar:
    """Time for the GPUs of one rank to stream the weights a pass over ``tokens`` tokens uses,
    stage after stage [s].

    t_w = [ (P_all - L_moe E A_e) / P + L_moe A_e E_touched(n_g) / N ] b_w / (e_w W_hbm)

    Every GPU reads its 1/P of the non-expert weights; of the routed experts only those the
    tokens touch are read, spread over N GPUs (P, or P * dp under expert parallelism, where the
    group's n_g = dp * n tokens share the experts). The pp stages of a pipeline read their 1/pp
    of the layers one after the other for a micro-batch, so pp does not appear. An LM head kept
    in 16 bits (``head_16bit``) adds its bytes beyond b_w. ``tokens``
    defaults to the batch (a decode step); a dense model reads all weights whatever n.
    """
    tokens = dep.batch if tokens is None else tokens
    group = expert_group(dep)
    s_per_param = dep.weight_bytes_per_elem / (gpu.hbm_bytes_per_s * profile.weight_bw_eff)
    counts = param_counts(model)
    experts = counts.experts
    # The LM head (and a streamed embedding) kept in 16 bits under a narrower format: the bytes beyond b_w.
    head = counts.lm_head + profile.reads_embedding * (1.0 - model.tied_embeddings) * counts.embedding
    extra = head * head_extra_bytes_per_param(dep.weight_bytes_per_elem, profile.head_16bit) / dep.tp
    # Split so that only the idle experts' term depends on the tokens (a sweep's batch axis).
    return (
        (all_streamed_params(model, profile.reads_embedding) - experts) / dep.tp
        + experts / group
        - idle_expert_params(model) * idle_experts(model, expert_group_tokens(dep, tokens)) / group
    ) * s_per_param + extra / (gpu.hbm_bytes_per_s * profile.weight_bw_eff)


class PrefillTerms(NamedTuple):
    """A prefill pass of k prompts of I tokens as affine functions of k: x(k) = x_0 + x_per_prompt k."""

    compute_0_s: Scalar  # thin-matrix intercept of the weight matmuls (zero without the penalty) [s]
    compute_per_prompt_s: Scalar  # math time of one more prompt [s]
    memory_0_s: Scalar  # weight read, once per pass (MoE: the experts one prompt touches) [s]
    memory_per_prompt_s: Scalar  # writing one prompt's KV cache [s]
    comm_0_s: Scalar  # all-reduce latencies, once per pass [s]
    comm_per_prompt_s: Scalar  # all-reduce bandwidth time of one prompt's activations [s]
    overhead_s: Scalar  # fixed per-pass cost [s]
    overlap: Scalar  # the engine's roof_overlap (``roof``) [1]


PER_PROMPT_FIELDS = ("compute_per_prompt_s", "memory_per_prompt_s", "comm_per_prompt_s")
"""The fields of ``PrefillTerms`` that scale with the prompts of a pass."""


def with_per_prompt(
    terms: PrefillTerms, own: Sequence[PrefillTerms], combine: Callable[[list[Scalar]], Scalar]
) -> PrefillTerms:
    """``terms`` with each per-prompt cost the ``combine`` (a sum, a mean) of the prompts' ``own``."""
    return terms._replace(**{f: combine([getattr(t, f) for t in own]) for f in PER_PROMPT_FIELDS})


def prefill_terms(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile
) -> PrefillTerms:
    """Prefill of k prompts of I tokens, split over P GPUs.

    T_math(k) = [ F_d (k n + n_half) / (n e_mm) ] / (P * peak) + k F_attn / (e_attn(I) P * peak_attn)
    T_mem(k)  = weight read + k M_seq(I) / (e_kv W_hbm)        (the KV cache is written once)

    n = I - c: with a cached prefix of c tokens (``kernels.prefix``) only the n new tokens are
    computed and written, their attention over all I, and the prefix's M_seq(c) is read once
    instead of written: M_seq(I) = (M_seq(I) - M_seq(c)) + M_seq(c). Without one, n = I.

    F_d = F_w + F_head + F_elem per prompt. The weight matmuls of k prompts run at
    e_mm(k I) = e_mm k I / (k I + n_half), so their time k F_d / e_mm(k I) is exactly affine in k.
    For MoE the weight read counts the experts the I tokens of one prompt touch: exact for one
    prompt, a bound from below for k (almost every expert, once k I >> E / k). Attention runs at
    e_attn(I) (``prompt_attention_efficiency``) of its own peak (``attention_peak_flop_per_s``).
    """
    f = prefill_new_flops(model, wl, profile.causal_attention)
    n = new_tokens(wl)
    peak = dep.tp * peak_flop_per_s(gpu, dep.compute_dtype)
    dense = (f.weights + f.lm_head + f.elementwise) / profile.matmul_eff
    prefix = kv_bytes_per_seq_per_gpu(model, dep.tp, dep.kv_bytes_per_elem, cached_tokens(wl))
    # The new tokens' K and V written, the cached prefix's read once for their attention.
    kv_write = kv_bytes_per_seq_per_gpu(model, dep.tp, dep.kv_bytes_per_elem, wl.input_len) - prefix
    comm = comm_time(model, gpu, dep, profile, n)
    return PrefillTerms(
        dense * profile.matmul_tokens_half / (n * peak),
        dense / peak
        + f.attention
        / (prompt_attention_efficiency(profile, wl.input_len) * attention_peak_flop_per_s(gpu, dep, profile)),
        weight_read_s(model, gpu, dep, profile, n),
        (kv_write + prefix) / (gpu.hbm_bytes_per_s * profile.kv_bw_eff),
        comm.latency_s,
        comm.bandwidth_s,
        profile.prefill_overhead_s,
        profile.roof_overlap,
    )


def prefill_pass(terms: PrefillTerms, prompts: Scalar) -> PhaseTime:
    """One prefill pass over ``prompts`` prompts."""
    return phase_time(
        terms.compute_0_s + terms.compute_per_prompt_s * prompts,
        terms.memory_0_s + terms.memory_per_prompt_s * prompts,
        terms.comm_0_s + terms.comm_per_prompt_s * prompts,
        terms.overhead_s,
        terms.overlap,
    )


def prefill_time(model: ModelSpec, gpu: GPUSpec, dep: Deployment, wl: Workload, profile: EngineProfile) -> PhaseTime:
    """Prefill of all B prompts in one pass."""
    return prefill_pass(prefill_terms(model, gpu, dep, wl, profile), dep.batch)


def mean_first_token_s(terms: PrefillTerms, prompts: Scalar) -> Scalar:
    """Mean over k = 1..b of the time of a pass over the first k prompts: when, serving prompts
    first come first served, the k-th gets its first token (one pass costs at least a weight read).

    (1/b) sum_k [ overhead + comm_0 + k comm_1 + roof(c_0 + k c_1, m_0 + k m_1) ]
    """
    roofs = sum_roof_affine(
        terms.compute_0_s,
        terms.compute_per_prompt_s,
        terms.memory_0_s,
        terms.memory_per_prompt_s,
        xp.ones_like(prompts),
        prompts,
        terms.overlap,
    )
    return terms.overhead_s + terms.comm_0_s + terms.comm_per_prompt_s * 0.5 * (prompts + 1.0) + roofs / prompts


def static_first_token_s(terms: PrefillTerms, prompts: Scalar, first_alone: Scalar) -> Scalar:
    """Mean time to first token of ``prompts`` requests that arrive together, by the engine's
    admission of prompts into prefill passes (``EngineProfile.prefill_first_alone``).

    0: one pass over all b prompts, served first come first served (``mean_first_token_s``).
    1: an engine loop that admits, at the start of each pass, the requests waiting then, and
    emits their first tokens when the pass ends: the first request of a burst finds the engine
    idle and is prefilled alone; the other b - 1 arrive during that pass and are prefilled
    together in the next one, so

        TTFT_mean = [ P(1) + (b - 1) (P(1) + P(b - 1)) ] / b

    with P(k) the time of a pass over k prompts (``prefill_pass``).
    References: LMDeploy 0.1 TurboMind, ``LlamaV2::internalThreadEntry``: each iteration dequeues
    every waiting request, ``batch_.initialize`` + ``batch_.contextDecode`` (all of them, in
    sub-batches of at most ``max_context_token_num`` tokens), then a decode step emits the tokens.
    """
    one = prefill_pass(terms, xp.ones_like(prompts)).total_s
    rest = xp.maximum(prompts - 1.0, 1.0)
    others = xp.where(prompts > 1.0, prefill_pass(terms, rest).total_s, 0.0)
    split = (one + (prompts - 1.0) * (one + others)) / prompts
    return xp.where(first_alone > 0.0, split, mean_first_token_s(terms, prompts))


class DecodeStep(NamedTuple):
    """One decode step's terms as functions of the context T, affine in T and in T_w = min(T, W):
    x(T) = x_0 + x_per_token T + x_per_window_token min(T, W)."""

    compute_0_s: Scalar  # math time of the weight matmuls, LM head, elementwise ops, own key [s]
    compute_per_token_s: Scalar  # math time added per cached token, full-attention layers [s/token]
    memory_0_s: Scalar  # weight read time (MoE: the experts the batch touches) [s]
    memory_per_token_s: Scalar  # KV read time added per cached token, full-attention layers [s/token]
    comm_s: Scalar  # all-reduces [s]
    overhead_s: Scalar  # fixed per-step cost [s]
    compute_per_window_token_s: Scalar  # math time per cached token in the window layers [s/token]
    memory_per_window_token_s: Scalar  # KV read time per cached token in the window layers [s/token]
    window: Scalar  # W, where the window layers stop growing [token]
    # Speculative decoding (``kernels.speculative.serving_step``): the terms above are then the
    # target's verify pass, a round adds k draft steps and emits E tokens per sequence; a phase
    # is the round's time per emitted token. Plain decoding: draft terms 0, E = 1.
    draft_fixed_s: Scalar  # k (overhead + all-reduces) of the draft steps [s]
    draft_compute_0_s: Scalar  # k times a draft step's math at context 0 [s]
    draft_compute_per_token_s: Scalar  # k times its math per cached token [s/token]
    draft_memory_0_s: Scalar  # k times a draft step's weight read [s]
    draft_memory_per_token_s: Scalar  # k times its KV read per cached token [s/token]
    per_round: Scalar  # E, tokens each sequence gains per step (round) [token]
    overlap: Scalar  # the engine's roof_overlap (``roof``) [1]


def decode_step(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile) -> DecodeStep:
    """One decode step: B sequences each add one token after T cached tokens.

    T_math(T) = B * [ (F_w + F_head + F_elem) / e_mm(B) + (A_f (T + 1) + A_w (min(T, W) + 1)) / e_attn ] / (P * peak)
    T_mem(T)  = weight read(B) + B e_kv b_kv ((L - L_w) T + L_w min(T, W)) / (e_kv(B) W_hbm)

    A_f, A_w are the attention FLOPs of one (query, key) pair summed over the full and the window
    layers, so every slope is computed directly (never by differencing, which float32 cannot
    resolve). MLA attends in the latent space (weight absorption) during decode.
    """
    peak = dep.tp * peak_flop_per_s(gpu, dep.compute_dtype)
    # FLOPs per token and per pair depend on the model only: shaped like a model field, a sweep
    # computes them once per model, not once per design point.
    one, zero = xp.ones_like(model.d_model), xp.zeros_like(model.d_model)
    dense = pass_flops(model, one, zero, zero, one, one)
    per_pair = pass_flops(model, zero, one, zero, zero, one).attention
    per_window_pair = pass_flops(model, zero, zero, one, zero, one).attention
    dense_s = (
        dep.batch * (dense.weights + dense.lm_head + dense.elementwise) / (matmul_efficiency(profile, dep.batch) * peak)
    )
    attn_peak = profile.attn_eff * attention_peak_flop_per_s(gpu, dep, profile)
    per_token_s = dep.batch * per_pair / attn_peak
    per_window_token_s = dep.batch * per_window_pair / attn_peak
    kv_bw = gpu.hbm_bytes_per_s * kv_read_efficiency(model, gpu, dep, profile)
    kv_layer_token = dep.batch * kv_elems_per_token_per_layer(model, dep.tp) * dep.kv_bytes_per_elem
    full_layers = model.n_layers - model.n_window_layers
    comm = comm_time(model, gpu, dep, profile, dep.batch).total_s
    none = _constant(0.0, comm)
    return DecodeStep(
        dense_s + per_token_s + per_window_token_s,
        per_token_s,
        weight_read_s(model, gpu, dep, profile, dep.batch),
        full_layers * kv_layer_token / kv_bw,
        comm,
        profile.step_overhead_s,
        per_window_token_s,
        model.n_window_layers * kv_layer_token / kv_bw,
        model.window,
        # no draft: constants, which a compiler folds away
        none,
        none,
        none,
        none,
        none,
        _constant(1.0, comm),
        profile.roof_overlap,
    )


def _constant(value: float, like: Scalar) -> Any:
    """A host constant in the floating type of ``like`` (a float32 sweep stays float32)."""
    return np.full((), value, dtype=like.dtype)


def draft_s(step: DecodeStep, context_len: Scalar) -> Scalar:
    """The k draft steps of a round after ``context_len`` cached tokens, each its own roofline
    (the draft's kernels run apart from the verify pass) [s]; 0 without speculation."""
    return step.draft_fixed_s + roof(
        step.draft_compute_0_s + step.draft_compute_per_token_s * context_len,
        step.draft_memory_0_s + step.draft_memory_per_token_s * context_len,
        step.overlap,
    )


def _step_phase(step: DecodeStep, context_len: Scalar, window_context: Scalar) -> PhaseTime:
    """A step (a round under speculation, per emitted token: every term / E, the draft steps
    with the fixed cost) after ``context_len`` cached tokens."""
    e = step.per_round
    return phase_time(
        (step.compute_0_s + step.compute_per_token_s * context_len + step.compute_per_window_token_s * window_context)
        / e,
        (step.memory_0_s + step.memory_per_token_s * context_len + step.memory_per_window_token_s * window_context) / e,
        step.comm_s / e,
        (step.overhead_s + draft_s(step, context_len)) / e,
        step.overlap,
    )


def decode_step_time(step: DecodeStep, context_len: Scalar) -> PhaseTime:
    """The terms of one decode step after ``context_len`` cached tokens (attention over T + 1)."""
    return _step_phase(step, context_len, xp.minimum(context_len, step.window))


def _below_window(step: DecodeStep, first: Scalar, count: Scalar) -> Scalar:
    """How many of the contexts first, ..., first + count - 1 lie below the window W [1]."""
    return xp.clip(step.window - first, 0.0, count)


def window_context_sum(step: DecodeStep, first: Scalar, count: Scalar) -> Scalar:
    """sum of min(t, W) over t = first, ..., first + count - 1, in closed form [token]."""
    s = _below_window(step, first, count)
    return s * first + 0.5 * s * (s - 1.0) + (count - s) * step.window


def decode_step_mean(step: DecodeStep, first: Scalar, count: Scalar) -> PhaseTime:
    """One step of sequences spread evenly over the contexts first, ..., first + count - 1: the
    step's time is affine in the summed contexts and summed window contexts, so their means are
    exact."""
    return _step_phase(step, first + 0.5 * (count - 1.0), window_context_sum(step, first, count) / count)


def sum_max_affine(a1: Scalar, b1: Scalar, a2: Scalar, b2: Scalar, first: Scalar, count: Scalar) -> Scalar:
    """Sum of max(a1 + b1 t, a2 + b2 t) over the integers t = first, ..., first + count - 1.

    max(f, g) = g + max(f - g, 0), and d = f - g = a + b t is affine, positive on one side of its
    root t* = -a/b; the positive part is an arithmetic series over the integers on that side.
    ``count`` = 0 gives 0.
    """
    last = first + count - 1.0
    sum_g = count * (a2 + b2 * 0.5 * (first + last))
    a, b = a1 - a2, b1 - b2
    safe_b = xp.where(b == 0.0, 1.0, b)
    root = -a / safe_b
    lo = xp.where(b > 0.0, xp.maximum(first, xp.ceil(root)), first)
    hi = xp.where(b < 0.0, xp.minimum(last, xp.floor(root)), last)
    n_pos = xp.where(b == 0.0, xp.where(a > 0.0, count, 0.0), xp.maximum(hi - lo + 1.0, 0.0))
    lo = xp.where(b == 0.0, first, lo)
    sum_d = 0.5 * n_pos * ((a + b * lo) + (a + b * (lo + n_pos - 1.0)))
    return sum_g + sum_d


def sum_roof_affine(
    a1: Scalar, b1: Scalar, a2: Scalar, b2: Scalar, first: Scalar, count: Scalar, overlap: Scalar
) -> Scalar:
    """Sum of roof(a1 + b1 t, a2 + b2 t, overlap) over the integers t = first, ..., first + count - 1:
    overlap times the sum of the maxima (``sum_max_affine``) plus 1 - overlap times the sums of both."""
    middle = first + 0.5 * (count - 1.0)
    both = count * (a1 + a2 + (b1 + b2) * middle)
    return overlap * sum_max_affine(a1, b1, a2, b2, first, count) + (1.0 - overlap) * both


def sum_positive_affine(a: Scalar, b: Scalar, first: Scalar, count: Scalar) -> Scalar:
    """Sum of max(a + b t, 0) over the integers t = first, ..., first + count - 1 (0 if count = 0).

    d = a + b t is positive on one side of its root t* = -a/b: from ceil(t*) on if b > 0, up to
    floor(t*) if b < 0; the positive terms form an arithmetic series.
    """
    last = first + count - 1.0
    root = -a / xp.where(b == 0.0, 1.0, b)
    lo = xp.where(b > 0.0, xp.clip(xp.ceil(root), first, last + 1.0), first)
    hi = xp.where(b < 0.0, xp.clip(xp.floor(root), first - 1.0, last), last)
    n_pos = xp.where(b == 0.0, xp.where(a > 0.0, count, 0.0), hi - lo + 1.0)
    return 0.5 * n_pos * (2.0 * a + b * (lo + hi))


def decode_time(step: DecodeStep, first_context: Scalar, steps: Scalar) -> PhaseTime:
    """Summed time of ``steps`` decode steps at contexts first_context, first_context + 1, ...

    Never a loop over tokens: math and memory time are affine in the context T below the window
    W and affine again (window layers constant) from W on, so each term's sum is an arithmetic
    series, and the sum of their maximum, max(c, m) = m + max(c - m, 0), adds the positive part
    of c - m over the two pieces of the range split at W (``sum_positive_affine``), and the sum
    of ``roof`` weighs it with the sums of both (``_summed_roof``). A model
    without window layers has one piece (W = 0 in the split gives the same numbers, at twice the
    cost): a branch on the architecture, taken per model where the engine maps over models.

    Under speculation (``per_round`` E > 1) the steps are a round's share per emitted token
    (``_step_phase``): every sum / E, the draft steps' own rooflines summed the same way.
    """
    phase = xp.cond(step.window > 0.0, _decode_time_split, _decode_time_full, step, first_context, steps)
    drafts = steps * step.draft_fixed_s + sum_roof_affine(
        step.draft_compute_0_s,
        step.draft_compute_per_token_s,
        step.draft_memory_0_s,
        step.draft_memory_per_token_s,
        first_context,
        steps,
        step.overlap,
    )
    e = step.per_round
    return PhaseTime(
        phase.compute_s / e,
        phase.memory_s / e,
        phase.comm_s / e,
        (phase.overhead_s + drafts) / e,
        (phase.total_s + drafts) / e,
    )


def _decode_time_full(step: DecodeStep, first_context: Scalar, steps: Scalar) -> PhaseTime:
    """``decode_time`` of a model without sliding-window layers."""
    mean_context = first_context + 0.5 * (steps - 1.0)
    math = steps * (step.compute_0_s + step.compute_per_token_s * mean_context)
    mem = steps * (step.memory_0_s + step.memory_per_token_s * mean_context)
    excess = sum_positive_affine(
        step.compute_0_s - step.memory_0_s, step.compute_per_token_s - step.memory_per_token_s, first_context, steps
    )
    comm = steps * step.comm_s
    overhead = steps * step.overhead_s
    return PhaseTime(math, mem, comm, overhead, overhead + _summed_roof(math, mem, excess, step.overlap) + comm)


def _decode_time_split(step: DecodeStep, first_context: Scalar, steps: Scalar) -> PhaseTime:
    """``decode_time`` with the context range split at the window W."""
    s = _below_window(step, first_context, steps)
    mean_context = first_context + 0.5 * (steps - 1.0)
    window_sum = window_context_sum(step, first_context, steps)
    math = (
        steps * (step.compute_0_s + step.compute_per_token_s * mean_context)
        + step.compute_per_window_token_s * window_sum
    )
    mem = (
        steps * (step.memory_0_s + step.memory_per_token_s * mean_context) + step.memory_per_window_token_s * window_sum
    )
    a = step.compute_0_s - step.memory_0_s
    b = step.compute_per_token_s - step.memory_per_token_s
    bw = step.compute_per_window_token_s - step.memory_per_window_token_s
    below = sum_positive_affine(a, b + bw, first_context, s)
    above = sum_positive_affine(a + bw * step.window, b, first_context + s, steps - s)
    comm = steps * step.comm_s
    overhead = steps * step.overhead_s
    return PhaseTime(math, mem, comm, overhead, overhead + _summed_roof(math, mem, below + above, step.overlap) + comm)


def _summed_roof(math: Scalar, mem: Scalar, excess: Scalar, overlap: Scalar) -> Scalar:
    """The summed ``roof`` of steps whose summed math, memory and positive part of math - memory
    are given: overlap (mem + excess) + (1 - overlap)(math + mem)."""
    return mem + overlap * excess + (1.0 - overlap) * math


def bottleneck(phase: PhaseTime) -> Scalar:
    """Code of the largest term of a phase: 0 compute, 1 memory, 2 communication, 3 overhead."""
    terms = xp.stack([phase.compute_s, phase.memory_s, phase.comm_s, phase.overhead_s])
    return xp.argmax(terms).astype(phase.total_s.dtype)
