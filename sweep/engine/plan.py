"""The engine's plan: lift the point kernels over the sweep's axes, compile once, evaluate chunk by chunk.

``lift`` wraps a function of one design point in one ``jax.vmap`` per dimension (outermost first,
so the output's axis order equals the dims order) and ``jax.jit`` once. Chunks all have the same
shape (the last ones padded by repeating their edge values), so a sweep compiles one program.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grids.axes import AXES
from grids.profiles import TERMS, load_profile
from grids.sweeps import SweepSpec
from kernels.point import METRICS, TERMS_LOG_SD, DesignPoint, Metrics, design_point, evaluate_point
from kernels.scenarios import SCENARIOS
from kernels.sensitivity import terms_log_sd


def use_compilation_cache() -> None:
    """Keep compiled chunk programs on disk (``$SWEEP_JAX_CACHE``, default ~/.cache/llm-econ-sweep/jax),
    so that a rerun, or each Dask worker process, loads the program instead of compiling it
    (about 2 s saved per process). Leaves a cache directory the user set alone."""
    if jax.config.values["jax_compilation_cache_dir"] is None:
        default = os.path.join(os.path.expanduser("~"), ".cache", "llm-econ-sweep", "jax")
        jax.config.update("jax_compilation_cache_dir", os.environ.get("SWEEP_JAX_CACHE", default))


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_HEAP_BLOCK_BYTES = 32 * 2**20  # glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc keep the blocks a chunk frees for the next chunk (True where it could).

    Each chunk's outputs are ~30 arrays of a few MB. By default glibc serves such blocks with fresh
    ``mmap`` calls and returns them on ``free``, so every chunk page-faults and zeroes its outputs
    again: on the bench grid (2-core VM) 1.5-1.8 s of 4.5-4.8 s was system time. With blocks up to
    32 MiB taken from the heap, which is not trimmed, the same chunks took 3.3-3.4 s (0.45-0.49 s
    system). A process setting, made when a sweep is planned (not at import); other C libraries
    (macOS, musl) are left as they are."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _HEAP_BLOCK_BYTES),
            (_M_TRIM_THRESHOLD, 2**31 - 1),
            (_M_TOP_PAD, 256 * 2**20),
        )
    )


def stored_names(scenarios: tuple[str, ...]) -> tuple[str, ...]:
    """Metrics a sweep holding ``scenarios`` stores on the full grid: those that depend on the model
    only (params_total) are stored once, those of one scenario (the poisson percentiles) only by a
    sweep that holds it."""
    return tuple(
        name
        for name, info in METRICS.items()
        if not info.per_model and (not info.scenarios or set(info.scenarios) & set(scenarios))
    )


STORED = stored_names(())
"""The metrics every sweep stores on the full grid (``Plan.stored``: those of one sweep)."""


def spec_speculative(spec: SweepSpec) -> bool:
    """Whether a sweep holds speculative decoding: draft_tokens swept, or fixed above 0."""
    return "draft_tokens" in spec.axes or spec.fixed.get("draft_tokens", 0) > 0


def spec_profiles(spec: SweepSpec) -> list[str]:
    """The profiles a sweep holds, in the profile axis's order (the fixed one, or the default)."""
    return (
        list(spec.axes["profile"]) if "profile" in spec.axes else [spec.fixed.get("profile") or AXES["profile"].default]
    )


def spec_scenarios(spec: SweepSpec) -> tuple[str, ...]:
    """The scenarios a sweep holds, in code order."""
    held = spec.axes.get("scenario") or [spec.fixed.get("scenario", AXES["scenario"].default)]
    return tuple(name for name in SCENARIOS if name in held)


