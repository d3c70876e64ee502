"""The scalar pure-Python reference of the cost model (it lives in ``sweep.reference`` so that
``sweep bench`` can time it too)."""

from sweep.reference import *  # noqa: F401,F403
from sweep.reference import evaluate, params, split_flops  # noqa: F401
