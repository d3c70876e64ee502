"""Test settings: float64, strict dtype and rank promotion, warnings as errors (pyproject).

Why x64: without it, integer maths silently wraps 70,553,706,496 to 1,834,229,760 (int32).
jaxtyping + beartype check the kernels' annotations (``--jaxtyping-packages`` in pyproject) in the
tests of tests/kernels and tests/properties (``CHECKED_DIRS``).
"""

import os

import jax
import jaxtyping
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

# The first call of a jitted function compiles, so no per-example deadline.
settings.register_profile("ci", deadline=None, max_examples=60, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=25)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/golden-sweep.zarr from the current code (say why in the commit)",
    )


# Where jaxtyping + beartype check every call of a kernels function against its annotations
# (``--jaxtyping-packages`` in pyproject): the tests of the kernels themselves. Elsewhere (engine,
# store, CLI, calibration) the same kernel calls would be checked again while they are traced or run
# on the host, which doubled the suite's time (measured 2026-11-28 on 2 cores, same load: the
# engine's vmapped-chunks test 133 s checked, 49 s not; the optimizer's brute-force test 156 s, 70 s).
CHECKED_DIRS = frozenset({"kernels", "properties"})


def _set_checks(on: bool) -> None:
    jaxtyping.config.update("jaxtyping_disable", not on)


@pytest.fixture(autouse=True, scope="module")
def _annotation_checks_by_module(request):
    """Checks on for the modules of tests/kernels and tests/properties, off elsewhere; set before
    any of the module's own fixtures compile or evaluate."""
    _set_checks(request.node.path.parent.name in CHECKED_DIRS)
    yield
    _set_checks(True)


@pytest.fixture(autouse=True)
def _annotation_checks(request):
    """Tests marked ``unchecked`` loop the host model thousands of times (request-by-request
    simulations, bisections on the rate), which the checks make about 5x slower (the goodput and
    p90-growth tests of tests/kernels/test_queueing.py: 73 s checked, 14 s not): they run with the
    checks off, and every kernels function they call is checked by the other tests of its module."""
    if request.node.get_closest_marker("unchecked") is None:
        yield
        return
    before = not jaxtyping.config.jaxtyping_disable
    _set_checks(False)
    try:
        yield
    finally:
        _set_checks(before)