TILE_BYTES = int(os.environ.get("SWEEP_TILE_BYTES", 2 * 2**20))
"""Bytes of one metric over a tile: the points a compiled chunk evaluates at once (vmapped, 524,288
in float32); the chunk's outer dims loop over such tiles (``lax.map``), so that a tile's ~20 live
intermediates stay in the CPU's last-level cache. On the bench grid (2-core AMD EPYC, 32 MiB L3)
tiles of 377k float32 points ran at 2.8-3.7e7 points/s, the whole 1.88M-point chunk at a time at
2.2e7, 754k-point tiles at 2.2e7 and 98k-point tiles at 2.5e7 (each loop step costs ~1.6 ms of
fixed overhead). ``$SWEEP_TILE_BYTES`` overrides it (a different tile is a different program to
compile). Two processes sharing the cache (a local Dask cluster's workers) ran at the same speed
with full, half and quarter tiles."""


def lift(
    point_fn: Callable[[dict[str, Any]], Any],
    dims: tuple[str, ...],
    keys: tuple[str, ...],
    shape: tuple[int, ...] | None = None,
    tile_points: int = TILE_BYTES // 4,
) -> Callable:
    """jit of ``point_fn`` lifted over ``dims``, one map per dim, mapping only that dim's entry of
    the input dict; entries of ``keys`` not in ``dims`` are broadcast (fixed values).

    Inner dims are vectorised with ``vmap`` up to ``tile_points`` points of ``shape`` (the chunk
    shape); the dim that crosses that size loops over batches of its entries (``lax.map`` with a
    batch size) and dims outside it loop entry by entry. The model dim always loops: inside, the
    model is one model, so the kernels' branches on the architecture (``lax.cond`` on MoE, window
    layers) run only the branch that model needs instead of both. A dim of one entry in the chunk
    is neither mapped nor looped: its entry is taken as the fixed value and the axis added to the
    output (each mapped dim costs tracing time: 11 nested maps took ~19 s to trace on this
    machine). Without ``shape`` every other dim is vmapped. The output's axis order equals ``dims``.
    """
    batch_sizes = _loop_batch_sizes(dims, shape, tile_points)
    fn = point_fn
    for axis in reversed(range(len(dims))):
        dim = dims[axis]
        if shape is not None and shape[axis] == 1:
            fn = _single(fn, dim)
        elif dim in batch_sizes:
            fn = _loop(fn, dim, batch_sizes[dim])
        else:
            fn = jax.vmap(fn, in_axes=({k: (0 if k == dim else None) for k in keys},))
    return jax.jit(fn)


def _loop_batch_sizes(dims: tuple[str, ...], shape: tuple[int, ...] | None, tile_points: int) -> dict[str, int | None]:
    """Dims evaluated by a loop, each with the entries vectorised per iteration (None: one)."""
    loops: dict[str, int | None] = {dim: None for dim in dims if AXES[dim].loop}
    if shape is None:
        return loops
    inner = 1
    for axis in reversed(range(len(dims))):
        dim, size = dims[axis], shape[axis]
        if dim in loops:
            continue
        if inner * size <= tile_points:
            inner *= size
        elif inner < tile_points and tile_points // inner > 1:
            loops[dim] = tile_points // inner
            inner = tile_points
        else:
            loops[dim] = None
    return loops


def _single(fn: Callable, dim: str) -> Callable:
    """``fn`` over a dim of one entry: that entry as a fixed value, the output with the axis."""

    def one(inputs: dict[str, Any]) -> Any:
        out = fn({**inputs, dim: jax.tree.map(lambda x: x[0], inputs[dim])})
        return jax.tree.map(lambda y: y[None], out)

    return one


def _loop(fn: Callable, dim: str, batch_size: int | None) -> Callable:
    """Map ``fn`` over ``dim`` with ``lax.map`` (a loop; ``batch_size`` entries vmapped per step)."""

    def mapped(inputs: dict[str, Any]) -> Any:
        rest = {k: v for k, v in inputs.items() if k != dim}
        return jax.lax.map(lambda x: fn({**rest, dim: x}), inputs[dim], batch_size=batch_size)

    return mapped


def input_point(inputs: dict[str, Any]) -> DesignPoint:
    """The design point of the engine's inputs (per axis, its named kernel inputs, grids.axes)."""
    named: dict[str, Any] = {}
    for encoded in inputs.values():
        named.update(encoded)
    return design_point(**named)


