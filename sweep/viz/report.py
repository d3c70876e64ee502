"""``sweep report``: one self-contained HTML page of a sweep: the article's figures, the best
configurations, and the provenance. BokehJS is inlined, so the page opens offline."""

from __future__ import annotations

import contextlib
import html
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from grids.errors import SpecError
from grids.sweeps import SweepSpec, load_sweep
from sweep.query.accessor import best_rows
from sweep.query.units import fmt_number, unit_of
from sweep.viz.figures import KINDS, plot
from sweep.viz.html_page import figure_page, write_page
from sweep.viz.procurement import TARGETS as PROCUREMENT_TARGETS

TARGETS = PROCUREMENT_TARGETS
"""What 'best' means in the summary: at least 30 tokens/s per user and TTFT under one second."""

BEST_OVER = ("tp", "batch")
"""Reduced over for the best-configurations table: each GPU type keeps its own row, ranked."""
TABLE_COLUMNS = ("usd_per_mtok_output_owned", "ttft_s", "tpot_s", "user_tok_s", "output_tok_s_per_gpu")
MAX_ROWS = 60


def load_dataset(source: str | Path | SweepSpec | xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    """A sweep's Dataset from a store path, a spec (name in grids/sweeps, TOML path or SweepSpec,
    computed in memory) or a Dataset; and notes for the reader (an incomplete store). A store is
    verified first (``sweep.store.verify.check_intact``): damage raises ``CorruptStoreError``."""
    if isinstance(source, xr.Dataset):
        return source, []
    if isinstance(source, SweepSpec):
        from sweep.engine.compute import compute

        return compute(source), []
    path = Path(source)
    if path.is_dir() or path.suffix == ".zarr":
        from sweep.store.read import IncompleteStoreWarning, open_sweep
        from sweep.store.verify import check_intact

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", IncompleteStoreWarning)
            ds = open_sweep(path)
        check_intact(path)  # a damaged chunk is named before anything is drawn from it
        return ds, [str(w.message) for w in caught if issubclass(w.category, IncompleteStoreWarning)]
    from sweep.engine.compute import compute

    return compute(load_sweep(str(source))), []


def best_table(ds: xr.Dataset, targets: Sequence[str] = TARGETS) -> pd.DataFrame:
    """For each combination of the dims not in BEST_OVER (each GPU type among them), the cheapest
    (tp, batch) per million output tokens among feasible points meeting ``targets``, cheapest
    first within each combination of the other dims."""
    over = [d for d in BEST_OVER if d in ds.dims]
    columns = [c for c in TABLE_COLUMNS if c in ds]
    best = ds.econ.best("usd_per_mtok_output", over, *targets, columns=columns)
    table = best_rows(best, "usd_per_mtok_output", list(map(str, ds.dims)))
    groups = [c for c in table.columns if c in ds.dims and c != "gpu" and c not in over]
    return table.sort_values([*groups, "usd_per_mtok_output"], kind="stable").reset_index(drop=True)


def _table_html(ds: xr.Dataset, table: pd.DataFrame) -> str:
    """The best-configuration table in display units, its header naming each unit."""
    if table.empty:
        return (
            f"<p><strong>No configuration meets the targets</strong> ({html.escape(' and '.join(TARGETS))}): "
            "every feasible point of this sweep is too slow per user or too slow to its first token.</p>"
        )
    keys = [c for c in table.columns if c in ds.dims]
    metrics = ["usd_per_mtok_output", *(c for c in TABLE_COLUMNS if c in table.columns)]
    head = "".join(f'<th class="text">{html.escape(k)}</th>' for k in keys)
    for name in metrics:
        attrs = ds[name].attrs
        unit = unit_of(name, attrs.get("units", "1")).label
        head += f"<th>{html.escape(attrs.get('long_name', name))}<br>({html.escape(unit)})</th>"
    rows = []
    for _, row in table.head(MAX_ROWS).iterrows():
        cells = "".join(f'<td class="text">{html.escape(str(row[k]))}</td>' for k in keys)
        for name in metrics:
            scale = unit_of(name, ds[name].attrs.get("units", "1")).scale
            cells += f"<td>{fmt_number(float(row[name]) / scale)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    total = math.prod(ds.sizes[d] for d in ds.dims if d not in BEST_OVER)
    notes = []
    if len(table) > MAX_ROWS:
        notes.append(f"first {MAX_ROWS} of {len(table)} rows shown; `sweep query` lists all")
    if len(table) < total:
        notes.append(
            f"{total - len(table)} of {total} combinations have no configuration meeting the targets and are not listed"
        )
    note = f"<p>{html.escape('; '.join(notes))}.</p>" if notes else ""
    return f'<table class="best"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{note}'


def _compact(value: object, indent: str = "") -> str:
    """JSON with one line per key of the outer dicts, inner values on one line each."""
    if not isinstance(value, dict):
        return json.dumps(value)
    return "\n".join(
        f"{indent}{key}:\n{_compact(item, indent + '  ')}"
        if isinstance(item, dict)
        else f"{indent}{key}: {json.dumps(item)}"
        for key, item in value.items()
    )


def _profiles_html(ds: xr.Dataset) -> str:
    """The engine profile(s) the numbers come from and their stated error (an 80% interval of
    measured / predicted speed from calibration), per GPU."""
    spec = json.loads(ds.attrs.get("sweep_spec", "{}"))
    profiles = spec.get("axes", {}).get("profile") or [spec.get("fixed", {}).get("profile") or "roofline"]
    if "interval_log_p10" not in ds:
        return ""
    lo, hi = ds["interval_log_p10"], ds["interval_log_p90"]
    if "model" in lo.dims:  # the widest over the sweep's models (a model the fit did not measure: wider)
        lo, hi = lo.min("model", skipna=False), hi.max("model", skipna=False)
    items = []
    for name in profiles:
        label = Path(name).stem if str(name).endswith(".toml") else name
        sel: dict[str, object] = {"profile": label} if "profile" in lo.dims else {}
        parts = []
        scenarios = [str(s) for s in ds["scenario"].values] if "scenario" in lo.dims else [None]
        for gpu in ds["gpu"].values:
            for scenario in scenarios:
                at = {"gpu": gpu, **sel, **({"scenario": scenario} if scenario else {})}
                a, b = float(lo.sel(at)), float(hi.sel(at))
                if math.isfinite(a):
                    label_at = f"{gpu} ({scenario})" if scenario else str(gpu)
                    parts.append(f"{label_at}: x{math.exp(a):.2f} to x{math.exp(b):.2f}")
        stated = "; ".join(parts) if parts else "none stated (not calibrated): treat the numbers as a roofline bound"
        items.append(f"<li><code>{html.escape(str(label))}</code>: {html.escape(stated)}</li>")
    return (
        "<h2>Engine profile and stated error</h2><p>Speeds come from the engine profile below; four times in five "
        "the measured speed lies within the stated factor of the predicted one (held-out error on GPUs the "
        "profile was not fitted to). Each number's own interval is a little wider: what the fit leaves "
        "uncertain in the profile's terms at that point (<code>sweep explain</code> gives it; a sweep with "
        f"<code>term_intervals = true</code> stores it).</p><ul>{''.join(items)}</ul>"
    )


def _provenance_html(ds: xr.Dataset) -> str:
    rows = []
    for key, value in ds.attrs.items():
        text = str(value)
        if key in ("sweep_spec", "catalogue_hashes"):
            with contextlib.suppress(TypeError, ValueError):
                text = _compact(json.loads(text))
        rows.append(
            f'<tr><th class="text">{html.escape(key)}</th><td><pre style="margin:0;white-space:pre-wrap">'
            f"{html.escape(text)}</pre></td></tr>"
        )
    return f'<table class="provenance">{"".join(rows)}</table>'


def _dims_html(ds: xr.Dataset) -> str:
    items = []
    for dim in map(str, ds.dims):
        values = ds[dim].values.tolist()
        shown = ", ".join(map(str, values if len(values) <= 12 else values[:6] + ["…"] + values[-2:]))
        items.append(f"<li><code>{html.escape(dim)}</code> ({len(values)}): {html.escape(shown)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def build_report(ds: xr.Dataset, notes: Sequence[str] = (), title: str | None = None) -> str:
    """The report page of ``ds`` as an HTML string."""
    title = title or ds.attrs.get("title", "LLM inference economics sweep")
    points = math.prod(ds.sizes.values())
    warn = "".join(f'<p class="error">{html.escape(n)}</p>' for n in notes)
    table = _table_html(ds, best_table(ds))
    before = (
        f'<h1>{html.escape(title)}</h1>\n<p class="lede">{html.escape(ds.attrs.get("description", ""))}</p>'
        f"{warn}<p>{points:,} design points over {len(ds.dims)} dimensions:</p>{_dims_html(ds)}"
        f"{_profiles_html(ds)}"
        f"<h2>Best configurations</h2><p>For each GPU type and combination of the other dimensions, the "
        f"(tp, batch) with the lowest rented cost per million output tokens among feasible points with "
        f"{html.escape(' and '.join(TARGETS))} (time to first token at most 1 s), cheapest GPU first; the "
        f"owned cost is grids/ownership.toml's. `sweep optimize` solves the batch exactly instead of "
        f"reading it off this grid. Units are shown in each "
        f"column header; GB means 1e9 bytes.</p>{table}<h2>Figures</h2><p>Each figure holds the dimensions "
        f"it does not show at one value, named under its title; values marked * are defaults. "
        f"Figures are interactive: drag to pan, scroll to zoom, click a legend entry to hide a line.</p>"
    )
    figures, kinds = [], []
    for kind, (_fn, description) in KINDS.items():
        caption = f"<h3>{html.escape(kind)}</h3><p>{html.escape(description)}.</p>"
        try:
            fig = plot(ds, kind)
        except SpecError as err:
            caption += f'<p class="error">Not drawn: {html.escape(str(err))}</p>'
            fig = None
        figures.append((caption, fig))
        kinds.append(kind)
    after = f"<h2>Provenance</h2>{_provenance_html(ds)}"
    return figure_page(figures, title, before=before, after=after, kinds=kinds)


def write_report(spec_or_store: str | Path | SweepSpec | xr.Dataset, out_html: str | Path) -> Path:
    """Write the self-contained HTML report of a store or a spec (computed in memory) to ``out_html``."""
    out = Path(out_html)
    if out.suffix.lower() not in (".html", ".htm"):
        raise SpecError(f"{out}: the report is an HTML file; expected a name ending in .html")
    ds, notes = load_dataset(spec_or_store)
    page = build_report(ds, notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_page(out, page)
    return out
