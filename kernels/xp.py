"""The array operations of the kernels: jax.numpy's (and jax.lax's) on JAX values, numpy's on host
values.

The sweep engine traces the kernels under ``jit`` and ``vmap``: every value is a JAX tracer and
each function here is its JAX namesake. ``sweep explain`` and ``sweep catalog`` pass numpy float64
values instead (one design point, one model): the same code then runs op by op in numpy, without
importing JAX or compiling anything. XLA takes 10-30 s on a 2-core CPU to compile the ~9,000
scalar operations of one design point; numpy evaluates them in ~20 ms. Each operation is the same
IEEE double-precision one either way; a compiled program may differ in the last bit where XLA's
algebraic simplifier rewrites, e.g. (a / b) / c into a / (b * c).

A value is a JAX one if it is a ``jax.Array`` (tracers are); where JAX is not imported, none is.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

nan = np.nan
int32 = np.int32


def on_jax(*values: Any) -> bool:
    """Whether any of ``values`` (or of the lists among them) is a JAX array or tracer."""
    jax = sys.modules.get("jax")
    return jax is not None and any(
        isinstance(v, jax.Array) or (isinstance(v, (list, tuple)) and on_jax(*v)) for v in values
    )


def _op(name: str) -> Callable[..., Any]:
    host = getattr(np, name)

    def op(*args: Any, **kwargs: Any) -> Any:
        if on_jax(*args):
            import jax.numpy as jnp

            return getattr(jnp, name)(*args, **kwargs)
        return host(*args, **kwargs)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``jax.numpy.{name}`` on JAX values, ``numpy.{name}`` on host values."
    return op


argmax = _op("argmax")
ceil = _op("ceil")
clip = _op("clip")
cumsum = _op("cumsum")
exp = _op("exp")
floor = _op("floor")
fmax = _op("fmax")
greater = _op("greater")
isfinite = _op("isfinite")
isnan = _op("isnan")
log = _op("log")
log1p = _op("log1p")
maximum = _op("maximum")
minimum = _op("minimum")
mod = _op("mod")
ones_like = _op("ones_like")
select = _op("select")
sqrt = _op("sqrt")
stack = _op("stack")
sum = _op("sum")
take = _op("take")
where = _op("where")
zeros_like = _op("zeros_like")


def constant_like(constant: Any, value: Any) -> Any:
    """A numpy constant in the floating type of ``value``: a float32 sweep stays float32 even
    where float64 is enabled (numpy constants are not weakly typed in JAX)."""
    return np.asarray(constant, dtype=value.dtype)


def solve(a: Any, b: Any) -> Any:
    """x with a x = b for a small dense square ``a``: ``numpy.linalg.solve`` on host values; on JAX
    values Gauss-Jordan elimination with partial pivoting in array operations (a ``fori_loop``
    over the columns). Not ``jax.numpy.linalg.solve``: its LAPACK call, vmapped inside the
    engine's ``lax.map`` over models, hung the sweep (a 192-point sweep of two models never
    finished; one model, or the same points in one vmap, took 13-30 s)."""
    if not on_jax(a, b):
        return np.linalg.solve(a, b)
    import jax
    import jax.numpy as jnp

    n = a.shape[-1]
    rows = jnp.arange(n)
    vector = b.ndim == 1
    rhs = b[:, None] if vector else b

    def eliminate(k: Any, state: tuple[Any, Any]) -> tuple[Any, Any]:
        m, r = state
        pivot_row = jnp.argmax(jnp.where(rows >= k, jnp.abs(m[:, k]), -1.0))
        swap = jnp.where(rows == k, pivot_row, jnp.where(rows == pivot_row, k, rows))
        m, r = m[swap], r[swap]
        factor = jnp.where(rows == k, 0.0, m[:, k] / m[k, k])
        return m - factor[:, None] * m[k][None, :], r - factor[:, None] * r[k][None, :]

    m, r = jax.lax.fori_loop(0, n, eliminate, (a, rhs))
    x = r / jnp.diagonal(m)[:, None]
    return x[:, 0] if vector else x


def cond(pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any) -> Any:
    """``jax.lax.cond``; on a host predicate, the branch it picks, called."""
    if on_jax(pred):
        import jax

        return jax.lax.cond(pred, true_fn, false_fn, *operands)
    return true_fn(*operands) if pred else false_fn(*operands)


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """``jax.lax.switch`` on a traced index; on a concrete one (in range: a host value, or a JAX
    array outside ``jit``/``vmap``), the branch it picks, called. ``lax.switch`` itself traces
    and compiles every branch even then: an eager evaluation of one design point compiled all
    the scenarios (about 30 s each for poisson and disaggregated on a 2-core CPU)."""
    if on_jax(index):
        import jax

        if isinstance(index, jax.core.Tracer) or np.ndim(index) != 0:
            return jax.lax.switch(index, branches, *operands)
    return branches[int(index)](*operands)


def fori_loop(lower: int, upper: int, body: Callable[[Any, Any], Any], init: Any) -> Any:
    """``jax.lax.fori_loop``; on host values, the Python loop."""
    if on_jax(*(init if isinstance(init, (list, tuple)) else [init])):
        import jax

        return jax.lax.fori_loop(lower, upper, body, init)
    value = init
    for i in range(lower, upper):
        value = body(i, value)
    return value


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``jax.tree.map`` over dicts, (named) tuples and spec dataclasses of values, without JAX."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: tree_map(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    if isinstance(tree, tuple):
        mapped = [tree_map(fn, *leaves) for leaves in zip(tree, *rest)]
        return type(tree)(*mapped) if hasattr(tree, "_fields") else tuple(mapped)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        fields = (f.name for f in dataclasses.fields(tree))
        return type(tree)(**{k: tree_map(fn, getattr(tree, k), *(getattr(r, k) for r in rest)) for k in fields})
    return fn(tree, *rest)
