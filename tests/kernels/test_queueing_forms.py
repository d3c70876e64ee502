"""The quadrature behind the decode step a request sees in the poisson scenario
(``kernels.queueing.size_biased``), against the gamma distribution's closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.queueing import size_biased


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
