"""``sweep explore``: a Panel app over a sweep store, served on 127.0.0.1.

One line figure: a variable (chooser) against a numeric dimension or any other variable on the
x axis (chooser; against a variable, each line runs along the batch, or the first numeric
dimension), one line per value of a second dimension (chooser, or none), log-axis toggles, SLO
sliders (tokens/s per user at least, time to first token at most: points that miss them are
gaps), and one widget for every other dimension, which holds it at one value. The widgets of the
dims on the axes are hidden; a line with no point left is left out of the legend. Values are
shown in display units (sweep.query.units); infeasible points are gaps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from grids.errors import SpecError
from sweep.query.units import to_display, var_label
from sweep.viz.base import Picked, color, curve, finish, pick, scatter

NONE = "(none)"
LOOPBACK = "127.0.0.1"
"""Where the explorer listens unless told otherwise: this machine only."""
SKIP_VARIABLES = ("feasible", "bottleneck", "params_total")


def variables(ds: xr.Dataset) -> dict[str, str]:
    """Plottable variables: 'long name (unit)' -> name, in schema order."""
    return {
        var_label(ds, name): name
        for name in map(str, ds.data_vars)
        if name not in SKIP_VARIABLES and ds[name].ndim == len(ds.dims)
    }


def _numeric_dims(ds: xr.Dataset) -> list[str]:
    dims = [str(d) for d in ds.dims if np.issubdtype(ds[d].dtype, np.number)]
    return [d for d in dims if ds.sizes[d] > 1] or dims


def _along(ds: xr.Dataset) -> str:
    """The dim a line runs along when the x axis is a variable: the batch, else the first numeric dim."""
    numeric = _numeric_dims(ds)
    return "batch" if "batch" in numeric else numeric[0]


def slo_mask(ds: xr.Dataset, min_user_tok_s: float = 0.0, max_ttft_s: float = 0.0) -> xr.DataArray:
    """Where a point meets the sliders' objectives (0: that objective off)."""
    conditions = []
    if min_user_tok_s > 0 and "user_tok_s" in ds:
        conditions.append(f"user_tok_s>={min_user_tok_s}")
    if max_ttft_s > 0 and "ttft_s" in ds:
        conditions.append(f"ttft_s<={max_ttft_s}")
    return ds.econ.mask(*conditions) if conditions else xr.ones_like(ds["feasible"], dtype=bool)


def figure(
    ds: xr.Dataset,
    variable: str,
    x: str,
    by: str,
    logx: bool,
    logy: bool,
    sel: dict[str, Any],
    min_user_tok_s: float = 0.0,
    max_ttft_s: float = 0.0,
) -> Any:
    """``variable`` against ``x`` (a dim, or a variable along ``_along``), one line per value of
    ``by`` (or one line), the other dims at ``sel``; points missing the SLOs are gaps."""
    on_dim = x in ds.dims
    along = x if on_dim else _along(ds)
    free = (along,) if by in (NONE, along) else (along, by)
    fixed = {d: v for d, v in sel.items() if d not in free}
    slos = [name for name in ("user_tok_s", "ttft_s") if name in ds]
    names = list(dict.fromkeys([variable, "feasible", *([] if on_dim else [x]), *slos]))
    picked: Picked = pick(ds[names], fixed, free)  # select first: the mask covers the figure's points only
    picked.ds = picked.ds.where(slo_mask(picked.ds, min_user_tok_s, max_ttft_s))
    sub = to_display(picked.ds[variable].load())
    xdata = picked.ds[along] if on_dim else to_display(picked.ds[x].load())
    x_dim = hv.Dimension(x, label=var_label(ds, x))
    y_dim = hv.Dimension(
        variable,
        label=f"{sub.attrs.get('long_name', variable)} ({sub.attrs['units']})"
        if sub.attrs["units"]
        else sub.attrs.get("long_name", variable),
    )
    groups = [(None, sub)] if by in (NONE, along) else [(v, sub.sel({by: v})) for v in sub[by].values]
    parts = []
    for i, (value, line) in enumerate(groups):
        xs = xdata.values if on_dim or by in (NONE, along) else xdata.sel({by: value}).transpose(along).values
        frame = pd.DataFrame({x: np.asarray(xs, dtype=float), variable: line.transpose(along).values.astype(float)})
        if logy:
            frame.loc[frame[variable] <= 0, variable] = np.nan
        if logx:
            frame.loc[frame[x] <= 0, x] = np.nan
        if not frame.notna().all(axis=1).any():
            continue  # nothing to draw: keep it out of the legend
        name = variable if value is None else f"{by}={value}"
        parts += [curve(frame, x_dim, y_dim, name, color(i)), scatter(frame, x_dim, y_dim, name, color(i), size=6)]
    if not parts:
        xs = np.asarray(picked.ds[along].values, dtype=float) if on_dim else np.asarray([1.0, 10.0])
        note = hv.Text(
            float(np.sqrt(xs.min() * xs.max())) if logx else float(xs.mean()),
            0.5,
            "no feasible point meets the objectives at this selection",
        )
        parts.append(note)
    main = f"{sub.attrs.get('long_name', variable)} vs {ds[x].attrs.get('long_name', x)}"
    return finish(hv.Overlay(parts), main, picked, x_dim.label, y_dim.label, logx=logx, logy=logy, legend="right")


