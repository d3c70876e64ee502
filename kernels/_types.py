"""Type aliases shared by the kernels (the pattern of diffrax's ``_custom_types.py``)."""

from jaxtyping import Array, Bool, Float

Scalar = Float[Array, ""]
"""A rank-0 floating-point array: one design point's value of one quantity."""

BoolScalar = Bool[Array, ""]
"""A rank-0 boolean array."""
