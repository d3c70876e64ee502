"""The quadrature behind the decode step a request sees in the poisson scenario
(``kernels.queueing.size_biased``), against the gamma distribution's closed forms; the tail of the
sequences in flight beyond the seats (``kernels.queueing.seats_taken``), against sums of Poisson
probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.queueing import seats_taken, size_biased


def _poisson_tail(lam: float, threshold: float) -> tuple[float, float]:
    """E[(M - t)^+] and P(M >= t) for M Poisson(lam), summed term by term far into the tail."""
    ks = np.arange(0, int(lam + threshold + 40 * math.sqrt(lam + 1.0) + 40))
    pmf = np.exp(ks * math.log(lam) - lam - np.array([math.lgamma(k + 1.0) for k in ks]))
    return float(np.sum(np.maximum(ks - threshold, 0.0) * pmf)), float(np.sum(pmf[ks >= threshold]))


@pytest.mark.parametrize(
    "mean, variance, seats",
    [
        (1.08, 1.0, 4.0),  # a Poisson count (variance below the mean counts as the mean)
        (1.08, 1.1, 4.0),  # 70B tp 2 on H100: 4 seats
        (33.0, 183.0, 64.0),  # LMDeploy 70B on A100 at 0.9: D = 5.5
        (10.0, 20.0, 20.0),
        (55.0, 55.0, 60.0),  # a Poisson count whose tail runs past the 64 states summed
    ],
)
def test_seats_taken_is_the_overdispersed_poisson_tail(mean, variance, seats):
    """N = D M, M Poisson(mean / D), D = variance / mean: E[(N - S)^+] = D E[(M - S / D)^+] and
    P(N >= S) = P(M >= S / D), summed exactly."""
    d = max(variance / mean, 1.0)
    excess, share = _poisson_tail(mean / d, seats / d)
    got_excess, got_share = seats_taken(np.float64(mean), np.float64(variance), np.float64(seats))
    assert float(got_excess) == pytest.approx(d * excess, rel=1e-9)
    assert float(got_share) == pytest.approx(share, rel=1e-9)


def test_seats_taken_beyond_the_states_is_the_normal_tail_of_the_poisson():
    """Above the chain's states the tail is the normal one with the continuity correction, a little
    light for the Poisson's skew: 7% low on E[(N - S)^+] for a count of 500 at 540 seats (1.8 sd
    above), where one arrival in 25 waits."""
    excess, share = _poisson_tail(500.0, 540.0)
    got_excess, got_share = seats_taken(np.float64(500.0), np.float64(500.0), np.float64(540.0))
    assert float(got_excess) == pytest.approx(excess, rel=0.08)
    assert float(got_share) == pytest.approx(share, rel=0.08)


@pytest.mark.parametrize("mean, dispersion", [(4.0, 1.25), (25.0, 2.4), (0.5, 1.2), (200.0, 2.0)])
def test_size_biased_is_exact_for_an_affine_step(mean, dispersion):
    """E[n (a + b n)] / E[n] = a + b (mean + Var / mean) = a + b (mean + dispersion)."""
    got = size_biased(lambda x: 0.003 + 2e-4 * x, np.float64(mean), np.float64(dispersion))
    assert float(got) == pytest.approx(0.003 + 2e-4 * (mean + dispersion), rel=1e-9)


@pytest.mark.parametrize("mean, dispersion", [(4.0, 1.25), (25.0, 2.4), (3.0, 1.0)])
def test_size_biased_second_moment_of_the_gamma(mean, dispersion):
    """E[n^3] / E[n] for n ~ gamma(shape a, scale theta) is (a + 1)(a + 2) theta^2: the quadrature on
    the Wilson-Hilferty cube is within 1% of it."""
    theta = dispersion
    shape = mean / theta
    got = size_biased(lambda x: x * x, np.float64(mean), np.float64(dispersion))
    assert float(got) == pytest.approx((shape + 1) * (shape + 2) * theta**2, rel=0.01)


def test_size_biased_of_a_concave_step_is_below_the_straight_line():
    """A mixture of experts reads more experts' weights as n grows, concavely: the step a request
    sees is then below D(mean) + D'(mean) Var / mean."""
    experts = lambda x: 8.0 * (1.0 - 0.75**x)  # noqa: E731 - top-2 of 8, the experts n tokens touch
    mean, dispersion = 3.0, 1.5
    straight = float(experts(mean)) + (experts(mean + 1e-6) - experts(mean)) / 1e-6 * dispersion
    assert float(size_biased(experts, np.float64(mean), np.float64(dispersion))) < straight