LABEL = "label" if "label" in pn.widgets.Select.param else "name"
"""The widget caption's parameter: ``label`` since Panel 1.9 (``name`` is deprecated), ``name`` before."""


def _widget(cls: type, text: str, **params: Any) -> Any:
    return cls(**{LABEL: text}, **params)


def caption(widget: Any) -> str:
    """The text shown above a widget."""
    return getattr(widget, LABEL)


def _widget_name(ds: xr.Dataset, dim: str) -> str:
    """'input_len (prompt length)'; just 'gpu' where the long name says no more."""
    long_name = ds[dim].attrs.get("long_name", dim)
    return dim if long_name.lower() == dim.lower() else f"{dim} ({long_name})"


def _initial(ds: xr.Dataset, x: str, by: str) -> dict[str, Any]:
    """Default values of the other dims (as ``sweep.viz.base.pick`` chooses them)."""
    free = (x,) if by == NONE else (x, by)
    picked = pick(ds[["feasible"]], {}, free)
    values = {d: v for d, v, _ in picked.chosen}
    for dim in free:
        values[dim] = ds[dim].values.tolist()[0]
    return values


def app(ds: xr.Dataset, title: str | None = None) -> pn.viewable.Viewable:
    """The explorer for ``ds``: widgets on the left, the figure on the right."""
    names = variables(ds)
    numeric = _numeric_dims(ds)
    if not names or not numeric:
        raise SpecError("explore: the store has no plottable variable or numeric dimension")
    x0 = "batch" if "batch" in numeric else numeric[0]
    by0 = next((d for d in ("tp", "gpu", "model") if d in ds.dims and ds.sizes[d] > 1 and d != x0), NONE)
    start = _initial(ds, x0, by0)
    first = "output_tok_s" if "output_tok_s" in names.values() else next(iter(names.values()))
    variable = _widget(pn.widgets.Select, "variable", options=names, value=first)
    x_options = numeric + [name for name in names.values() if name not in numeric]
    x = _widget(pn.widgets.Select, "x axis", options=x_options, value=x0)
    min_user = _widget(
        pn.widgets.FloatSlider, "SLO: tokens/s per user at least (0: off)", start=0, end=100, step=5, value=0
    )
    max_ttft = _widget(
        pn.widgets.FloatSlider, "SLO: time to first token at most, s (0: off)", start=0, end=10, step=0.25, value=0
    )
    by = _widget(pn.widgets.Select, "one line per", options=[NONE] + [d for d in ds.dims if ds.sizes[d] > 1], value=by0)
    logx = _widget(pn.widgets.Checkbox, "log x axis", value=True)
    logy = _widget(pn.widgets.Checkbox, "log y axis", value=True)
    dims = {
        d: _widget(pn.widgets.Select, _widget_name(ds, d), options=ds[d].values.tolist(), value=start[d])
        for d in map(str, ds.dims)
    }

    def show_widgets(*_: Any) -> None:
        on_axes = (x.value if x.value in ds.dims else _along(ds), by.value)
        for d, widget in dims.items():
            widget.visible = d not in on_axes

    x.param.watch(show_widgets, "value")
    by.param.watch(show_widgets, "value")
    show_widgets()

    def view(
        variable: str, x: str, by: str, logx: bool, logy: bool, min_user: float, max_ttft: float, **sel: Any
    ) -> Any:
        return figure(ds, variable, x, by, logx, logy, sel, min_user, max_ttft)

    plot = pn.bind(
        view, variable=variable, x=x, by=by, logx=logx, logy=logy, min_user=min_user, max_ttft=max_ttft, **dims
    )
    controls = pn.Column(
        pn.pane.Markdown("### Figure"),
        variable,
        x,
        by,
        logx,
        logy,
        pn.pane.Markdown("### Service-level objectives"),
        min_user,
        max_ttft,
        pn.pane.Markdown("### Other dimensions (held at one value)"),
        *dims.values(),
        width=300,
    )
    heading = pn.pane.Markdown(
        f"## {title or ds.attrs.get('title', 'sweep explorer')}\n"
        f"{ds.attrs.get('description', '')}  \nGB = 1e9 bytes; infeasible points are gaps."
    )
    return pn.Column(heading, pn.Row(controls, pn.pane.HoloViews(plot, backend="bokeh")))


