"""``sweep bench``: the engine's own speed (``bench``), against the scalar pure-Python reference
of the cost model (``reference``, also the oracle of the property tests)."""

from sweep.bench.bench import run_bench

__all__ = ["run_bench"]
