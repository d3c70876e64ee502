"""The engine: lift the point kernels over the sweep's axes, compile once, evaluate chunk by chunk.

``lift`` wraps a function of one design point in one ``jax.vmap`` per dimension (outermost first,
so the output's axis order equals the dims order) and ``jax.jit`` once. Chunks all have the same
shape (the last ones padded by repeating their edge values), so a sweep compiles one program.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from grids.gpus import load_gpus
from grids.models import load_model
from grids.profiles import load_profile
from grids.dtypes import compute_code, default_compute
from grids.sweeps import DTYPE_BYTES, KV_DTYPE_BYTES, SweepSpec
from kernels.point import Metrics, evaluate, mask_infeasible
from kernels.params import param_counts
from kernels.scenarios import SCENARIOS
from kernels.specs import Deployment, Workload

def use_compilation_cache() -> None:
    """Keep compiled chunk programs on disk (``$SWEEP_JAX_CACHE``, default ~/.cache/llm-econ-sweep/jax),
    so that a rerun, or each Dask worker process, loads the program instead of compiling it
    (about 2 s saved per process). Leaves a cache directory the user set alone."""
    if jax.config.jax_compilation_cache_dir is None:
        default = os.path.join(os.path.expanduser("~"), ".cache", "llm-econ-sweep", "jax")
        jax.config.update("jax_compilation_cache_dir", os.environ.get("SWEEP_JAX_CACHE", default))


STORED = tuple(f for f in Metrics._fields if f != "params_total")
"""Metrics stored on the full grid; params_total depends on the model only and is stored once."""



def lift(point_fn: Callable[[dict[str, Any]], Any], dims: tuple[str, ...], keys: tuple[str, ...]) -> Callable:
    """jit(vmap(...vmap(point_fn))): one vmap per dim (``lax.map`` for the model dim), mapping only
    that dim's entry of the input dict.

    ``keys`` are all entries of the input dict; entries not in ``dims`` are broadcast (fixed values).
    """
    fn = point_fn
    for dim in reversed(dims):
        fn = _map_models(fn, keys) if dim == "model" else jax.vmap(fn, in_axes=({k: (0 if k == dim else None) for k in keys},))
    return jax.jit(fn)


def _map_models(fn: Callable, keys: tuple[str, ...]) -> Callable:
    """Map ``fn`` over the model axis with ``lax.map`` (a loop), not ``vmap``: inside, the model is
    one model, so the kernels' branches on the architecture (``lax.cond`` on MoE, window layers)
    run only the branch that model needs instead of both."""
    def mapped(inputs: dict[str, Any]) -> Any:
        rest = {k: v for k, v in inputs.items() if k != "model"}
        return jax.lax.map(lambda model: fn({**rest, "model": model}), inputs["model"])
    return mapped


def point(inputs: dict[str, Any]) -> dict[str, jax.Array]:
    """One design point from the engine's input dict to the stored metrics (infeasible -> NaN)."""
    weight = inputs["weight_dtype"]
    # compute_dtype -1 ("auto"): the weight format's own compute precision (grids/dtypes.toml).
    compute = jnp.where(inputs["compute_dtype"] < 0.0, weight[1], inputs["compute_dtype"])
    dep = Deployment(tp=inputs["tp"], batch=inputs["batch"], weight_bytes_per_elem=weight[0],
                     kv_bytes_per_elem=inputs["kv_dtype"], act_bytes_per_elem=jnp.full_like(weight[0], 2.0),
                     compute_dtype=compute, scenario=inputs["scenario"])
    wl = Workload(input_len=inputs["input_len"], output_len=inputs["output_len"])
    m = mask_infeasible(evaluate(inputs["model"], inputs["gpu"], dep, wl, inputs["profile"]))
    out = {name: getattr(m, name) for name in STORED}
    out["bottleneck"] = out["bottleneck"].astype(jnp.int8)
    return out


def stack_specs(specs: list[Any], dtype: Any) -> Any:
    """Specs of one kind stacked leaf by leaf: the leading axis indexes the entries."""
    return jax.tree.map(lambda *leaves: jnp.asarray(np.stack([np.asarray(x) for x in leaves]), dtype=dtype), *specs)


def _weight_entry(name: str) -> tuple[float, float]:
    """(bytes per weight with scale overhead, code of the compute precision it runs at by default)."""
    return DTYPE_BYTES[name], compute_code(default_compute(name))


