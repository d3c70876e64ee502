"""The HTML report (self-contained, best configurations, provenance), the plot/report/explore
subcommands in process, and the explorer app's widgets (the browser tests are in tests/browser)."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from grids.errors import SpecError
from sweep.api import compute, run_sweep
from sweep.cli.plots import KIND_NAMES, add_commands, parse_selection
from sweep.viz.figures import KINDS
from sweep.viz.report import best_table, build_report, write_report
from tests.sweep.plot_fixtures import small_spec

EXTERNAL = re.compile(r"<(script|link|img|iframe)[^>]*(src|href)\s*=", re.IGNORECASE)


@pytest.fixture(scope="module")
def ds():
    return compute(small_spec())


@pytest.fixture(scope="module")
def page(ds):
    return build_report(ds)


def test_report_is_self_contained(page):
    assert EXTERNAL.search(page) is None, "the report must load nothing: every resource inlined"
    assert "Bokeh" in page  # BokehJS itself is inlined (its code mentions CDN URLs it never loads here:
    # tests/browser checks that the page makes no network request at all)


def test_report_has_every_figure_the_table_and_provenance(ds, page):
    for kind in KINDS:
        assert f'data-kind="{kind}"' in page
    assert "Not drawn" not in page
    assert "cost per million output tokens<br>($/Mtok)" in page and "time to first token<br>(ms)" in page
    for key in ("engine_version", "git_commit", "jax_version", "sweep_spec", "catalogue_hashes", "created_utc"):
        assert f">{key}<" in page
    assert ds.attrs["git_commit"] in page


def test_best_table_meets_the_targets(ds):
    table = best_table(ds)
    assert len(table) > 0
    assert (table["user_tok_s"] >= 30).all() and (table["ttft_s"] <= 1).all()
    assert set(table.columns) >= {"model", "input_len", "output_len", "gpu", "tp", "batch", "usd_per_mtok_output"}


def test_report_says_when_nothing_meets_the_targets(ds, monkeypatch):
    import sweep.viz.report

    monkeypatch.setattr(sweep.viz.report, "TARGETS", ("user_tok_s>=1e9", "ttft_s<=1"))
    monkeypatch.setattr(sweep.viz.report.best_table, "__defaults__", (sweep.viz.report.TARGETS,))
    assert "No configuration meets the targets" in build_report(ds)


def test_write_report_from_a_store(tmp_path):
    store = run_sweep(small_spec(), tmp_path / "small.zarr", progress=False)
    out = write_report(store, tmp_path / "report.html")
    assert out.stat().st_size > 500_000 and "plots-small" in out.read_text()
    with pytest.raises(SpecError, match="no such store"):
        write_report(tmp_path / "missing.zarr", tmp_path / "r.html")
    with pytest.raises(SpecError, match=r"\.html"):
        write_report(store, tmp_path / "report.pdf")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_kinds_match_the_plot_module():
    assert tuple(KINDS) == KIND_NAMES


def test_cli_plot_writes_png_and_html(tmp_path, capsys):
    store = run_sweep(small_spec(), tmp_path / "small.zarr", progress=False)
    for name in ("roofline.png", "roofline.html"):
        args = _parser().parse_args(
            [
                "plot",
                str(store),
                "roofline",
                "--sel",
                "model=llama-3.3-70b",
                "--sel",
                "gpu=h100-sxm",
                "-o",
                str(tmp_path / name),
            ]
        )
        assert args.func(args) == 0
        assert (tmp_path / name).stat().st_size > 10_000
    assert "roofline ->" in capsys.readouterr().out


def test_cli_bad_input_raises_spec_error(tmp_path):
    parser = _parser()
    with pytest.raises(SpecError, match="DIM=VALUE"):
        parse_selection(["gpu"])
    with pytest.raises(SpecError, match="given twice"):
        parse_selection(["gpu=h200", "gpu=b200"])
    args = parser.parse_args(["plot", str(tmp_path / "none.zarr"), "roofline", "-o", str(tmp_path / "x.svg")])
    with pytest.raises(SpecError, match=r"\.html or \.png"):
        args.func(args)
    args = parser.parse_args(["plot", str(tmp_path / "none.zarr"), "roofline", "-o", str(tmp_path / "x.png")])
    with pytest.raises(SpecError, match="no such store"):
        args.func(args)
    args = parser.parse_args(["explore", str(tmp_path / "none.zarr"), "--port", "0"])
    with pytest.raises(SpecError, match="port"):
        args.func(args)
    with pytest.raises(SystemExit) as exit_info:  # argparse: unknown kind
        parser.parse_args(["plot", "store.zarr", "pie-chart", "-o", "x.png"])
    assert exit_info.value.code == 2


def test_cli_help_texts(capsys):
    for command in ("plot", "report", "explore"):
        with pytest.raises(SystemExit):
            _parser().parse_args([command, "--help"])
        out = capsys.readouterr().out
        assert "usage: sweep " + command in out
    with pytest.raises(SystemExit):
        _parser().parse_args(["plot", "--help"])
    out = capsys.readouterr().out
    assert all(kind in out for kind in KIND_NAMES)


def test_explorer_widgets(ds):
    """A widget for every dimension not on the axes, a variable chooser, log toggles; changing the
    x axis hides that dimension's widget and shows the previous one."""
    import panel as pn

    from sweep.viz.explore import app, caption, figure

    root = app(ds)
    widgets = {caption(w): w for w in root.select(pn.widgets.Widget)}
    assert {"variable", "x axis", "one line per", "log x axis", "log y axis"} <= set(widgets)
    dims = {name.split(" ")[0]: w for name, w in widgets.items() if name.split(" ")[0] in ds.dims}
    assert set(dims) == set(ds.dims)
    assert not dims["batch"].visible and not dims["tp"].visible and dims["gpu"].visible
    widgets["x axis"].value = "input_len"
    assert dims["batch"].visible and not dims["input_len"].visible
    fig = figure(
        ds, "ttft_s", "input_len", "model", True, True, {"gpu": "h100-sxm", "tp": 4, "batch": 1, "output_len": 300}
    )
    import holoviews as hv

    model = hv.render(fig, backend="bokeh")
    assert model.yaxis[0].axis_label == "time to first token (ms)"


