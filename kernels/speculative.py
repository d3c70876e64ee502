"""Speculative decoding with a multi-token-prediction head: where it pays and where it stops.

Each round, for every sequence of a batch of B, a draft proposes k tokens and the target checks
them in one pass:

- the draft is a multi-token-prediction (MTP) head built from the target's own architecture:
  one transformer block (a MoE block if the target has MoE layers, full attention) and the LM
  head, embeddings shared (DeepSeek-V3's MTP module); it runs k decode steps of its own at batch
  B, T_d(B) each (``draft_model``);
- the target verifies k + 1 tokens per sequence in one pass: the math and the all-reduces of
  B (k + 1) tokens, its weights read once (for MoE, the experts B (k + 1) tokens touch) and each
  sequence's KV cache read once (its k + 1 queries attend the same cache): T_v(B);
- each draft token is accepted with probability a, independently, until the first rejection;
  the round emits E = (1 - a^(k+1)) / (1 - a) tokens per sequence (the accepted ones and the
  target's own next token; Leviathan, Kalman & Matias 2023, eq. 1).

Time per output token: (k T_d + T_v) / E, against T(B) for plain decoding. While decoding is
memory-bound, T_v ~ T (the weights are read once either way) and the speed-up is ~E / (1 + k
T_d / T); as the batch grows the verify pass becomes compute-bound, T_v -> (k + 1) T, and
speculation stops paying (speed-up < 1).

In a sweep, k and a are the axes ``draft_tokens`` and ``draft_acceptance`` (``Deployment``), and
``serving_step`` is the decode step of every scenario: a round (``round_step``) whose phases are
its time per emitted token, (k T_d + T_v) / E, where k > 0. The head's weights and its KV layer
count in ``kernels.memory.memory_plan``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from kernels import xp
from kernels._types import Scalar
from kernels.params import draft_model
from kernels.roofline import DecodeStep, decode_step, decode_step_time
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec


class Speculation(NamedTuple):
    """One decode round with speculation, at one context."""

    tokens_per_round: Scalar  # E [token]
    draft_s: Scalar  # k draft steps [s]
    verify_s: Scalar  # the target's pass over k + 1 tokens per sequence [s]
    tpot_s: Scalar  # (k T_d + T_v) / E [s]
    plain_tpot_s: Scalar  # one target decode step [s]
    speedup: Scalar  # plain_tpot_s / tpot_s [1]


def tokens_per_round(draft_tokens: Scalar, acceptance: Scalar) -> Scalar:
    """E = 1 + a + ... + a^k = (1 - a^(k+1)) / (1 - a) tokens per sequence per round (k + 1 at
    a = 1); exactly 1 at k = 0 (no speculation, whatever a)."""
    a = xp.minimum(acceptance, 1.0 - 1e-12)
    return xp.where(draft_tokens > 0.0, (1.0 - a ** (draft_tokens + 1.0)) / (1.0 - a), 1.0)


def verify_step(
    model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile, draft_tokens: Scalar
) -> DecodeStep:
    """The target's pass over k + 1 tokens of each of B sequences: math, weights and all-reduces
    of B (k + 1) tokens, the KV reads of B sequences."""
    wide = decode_step(model, gpu, dataclasses.replace(dep, batch=dep.batch * (draft_tokens + 1.0)), profile)
    narrow = decode_step(model, gpu, dep, profile)
    return wide._replace(
        memory_per_token_s=narrow.memory_per_token_s, memory_per_window_token_s=narrow.memory_per_window_token_s
    )


def speculation(
    model: ModelSpec,
    gpu: GPUSpec,
    dep: Deployment,
    profile: EngineProfile,
    context: Scalar,
    draft_tokens: Scalar,
    acceptance: Scalar,
) -> Speculation:
    """A round of k = ``draft_tokens`` drafted tokens accepted with probability ``acceptance``
    each, for B = ``dep.batch`` sequences after ``context`` cached tokens."""
    e = tokens_per_round(draft_tokens, acceptance)
    draft = decode_step_time(decode_step(draft_model(model), gpu, dep, profile), context).total_s
    verify = decode_step_time(verify_step(model, gpu, dep, profile, draft_tokens), context).total_s
    plain = decode_step_time(decode_step(model, gpu, dep, profile), context).total_s
    tpot = (draft_tokens * draft + verify) / e
    return Speculation(e, draft_tokens * draft, verify, tpot, plain, plain / tpot)


def round_step(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile) -> DecodeStep:
    """A decode round of B = ``dep.batch`` sequences with k = ``dep.draft_tokens`` drafted tokens
    accepted with probability a = ``dep.draft_acceptance`` each: the verify pass's terms
    (``verify_step``), k times the draft step's (``draft_model``) and E = ``tokens_per_round``.

    Its phases (``kernels.roofline._step_phase``, ``decode_time``) are the round per emitted
    token, (k T_d(T) + T_v(T)) / E, so every scenario that counts decode steps per output token
    serves speculation unchanged: its steps become rounds, E tokens per sequence each.
    """
    k = dep.draft_tokens
    draft = decode_step(draft_model(model), gpu, dep, profile)
    return verify_step(model, gpu, dep, profile, k)._replace(
        draft_fixed_s=k * (draft.overhead_s + draft.comm_s),
        draft_compute_0_s=k * draft.compute_0_s,
        draft_compute_per_token_s=k * draft.compute_per_token_s,
        draft_memory_0_s=k * draft.memory_0_s,
        draft_memory_per_token_s=k * draft.memory_per_token_s,
        per_round=tokens_per_round(k, dep.draft_acceptance),
    )


def serving_step(model: ModelSpec, gpu: GPUSpec, dep: Deployment, profile: EngineProfile) -> DecodeStep:
    """The decode step the scenarios run: a speculative round where ``dep.draft_tokens`` > 0
    (``round_step``), else the target's plain step (``kernels.roofline.decode_step``). A sweep
    that holds k fixed runs one branch (``lax.cond``)."""
    return xp.cond(dep.draft_tokens > 0.0, round_step, decode_step, model, gpu, dep, profile)
