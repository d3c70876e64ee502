"""The run-time annotation checks (jaxtyping + beartype, tests/conftest.py) are on in the kernels'
own tests and off in those marked ``unchecked``."""

from __future__ import annotations

import jaxtyping
import numpy as np
import pytest

from kernels.queueing import STATES, stationary


def test_a_kernel_called_against_its_annotations_raises():
    # ``stationary`` takes a square Matrix ("k k"); a vector is refused before numpy sees it
    with pytest.raises(jaxtyping.TypeCheckError):
        stationary(np.ones(3))


@pytest.mark.unchecked
def test_unchecked_tests_run_without_the_checks():
    assert jaxtyping.config.jaxtyping_disable
    p = np.full((STATES, STATES), 1.0 / STATES)  # every state as likely next: pi uniform
    np.testing.assert_allclose(stationary(p), np.full(STATES, 1.0 / STATES))
