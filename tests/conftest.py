"""Test settings: float64, strict dtype and rank promotion, warnings as errors (pyproject).

Why x64: without it, integer maths silently wraps 70,553,706,496 to 1,834,229,760 (int32).
jaxtyping + beartype check the kernels' annotations (``--jaxtyping-packages`` in pyproject).
"""

import os

import jax
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
