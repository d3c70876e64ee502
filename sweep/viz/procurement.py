"""The buyer's figures from sweep data: the best cost per GPU type under the SLOs (rented and
owned), output throughput per GPU against speed per user (the Pareto view), cost against the
GPU's price with break-even prices, and which GPU number matters (a tornado of elasticities).

"Best" is over the sweep's own grid (tp, batch and any other dim left open), among feasible
points meeting ``TARGETS``; ``sweep optimize`` solves the batch exactly instead.
"""

from __future__ import annotations

import json
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from grids.errors import SpecError
from sweep.query.accessor import best_rows
from sweep.query.units import var_label
from sweep.viz.base import Picked, Sel, color, curve, ensure_backends, finish, labels, pareto_front, scatter, select

TARGETS = ("user_tok_s>=30", "ttft_s<=1")
"""The service-level objectives of these figures (and the report's best-configurations table)."""

OPEN = ("gpu", "tp", "batch", "pp", "dp", "weight_dtype", "kv_dtype", "expert_parallel", "usd_per_gpu_hour")
"""Dims a deployment may choose freely; the others (model, lengths, profile...) are held at one value."""


BEST_COLUMNS = ("usd_per_mtok_output", "usd_per_mtok_output_owned", "output_tok_s_per_gpu", "user_tok_s")


def _best(picked: Picked, metric: str) -> pd.DataFrame:
    """Per GPU, the point with the lowest ``metric`` meeting the targets (``ds.econ.best`` over
    the other open dims), one row each; GPUs where none does are left out."""
    sub = picked.ds
    over = [d for d in sub.dims if d != "gpu"]  # tp and batch at least: every sweep has them
    columns = [c for c in BEST_COLUMNS if c in sub and c != metric]
    return best_rows(sub.econ.best(metric, over, *TARGETS, columns=columns), metric, list(map(str, sub.dims)))


def _open(ds: xr.Dataset) -> tuple[str, ...]:
    return tuple(d for d in OPEN if d in ds.dims)


