"""``optimize``: a sweep's SLO optimum, the batch that minimises cost under service-level
objectives for every other coordinate, solved inside the compiled program
(``kernels.optimum.slo_optimum``), as a Dataset without the batch dimension."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from grids.errors import SpecError
from grids.slo import OBJECTIVES, parse_slo
from grids.sweeps import SweepSpec, load_sweep
from kernels.optimum import Slo, at_batch, goodput, slo_optimum
from kernels.point import METRICS
from kernels.scenarios import REGISTRY, SCENARIOS
from kernels.sensitivity import ELASTIC_METRICS, GPU_NUMBERS, elasticities
from sweep.engine.label import template
from sweep.engine.plan import input_point, make_plan, spec_scenarios, stored, stored_names

__all__ = ["OBJECTIVES", "optimize", "optimum_fn", "parse_slo", "without_batch"]

if TYPE_CHECKING:
    import xarray as xr


def binding_meanings(slos: tuple[Slo, ...]) -> list[str]:
    """Names of the ``binding`` codes 0, 1, ...: the batch limit, then each objective."""
    return ["batch_limit", *(str(s).replace(" ", "") for s in slos)]


@functools.cache
def optimum_fn(slos: tuple[Slo, ...], sensitivity: bool = False, scenarios: tuple[str, ...] = ()) -> Any:
    """The engine's point function of the optimum under ``slos`` (one object per set of
    objectives, so the compiled program is shared); with ``sensitivity``, also the elasticities
    of ``ELASTIC_METRICS`` to the GPU's numbers at the optimal batch. ``scenarios``: those the
    sweep holds (only their branches are compiled; default: all)."""
    codes = tuple(SCENARIOS.index(name) for name in scenarios) or None
    names = stored_names(scenarios)

    def fn(inputs: dict[str, Any]) -> dict[str, jax.Array]:
        point = input_point(inputs)
        opt = slo_optimum(point, slos, codes)
        out = {**stored(opt.metrics, names), "optimal_batch": opt.batch, "binding": opt.binding.astype(jnp.int8)}
        if sensitivity:
            batch = jax.lax.stop_gradient(jnp.where(jnp.isnan(opt.batch), 1.0, opt.batch))
            found = jnp.isfinite(opt.batch)
            for name, values in elasticities(at_batch(point, batch), codes).items():
                out[f"elasticity_{name}"] = jnp.where(found, values, jnp.nan)
        return out

    return fn


@functools.cache
def goodput_fn(slos: tuple[Slo, ...], scenarios: tuple[str, ...] = ("poisson",)) -> Any:
    """The engine's point function of the goodput under ``slos`` of a sweep holding ``scenarios``
    (those with random arrivals: poisson, disaggregated)."""
    codes = tuple(SCENARIOS.index(name) for name in scenarios)
    names = stored_names(scenarios)

    def fn(inputs: dict[str, Any]) -> dict[str, jax.Array]:
        g = goodput(input_point(inputs), slos, codes)
        return {**stored(g.metrics, names), "goodput_rps": g.rate, "binding": g.binding.astype(jnp.int8)}

    return fn


def without_rate(spec: SweepSpec) -> SweepSpec:
    """The spec with its request_rate axis dropped (the goodput chooses the rate)."""
    axes = {k: v for k, v in spec.axes.items() if k != "request_rate"}
    return dataclasses.replace(spec, axes=axes, fixed={**spec.fixed, "request_rate": 1.0})


def without_batch(spec: SweepSpec) -> SweepSpec:
    """The spec with its batch axis dropped (the optimum chooses the batch)."""
    axes = {k: v for k, v in spec.axes.items() if k != "batch"}
    return dataclasses.replace(spec, axes=axes, fixed={**spec.fixed, "batch": 1})


def optimize(
    spec: SweepSpec | str, slos: list[Slo], minimize: str = "usd_per_mtok_output", sensitivity: bool = False
) -> xr.Dataset:
    """The SLO optimum of every configuration of ``spec`` (its batch axis, if any, is ignored):
    the batch meeting ``slos`` with the best ``minimize`` metric, and every metric there; with
    ``sensitivity``, the elasticities ``elasticity_<metric>`` over a ``gpu_number`` dim."""
    import xarray as xr

    if minimize not in OBJECTIVES:
        raise SpecError(f"--minimize: unknown objective '{minimize}'; expected one of: {', '.join(OBJECTIVES)}")
    spec = load_sweep(spec) if isinstance(spec, str) else spec
    key = tuple(slos)
    if any(REGISTRY[SCENARIOS.index(name)].random_arrivals for name in spec_scenarios(spec)):
        return _goodput(spec, key, minimize, sensitivity)
    spec = without_batch(spec)
    plan = make_plan(spec, fn=optimum_fn(key, sensitivity, spec_scenarios(spec)))
    ds = template(plan)
    elastic = [f"elasticity_{m}" for m in ELASTIC_METRICS] if sensitivity else []
    extra = {"optimal_batch": np.empty(plan.shape, plan.dtype), "binding": np.empty(plan.shape, np.int8)}
    extra.update({name: np.empty((*plan.shape, len(GPU_NUMBERS)), plan.dtype) for name in elastic})
    arrays = _evaluate_all(plan, ds, extra)
    meanings = binding_meanings(key)
    ds["optimal_batch"] = xr.Variable(
        plan.dims,
        arrays["optimal_batch"],
        attrs=dict(
            units="sequence",
            long_name="optimal batch",
            description="the batch (per micro-batch of a rank) that meets every objective at the best "
            f"{minimize}: the largest that meets them (kernels.optimum); NaN where none does",
        ),
    )
    ds["binding"] = _binding(
        plan,
        arrays["binding"],
        meanings,
        "what stops the batch growing: the batch limit (memory, the engine's limits) or the objective one "
        "more request would break; -1: no batch meets the objectives",
    )
    for metric, name in zip(ELASTIC_METRICS, elastic):
        ds[name] = xr.Variable(
            (*plan.dims, "gpu_number"),
            arrays[name],
            attrs=dict(
                units="1",
                long_name=f"elasticity of {METRICS[metric].long_name}",
                description=f"d ln {metric} / d ln (the GPU number), at the optimal batch, by forward-mode "
                "autodiff (kernels.sensitivity): % change per 1% change of the number",
            ),
        )
    if elastic:
        ds = ds.assign_coords(
            gpu_number=xr.Variable(
                "gpu_number",
                np.asarray(list(GPU_NUMBERS), dtype=np.dtypes.StringDType()),
                attrs=dict(
                    units="",
                    long_name="GPU number",
                    description="what is scaled: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in GPU_NUMBERS.items()),
                ),
            )
        )
    return _with_objectives(ds, key, minimize)


def _goodput(spec: SweepSpec, key: tuple[Slo, ...], minimize: str, sensitivity: bool) -> xr.Dataset:
    """``optimize`` of a sweep under random arrivals (poisson, disaggregated): per configuration
    the highest request rate meeting the objectives (its goodput), the cheapest, and every metric
    there."""
    import xarray as xr

    scenarios = spec_scenarios(spec)
    if not all(REGISTRY[SCENARIOS.index(name)].random_arrivals for name in scenarios):
        raise SpecError(
            "sweep optimize: a sweep holding the poisson or disaggregated scenario solves the request rate, "
            "the others the batch; optimize them in separate sweeps"
        )
    if sensitivity:
        raise SpecError(f"sweep optimize: --sensitivity is not available for the {'/'.join(scenarios)} scenario yet")
    spec = without_rate(spec)
    plan = make_plan(spec, fn=goodput_fn(key, scenarios))
    ds = template(plan)
    arrays = _evaluate_all(
        plan, ds, {"goodput_rps": np.empty(plan.shape, plan.dtype), "binding": np.empty(plan.shape, np.int8)}
    )
    meanings = ["not_sustainable", *(str(s).replace(" ", "") for s in key)]
    ds["goodput_rps"] = xr.Variable(
        plan.dims,
        arrays["goodput_rps"],
        attrs=dict(
            units="request/s",
            long_name="goodput",
            description="the highest request rate (to the whole deployment, arriving at random) that meets every "
            f"objective, where {minimize} is best (kernels.optimum.goodput); NaN where no rate does",
        ),
    )
    ds["binding"] = _binding(
        plan,
        arrays["binding"],
        meanings,
        "what stops the rate growing: sustainability (utilisation reaching 1) or the objective a higher rate "
        "would break; -1: no rate meets the objectives",
    )
    return _with_objectives(ds, key, minimize)


def _binding(plan: Any, values: np.ndarray, meanings: list[str], description: str) -> xr.Variable:
    """The optimum's binding constraint: -1 where no value met the objectives, else the index of
    ``meanings``."""
    import xarray as xr

    flags = {"flag_values": [-1, *range(len(meanings))], "flag_meanings": " ".join(["none_met", *meanings])}
    return xr.Variable(
        plan.dims, values, attrs={"units": "1", "long_name": "binding constraint", "description": description, **flags}
    )


def _with_objectives(ds: xr.Dataset, key: tuple[Slo, ...], minimize: str) -> xr.Dataset:
    """``ds`` marked complete, with the objectives it was solved under."""
    slo = " ".join(str(s) for s in key)
    ds.attrs.update(sweep_complete=1, slo=slo, objective=minimize, objective_sense=OBJECTIVES[minimize])
    return ds


def _evaluate_all(plan: Any, ds: xr.Dataset, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every chunk of ``plan`` into the stored metrics of ``ds`` (in place) and into ``extra``
    (the solved quantities, preallocated); returns all the arrays by name."""
    arrays = {name: np.empty(plan.shape, dtype=ds[name].dtype) for name in plan.stored}
    arrays.update(extra)
    for chunk_id in plan.chunk_ids():
        region = plan.region(chunk_id)
        for name, values in plan.evaluate(chunk_id).items():
            arrays[name][region] = values
    for name in plan.stored:
        ds[name] = ds[name].copy(data=arrays[name])
    return arrays
