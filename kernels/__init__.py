"""The cost model of LLM inference: pure JAX functions of one design point.

Imports only numpy, ``kernels.*`` and, for JAX values, ``jax`` (``kernels.xp``): no I/O, no
xarray, no printing. Every input is rank 0;
the sweep engine adds axes with ``jax.vmap``.
"""

from kernels.point import Metrics, evaluate
from kernels.specs import Deployment, EngineProfile, GPUSpec, ModelSpec, Workload

__all__ = ["Deployment", "EngineProfile", "GPUSpec", "Metrics", "ModelSpec", "Workload", "evaluate"]
