"""The closed-loop ``concurrency`` scenario beyond what fits, and prompts in whole pieces.

A closed loop of C clients on an engine that runs at most C_max sequences: the C - C_max others
queue for a slot, so by Little's law each waits (C - C_max) / X, X = output_tok_s / O the
requests completed per second; throughput and TPOT stay at C_max's. NVIDIA's NIM 1.8 benchmark of
Llama 3.3 70B on 2 x H100 (shared/benchmarks/nim_llama33_70b_2xh100_concurrency.csv) shows it:
from concurrency 100 to 250 the throughput stays at 917-921 token/s and TPOT at 92.9-93.2 ms
while TTFT grows by 26.8-26.9 s per 50 clients, 50 / (920.9 / 500) = 27.1 s.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import pytest

from kernels.point import Metrics, evaluate_point
from kernels.scenarios import SCENARIOS, prompt_pieces
from tests import specs
from tests.specs import f64

EVALUATE = jax.jit(functools.partial(evaluate_point, codes=(SCENARIOS.index("concurrency"),)))
"""One compiled program (the concurrency branch only) for every point and profile below."""

NIM = dict(
    m="llama-3.3-70b",
    g="h100-sxm",
    tp=2,
    weight_dtype="fp8",
    kv_dtype="fp8",
    input_len=5000,
    output_len=500,
    scenario="concurrency",
)
"""The NIM benchmark's deployment and requests (5000 prompt and 500 output tokens)."""


def _at(batch: float, **values) -> Metrics:
    return EVALUATE(specs.point(**{**NIM, **values, "batch": batch}))


@pytest.mark.parametrize("profile", ["trtllm", "vllm", "article"])
def test_beyond_capacity_requests_queue_by_littles_law(profile):
    # trtllm: prompts in whole pieces; vllm: spread evenly (the mean field); article: each
    # prefill pauses decoding. Whatever the engine, the queue in front of it is the same.
    p = profile
    far = _at(1000.0, p=p)
    c_max = float(far.batch_in_flight)
    assert 1.0 <= c_max < 1000.0 and bool(far.feasible)
    at_cap = _at(c_max, p=p)
    x = float(at_cap.output_tok_s) / NIM["output_len"]  # requests completed per second
    for c in (c_max + 1.0, c_max + 50.0, 1000.0):
        m = _at(c, p=p)
        assert bool(m.feasible)
        assert float(m.batch_in_flight) == c_max  # the sequences that actually run
        for flat in ("output_tok_s", "tpot_s", "ttft_min_s"):
            assert float(getattr(m, flat)) == float(getattr(at_cap, flat)), flat
        wait = (c - c_max) / x
        np.testing.assert_allclose(float(m.ttft_s), float(at_cap.ttft_s) + wait, rtol=1e-12)
        np.testing.assert_allclose(float(m.e2e_s), float(at_cap.e2e_s) + wait, rtol=1e-12)


def test_beyond_capacity_each_client_cycles_in_c_over_x():
    # Where each prefill pauses decoding (the article's profile), the running requests obey
    # Little's law exactly, e2e(C_max) = C_max / X, so every client's cycle is C / X and
    # TTFT = C / X - (decode time of one request): the hand check of issue 14 with NIM's numbers
    # (C = 150: X = 920.9 / 500 = 1.84 request/s, C / X = 81.5 s, 500 x 0.0929 s = 46.4 s of
    # decode, TTFT 35 s against 34.8 s measured).
    c_max = float(_at(1000.0, p="article").batch_in_flight)
    for c in (c_max + 7.0, 3.0 * c_max):
        m = _at(c, p="article")
        x = float(m.output_tok_s) / NIM["output_len"]
        np.testing.assert_allclose(float(m.e2e_s), c / x, rtol=1e-12)
        np.testing.assert_allclose(float(m.ttft_s), c / x - (float(m.e2e_s) - float(m.ttft_s)), rtol=1e-12)


def test_nothing_fits_is_infeasible_not_queued():
    # Llama 3.3 70B in bf16 (141 GB) on one 80 GB H100: no sequence fits, nothing runs.
    m = _at(8.0, tp=1, weight_dtype="bf16", kv_dtype="bf16", p="trtllm")
    assert not bool(m.feasible) and np.isnan(float(m.ttft_s))


@pytest.mark.parametrize(
    ("chunk", "pieces"), [(0.0, 1.0), (float("inf"), 1.0), (5000.0, 1.0), (2048.0, 3.0), (1000.0, 5.0), (999.0, 6.0)]
)
def test_prompt_pieces(chunk, pieces):
    # ceil(I / K) pieces of at most K tokens; a whole prompt (K >= I) or spread (K = 0): one.
    wl = specs.workload(5000.0, 500.0)
    assert float(prompt_pieces(wl, f64(chunk))) == pieces


def test_whole_pieces_cost_more_than_the_mean_field():
    # S(p) is convex in the prompts a step carries: steps that carry whole pieces average to more
    # than steps that each carry the mean (prefill_chunk_tokens = 0), so throughput is lower and
    # TPOT longer; at C = 1 a request's decode steps carry no other prompt (TPOT = decode step).
    # Convex where math and memory overlap (the roofline's max); where they add (roof_overlap 0,
    # the trtllm profile's) S is affine and whole pieces cost what the mean field does.
    base = dataclasses.replace(specs.point(p="trtllm").profile, roof_overlap=f64(1.0))
    added = dataclasses.replace(base, roof_overlap=f64(0.0))
    for c in (5.0, 25.0):
        a = _at(c, p=dataclasses.replace(added, prefill_chunk_tokens=f64(0.0)))
        b = _at(c, p=dataclasses.replace(added, prefill_chunk_tokens=f64(float("inf"))))
        assert float(b.output_tok_s) == pytest.approx(float(a.output_tok_s), rel=1e-9)
    spread = dataclasses.replace(base, prefill_chunk_tokens=f64(0.0))
    whole = dataclasses.replace(base, prefill_chunk_tokens=f64(float("inf")))
    for c in (5.0, 25.0, 50.0):
        a, b = _at(c, p=spread), _at(c, p=whole)
        assert float(b.output_tok_s) < float(a.output_tok_s) and float(b.tpot_s) > float(a.tpot_s)
        assert float(b.ttft_s) > float(b.ttft_min_s)  # whole prompts wait for those ahead of them
    one = _at(1.0, p=whole)
    assert float(one.ttft_s) == float(one.ttft_min_s)  # alone: nothing to wait for
