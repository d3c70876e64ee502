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
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    rows = []
    for p in rep["points"]:
        if p["batch"] is None:
            continue
        panel = (
            f"{p['model']} on {p['tp']} x {p['gpu']}: {p['metric']}, {p['input_len']:.0f} in / "
            f"{round(p['output_len'], -1):.0f} out"
        )
        for series, value in (
            ("measured", p["measured"]),
            (f"predicted ({rep['profile']})", p["predicted"]),
            ("datasheet roofline", p["datasheet"]),
        ):
            if value is not None:
                rows.append(dict(panel=panel, metric=p["metric"], batch=p["batch"], series=series, value=value))
    df = pd.DataFrame(rows)
    plots = []
    for panel, group in df.groupby("panel", sort=False):
        unit = UNITS.get(group["metric"].iloc[0], "")
        opts = dict(
            x="batch",
            y="value",
            by="series",
            logx=True,
            logy=True,
            title=panel,
            xlabel="batch size [sequences]",
            ylabel=f"value [{unit}]",
            width=640,
            height=360,
            legend="bottom_right",
        )
        plots.append(group.hvplot.line(**opts) * group.hvplot.scatter(**opts))
    layout = hv.Layout(plots).cols(2) if len(plots) > 1 else plots[0]
    title = (
        f"sweep validate: profile {rep['profile']} MAPE {100 * rep['mape']:.1f}%, max "
        f"{100 * rep['max_abs_pct_error']:.1f}%; datasheet roofline MAPE "
        f"{100 * rep['datasheet']['mape']:.1f}%"
    )
    figure = hv.render(layout.opts(title=title) if len(plots) > 1 else layout, backend="bokeh")
    out.write_text(file_html(figure, INLINE, title=title))