def best_per_gpu(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """The lowest cost per million output tokens of each GPU type meeting the targets, rented and
    owned (grids/ownership.toml), cheapest first; each bar over the deployments the sweep holds."""
    picked = select(ds, sel, free=_open(ds))
    best = _best(picked, "usd_per_mtok_output")
    if best.empty:
        raise SpecError(f"best-per-gpu: no GPU meets {' and '.join(TARGETS)} at {picked.subtitle()}")
    owned = _best(picked, "usd_per_mtok_output_owned") if "usd_per_mtok_output_owned" in ds else best.iloc[:0]
    best = best.sort_values("usd_per_mtok_output")
    x_dim = hv.Dimension("gpu", label="GPU type, cheapest rented first")
    y_dim = hv.Dimension("cost", label=var_label(picked.ds, "usd_per_mtok_output"))
    parts = [
        scatter(
            pd.DataFrame({"gpu": best["gpu"], "cost": best["usd_per_mtok_output"]}),
            x_dim,
            y_dim,
            "rented",
            color(0),
            size=10,
        )
    ]
    if "usd_per_mtok_output_owned" in owned:
        mine = owned.set_index("gpu").reindex(best["gpu"])["usd_per_mtok_output_owned"].dropna()
        if len(mine):
            frame = pd.DataFrame({"gpu": mine.index, "cost": mine.values})
            parts.append(
                scatter(frame, x_dim, y_dim, "owned (grids/ownership.toml)", color(2), size=10, marker="square")
            )
    return finish(
        hv.Overlay(parts),
        f"Best cost per GPU type at {' and '.join(TARGETS)}",
        picked,
        x_dim.label,
        y_dim.label,
        logy=True,
        legend="right",
        xrotation=30,
    )


def throughput_vs_interactivity(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Output tokens/s per GPU against tokens/s per user, per GPU type: the Pareto front over the
    deployments the sweep holds (what InferenceX shows from measurements), all feasible points
    faint. A GPU with no feasible point is left out of the legend."""
    picked = select(ds, sel, free=_open(ds))
    sub = picked.ds
    x_dim = hv.Dimension("speed", label=var_label(sub, "user_tok_s"))
    y_dim = hv.Dimension("thru", label=var_label(sub, "output_tok_s_per_gpu"))
    parts = []
    for i, gpu in enumerate(sub["gpu"].values):
        g = sub.sel(gpu=gpu)
        frame = pd.DataFrame(
            {"speed": g["user_tok_s"].values.ravel(), "thru": g["output_tok_s_per_gpu"].values.ravel()}
        ).dropna()
        if frame.empty:
            continue
        front = frame.iloc[pareto_front(frame["speed"].values, -frame["thru"].values)]
        parts += [
            curve(front, x_dim, y_dim, str(gpu), color(i)),
            scatter(front, x_dim, y_dim, str(gpu), color(i), size=6),
            scatter(frame, x_dim, y_dim, str(gpu), color(i), size=3, alpha=0.25),
        ]
    if not parts:
        raise SpecError(f"throughput-vs-interactivity: no feasible point at {picked.subtitle()}")
    return finish(
        hv.Overlay(parts),
        "Throughput per GPU vs speed per user: the Pareto front per GPU type",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        legend="right",
    )


def cost_vs_price(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Cost per million output tokens of each GPU type's best deployment at the targets against
    the price paid per GPU-hour (cost is proportional to it), from half to twice the price the
    sweep used; the dotted line is the cheapest GPU's cost, and each marker the break-even
    price at which that GPU would match it."""
    picked = select(ds, sel, free=_open(ds))
    best = _best(picked, "usd_per_mtok_output")
    if best.empty:
        raise SpecError(f"cost-vs-price: no GPU meets {' and '.join(TARGETS)} at {picked.subtitle()}")
    price_of = picked.ds["usd_per_gpu_hour"] if "usd_per_gpu_hour" in picked.ds.data_vars else None
    x_dim = hv.Dimension("price", label="price per GPU-hour (USD/h)")
    y_dim = hv.Dimension("cost", label=var_label(picked.ds, "usd_per_mtok_output"))
    floor = float(best["usd_per_mtok_output"].min())
    parts, marks = [], []
    for i, row in best.sort_values("usd_per_mtok_output").reset_index(drop=True).iterrows():
        if "usd_per_gpu_hour" in row:
            price = float(row["usd_per_gpu_hour"])
        elif price_of is not None:
            price = float(price_of.sel(gpu=row["gpu"]))
        else:
            raise SpecError("cost-vs-price: the sweep does not record the price each GPU used")
        per_dollar = row["usd_per_mtok_output"] / price  # $/Mtok per $/GPU-hour
        xs = np.asarray([0.5 * price, 2.0 * price])
        name = f"{row['gpu']} (at {price:.2f} USD/h: {row['usd_per_mtok_output']:.3f} USD/Mtok)"
        parts.append(curve(pd.DataFrame({"price": xs, "cost": xs * per_dollar}), x_dim, y_dim, name, color(int(i))))
        even = floor / per_dollar
        marks.append({"price": even, "cost": floor, "t": f"{row['gpu']} {even:.2f}"})
    ensure_backends()
    line = hv.HLine(floor).opts(backend="bokeh", color="#555555", line_dash="dotted")
    line = line.opts(backend="matplotlib", color="#555555", linestyle=":")
    points = pd.DataFrame(marks)
    fig = hv.Overlay(parts) * line * scatter(points, x_dim, [y_dim, "t"], "break-even price", "#222222", size=7)
    stagger = floor * (0.93 / 1.12 ** (np.arange(len(points)) % 3))  # labels of close prices apart
    fig = fig * labels(points.assign(cost=stagger), ["price", "cost"], "t", size=8, baseline="top")
    return finish(
        fig,
        "Cost vs GPU price: break-even against the cheapest",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        legend="right",
    )


def tornado(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Which number matters: the elasticities (% change per 1% more) of the rented and owned cost
    per million output tokens to each GPU number, at the cheapest deployment meeting the targets
    of the selected GPU (default: the cheapest GPU), by forward-mode autodiff
    (``kernels.sensitivity``)."""
    from sweep.query.explain import point_elasticities

    picked = select(ds, sel, free=_open(ds))
    best = _best(picked, "usd_per_mtok_output").sort_values("usd_per_mtok_output")
    if best.empty:
        raise SpecError(f"tornado: no GPU meets {' and '.join(TARGETS)} at {picked.subtitle()}")
    row = best.iloc[0]
    values = dict(json.loads(ds.attrs.get("sweep_spec", "{}")).get("fixed", {}))
    values = {k: v for k, v in values.items() if v is not None}
    values.update({d: v for d, v, _ in picked.chosen})
    values.update({d: row[d] for d in (*_open(ds), "gpu") if d in row})
    for name in ("model", "profile"):  # a coordinate label: the catalogue key the sweep used
        if name in values:
            values[name] = _key(ds, name, values[name])
    e = point_elasticities(values)
    rent, own = e["usd_per_mtok_output"], e["usd_per_mtok_output_owned"]
    names = sorted(rent, key=lambda k: max(abs(np.nan_to_num(rent[k])), abs(np.nan_to_num(own[k]))))
    x_dim = hv.Dimension("number", label="GPU number (1% more of it)")
    y_dim = hv.Dimension("e", label="elasticity of cost per million output tokens (% per 1%)")
    parts = []
    for i, (how, values, marker) in enumerate((("rented", rent, "circle"), ("owned", own, "square"))):
        frame = pd.DataFrame({"number": names[::-1], "e": [values[k] for k in names[::-1]]}).dropna()
        if len(frame):
            parts.append(scatter(frame, x_dim, y_dim, how, color(2 * i), size=10, marker=marker))
    ensure_backends()
    zero = hv.HLine(0.0).opts(backend="bokeh", color="#555555").opts(backend="matplotlib", color="#555555")
    point = ", ".join(f"{d}={row[d]}" for d in _open(ds) if d in row)
    return finish(
        hv.Overlay(parts) * zero,
        f"Which GPU number matters at {point}",
        picked,
        x_dim.label,
        y_dim.label,
        legend="right",
        xrotation=30,
    )


def _key(ds: xr.Dataset, dim: str, label: Any) -> Any:
    """The catalogue key or path behind a coordinate label (a config.json is labelled by its stem)."""
    spec = json.loads(ds.attrs.get("sweep_spec", "{}"))
    for value in spec.get("axes", {}).get(dim, []) + [spec.get("fixed", {}).get(dim)]:
        if isinstance(value, str) and (value == label or value.endswith((f"/{label}.json", f"/{label}.toml"))):
            return value
    return label
