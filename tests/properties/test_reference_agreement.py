"""Two code paths agree: the JAX kernels (closed-form decode sum) and the scalar pure-Python
reference of tests/reference.py (an explicit loop over decode steps), over random design points.

Also ``sum_max_affine`` (the closed form behind the decode sum) against an explicit sum.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from kernels.point import evaluate
from kernels.roofline import sum_max_affine, sum_positive_affine
from tests import reference, specs
from tests.properties.strategies import points
from tests.specs import f64

# One compile serves every example: all leaves are rank-0 float64, so shapes never change.
EVALUATE = jax.jit(evaluate)
SUM_MAX_AFFINE = jax.jit(sum_max_affine)

SCENARIOS = ("static", "concurrency", "max_throughput")
"""``Deployment.scenario`` codes 0, 1, 2 and the names the reference takes."""

CAPACITY_KEYS = ("params_total", "weight_bytes", "max_batch")
"""Integer-valued (or products of exact binary factors, like bytes per element 0.5, 1, 2): the
kernels and the reference compute them with the same float64 operations, so they agree exactly.
``max_batch`` is a floor; any rounding difference would show as an off-by-one."""

IN_FLIGHT_KEYS = ("batch_in_flight", "kv_cache_bytes")
"""Exact too: counts of sequences, and bytes per token times sequences times tokens."""

TIMED_KEYS = ("ttft_s", "tpot_s", "e2e_s", "output_tok_s", "user_tok_s", "usd_per_mtok_output", "usd_per_mtok_input")
"""Times and rates. rtol 1e-10: the kernels sum decode steps as a closed-form arithmetic series
and the waves of a static batch in closed form; the reference loops over at most 300 steps and
over every request. They differ by float64 rounding only: at most 1.1e-14 in 1,500 exploratory
examples, and 1.01e-12 in one that hypothesis found (2026-11-28: an 87,391-token prompt, one
output token, a closed loop of 5 clients, TTFT 3,356 s), where the two sum the same terms in a
different order. A modelling difference would show far above 1e-10."""


def _kernel(pt: dict):
    return EVALUATE(*specs.drawn_point(pt))


def _reference(pt: dict) -> dict:
    return reference.evaluate(
        pt["m"],
        pt["g"],
        pt["p"],
        pt["tp"],
        pt["batch"],
        pt["input_len"],
        pt["output_len"],
        pt["w_bytes"],
        pt["kv_bytes"],
        pt["compute_dtype"],
        SCENARIOS[pt.get("scenario", 0)],
        pt.get("pp", 1),
        pt.get("dp", 1),
        pt.get("expert_parallel", False),
    )


# Hand-picked edges, besides hypothesis' draws: one output token (no decode phase, TPOT of the
# step that would follow), tp above the KV heads (heads replicated), the engine's limit binding
# (a static batch in waves), and one GPU per node with tp > 1 (all-reduces over the network).
_EDGE = dict(
    m=specs.LLAMA_8B,
    g=specs.H100,
    p=specs.ROOFLINE,
    tp=1,
    batch=1,
    input_len=1,
    output_len=1,
    w_bytes=2.0,
    kv_bytes=2.0,
    compute_dtype=0,
    scenario=0,
)


@given(points(), st.sampled_from([0, 1, 2]))
@example(_EDGE, 0)
@example(dict(_EDGE, tp=16, batch=512, input_len=20_000, output_len=300), 0)
@example(
    dict(
        _EDGE,
        g=dict(specs.H100, gpus_per_node=1),
        p=dict(specs.ROOFLINE, max_num_seqs=3.0),
        tp=2,
        batch=10,
        input_len=1000,
        output_len=2,
    ),
    0,
)
@example(dict(_EDGE, p=dict(specs.ROOFLINE, max_num_seqs=3.0), batch=10, input_len=1000, output_len=20), 1)
@example(dict(_EDGE, p=dict(specs.ROOFLINE, max_num_seqs=3.0), batch=10, input_len=1000, output_len=20), 2)
# Prompts in whole pieces (ceil(1000 / 300) = 4 per prompt) and concurrency beyond the engine's
# limit: the requests beyond it queue for a slot.
@example(
    dict(
        _EDGE,
        p=dict(specs.ROOFLINE, max_num_seqs=3.0, chunked_prefill=1, prefill_chunk_tokens=300.0),
        batch=10,
        input_len=1000,
        output_len=20,
    ),
    1,
)
@example(
    dict(
        _EDGE,
        p=dict(specs.ROOFLINE, chunked_prefill=1, prefill_chunk_tokens=math.inf),
        batch=7,
        input_len=900,
        output_len=40,
    ),
    2,
)
@example(dict(_EDGE, m=specs.LLAMA_70B, p=specs.ARTICLE, input_len=2048, output_len=2), 0)
def test_evaluate_matches_reference(pt, scenario):
    pt = dict(pt, scenario=scenario)
    got = _kernel(pt)
    # Where not even one sequence fits, both time the batch as given (and call it infeasible).
    want = _reference(pt)
    assert bool(got.feasible) == want["feasible"]
    for key in CAPACITY_KEYS + IN_FLIGHT_KEYS:
        assert float(getattr(got, key)) == want[key], key
    for key in TIMED_KEYS:
        np.testing.assert_allclose(float(getattr(got, key)), want[key], rtol=1e-10, err_msg=key)


# Llama 3.3 70B (141 GB in bf16) on one 80 GB H100: not even one sequence fits (max_batch = 0).
_NOTHING_FITS = dict(_EDGE, m=specs.LLAMA_70B, p=specs.ARTICLE, batch=4, input_len=2048, output_len=16)


def test_nothing_fits_static_matches_reference():
    got, want = _kernel(_NOTHING_FITS), _reference(_NOTHING_FITS)
    assert float(got.max_batch) == want["max_batch"] == 0
    for key in IN_FLIGHT_KEYS:
        assert float(getattr(got, key)) == want[key], key
    for key in TIMED_KEYS:
        np.testing.assert_allclose(float(getattr(got, key)), want[key], rtol=1e-10, err_msg=key)


def test_nothing_fits_max_throughput_reference_evaluates():
    pt = dict(_NOTHING_FITS, scenario=2)
    want = _reference(pt)
    got = _kernel(pt)
    for key in TIMED_KEYS:
        np.testing.assert_allclose(float(getattr(got, key)), want[key], rtol=1e-10, err_msg=key)


def test_strategy_reaches_feasible_and_infeasible_points():
    """Guard against a vacuous agreement test: the points drawn include both kinds."""
    seen = set()

    @given(points(max_output=2))
    def collect(pt):
        seen.add(_reference(pt)["feasible"])

    collect()
    assert seen == {True, False}


# --- sum_max_affine: sum of max(a1 + b1 t, a2 + b2 t) over t = first, ..., first + count - 1 ----

_SLOPES = st.one_of(st.just(0), st.integers(-1000, 1000))
_INTERCEPTS = st.integers(-(10**6), 10**6)


@st.composite
def _affine_pairs(draw):
    """(a1, b1, a2, b2, first, count) with integer coefficients; half of the draws put the
    crossing of the two lines inside the summed range, at an integer or between two."""
    first, count = draw(st.integers(-(10**5), 10**6)), draw(st.integers(1, 400))
    b1, b2, a2 = draw(_SLOPES), draw(_SLOPES), draw(_INTERCEPTS)
    if draw(st.booleans()):
        a1 = draw(_INTERCEPTS)
    else:  # a1 - a2 = -(b1 - b2) t0 + r: the root -a/b = t0 - r/b lies near t0, inside the range
        t0 = draw(st.integers(first, first + count - 1))
        a1 = a2 - (b1 - b2) * t0 + draw(st.integers(-1000, 1000))
    return a1, b1, a2, b2, first, count


def _explicit_sum(a1, b1, a2, b2, first: int, count: int):
    return [max(a1 + b1 * t, a2 + b2 * t) for t in range(first, first + count)]


def _sum_max_affine(a1, b1, a2, b2, first, count) -> float:
    return float(SUM_MAX_AFFINE(f64(a1), f64(b1), f64(a2), f64(b2), f64(first), f64(count)))


@given(_affine_pairs())
@example((0, 0, 0, 0, 0, 1))  # d = f - g identically zero
@example((5, 0, 3, 0, 10, 7))  # slopes zero, f above g everywhere
@example((3, 0, 5, 0, 10, 7))  # slopes zero, g above f everywhere
@example((-10, 1, 0, 0, 0, 21))  # crossing exactly at the integer t = 10
@example((10, -1, 0, 0, 0, 21))  # the same crossing, negative slope
@example((-21, 2, 0, 0, 0, 21))  # crossing between integers, t = 10.5
@example((21, -2, 0, 0, 0, 21))  # the same, negative slope
@example((-10, 1, 0, 0, 11, 5))  # root before the range: f wins everywhere
@example((-10, 1, 0, 0, 0, 5))  # root after the range: g wins everywhere
def test_sum_max_affine_exact_on_integers(coefficients):
    a1, b1, a2, b2, first, count = coefficients
    # With integer coefficients every intermediate of the closed form (halves of integers, the
    # floor and ceiling of the root -a/b) is exact in float64, so the sums agree exactly.
    assert _sum_max_affine(a1, b1, a2, b2, first, count) == sum(_explicit_sum(a1, b1, a2, b2, first, count))


# Magnitudes stay away from float64's subnormal range: XLA on CPU flushes subnormals to zero.
_REAL = st.one_of(st.just(0.0), st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6))


@given(_REAL, _REAL, _REAL, _REAL, st.integers(0, 10**6), st.integers(1, 400))
def test_sum_max_affine_matches_explicit_sum_on_reals(a1, b1, a2, b2, first, count):
    want = math.fsum(_explicit_sum(a1, b1, a2, b2, first, count))
    # The terms can cancel (slopes of either sign), so the error is bounded relative to the size
    # of the terms, not of the sum: 1e-12 of sum |a| + |b| t (observed: below 4e-16).
    scale = count * (abs(a1) + abs(a2)) + (abs(b1) + abs(b2)) * count * (first + 0.5 * (count - 1))
    assert abs(_sum_max_affine(a1, b1, a2, b2, first, count) - want) <= 1e-12 * scale


SUM_POSITIVE_AFFINE = jax.jit(sum_positive_affine)


@given(_affine_pairs(), st.booleans())
@example((0, 0, 0, 0, 0, 1), False)
@example((-10, 1, 0, 0, 0, 21), False)  # root at the integer t = 10
@example((21, -2, 0, 0, 0, 21), False)  # root between integers, negative slope
@example((5, 1, 0, 0, 7, 3), True)  # an empty range (count 0: the part of a range below a window)
def test_sum_positive_affine_exact_on_integers(coefficients, empty):
    """The closed form decode_time sums on each side of a window: sum of max(a + b t, 0)."""
    a1, b1, a2, b2, first, count = coefficients
    count = 0 if empty else count
    want = sum(max(a1 - a2 + (b1 - b2) * t, 0) for t in range(first, first + count))
    got = float(SUM_POSITIVE_AFFINE(f64(a1 - a2), f64(b1 - b2), f64(first), f64(count)))
    assert got == want