def stored(m: Metrics, names: tuple[str, ...] = STORED) -> dict[str, jax.Array]:
    """The metrics ``names`` (default: those every sweep stores), in their stored dtypes."""
    return {name: getattr(m, name).astype(STORED_DTYPES.get(name, getattr(m, name).dtype)) for name in names}


DIRECTIONS = "profile_term_directions"
"""The profile axis's extra input in a sweep with ``term_intervals``: per profile, the directions
of its fitted terms' covariance (``term_directions``)."""


def term_directions(profiles: list[str], dtype: Any) -> np.ndarray:
    """Per profile, its fitted terms' covariance ([fit.covariance]) as K directions over all the
    profile's fields (shape (profiles, K, fields)): eigenvectors scaled by the square roots of
    their eigenvalues, so that sum_k v_k v_k^T is the covariance; zero where a profile records none
    (K is the most terms any of them fitted, at least 1)."""
    fields = list(TERMS)
    found = [load_profile(name).covariance() for name in profiles]
    k = max([len(c[0]) for c in found if c is not None] + [1])
    out = np.zeros((len(profiles), k, len(fields)))
    for p, recorded in enumerate(found):
        if recorded is None:
            continue
        names, rows = recorded
        values, vectors = np.linalg.eigh(np.asarray(rows, dtype=np.float64))
        scaled = vectors * np.sqrt(np.maximum(values, 0.0))  # column j: direction j
        for i, name in enumerate(names):
            out[p, : len(names), fields.index(name)] = scaled[i]
    return out.astype(dtype)


def sweep_stored(scenarios: tuple[str, ...], term_intervals: bool) -> tuple[str, ...]:
    """The variables a sweep stores on its grid: the metrics of its scenarios, and with
    ``term_intervals`` each interval metric's spread from the fitted terms."""
    return stored_names(scenarios) + (tuple(TERMS_LOG_SD.values()) if term_intervals else ())


@functools.cache
def point_fn(
    scenarios: tuple[str, ...], speculative: bool = True, term_intervals: bool = False
) -> Callable[[dict[str, Any]], dict[str, jax.Array]]:
    """The engine's point function of a sweep holding ``scenarios``: only their branches are
    compiled and their metrics stored (one object per set, so compiled programs are shared).
    Without ``speculative`` (a sweep whose draft_tokens is 0 throughout) the draft length is the
    constant 0, so the speculative branch (``kernels.speculative.serving_step``) is not compiled.
    With ``term_intervals``, also each interval metric's spread from the profile's fitted terms
    (``kernels.sensitivity.terms_log_sd``; the profile axis carries ``DIRECTIONS``)."""
    codes = tuple(SCENARIOS.index(name) for name in scenarios)
    names = stored_names(scenarios)

    def point(inputs: dict[str, Any]) -> dict[str, jax.Array]:
        """One design point from the engine's inputs to the stored metrics (infeasible -> NaN)."""
        if not speculative:
            k = inputs["draft_tokens"]["draft_tokens"]
            inputs = {**inputs, "draft_tokens": {"draft_tokens": np.zeros((), dtype=k.dtype)}}
        if not term_intervals:
            return stored(evaluate_point(input_point(inputs), codes), names)
        profile = dict(inputs["profile"])
        directions = profile.pop(DIRECTIONS)
        metrics, sd = terms_log_sd(input_point({**inputs, "profile": profile}), directions, codes)
        return {**stored(metrics, names), **{TERMS_LOG_SD[name]: value for name, value in sd.items()}}

    return point


point = point_fn(tuple(name for name in SCENARIOS if stored_names((name,)) == STORED))
"""The point function of sweeps without a scenario of their own metrics (static, concurrency,
max_throughput): the common metrics."""


STORED_DTYPES = {name: jnp.int8 for name, info in METRICS.items() if info.dtype == "int8"}
"""Metrics stored narrower than they are computed (the bottleneck code)."""


