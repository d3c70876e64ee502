"""The scalar pure-Python reference of the cost model (it lives in ``sweep.bench.reference`` so that
``sweep bench`` can time it too)."""

from sweep.bench.reference import *  # noqa: F401,F403
from sweep.bench.reference import evaluate, params, split_flops  # noqa: F401
