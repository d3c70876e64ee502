"""kernels.lengths: the averages over a uniform length against their integrals done independently."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import lengths

f64 = np.float64


def test_simpson_mean_is_exact_for_a_cost_quadratic_in_the_length():
    # E[L^2] for L uniform on [a, b] is (a^2 + a b + b^2) / 3 (the uniform's second moment)
    mean_len, spread = f64(2000.0), f64(0.7)
    a, b = mean_len * (1 - spread), mean_len * (1 + spread)
    values = [x * x + 3.0 * x for x in lengths.points(mean_len, spread)]
    assert lengths.mean(values) == pytest.approx((a * a + a * b + b * b) / 3.0 + 3.0 * mean_len, rel=1e-14)


def test_mean_at_zero_spread_is_the_centre_exactly():
    values = [0.1 + 0.2 * x for x in lengths.points(f64(1234.5), f64(0.0))]
    assert lengths.mean(values) == values[0]


def test_life_moments_at_fixed_lives_are_the_poisson_population_s():
    # n's variance over a request's own life: 2 m / 3 per unit of Poisson variance per step; the
    # prompts' covariance with the decoders: 1/2 (kernels.queueing.window_variance, window_covariance at g = 0)
    m = f64(255.0)
    lives = lengths.points(m, f64(0.0))
    assert lengths.life_variance(m, lives) == pytest.approx(2.0 * m / 3.0, rel=1e-12)
    assert lengths.life_covariance(m, lives) == pytest.approx(0.5, rel=1e-12)


def test_life_variance_against_a_double_sum_over_the_lives():
    # Var(mean of n over m' steps) = (1/m'^2) sum_{s,t < m'} E[(L - |s - t|)^+], L uniform: summed directly
    own, mean_life, spread = f64(100.0), f64(150.0), f64(0.5)
    grid = np.linspace(mean_life * (1 - spread), mean_life * (1 + spread), 2001)
    lag = np.abs(np.subtract.outer(np.arange(100), np.arange(100)))
    direct = np.mean([np.maximum(life - lag, 0.0).sum() for life in grid]) / own**2
    assert lengths.life_variance(own, lengths.points(mean_life, spread)) == pytest.approx(direct, rel=0.02)


@pytest.mark.parametrize("t", [0.05, 0.3, 0.55, 0.9, 1.4])
def test_uniform_ramp_is_the_cdf_of_the_sum_of_two_uniforms(t):
    width, lo, hi = f64(0.5), f64(0.2), f64(0.7)
    rng = np.random.default_rng(0)
    sums = rng.uniform(0.0, width, 400_000) + rng.uniform(lo, hi, 400_000)
    assert float(lengths.uniform_ramp(f64(t), width, lo, hi)) == pytest.approx(np.mean(sums <= t), abs=3e-3)
    # a stratum of no width: the ramp of the step at its middle
    assert float(lengths.uniform_ramp(f64(t), width, f64(0.4), f64(0.4))) == pytest.approx(
        np.clip((t - 0.4) / width, 0, 1)
    )