def axis_values(dim: str, values: list[Any], dtype: Any) -> Any:
    """The engine's inputs of one axis: its named kernel inputs stacked along the coordinate, on the host."""
    return jax.tree.map(lambda x: np.asarray(x, dtype=dtype), AXES[dim].encode(values))


INPUT_KEYS = tuple(AXES)


PointFn = Callable[[dict[str, Any]], dict[str, jax.Array]]
"""A function of one design point's engine inputs to named results (``point``: the stored metrics)."""


@functools.cache
def lifted_point(dims: tuple[str, ...], shape: tuple[int, ...], itemsize: int, fn: PointFn = point) -> Callable:
    """The compiled chunk function of ``fn`` for these dims, chunk shape and float width [byte],
    shared by every sweep with the same, so a second such sweep compiles nothing."""
    return lift(fn, dims, INPUT_KEYS, shape, TILE_BYTES // itemsize)


LANES = 8
"""float32 values per 256-bit SIMD register (AVX2): the innermost dim of a chunk is evaluated in
multiples of this (``Plan.padded_chunks``). Measured on the bench grid: an innermost dim of 23
ran 10-20% slower per point than one of 24."""


def padded(chunks: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a chunk is evaluated at: its innermost dim rounded up to a multiple of ``LANES``,
    so that the compiled loops run whole SIMD vectors (the padding repeats edge values and is
    cropped). An innermost dim shorter than ``LANES`` is left as it is: padding a dim of 1 to 8
    evaluated every point 8 times (a 9-configuration goodput took 65 s instead of 8 s)."""
    if chunks[-1] < LANES:
        return chunks
    return (*chunks[:-1], -(-chunks[-1] // LANES) * LANES)


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
    stored: tuple[str, ...] = STORED  # the metrics this sweep stores on its grid

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
        return padded(self.chunks)

    def evaluate(self, chunk_id: tuple[int, ...]) -> dict[str, np.ndarray]:
        """The stored metrics of one chunk, cropped to the grid, as numpy arrays."""
        with jax.enable_x64(self.dtype == np.float64):
            return self._evaluate(chunk_id)

    def _evaluate(self, chunk_id: tuple[int, ...]) -> dict[str, np.ndarray]:
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


def make_plan(spec: SweepSpec, chunk_points: int | None = None, fn: PointFn | None = None) -> Plan:
    """Resolve the spec's catalogue keys to stacked specs and compile the chunk function of ``fn``
    (default: the stored metrics of each point, ``point_fn`` of the spec's scenarios)."""
    with jax.enable_x64(spec.precision == "float64"):
        return _make_plan(spec, chunk_points, fn)


def _make_plan(spec: SweepSpec, chunk_points: int | None, fn: PointFn | None) -> Plan:
    use_compilation_cache()
    keep_freed_memory()
    scenarios = spec_scenarios(spec)
    spread = spec.term_intervals and fn is None  # a caller's own point function stores its own results
    fn = point_fn(scenarios, spec_speculative(spec), spread) if fn is None else fn
    dtype = np.float32 if spec.precision == "float32" else np.float64
    dims = tuple(spec.axes)
    values: dict[str, Any] = {dim: axis_values(dim, list(vals), dtype) for dim, vals in spec.axes.items()}
    for key, value in spec.fixed.items():
        values[key] = jax.tree.map(lambda x: np.asarray(x[0]), axis_values(key, [value], dtype))
    if spread:
        directions = term_directions(spec_profiles(spec), dtype)
        values["profile"] = {**values["profile"], DIRECTIONS: directions if "profile" in spec.axes else directions[0]}
    # Host (numpy) arrays: a chunk's inputs are gathered by numpy indexing in microseconds, where
    # indexing ~60 device arrays costs ~15 ms of dispatch per chunk (measured).
    values = jax.tree.map(np.asarray, values)
    chunks = chunk_shape(spec.shape, chunk_points or spec.chunk_points)
    return Plan(
        spec,
        dims,
        spec.shape,
        chunks,
        values,
        lifted_point(dims, padded(chunks), np.dtype(dtype).itemsize, fn),
        dtype,
        sweep_stored(scenarios, spread),
    )
