"""The article's figures from sweep data: one function per kind, each ``f(ds, sel) -> HoloViews object``.

``sel`` maps dims to values (``{"gpu": "h200", "input_len": 2048}``); a dim a figure does not show
and ``sel`` leaves open gets a default (see ``sweep.viz.base.pick``), and the figure's title says
which values it holds fixed, defaults marked ``*``. Values are shown in display units
(``sweep.query.units``: GB = 1e9 bytes, ms, tokens/s, $/Mtok) and every axis label names its unit.

Reference: the article "LLM inference economics from first principles" (its KV-cache, batching,
prefill/decode and roofline figures); Williams, Waterman & Patterson, "Roofline: an insightful
visual performance model", CACM 52(4), 2009.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from grids.errors import SpecError
from grids.gpus import load_gpus
from sweep.query.units import GPU_FIELDS, label, log2_ticks, var_label
from sweep.viz.base import Picked, Sel, color, curve, ensure_backends, finish, labels, pareto_front, scatter, select
from sweep.viz.kinds import KIND_DESCRIPTIONS
from sweep.viz.procurement import best_per_gpu, cost_vs_price, throughput_vs_interactivity, tornado
from sweep.viz.speculative import speculative_speedup


def _hline(y: float, text: str, x: float, color_: str = "#555555") -> hv.Overlay:
    """A dashed horizontal reference line with its label at (x, y), just above the line."""
    ensure_backends()
    line = hv.HLine(y).opts(backend="bokeh", color=color_, line_dash="dotted", line_width=1.5)
    line = line.opts(backend="matplotlib", color=color_, linestyle=":", linewidth=1.2)
    return line * labels(
        pd.DataFrame({"x": [x], "y": [y * 1.06], "t": [text]}), ["x", "y"], "t", color=color_, baseline="bottom"
    )


def _vline(
    x: float, text: str, y: float, color_: str = "#555555", align: str = "left", span: tuple[float, float] | None = None
) -> hv.Overlay:
    """A dotted vertical reference line with its label beside it at height y; given the x ``span``
    of a log axis, the label goes on the side with more room."""
    ensure_backends()
    if span is not None and np.log(x) > 0.5 * (np.log(span[0]) + np.log(span[1])):
        align = "right"
    line = hv.VLine(x).opts(backend="bokeh", color=color_, line_dash="dotted", line_width=1.5)
    line = line.opts(backend="matplotlib", color=color_, linestyle=":", linewidth=1.2)
    shift = 1.04 if align == "left" else 1 / 1.04
    return line * labels(
        pd.DataFrame({"x": [x * shift], "y": [y], "t": [text]}), ["x", "y"], "t", color=color_, align=align
    )


def _gpu_table(key: str) -> dict[str, Any]:
    gpus = load_gpus()
    if key not in gpus:
        raise SpecError(f"unknown GPU '{key}'; expected one of: {', '.join(gpus)}")
    return gpus[key].table


def _scalar(picked: Picked, dim: str) -> Any:
    return picked.ds[dim].item()


def kv_vs_context(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """KV-cache bytes per GPU vs context length, one line per model (log2 x axis, log y axis).

    M_kv = 2 L K H T B b_kv grows linearly with the context T = prompt + output - 1; the dashed
    line is the selected GPU's memory. Defaults: tp = batch = the smallest, output_len the shortest.
    """
    picked = select(ds, sel, free=("model", "input_len"), prefer={"output_len": "min", "tp": "min"})
    sub, out_len = picked.ds, int(_scalar(picked, "output_len"))
    context = sub["input_len"].values + out_len - 1
    gb = sub["kv_cache_bytes"] / 1e9
    x_dim = hv.Dimension("context", label="context length = prompt + output − 1 (tokens)")
    y_dim = hv.Dimension("kv_gb", label=label(sub["kv_cache_bytes"].attrs["long_name"], "GB"))
    groups: list[tuple[list[str], np.ndarray]] = []  # models with the same KV cache share a line
    for m in sub["model"].values:
        values = gb.sel(model=m).values
        same = [g for g in groups if np.allclose(g[1], values, rtol=1e-6, equal_nan=True)]
        if same:
            same[0][0].append(str(m))
        else:
            groups.append(([str(m)], values))
    lines, dots = [], []
    for i, (names, values) in enumerate(groups):
        frame = pd.DataFrame({"context": context, "kv_gb": values})
        lines.append(curve(frame, x_dim, y_dim, " = ".join(names), color(i)))
        dots.append(scatter(frame, x_dim, y_dim, " = ".join(names), color(i), size=6))
    gpu = _gpu_table(str(_scalar(picked, "gpu")))
    fig = hv.Overlay(lines + dots) * _hline(
        gpu["hbm_bytes"] / 1e9, f"{gpu['name']}: {gpu['hbm_bytes'] / 1e9:.0f} GB", float(context.min())
    )
    return finish(
        fig,
        "KV cache vs context length",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        xticks=log2_ticks(context),
        legend="right",
    )


def throughput_vs_batch(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Total (replica) and per-user output throughput vs batch size, log-log.

    Batching reuses each weight read for B sequences: total throughput grows almost linearly in B
    until compute or the KV cache dominates, while each user's speed falls. Past the largest batch
    that fits (marked), a static batch runs in waves and throughput stops growing.
    """
    picked = select(ds, sel, free=("batch",))
    sub = picked.ds
    batch = sub["batch"].values
    x_dim = hv.Dimension("batch", label=var_label(sub, "batch"))
    y_dim = hv.Dimension("tok_s", label="output throughput (tokens/s)")
    total = pd.DataFrame({"batch": batch, "tok_s": sub["output_tok_s"].values})
    user = pd.DataFrame({"batch": batch, "tok_s": sub["user_tok_s"].values})
    if not np.isfinite(total["tok_s"].values).any():
        raise SpecError(f"throughput-vs-batch: no batch can run at {picked.subtitle()}; choose another selection")
    fig = (
        curve(total, x_dim, y_dim, "total, whole replica", color(0))
        * scatter(total, x_dim, y_dim, "total, whole replica", color(0), size=6)
        * curve(user, x_dim, y_dim, "per user (1 / TPOT)", color(1), dash=True)
        * scatter(user, x_dim, y_dim, "per user (1 / TPOT)", color(1), size=6)
    )
    fits = float(np.nanmax(sub["max_batch"].values))
    if batch.min() <= fits < batch.max():
        y = float(np.sqrt(np.nanmin(user["tok_s"]) * np.nanmax(total["tok_s"])))
        fig = fig * _vline(
            fits,
            f"largest batch that fits: {fits:,.0f}\n(larger ones run in waves)",
            y,
            span=(batch.min(), batch.max()),
        )
    return finish(
        fig,
        "Throughput vs batch size",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        xticks=log2_ticks(batch, lambda v: f"{v:,.0f}"),
        legend="right",
    )


