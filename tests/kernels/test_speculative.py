"""Speculative decoding with an MTP head (kernels.speculative): tokens per round against a
simulation of the acceptance process, and the speed-up against the batch against its limits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grids.axes import design_inputs
from kernels.point import design_point
from kernels.roofline import decode_step, decode_step_time
from kernels.speculative import draft_model, speculation, tokens_per_round


def f64(x: float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("acceptance", [0.6, 0.8])
@pytest.mark.parametrize("drafted", [1, 3, 5])
def test_tokens_per_round_match_a_simulated_acceptance_process(acceptance, drafted):
    rng = np.random.default_rng(7)
    accepted = rng.random((200_000, drafted)) < acceptance
    # tokens emitted: the drafted tokens up to the first rejection, plus the target's own
    leading = np.where(accepted.all(axis=1), drafted, np.argmin(accepted, axis=1))
    assert float(tokens_per_round(f64(drafted), f64(acceptance))) == pytest.approx(leading.mean() + 1.0, rel=0.005)


def _point(batch: float, model: str = "llama-3.3-70b"):
    p = design_point(
        **design_inputs(dict(model=model, gpu="h100-sxm", tp=4, input_len=512, output_len=128, profile="article"))
    )
    return p, dataclasses.replace(p.dep, batch=f64(batch))


@pytest.mark.parametrize("acceptance", [0.6, 0.8])
def test_memory_bound_speedup_is_tokens_per_round_over_the_drafts_cost(acceptance):
    # Batch 1 is memory-bound: the verify pass reads the weights once like a plain step, so the
    # speed-up is E / (1 + k T_draft / T) to within the verify pass's extra math and KV reads.
    p, dep = _point(1.0)
    k, context = f64(3.0), f64(576.0)
    s = speculation(p.model, p.gpu, dep, p.profile, context, k, f64(acceptance))
    plain = float(decode_step_time(decode_step(p.model, p.gpu, dep, p.profile), context).total_s)
    draft = float(decode_step_time(decode_step(draft_model(p.model), p.gpu, dep, p.profile), context).total_s)
    limit = float(tokens_per_round(k, f64(acceptance))) / (1.0 + 3.0 * draft / plain)
    assert float(s.speedup) == pytest.approx(limit, rel=0.02)
    assert float(s.speedup) > 1.5


def test_speculation_stops_paying_when_the_verify_pass_is_compute_bound():
    # Short context, large batch: the verify pass does (k + 1) times a compute-bound step's math.
    k, context = f64(3.0), f64(576.0)
    for acceptance in (0.6, 0.8):
        speedups = []
        for batch in (1, 16, 256, 1024, 4096):
            p, dep = _point(batch)
            speedups.append(float(speculation(p.model, p.gpu, dep, p.profile, context, k, f64(acceptance)).speedup))
        assert all(b <= a + 1e-9 for a, b in zip(speedups, speedups[1:])), speedups
        assert speedups[-1] < 1.0 < speedups[0], speedups
    # and a higher acceptance always helps
    p, dep = _point(64)
    low, high = (speculation(p.model, p.gpu, dep, p.profile, context, k, f64(a)).speedup for a in (0.6, 0.8))
    assert float(high) > float(low)


def test_the_mtp_head_is_one_block_of_the_target():
    p, _ = _point(1.0, model="mixtral-8x7b")
    head = draft_model(p.model)
    assert (
        float(head.n_layers) == 1.0
        and float(head.n_moe_layers) == 1.0
        and float(head.d_model) == float(p.model.d_model)
    )
