"""Where speculative decoding pays: its speed-up against the batch (``kernels.speculative``)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from grids.axes import AXES, design_inputs
from kernels.point import design_point
from kernels.speculative import speculation
from sweep.viz.base import Sel, color, curve, ensure_backends, finish, select

ACCEPTANCES = (0.6, 0.8)
"""Per-token acceptance rates drawn: typical of MTP heads and small drafts on chat traffic."""

DRAFT_TOKENS = (1, 3)
BATCHES = 2.0 ** np.arange(0, 11)


def _f64(x: Any) -> Any:
    """A host float64 value, as the kernels take it (``kernels.xp``)."""
    return np.asarray(x, dtype=np.float64)


def speculative_speedup(ds: xr.Dataset, sel: Sel = None) -> hv.Overlay:
    """Speed-up of decoding with a multi-token-prediction head over plain decoding vs the batch,
    for acceptance 0.6 and 0.8 and 1 or 3 drafted tokens, at the selected configuration and the
    mean context I + O / 2: above 1 where it pays."""
    from sweep.viz.procurement import _key

    picked = select(ds, sel, free=("batch",))
    values = {k: v for k, v in json.loads(ds.attrs.get("sweep_spec", "{}")).get("fixed", {}).items() if v is not None}
    values.update({d: v for d, v, _ in picked.chosen})
    for name in ("model", "profile"):
        if name in values:
            values[name] = _key(ds, name, values[name])
    values = {k: v for k, v in values.items() if k in AXES}
    point = design_point(**design_inputs({**values, "batch": 1}))
    context = _f64(float(point.wl.input_len) + 0.5 * float(point.wl.output_len))
    x_dim = hv.Dimension("batch", label="batch (sequences decoding)")
    y_dim = hv.Dimension("speedup", label="speed-up over plain decoding")
    parts: list[Any] = []
    for i, acceptance in enumerate(ACCEPTANCES):
        for k in DRAFT_TOKENS:
            speedups = [
                float(
                    speculation(
                        point.model,
                        point.gpu,
                        dataclasses.replace(point.dep, batch=_f64(b)),
                        point.profile,
                        context,
                        _f64(k),
                        _f64(acceptance),
                    ).speedup
                )
                for b in BATCHES
            ]
            frame = pd.DataFrame({"batch": BATCHES, "speedup": speedups})
            parts.append(curve(frame, x_dim, y_dim, f"acceptance {acceptance}, {k} drafted", color(i), dash=k == 1))
    ensure_backends()
    even = hv.HLine(1.0).opts(backend="bokeh", color="#555555").opts(backend="matplotlib", color="#555555")
    return finish(
        hv.Overlay(parts) * even,
        "Where speculative decoding (an MTP head) pays",
        picked,
        x_dim.label,
        y_dim.label,
        logx=True,
        legend="right",
    )
