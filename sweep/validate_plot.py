"""``sweep validate --plot``: measured vs predicted against batch size, datasheet and calibrated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

UNITS = {"output_tok_s": "tokens/s", "ttft_s": "s", "tpot_s": "s", "e2e_s": "s", "ttft_min_s": "s"}


def write_plot(rep: dict[str, Any], out: Path) -> None:
    """One panel per (file, metric, input, output length): measured, calibrated and datasheet vs batch."""
    import holoviews as hv
    import hvplot.pandas  # noqa: F401
    from bokeh.resources import INLINE

    rows = []
    for p in rep["points"]:
        if p["batch"] is None:
            continue
        panel = (f"{Path(p['file']).name}: {p['model']} on {p['tp']} x {p['gpu']}, {p['metric']}, "
                 f"{p['input_len']:g} in / {p['output_len']:g} out")
        for series, value in (("measured", p["measured"]), (f"predicted ({rep['profile']})", p["predicted"]),
                              ("datasheet roofline", p["datasheet"])):
            if value is not None:
                rows.append(dict(panel=panel, metric=p["metric"], batch=p["batch"], series=series, value=value))
    df = pd.DataFrame(rows)
    plots = []
    for panel, group in df.groupby("panel", sort=False):
        unit = UNITS.get(group["metric"].iloc[0], "")
        plots.append(group.hvplot.line(x="batch", y="value", by="series", logx=True, logy=True, markers=True,
                                       title=panel, xlabel="batch size [sequences]", ylabel=f"value [{unit}]",
                                       width=640, height=360, legend="bottom_right"))
    layout = hv.Layout(plots).cols(2) if len(plots) > 1 else plots[0]
    title = (f"sweep validate: profile {rep['profile']} MAPE {100 * rep['mape']:.1f}%, max "
             f"{100 * rep['max_abs_pct_error']:.1f}%; datasheet roofline MAPE "
             f"{100 * rep['datasheet']['mape']:.1f}%")
    hv.save(layout.opts(title=title) if len(plots) > 1 else layout, str(out), resources=INLINE, backend="bokeh")
