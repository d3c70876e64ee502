"""What every figure shares: the HoloViews backends, picking one value of the dims a figure does
not show (and saying so in its title), and styling for both backends.

Figures are HoloViews objects styled for two backends: bokeh (interactive HTML, the report and the
explorer) and matplotlib (PNG export, offline: no browser or downloaded driver is involved).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

import sweep.query.accessor  # noqa: F401  (registers ds.econ)
from grids.errors import SpecError


def ensure_backends() -> None:
    """Load HoloViews' bokeh and matplotlib backends (once, when the first figure is styled; never
    at import, which would load both plotting libraries for any importer)."""
    if not {"bokeh", "matplotlib"} <= set(hv.Store.renderers):
        hv.extension("bokeh", "matplotlib", logo=False)
        hv.Store.set_current_backend("bokeh")


ARTICLE_DEFAULTS: dict[str, int] = {"input_len": 2048, "output_len": 300}
"""The article's request shape: a 2048-token prompt and 300 output tokens."""

WIDTH, HEIGHT = 900, 460
"""Bokeh figure size [px]; the matplotlib figure has the same aspect ratio."""

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#e7969c",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#31a354",
    "#756bb1",
    "#636363",
)
"""Categorical colours: Tableau 10 followed by darker and lighter picks of d3's Category20b/c."""


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


Sel = Mapping[str, Any] | None
"""A figure's selection: dim -> value for the dims it does not show (None: defaults)."""


@dataclass
class Picked:
    """A Dataset reduced to the dims a figure shows, and the values chosen for the others."""

    ds: xr.Dataset
    chosen: list[tuple[str, Any, bool]] = field(default_factory=list)  # (dim, value, was a default)

    def subtitle(self, width: int = 95) -> str:
        """'gpu=h100-sxm · tp=2* · batch=1*  (* default)': what the figure holds fixed, wrapped."""
        parts = [f"{dim}={value}{'*' if default else ''}" for dim, value, default in self.chosen]
        if any(d for _, _, d in self.chosen):
            parts.append("  (* default)")
        lines, line = [], ""
        for part in parts:
            candidate = (f"{line}{part}" if part.startswith(" ") else f"{line} · {part}") if line else part.strip()
            if line and len(candidate) > width:
                lines.append(line)
                line = part
            else:
                line = candidate
        return "\n".join(lines + [line])

    def value(self, dim: str, ds: xr.Dataset | None = None, default: Any = None) -> Any:
        """The value the figure holds for ``dim``: chosen, else the sweep's fixed value, else ``default``."""
        if dim in self.ds.coords and self.ds[dim].ndim == 0:
            return self.ds[dim].item()
        if ds is not None:
            return json.loads(ds.attrs.get("sweep_spec", "{}")).get("fixed", {}).get(dim, default)
        return default


def _cast(ds: xr.Dataset, dim: str, value: Any) -> Any:
    coord = ds[dim]
    known = coord.values.tolist()
    try:
        cast = int(value) if np.issubdtype(coord.dtype, np.integer) else str(value)
    except (TypeError, ValueError):
        raise SpecError(f"selection {dim}={value!r}: expected a whole number; values: {known}") from None
    if cast not in known:
        raise SpecError(f"selection {dim}={value}: not on the axis; values: {known}")
    return cast


def _values(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]


def _default(ds: xr.Dataset, dim: str, prefer: Mapping[str, Any]) -> Any:
    values = ds[dim].values.tolist()
    want = prefer.get(dim, ARTICLE_DEFAULTS.get(dim, "min" if dim == "batch" else "first"))
    if want == "min":
        return min(values)
    if want == "max":
        return max(values)
    if want in values:
        return want
    return values[0]


def _smallest_feasible_tp(ds: xr.Dataset) -> Any:
    """The smallest tensor-parallel degree at which some remaining point can run."""
    values = ds["tp"].values.tolist()
    if "feasible" not in ds:
        return min(values)
    feasible = ds["feasible"]
    for tp in sorted(values):
        if bool(feasible.sel(tp=tp).any()):
            return tp
    return min(values)


