"""The engine: lift the point kernels over a sweep's axes, chunk and compile once (``plan``), give
the result its Dataset skeleton with attrs and provenance (``label``, ``provenance``) and evaluate a
whole sweep in memory (``compute``). No store I/O here: ``sweep.store`` writes what it evaluates."""

from sweep.engine.compute import compute
from sweep.engine.label import params_by_model, template
from sweep.engine.plan import INPUT_KEYS, STORED, Plan, chunk_shape, lift, make_plan, point

__all__ = [
    "INPUT_KEYS",
    "STORED",
    "Plan",
    "chunk_shape",
    "compute",
    "lift",
    "make_plan",
    "params_by_model",
    "point",
    "template",
]