SERVER_LOGGERS = ("tornado.access", "tornado.application", "tornado.general")
"""Tornado's loggers of requests: each bad request is one line of theirs on stderr (``OneLinePerRequest``)."""

REQUEST = re.compile(r"^(\d{3} [A-Z]+ .*? \([^()]*\))")
"""The summary tornado starts a line about a request with: '400 GET /path?query (127.0.0.1)'."""


class OneLinePerRequest(logging.Filter):
    """Tornado's records of bad requests, each on one line with no traceback.

    Malformed HTTP (garbage bytes, a header beyond the size limit) is logged by tornado at INFO
    and otherwise not at all: kept. An exception while handling a request (a websocket handshake
    that bokeh refuses) is logged with its traceback: the type and message of the exception
    instead. A request refused with a reason (an undecodable query) is logged twice, reason then
    status: the second is dropped. Other INFO records (requests served) are left out.
    """

    MALFORMED = ("Malformed HTTP message", "Unsatisfiable read", "Timeout reading body")

    def __init__(self) -> None:
        super().__init__()
        self._reasoned: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.levelno < logging.WARNING and not text.startswith(self.MALFORMED):
            return False
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            text = f"{text.splitlines()[0]}: {type(err).__name__}: {err}"
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
        summary = REQUEST.match(text)
        if record.name == "tornado.access" and self._reasoned is not None and text.startswith(self._reasoned):
            self._reasoned = None
            return False
        self._reasoned = summary[1] if summary and record.name != "tornado.access" else None
        record.msg, record.args = text, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def log_requests_in_one_line() -> logging.Handler:
    """Send tornado's records of requests to stderr, one line each (``OneLinePerRequest``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s sweep explore: %(message)s"))
    handler.addFilter(OneLinePerRequest())
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)  # malformed requests are INFO records; the filter keeps only those
    return handler


def serve(
    store: str | Path,
    port: int = 5006,
    show: bool = False,
    address: str = LOOPBACK,
    announce: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Serve the explorer of ``store`` on http://ADDRESS:PORT, 127.0.0.1 unless told otherwise
    (blocks until stopped). The store is verified first (``sweep.store.verify.check_intact``);
    then ``announce`` is called with the URL."""
    from sweep.store.read import open_sweep
    from sweep.store.verify import check_intact

    ds = open_sweep(store)
    check_intact(store)
    log_requests_in_one_line()
    if announce is not None:
        announce(f"http://{address}:{port}/")
    origin = list(dict.fromkeys([f"{address}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"]))
    return pn.serve(
        {"/": lambda: app(ds)},
        port=port,
        address=address,
        show=show,
        websocket_origin=origin,
        liveness=True,  # GET /liveness: 200 without building a page (monitors, tests)
        title=ds.attrs.get("title", "sweep explorer"),
        **kwargs,
    )
