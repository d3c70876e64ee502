"""Catalogues (models, GPUs, engine profiles, sweep specifications) and their validating loaders.

Counts such as 70,553,706,496 parameters need float64, so importing ``grids`` turns on JAX's
64-bit mode; the engine chooses float32 per sweep where its relative error is below 1e-6.
"""

import jax

jax.config.update("jax_enable_x64", True)

from grids.errors import SpecError  # noqa: E402

__all__ = ["SpecError"]