def pick(
    ds: xr.Dataset, sel: Mapping[str, Any] | None, free: Sequence[str], prefer: Mapping[str, Any] | None = None
) -> Picked:
    """Keep the ``free`` dims (those the figure shows), one value of every other dim.

    ``sel`` maps dims to a value or a list ('h100-sxm,h200' works too); a list is allowed only for
    a free dim. A dim left unselected gets a default: ``prefer[dim]`` ('min', 'max', a value), else
    the article's 2048-token prompt and 300 output tokens when on the axis, batch 1, and the first
    value of the others; tp last, the smallest degree at which something fits.
    """
    sel, prefer = dict(sel or {}), dict(prefer or {})
    order = {d: i for i, d in enumerate(ds.dims)}
    unknown = [d for d in sel if d not in ds.dims]
    if unknown:
        raise SpecError(
            f"selection {unknown[0]}=...: unknown dimension; expected one of: {', '.join(map(str, ds.dims))}"
        )
    chosen: list[tuple[str, Any, bool]] = []
    for dim in map(str, ds.dims):
        if dim not in sel:
            continue
        values = [_cast(ds, dim, v) for v in _values(sel[dim])]
        if dim in free:
            ds = ds.sel({dim: values})
        elif len(values) != 1:
            raise SpecError(f"selection {dim}={sel[dim]}: this figure shows one {dim}; give one value")
        else:
            ds = ds.sel({dim: values[0]})
            chosen.append((dim, values[0], False))
    rest = [str(d) for d in ds.dims if d not in free]
    for dim in sorted(rest, key=lambda d: d == "tp"):  # tp last: its default depends on the others
        value = _smallest_feasible_tp(ds) if dim == "tp" and "tp" not in prefer else _default(ds, dim, prefer)
        ds = ds.sel({dim: value})
        chosen.append((dim, value, True))
    chosen.sort(key=lambda item: order[item[0]])
    return Picked(ds, chosen)


def mark_single_valued(picked: Picked, original: xr.Dataset) -> Picked:
    """Dims with one value on the axis were not a choice: drop their default mark."""
    picked.chosen = [(d, v, default and original.sizes.get(d, 1) > 1) for d, v, default in picked.chosen]
    return picked


def select(
    ds: xr.Dataset, sel: Mapping[str, Any] | None, free: Sequence[str], prefer: Mapping[str, Any] | None = None
) -> Picked:
    """``pick`` then load the (small) result into memory."""
    picked = mark_single_valued(pick(ds, sel, free, prefer), ds)
    picked.ds = picked.ds.load()
    for dim in picked.ds.dims:  # StringDType coordinates -> object, which every plotting path reads
        if picked.ds[dim].dtype.kind == "T":
            picked.ds = picked.ds.assign_coords({dim: picked.ds[dim].values.astype(object)})
    return picked


def title(main: str, picked: Picked | None = None) -> str:
    """A figure title: the question it answers, then on a second line what it holds fixed."""
    return main if picked is None or not picked.chosen else f"{main}\n{picked.subtitle()}"


def tick_label(value: float) -> str:
    """A tick label on a log axis: 0.1, 1, 20, 1,000, 2e+06."""
    if value <= 0:
        return ""
    if value >= 1e6:
        return f"{value:.0e}".replace("e+0", "e")
    if value >= 1 and value == round(value):
        return f"{value:,.0f}"
    return f"{value:.2g}"


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick positions on a log axis from lo to hi: 1-2-3-5-7 steps over under 1.3 decades, 1-2-5
    under 3.1 decades, every
    decade up to 7, every n-th decade beyond."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= lo:
        return []
    span = np.log10(hi / lo)
    mantissas = (1, 2, 3, 5, 7) if span < 1.3 else (1, 2, 5) if span < 3.1 else (1,)
    step = 1 if span < 8 else int(np.ceil(span / 7))
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    return [
        float(m * 10.0**e)
        for e in range(first, last + 1, step)
        for m in mantissas
        if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)
    ]


def _extent(obj: Any, index: int) -> tuple[float, float]:
    """Positive finite data extent of a figure along x (``index`` 0) or y (1): lines, points and
    reference lines."""
    lo, hi = np.inf, -np.inf
    for el in obj.traverse(lambda e: e, [hv.Curve, hv.Scatter, hv.HLine, hv.VLine]):
        if isinstance(el, (hv.HLine, hv.VLine)):
            values = np.asarray([el.data], dtype=float) if (index == 1) == isinstance(el, hv.HLine) else np.empty(0)
        else:
            values = np.asarray(el.dimension_values(index), dtype=float)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    return lo, hi