def test_explorer_slo_sliders_variable_axis_and_legend(ds):
    """SLO sliders mask the points that miss them; a variable on the x axis runs along the batch;
    lines with no point left stay out of the legend."""
    import holoviews as hv
    import panel as pn

    from sweep.viz.explore import app, caption, figure

    widgets = {caption(w): w for w in app(ds).select(pn.widgets.Widget)}
    assert {"SLO: tokens/s per user at least (0: off)", "SLO: time to first token at most, s (0: off)"} <= set(widgets)
    assert "user_tok_s" in widgets["x axis"].options  # any variable on the x axis
    sel = {"model": "llama-3.3-70b", "tp": 4, "input_len": 2048, "output_len": 300}
    fig = figure(ds, "usd_per_mtok_output", "user_tok_s", "gpu", True, True, sel)
    curves = fig.traverse(lambda e: e, [hv.Curve])
    assert {c.label for c in curves} == {"gpu=h100-sxm", "gpu=a100-sxm-40gb"}
    assert len(curves[0].dimension_values(0)) == ds.sizes["batch"]  # one point per batch
    bar = float(np.nanmedian(np.concatenate([c.dimension_values(0) for c in curves])))
    strict = figure(ds, "usd_per_mtok_output", "user_tok_s", "gpu", True, True, sel, min_user_tok_s=bar)
    kept = [c for c in strict.traverse(lambda e: e, [hv.Curve])]
    for curve in kept:
        speed = curve.dimension_values(0)
        assert (speed[np.isfinite(speed)] >= bar).all()
    assert sum(np.isfinite(c.dimension_values(0)).sum() for c in kept) < sum(
        np.isfinite(c.dimension_values(0)).sum() for c in curves
    )
    # a GPU with nothing meeting the objectives is not in the legend
    none = figure(ds, "usd_per_mtok_output", "batch", "gpu", True, True, sel, max_ttft_s=1e-6)
    assert not none.traverse(lambda e: e, [hv.Curve])