def axis_values(dim: str, names: list[Any], dtype: Any) -> Any:
    """The engine's stacked input values of one axis (leading axis = the coordinate)."""
    if dim == "model":
        return stack_specs([load_model(k).spec for k in names], dtype)
    if dim == "gpu":
        gpus = load_gpus()
        return stack_specs([gpus[k].spec for k in names], dtype)
    if dim == "profile":
        return stack_specs([load_profile(k).spec for k in names], dtype)
    if dim == "weight_dtype":
        entries = [_weight_entry(k) for k in names]
        return tuple(jnp.asarray([e[i] for e in entries], dtype=dtype) for i in range(2))
    if dim == "scenario":
        return jnp.asarray([SCENARIOS.index(k) for k in names], dtype=dtype)
    if dim == "kv_dtype":
        return jnp.asarray([KV_DTYPE_BYTES[k] for k in names], dtype=dtype)
    if dim == "compute_dtype":
        return jnp.asarray([-1.0 if k == "auto" else compute_code(k) for k in names], dtype=dtype)
    return jnp.asarray(names, dtype=dtype)


INPUT_KEYS = ("model", "gpu", "tp", "batch", "input_len", "output_len", "weight_dtype", "kv_dtype", "compute_dtype",
              "profile", "scenario")


@functools.lru_cache(maxsize=None)
def lifted_point(dims: tuple[str, ...]) -> Callable:
    """The compiled chunk function for these dims, shared by every sweep with the same dims, so a
    second sweep of the same chunk shape compiles nothing."""
    return lift(point, dims, INPUT_KEYS)


LANES = 8
"""float32 values per 256-bit SIMD register (AVX2): the innermost dim of a chunk is evaluated in
multiples of this (``Plan.padded_chunks``). Measured on the bench grid: an innermost dim of 23
ran 10-20% slower per point than one of 24."""


@dataclass
class Plan:
    """A sweep resolved to arrays: stacked inputs per axis, the chunk grid and the compiled function."""

    spec: SweepSpec
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]  # chunk shape
    values: dict[str, Any]  # per dim: stacked values along the dim; fixed: rank-0 values
    fn: Callable
    dtype: Any

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of chunks along each dim."""
        return tuple(math.ceil(n / c) for n, c in zip(self.shape, self.chunks))

    @property
    def n_chunks(self) -> int:
        return math.prod(self.grid)

    def chunk_ids(self) -> Iterator[tuple[int, ...]]:
        return itertools.product(*(range(g) for g in self.grid))

    def region(self, chunk_id: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(chunk_id, self.chunks, self.shape))

    @property
    def padded_chunks(self) -> tuple[int, ...]:
        """The shape each chunk is evaluated at: the chunk shape with its innermost dim rounded up
        to a multiple of ``LANES``, so that the compiled loops run whole SIMD vectors (the padding
        repeats edge values and is cropped)."""
        return (*self.chunks[:-1], -(-self.chunks[-1] // LANES) * LANES)

    def evaluate(self, chunk_id: tuple[int, ...]) -> dict[str, np.ndarray]:
        """The stored metrics of one chunk, cropped to the grid, as numpy arrays."""
        region = self.region(chunk_id)
        args = dict(self.values)
        for dim, sl, size in zip(self.dims, region, self.padded_chunks):
            idx = np.minimum(np.arange(sl.start, sl.start + size), sl.stop - 1)  # pad with the edge value
            args[dim] = jax.tree.map(lambda x, i=idx: x[i], self.values[dim])
        out = self.fn(args)
        crop = tuple(slice(0, s.stop - s.start) for s in region)
        return {k: np.asarray(v)[crop] for k, v in out.items()}


def chunk_shape(shape: tuple[int, ...], budget: int) -> tuple[int, ...]:
    """Chunk shape of at most ``budget`` points: whole inner dims, a slab of the dim that crosses."""
    chunks = [1] * len(shape)
    size = 1
    for axis in reversed(range(len(shape))):
        take = max(1, min(shape[axis], budget // size))
        chunks[axis] = take
        size *= take
        if take < shape[axis]:
            break
    return tuple(chunks)


def make_plan(spec: SweepSpec, chunk_points: int | None = None) -> Plan:
    """Resolve the spec's catalogue keys to stacked specs and compile the chunk function."""
    use_compilation_cache()
    dtype = np.float32 if spec.precision == "float32" else np.float64
    dims = tuple(spec.axes)
    values: dict[str, Any] = {dim: axis_values(dim, list(vals), dtype) for dim, vals in spec.axes.items()}
    for key, name in spec.fixed.items():
        values[key] = jax.tree.map(lambda x: x[0], axis_values(key, [name], dtype))
    chunks = chunk_shape(spec.shape, chunk_points or spec.chunk_points)
    return Plan(spec, dims, spec.shape, chunks, values, lifted_point(dims), dtype)


def params_by_model(spec: SweepSpec) -> np.ndarray:
    """Parameter counts per model in float64 (float32 cannot hold 70,553,706,496 exactly)."""
    return np.asarray([float(param_counts(load_model(k).spec).total) for k in spec.axes["model"]], np.float64)