def _mpl_hook(log_x: bool, log_y: bool) -> Any:
    """Matplotlib: plain numbers on log axes (0.1, 1, 20, not 10^-1) and no minor labels; axes
    whose ticks carry their own labels are left alone."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def hook(plot: Any, element: Any) -> None:
        ax = plot.handles["axis"]
        for axis, is_log in ((ax.xaxis, log_x), (ax.yaxis, log_y)):
            if is_log:
                axis.set_minor_formatter(NullFormatter())
                axis.set_major_formatter(FuncFormatter(lambda v, _pos: tick_label(v)))

    return hook


def _bokeh_hook(subtitle: str) -> Any:
    """Bokeh: the subtitle as a second, lighter title line; plain numbers on log axes; the legend
    at the top of its side panel, hiding a line when clicked."""
    from bokeh.models import LogAxis, NumeralTickFormatter
    from bokeh.models.annotations import Title

    def hook(plot: Any, element: Any) -> None:
        fig = plot.state
        for axis in list(fig.xaxis) + list(fig.yaxis):
            if isinstance(axis, LogAxis) and type(axis.formatter).__name__ == "LogTickFormatter":
                axis.formatter = NumeralTickFormatter(format="0,0.[000]")  # type: ignore[assignment]
        for legend in fig.legend:
            legend.click_policy = "hide"
            legend.label_text_font_size = "9pt"
            if legend in fig.right:
                legend.location = "top_left"
        if subtitle and not any(getattr(t, "name", "") == "subtitle" for t in fig.above):
            for line in reversed(subtitle.split("\n")):
                fig.add_layout(
                    Title(
                        text=line,
                        name="subtitle",
                        text_font_style="normal",
                        text_font_size="10pt",
                        text_color="#555555",
                    ),
                    "above",
                )

    return hook


def finish(
    obj: Any,
    main: str,
    picked: Picked | None,
    xlabel: str,
    ylabel: str,
    *,
    logx: bool = False,
    logy: bool = False,
    legend: str = "right",
    **common: Any,
) -> Any:
    """Title, axis labels, log axes (ticks from ``log_ticks`` unless given) and size of a figure,
    for bokeh and matplotlib alike."""
    ensure_backends()
    for axis, is_log in (("xticks", logx), ("yticks", logy)):
        if is_log and not common.get(axis):
            lo, hi = _extent(obj, 0 if axis == "xticks" else 1)
            common[axis] = log_ticks(lo / 1.25, hi * 1.25)
    labelled = {a: bool(common.get(a)) and isinstance(common[a][0], tuple) for a in ("xticks", "yticks")}
    opts = dict(
        xlabel=xlabel,
        ylabel=ylabel,
        logx=logx,
        logy=logy,
        show_grid=True,
        show_legend=True,
        legend_position=legend,
        legend_limit=200,
        padding=0.05,
        **common,
    )
    subtitle = picked.subtitle() if picked is not None and picked.chosen else ""
    obj = obj.opts(
        backend="bokeh",
        title=main,
        width=WIDTH,
        height=HEIGHT,
        fontscale=1.05,
        toolbar="right",
        hooks=[_bokeh_hook(subtitle)],
        **opts,
    )
    hook = _mpl_hook(logx and not labelled["xticks"], logy and not labelled["yticks"])
    obj = obj.opts(
        backend="matplotlib",
        title=title(main, picked),
        fig_inches=(WIDTH / 100, HEIGHT / 100),
        aspect="auto",
        fontscale=1.1,
        hooks=[hook],
        **opts,
    )
    return obj


def pareto_front(speed: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both speed (higher) and cost (lower), by
    increasing speed (to maximise a throughput, pass -throughput as the cost). NaN points
    (infeasible) are never on the front."""
    ok = np.flatnonzero(np.isfinite(speed) & np.isfinite(cost))
    order = ok[np.lexsort((cost[ok], -speed[ok]))]  # fastest first, cheapest first among equals
    front, best = [], np.inf
    for i in order:
        if cost[i] < best:
            front.append(i)
            best = cost[i]
    return np.asarray(front[::-1], dtype=int)


def curve(data: Any, kdim: Any, vdim: Any, label: str, color: str, dash: bool = False, width: float = 2.5) -> hv.Curve:
    """A line, styled for both backends (``dash``: a dashed line)."""
    ensure_backends()
    c = hv.Curve(data, kdim, vdim, label=label)
    c = c.opts(backend="bokeh", color=color, line_width=width, line_dash="dashed" if dash else "solid", tools=["hover"])
    return c.opts(backend="matplotlib", color=color, linewidth=width * 0.8, linestyle="--" if dash else "-")


def scatter(
    data: Any,
    kdim: Any,
    vdims: Any,
    label: str,
    color: str,
    size: float = 8,
    marker: str = "circle",
    alpha: float = 1.0,
) -> hv.Scatter:
    """Points, styled for both backends; ``marker`` in circle, square, triangle, diamond."""
    ensure_backends()
    mpl_marker = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D"}[marker]
    s = hv.Scatter(data, kdim, vdims, label=label)
    s = s.opts(backend="bokeh", color=color, size=size, marker=marker, alpha=alpha, tools=["hover"])
    return s.opts(backend="matplotlib", color=color, s=size * size * 0.8, marker=mpl_marker, alpha=alpha)


def labels(
    data: Any,
    kdims: Sequence[Any],
    vdim: Any,
    size: int = 9,
    color: str = "#333333",
    align: str = "left",
    baseline: str = "middle",
) -> hv.Labels:
    """Text at given positions (place it beside a point by scaling its coordinates on log axes)."""
    ensure_backends()
    lab = hv.Labels(data, kdims, vdim)
    lab = lab.opts(
        backend="bokeh", text_font_size=f"{size}pt", text_color=color, text_align=align, text_baseline=baseline
    )
    mpl_va = {"middle": "center", "bottom": "bottom", "top": "top"}[baseline]
    return lab.opts(backend="matplotlib", size=size, color=color, horizontalalignment=align, verticalalignment=mpl_va)