def kv_per_sequence(sub: xr.Dataset) -> xr.DataArray:
    """KV-cache bytes per GPU of one sequence at its longest (I + O - 1 tokens), from the sweep.

    ``kv_cache_bytes`` holds the sequences in flight: ``batch_in_flight`` of them where the point
    runs (a static batch larger than fits runs in waves), the whole batch where it cannot.
    """
    kv = sub["kv_cache_bytes"]
    if "batch_in_flight" not in sub:
        return kv / sub["batch"]
    in_flight = sub["batch_in_flight"]
    return xr.where(np.isfinite(in_flight) & (in_flight > 0), kv / in_flight, kv / sub["batch"])


def kv_vs_weights(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Weights and the KV cache of B sequences per GPU vs batch size: where the KV cache overtakes.

    The weights are held (and read every step) once whatever B; the KV cache of B sequences grows
    as B (I + O - 1) m_kv. They are equal at B* = M_w / (I + O - 1) m_kv (marked). The dotted line
    is the GPU's memory: beyond it a static batch runs in waves.
    """
    picked = select(ds, sel, free=("batch",))
    sub = picked.ds
    batch = sub["batch"].values.astype(float)
    weights_gb = float(sub["weight_bytes"].values.flat[0]) / 1e9
    per_seq_gb = float(np.nanmedian(kv_per_sequence(sub).values)) / 1e9
    kv_gb = batch * per_seq_gb
    x_dim = hv.Dimension("batch", label=var_label(sub, "batch"))
    y_dim = hv.Dimension("gb", label="memory per GPU (GB)")
    kv = pd.DataFrame({"batch": batch, "gb": kv_gb})
    w = pd.DataFrame({"batch": batch, "gb": np.full_like(batch, weights_gb)})
    both = pd.DataFrame({"batch": batch, "gb": kv_gb + weights_gb})
    crossover = weights_gb / per_seq_gb
    fig = (
        curve(w, x_dim, y_dim, "weights", color(0))
        * curve(kv, x_dim, y_dim, "KV cache of the batch", color(3))
        * scatter(kv, x_dim, y_dim, "KV cache of the batch", color(3), size=6)
        * curve(both, x_dim, y_dim, "weights + KV cache", "#444444", dash=True, width=1.5)
    )
    gpu = _gpu_table(str(_scalar(picked, "gpu")))
    fig = fig * _hline(gpu["hbm_bytes"] / 1e9, f"{gpu['name']}: {gpu['hbm_bytes'] / 1e9:.0f} GB", batch.min())
    if batch.min() <= crossover <= batch.max():
        fig = fig * _vline(
            crossover,
            f"KV cache = weights at batch ≈ {crossover:,.0f}",
            float(kv_gb.min()),
            color_=color(3),
            span=(batch.min(), batch.max()),
        )
        main = f"The KV cache overtakes the weights at batch ≈ {crossover:,.0f}"
    elif crossover > batch.max():
        main = f"KV cache below the weights up to batch {batch.max():,.0f} (equal at ≈ {crossover:,.0f})"
    else:
        main = f"KV cache above the weights from batch {batch.min():,.0f} (equal at ≈ {crossover:,.3g})"
    return finish(
        fig,
        main,
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        xticks=log2_ticks(batch, lambda v: f"{v:,.0f}"),
        legend="right",
    )


def prefill_share(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Share of GPU time spent in prefill vs prompt length, one line per output length.

    share = n P / (n P + D): P one prefill pass (``prefill_s``), D the decode steps (``decode_s``),
    n = 1 for a static batch (P prefills the batch) and the sequences in flight for the steady
    scenarios (P is one prompt's). For one request (the default, batch 1) it is the share of its
    latency spent in prefill. Short prompts with long answers are decode (memory) bound; long
    prompts shift time to the compute-bound prefill.
    """
    picked = select(ds, sel, free=("input_len", "output_len"))
    sub = picked.ds
    prefill = sub["prefill_s"]
    if picked.value("scenario", ds, "static") != "static" and "batch_in_flight" in sub:
        prefill = prefill * sub["batch_in_flight"]
    share = 100.0 * prefill / (prefill + sub["decode_s"])
    if not np.isfinite(share.values).any():
        raise SpecError(f"prefill-share: no point can run at {picked.subtitle()}; choose another selection")
    prompt = sub["input_len"].values
    x_dim = hv.Dimension("input_len", label=var_label(sub, "input_len"))
    y_dim = hv.Dimension("share", label="time in prefill (% of prefill + decode)")
    parts = []
    for i, out in enumerate(sub["output_len"].values):
        frame = pd.DataFrame({"input_len": prompt, "share": share.sel(output_len=out).values})
        name = f"{int(out):,} output token{'' if int(out) == 1 else 's'}"
        parts += [curve(frame, x_dim, y_dim, name, color(i)), scatter(frame, x_dim, y_dim, name, color(i), size=6)]
    return finish(
        hv.Overlay(parts),
        "Share of request time spent in prefill",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        xticks=log2_ticks(prompt),
        ylim=(0, 105),
        legend="right",
    )


def _spread_labels(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Label heights that do not overlap on log-log axes: a label within 0.05 decades in height
    and 0.3 decades in width of one already placed moves down a line."""
    lx, ly = np.log10(x), np.log10(y)
    placed: list[tuple[float, float]] = []
    out = np.empty_like(ly)
    for i in np.argsort(-ly, kind="stable"):
        height = ly[i]
        while any(abs(height - h) < 0.05 and abs(lx[i] - w) < 0.3 for w, h in placed):
            height -= 0.055
        placed.append((lx[i], height))
        out[i] = height
    return 10**out


def gpu_catalog(ds: xr.Dataset | None = None, sel: Sel = None) -> hv.Overlay:
    """Memory size vs memory bandwidth of every GPU of the catalogue (grids/gpus.toml), labelled.

    The two numbers that bound decode: bandwidth sets how fast weights and KV cache are read per
    token, size how large a model, batch and context fit. Uses the catalogue, not the sweep; the
    GPUs of ``ds`` (if given) are drawn larger.
    """
    in_sweep = set(ds["gpu"].values.tolist()) if ds is not None and "gpu" in ds.dims else set()
    rows = [
        dict(
            key=k,
            name=e.table["name"],
            vendor=e.table["vendor"],
            bw=e.table["hbm_bytes_per_s"] / 1e12,
            mem=e.table["hbm_bytes"] / 1e9,
            price=e.table["usd_per_hour"],
            bf16=e.table["flop_per_s_bf16"] / 1e12,
        )
        for k, e in load_gpus().items()
    ]
    frame = pd.DataFrame(rows)
    (bw_name, bw_unit), (mem_name, mem_unit) = GPU_FIELDS["hbm_bytes_per_s"], GPU_FIELDS["hbm_bytes"]
    x_dim = hv.Dimension("bw", label=label(bw_name, bw_unit))
    y_dim = hv.Dimension("mem", label=label(mem_name, mem_unit))
    vdims = [
        y_dim,
        "key",
        "name",
        hv.Dimension("price", label="$/GPU-hour"),
        hv.Dimension("bf16", label="bf16 TFLOP/s"),
    ]
    parts = []
    for i, vendor in enumerate(frame["vendor"].unique()):
        rows_v = frame[frame["vendor"] == vendor]
        size = [11 if k in in_sweep else 8 for k in rows_v["key"]]
        parts.append(scatter(rows_v, x_dim, vdims, str(vendor), color(i), size=max(size)))
    text = frame.assign(bw=frame["bw"] * 1.05, mem=_spread_labels(frame["bw"].values, frame["mem"].values))
    fig = hv.Overlay(parts) * labels(text, ["bw", "mem"], "key", size=9)
    main = "GPU catalogue: memory size vs bandwidth"
    return finish(
        fig,
        main,
        None,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        legend="top_left",
        xlim=(0.2, 14),
        ylim=(18, 700),
    )


def cost_vs_speed(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Cost per million output tokens vs per-user speed, per GPU: the Pareto frontier over tp and
    batch (lines), all feasible (tp, batch) points faint; infeasible points are excluded.

    Cost = price per hour x tp / output tokens per hour x 1e6 (the article, "cost per token").
    """
    picked = select(ds, sel, free=("gpu", "tp", "batch"))
    sub = picked.ds
    x_dim = hv.Dimension("speed", label=var_label(sub, "user_tok_s"))
    y_dim = hv.Dimension("cost", label=var_label(sub, "usd_per_mtok_output"))
    vdims = [y_dim, "tp", "batch"]
    parts, any_point = [], False
    for i, gpu in enumerate(sub["gpu"].values):
        g = sub.sel(gpu=gpu)[["user_tok_s", "usd_per_mtok_output"]].to_dataframe().reset_index()
        g = g.rename(columns={"user_tok_s": "speed", "usd_per_mtok_output": "cost"})[["speed", "cost", "tp", "batch"]]
        g = g[np.isfinite(g["speed"]) & np.isfinite(g["cost"])]
        if g.empty:
            continue
        any_point = True
        front = g.iloc[pareto_front(g["speed"].values, g["cost"].values)]
        parts += [
            curve(front, x_dim, vdims, str(gpu), color(i)),
            scatter(front, x_dim, vdims, str(gpu), color(i), size=6),
            scatter(g, x_dim, vdims, str(gpu), color(i), size=4, alpha=0.3),
        ]
    if not any_point:
        raise SpecError(f"cost-vs-speed: no feasible point with a price at {picked.subtitle()}; choose another --sel")
    speed = sub["user_tok_s"].values
    lo, hi = min(float(np.nanmin(speed)), 30.0) / 1.15, float(np.nanmax(speed)) * 1.15
    fig = hv.Overlay(parts) * _vline(30.0, "30 tokens/s per user", float(np.nanmax(sub["usd_per_mtok_output"])) / 1.5)
    return finish(
        fig,
        "Cost vs per-user speed: the Pareto front over tp and batch",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        legend="right",
        xlim=(lo, hi),
    )


PEAK_FIELD = {"bf16": "flop_per_s_bf16", "fp16": "flop_per_s_bf16", "fp8": "flop_per_s_fp8", "int8": "flop_per_s_int8"}
"""Catalogue peak used with each weight format (fp8/int8 weights run W8A8 kernels, as sweep.engine)."""


def roofline(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Arithmetic intensity vs attainable FLOP/s on one GPU, with a prefill pass and a decode step
    for each batch size in the sweep.

    attainable = min(peak, I x W_hbm) with I = FLOPs / bytes moved per GPU, for b sequences in
    flight (a static batch over the memory runs in waves of b = ``batch_in_flight``):
    prefill: b F_prefill / P over M_w + b I m_kv (weights read once, the prompts' KV written);
    decode:  b F_decode / P over M_w + b I m_kv (weights and the prompts' KV read once per step).
    Under the steady scenarios a prefill pass is one prompt (b = 1). The ridge I* = peak / W_hbm
    separates memory-bound (left) from compute-bound (right).
    """
    picked = select(ds, sel, free=("batch",))
    sub = picked.ds
    gpu = _gpu_table(str(_scalar(picked, "gpu")))
    dtype = str(picked.value("weight_dtype", ds, "bf16"))
    peak, bw = gpu[PEAK_FIELD.get(dtype, "flop_per_s_bf16")], gpu["hbm_bytes_per_s"]
    if not np.isfinite(peak):
        raise SpecError(f"roofline: {gpu['name']} has no dense {dtype} peak in grids/gpus.toml")
    batch = sub["batch"].values.astype(float)
    in_flight = sub["batch_in_flight"].values if "batch_in_flight" in sub else batch
    in_flight = np.where(np.isfinite(in_flight), in_flight, batch)
    tp, prompt, out = (float(_scalar(picked, d)) for d in ("tp", "input_len", "output_len"))
    kv_seq_prompt = kv_per_sequence(sub).values * prompt / (prompt + out - 1.0)  # I m_kv per GPU
    static = picked.value("scenario", ds, "static") == "static"
    b_prefill = in_flight if static else np.ones_like(batch)
    weights = sub["weight_bytes"].values
    ai = {
        "prefill": b_prefill * sub["prefill_flops"].values / tp / (weights + b_prefill * kv_seq_prompt),
        "decode": in_flight * sub["decode_flops"].values / tp / (weights + in_flight * kv_seq_prompt),
    }
    x_dim = hv.Dimension("ai", label="arithmetic intensity (FLOP/byte)")
    y_dim = hv.Dimension("tflops", label="attainable compute (TFLOP/s)")
    ridge = peak / bw
    lo, hi = min(v.min() for v in ai.values()) / 3, max(v.max() for v in ai.values()) * 3
    grid = np.asarray([min(lo, ridge / 10), ridge, max(hi, ridge * 10)])  # the roof's two straight pieces
    roof = pd.DataFrame({"ai": grid, "tflops": np.minimum(peak, grid * bw) / 1e12})
    parts = [curve(roof, x_dim, y_dim, f"roofline: {peak / 1e12:,.0f} TFLOP/s, {bw / 1e12:.2f} TB/s", "#333333")]
    for i, (phase, marker) in enumerate((("prefill", "square"), ("decode", "circle"))):
        frame = pd.DataFrame(
            {"ai": ai[phase], "tflops": np.minimum(peak, ai[phase] * bw) / 1e12, "batch": batch, "in_flight": in_flight}
        )
        name = f"{phase} {'pass' if phase == 'prefill' else 'step'}, one per batch size"
        parts.append(scatter(frame, x_dim, [y_dim, "batch", "in_flight"], name, color(i), size=9, marker=marker))
    shown = pd.DataFrame({"ai": ai["decode"], "b": in_flight}).drop_duplicates("b").sort_values("ai")
    keep: list[int] = []
    last = -np.inf
    for j, value in enumerate(np.log10(shown["ai"].values)):  # labels at least 0.25 decades apart
        if value - last >= 0.25 or j == len(shown) - 1:
            if keep and value - last < 0.25:
                keep.pop()
            keep.append(j)
            last = value
    shown = shown.iloc[keep]
    text = pd.DataFrame(
        {
            "ai": shown["ai"] / 1.25,
            "tflops": np.minimum(peak, shown["ai"] * bw) / 1e12 * 1.5,
            "t": [f"B={b:,.0f}" for b in shown["b"]],
        }
    )  # above-left: the empty side of the roof
    parts.append(labels(text, ["ai", "tflops"], "t", size=8, color=color(1), align="right"))
    fig = hv.Overlay(parts) * _vline(ridge, f"ridge {ridge:,.0f} FLOP/byte", peak / 1e12 / 30)
    return finish(
        fig,
        f"Roofline of {gpu['name']} ({dtype})",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        logy=True,
        legend="right",
    )


KINDS: dict[str, tuple[Callable[..., Any], str]] = {
    name: (fn, KIND_DESCRIPTIONS[name])
    for name, fn in (
        ("kv-vs-context", kv_vs_context),
        ("throughput-vs-batch", throughput_vs_batch),
        ("kv-vs-weights", kv_vs_weights),
        ("prefill-share", prefill_share),
        ("gpu-catalog", gpu_catalog),
        ("cost-vs-speed", cost_vs_speed),
        ("roofline", roofline),
        ("best-per-gpu", best_per_gpu),
        ("throughput-vs-interactivity", throughput_vs_interactivity),
        ("cost-vs-price", cost_vs_price),
        ("tornado", tornado),
        ("speculative-speedup", speculative_speedup),
    )
}
"""Figure kinds: name -> (function, one-line description)."""


def plot(ds: xr.Dataset, kind: str, sel: Sel = None) -> Any:
    """The figure ``kind`` of ``ds`` (see ``KINDS``) at selection ``sel``."""
    if kind not in KINDS:
        raise SpecError(f"unknown plot kind '{kind}'; expected one of: {', '.join(KINDS)}")
    return KINDS[kind][0](ds, sel)


def save(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write a figure to ``.html`` (bokeh, resources inlined: opens offline) or ``.png``
    (matplotlib: rendered offline, no browser)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".png"):
        raise SpecError(f"{path}: expected an output file ending in .html or .png")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        renderer = hv.renderer("matplotlib").instance(dpi=dpi)
        renderer.save(fig, str(path.with_suffix("")), fmt="png")
    else:
        from sweep.viz.html_page import figure_page, write_page

        write_page(path, figure_page([("", fig)], title=path.stem))
    return path
