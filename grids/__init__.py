"""Catalogues (models, GPUs, number formats, engine profiles, sweep specifications), the axis
registry, and their validating loaders.

Importing ``grids`` has no side effects: catalogue files are read when asked for, and spec leaves
are float64 numpy arrays (host data). Code that evaluates kernels in float64 scopes JAX's 64-bit
mode itself (``jax.enable_x64``), as the engine and ``sweep explain`` do.
"""

from grids.errors import SpecError

__all__ = ["SpecError"]
