"""Type aliases shared by the kernels (the pattern of diffrax's ``_custom_types.py``).

A value is a JAX array (traced or not) or, for host evaluation in numpy (``kernels.xp``), a numpy
float64 one. jaxtyping's ``Array`` imports JAX (1-2 s), which host evaluation does without: these
are jaxtyping types only where a type checker reads them or jaxtyping is loaded (the tests'
``--jaxtyping-packages`` hook, which checks them at run time).
"""

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the type checker sees what the kernels see under JAX: jax arrays (traced or not)
    from jaxtyping import Array, Bool, Float

    Scalar = Float[Array, ""]
    BoolScalar = Bool[Array, ""]
    Vector = Float[Array, "k"]
    Matrix = Float[Array, "k k"]
    Leaf = Array
elif "jaxtyping" in sys.modules:
    import numpy as np
    from jaxtyping import Array, Bool, Float

    Scalar = Float[Array | np.ndarray | np.generic, ""]
    """A rank-0 floating-point value: one design point's value of one quantity."""

    BoolScalar = Bool[Array | np.ndarray | np.generic, ""]
    """A rank-0 boolean value."""

    Vector = Float[Array | np.ndarray, "k"]
    """One design point's values of one quantity over a fixed number of states (a Markov chain's)."""

    Matrix = Float[Array | np.ndarray, "k k"]
    """One design point's transition probabilities between those states."""

    Leaf = Float[Array | np.ndarray | np.generic, "..."]
    """A spec field: one value (rank 0), or a stack of them along the engine's axes."""
else:
    Scalar = BoolScalar = Vector = Matrix = Leaf = Any
