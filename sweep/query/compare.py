"""``compare``: one table per decision. For each GPU type, its cheapest deployment of one model
and request shape that meets the service-level objectives, over tensor and pipeline parallelism,
number formats and expert parallelism, with the batch solved exactly (``sweep.engine.optimize``);
rented and owned cost, energy, and the rental price at which it would match the best. With a
demand (requests/s), the replicas and whole nodes to serve it and their monthly cost; with a
budget ($/h), the most output tokens/s it buys."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grids.gpus import load_gpus
from grids.models import load_model
from grids.profiles import load_profile
from grids.sweeps import validate
from kernels.economics import SECONDS_PER_HOUR, TOKENS_PER_MTOK
from kernels.optimum import Slo
from kernels.ownership import HOURS_PER_MONTH
from kernels.point import interval, widen_interval
from sweep.engine.optimize import optimize
from sweep.query.explain import point_terms_log_sd

TP = [1, 2, 4, 8]
PP = [1, 2, 4]
"""The parallelism searched: tensor parallelism inside a node, pipeline stages across nodes."""

COLUMNS = (
    "gpu",
    "n_gpus",
    "tp",
    "pp",
    "dp",
    "weight_dtype",
    "kv_dtype",
    "expert_parallel",
    "batch",
    "usd_per_mtok_output",
    "usd_per_mtok_output_owned",
    "output_tok_s_per_gpu",
    "user_tok_s",
    "ttft_s",
    "joules_per_output_token",
    "break_even_usd_per_gpu_hour",
)
"""The JSON keys of a row, in order (more with --demand-rps or --budget-usd-per-hour)."""


@dataclass
class Comparison:
    """The rows (one per GPU type, best first) and what they answer."""

    rows: list[dict[str, Any]]
    objective: str  # the $/Mtok ranked by: rented or owned
    slos: list[Slo]
    profile: str  # its stated 80% interval gives each row's _p10 and _p90
    notes: list[str] = field(default_factory=list)


def compare(
    model: str,
    input_len: int,
    output_len: int,
    slos: list[Slo],
    *,
    gpus: list[str] | None = None,
    own: bool = False,
    profile: str = "vllm",
    weight_dtypes: list[str] | None = None,
    kv_dtypes: list[str] | None = None,
    demand_rps: float | None = None,
    budget_usd_per_hour: float | None = None,
    values: dict[str, Any] | None = None,
) -> Comparison:
    """Each GPU type's cheapest deployment meeting ``slos`` (see the module docstring).

    ``values``: fixed values of further axes (e.g. usd_per_kwh=0.1, pue=1.3, amortization_years=3).
    """
    catalogue = load_gpus()
    gpus = gpus or list(catalogue)
    moe = float(load_model(model).spec.n_experts) > 0
    objective = "usd_per_mtok_output_owned" if own else "usd_per_mtok_output"
    axes: dict[str, Any] = dict(
        model=[model],
        gpu=gpus,
        tp=TP,
        pp=PP,
        batch=[1],
        input_len=[input_len],
        output_len=[output_len],
        weight_dtype=weight_dtypes or ["bf16", "fp8"],
        kv_dtype=kv_dtypes or ["bf16", "fp8"],
        expert_parallel=["off", "on"] if moe else ["off"],
    )
    fixed = dict(profile=profile, scenario="concurrency", **(values or {}))
    spec = validate(dict(name="compare", axes=axes, fixed=fixed, engine=dict(precision="float64")), "sweep compare")
    ds = optimize(spec, slos, objective)
    stated = load_profile(profile)
    table = ds.drop_vars([v for v in ds.data_vars if v not in _NEEDED]).to_dataframe().reset_index()
    solved = set(table.loc[np.isfinite(table["optimal_batch"]), "gpu"].astype(str))
    table = table[np.isfinite(table[objective])]
    table["dp"] = 1  # replicas are counted by --demand-rps / --budget-usd-per-hour instead
    table["n_gpus"] = table["tp"] * table["pp"]
    rows: list[dict[str, Any]] = []
    for gpu, group in table.groupby("gpu", sort=False):
        entry = catalogue[str(gpu)]
        price = _value(values, "usd_per_gpu_hour", entry.table["usd_per_hour"])
        per_node = float(entry.table["gpus_per_node"])
        group = group.copy()
        if demand_rps is not None:
            _demand(group, demand_rps, output_len, per_node, price, own)
            pick = group.sort_values(["usd_per_month", objective], kind="stable").index[0]  # ties: cheaper tokens
        elif budget_usd_per_hour is not None:
            _budget(group, budget_usd_per_hour, price, own)
            if not (group["output_tok_s_total"] > 0).any():
                continue
            pick = group.sort_values(["output_tok_s_total", objective], ascending=[False, True], kind="stable").index[0]
        else:
            pick = group[objective].idxmin()
        row = _row(group.loc[pick], price)
        lo, hi = stated.interval(str(gpu), fixed["scenario"], model)
        # widened by what the profile's fit left uncertain in its terms at this deployment
        at = dict(fixed, model=model, gpu=str(gpu), input_len=input_len, output_len=output_len)
        at.update({k: row[k] for k in ("tp", "pp", "batch", "weight_dtype", "kv_dtype")})
        at["expert_parallel"] = "on" if row["expert_parallel"] else "off"
        sd = point_terms_log_sd(at)
        for name in ("usd_per_mtok_output", "usd_per_mtok_output_owned", "output_tok_s_per_gpu"):
            wide = widen_interval(lo, hi, sd.get(name, math.nan))
            row[f"{name}_p10"], row[f"{name}_p90"] = (float(x) for x in interval(row[name], name, *wide))
        rows.append(row)
    if budget_usd_per_hour is not None:
        rows.sort(key=lambda r: -r["output_tok_s_total"])
    else:
        rows.sort(key=lambda r: r["usd_per_month"] if demand_rps is not None else r[objective])
    if rows:
        best = rows[0][objective]
        for row in rows:  # the rental price at which this deployment's $/Mtok equals the best one's
            row["break_even_usd_per_gpu_hour"] = best * row["output_tok_s_per_gpu"] * SECONDS_PER_HOUR / TOKENS_PER_MTOK
    price_flag = "--capex-usd-per-gpu" if own else "--usd-per-gpu-hour"
    notes = [
        f"{g}: meets the objectives but has no {'purchase' if own else 'rental'} price in the catalogue ({price_flag})"
        if g in solved
        else f"{g}: no deployment meets the objectives"
        for g in gpus
        if g not in {r["gpu"] for r in rows}
    ]
    return Comparison(rows, objective, slos, stated.name, notes)


_NEEDED = {
    "optimal_batch",
    "usd_per_mtok_output",
    "usd_per_mtok_output_owned",
    "output_tok_s",
    "output_tok_s_per_gpu",
    "user_tok_s",
    "ttft_s",
    "joules_per_output_token",
    "usd_per_hour_owned",
}


def _value(values: dict[str, Any] | None, name: str, default: float) -> float:
    value = (values or {}).get(name)
    return float(default if value is None else value)


def _demand(group: Any, rps: float, output_len: int, per_node: float, price: float, own: bool) -> None:
    """Replicas and whole nodes to serve ``rps`` requests/s, and their cost per month."""
    per_replica = group["output_tok_s"] / output_len  # requests/s one deployment completes
    group["replicas"] = np.ceil(rps / per_replica)
    group["gpus_total"] = np.ceil(group["replicas"] * group["n_gpus"] / per_node) * per_node
    per_gpu_hour = group["usd_per_hour_owned"] / group["n_gpus"] if own else price
    group["usd_per_month"] = group["gpus_total"] * per_gpu_hour * HOURS_PER_MONTH


def _budget(group: Any, budget: float, price: float, own: bool) -> None:
    """Replicas that ``budget`` USD/h pays for, and the output tokens/s they serve."""
    per_replica = group["usd_per_hour_owned"] if own else group["n_gpus"] * price
    group["replicas"] = np.floor(budget / per_replica)
    group["gpus_total"] = group["replicas"] * group["n_gpus"]
    group["output_tok_s_total"] = group["replicas"] * group["output_tok_s"]


def _row(r: Any, price: float) -> dict[str, Any]:
    row: dict[str, Any] = dict(
        gpu=str(r["gpu"]),
        n_gpus=int(r["n_gpus"]),
        tp=int(r["tp"]),
        pp=int(r["pp"]),
        dp=int(r["dp"]),
        weight_dtype=str(r["weight_dtype"]),
        kv_dtype=str(r["kv_dtype"]),
        expert_parallel=str(r["expert_parallel"]) == "on",
        batch=int(r["optimal_batch"]),
        usd_per_gpu_hour=price,
    )
    for name in _NEEDED - {"optimal_batch"}:
        row[name] = float(r[name])
    # owning beats renting above this rental price (the owned cost per GPU-hour)
    row["rent_break_even_usd_per_gpu_hour"] = row["usd_per_hour_owned"] / row["n_gpus"]
    for name in ("replicas", "gpus_total", "usd_per_month", "output_tok_s_total"):
        if name in r:
            row[name] = float(r[name])
    return row
