"""Figures from sweep data: every kind draws, labels name display units, defaults are announced,
infeasible points are left out; PNG export works offline; the Pareto front is the brute-force one."""

from __future__ import annotations

import struct

import holoviews as hv
import numpy as np
import pytest

from grids.errors import SpecError
from grids.gpus import load_gpus
from sweep.api import compute
from sweep.query.units import fmt_number, log2_ticks, to_display, tokens, unit_of
from sweep.viz.base import log_ticks, pick
from sweep.viz.figures import KINDS, pareto_front, plot, save
from tests.sweep.plot_fixtures import small_spec


@pytest.fixture(scope="module")
def ds():
    return compute(small_spec())


def _bokeh(fig):
    return hv.render(fig, backend="bokeh")


def _subtitle(model) -> str:
    return " ".join(t.text for t in model.above if getattr(t, "name", "") == "subtitle")


def _elements(fig, kind):
    return fig.traverse(lambda e: e, [kind])


# kind -> (x-label fragment, y-label fragment, log x, log y)
LABELS = {
    "kv-vs-context": ("(tokens)", "KV cache per GPU (GB)", True, True),
    "throughput-vs-batch": ("batch size (sequences)", "(tokens/s)", True, True),
    "kv-vs-weights": ("batch size (sequences)", "(GB)", True, True),
    "prefill-share": ("prompt length (tokens)", "(%", True, False),
    "gpu-catalog": ("memory bandwidth (TB/s)", "memory per GPU (GB)", True, True),
    "cost-vs-speed": ("per-user speed (tokens/s)", "cost per million output tokens ($/Mtok)", True, True),
    "roofline": ("arithmetic intensity (FLOP/byte)", "attainable compute (TFLOP/s)", True, True),
    "best-per-gpu": ("GPU type", "cost per million output tokens ($/Mtok)", False, True),
    "throughput-vs-interactivity": ("per-user speed (tokens/s)", "(tokens/s per GPU)", True, True),
    "cost-vs-price": ("price per GPU-hour (USD/h)", "cost per million output tokens ($/Mtok)", True, True),
    "tornado": ("GPU number", "elasticity of cost per million output tokens", False, False),
    "speculative-speedup": ("batch (sequences decoding)", "speed-up over plain decoding", True, False),
}


def test_every_kind_is_tested():
    assert set(LABELS) == set(KINDS)


@pytest.mark.parametrize("kind", list(LABELS))
def test_kind_draws_with_display_units(ds, kind):
    fig = plot(ds, kind)
    model = _bokeh(fig)
    x_label, y_label, log_x, log_y = LABELS[kind]
    assert x_label in model.xaxis[0].axis_label
    assert y_label in model.yaxis[0].axis_label
    assert (type(model.x_scale).__name__ == "LogScale") == log_x
    assert (type(model.y_scale).__name__ == "LogScale") == log_y
    assert model.title.text
    curves = _elements(fig, hv.Curve) + _elements(fig, hv.Scatter)
    assert curves and any(np.isfinite(c.dimension_values(1)).any() for c in curves), "figure has no data"
    if kind != "gpu-catalog":
        assert "*" in _subtitle(model) and "(* default)" in _subtitle(model)


def test_kv_vs_context_matches_the_article(ds):
    """The article: Llama 3.3 70B, bf16, 2048 tokens, batch 1: 671,088,640 bytes of KV cache
    = 2 (K, V) x 80 layers x 8 KV heads x 128 x 2 bytes x 2048 tokens."""
    fig = plot(ds, "kv-vs-context", {"output_len": 1})
    line = next(c for c in _elements(fig, hv.Curve) if "llama-3.3-70b" in c.label)
    x, y = line.dimension_values(0), line.dimension_values(1)
    assert y[list(x).index(2048)] == pytest.approx(671_088_640 / 1e9, rel=1e-6)  # shown in GB = 1e9 bytes


def test_kv_vs_weights_crossover(ds):
    """Llama 3.3 70B at tp=2: weights 70,553,706,496 x 2 B / 2 per GPU; KV per sequence per GPU
    2 x 80 x (8/2) x 128 x 2 B x (2048 + 300 - 1) tokens = 384,532,480 B; equal at B* = 183.48."""
    crossover = 70_553_706_496 * 2 / 2 / (2 * 80 * 4 * 128 * 2 * 2347)
    assert crossover == pytest.approx(183.48, abs=0.01)
    sel = {"model": "llama-3.3-70b", "tp": 2, "gpu": "h100-sxm", "input_len": 2048, "output_len": 300}
    fig = plot(ds, "kv-vs-weights", sel)
    assert _bokeh(fig).title.text == "The KV cache overtakes the weights at batch ≈ 183"
    assert _elements(fig, hv.VLine)[0].data == pytest.approx(crossover, rel=1e-5)
    fig = plot(ds, "kv-vs-weights", dict(sel, batch="1,4,16,64"))  # the crossover lies beyond the axis
    assert _bokeh(fig).title.text == "KV cache below the weights up to batch 64 (equal at ≈ 183)"
    assert not _elements(fig, hv.VLine)


def test_default_tp_is_the_smallest_that_runs(ds):
    """Llama 3.3 70B does not fit one H100: the figure holds tp at the smallest degree with a
    feasible batch, and says it chose it."""
    sub = ds.sel(model="llama-3.3-70b", gpu="h100-sxm", input_len=2048, output_len=300)
    expected = min(int(tp) for tp in sub["tp"].values if bool(sub["feasible"].sel(tp=tp).any()))
    assert expected > 1
    fig = plot(ds, "throughput-vs-batch", {"model": "llama-3.3-70b"})
    subtitle = _subtitle(_bokeh(fig))
    assert f"tp={expected}*" in subtitle
    assert "model=llama-3.3-70b ·" in subtitle  # chosen by the caller: no *
    assert "input_len=2048*" in subtitle and "output_len=300*" in subtitle  # the article's request


def test_selection_errors(ds):
    with pytest.raises(SpecError, match="unknown dimension"):
        plot(ds, "roofline", {"colour": "red"})
    with pytest.raises(SpecError, match="not on the axis"):
        plot(ds, "roofline", {"tp": 3})
    with pytest.raises(SpecError, match="give one value"):
        plot(ds, "roofline", {"gpu": "h100-sxm,a100-sxm-40gb"})
    with pytest.raises(SpecError, match="unknown plot kind"):
        plot(ds, "pie-chart")


def test_list_selection_keeps_values_of_a_shown_dim(ds):
    fig = plot(ds, "cost-vs-speed", {"gpu": "a100-sxm-40gb"})
    assert {c.label for c in _elements(fig, hv.Curve)} == {"a100-sxm-40gb"}


def test_cost_vs_speed_excludes_infeasible_points(ds):
    fig = plot(ds, "cost-vs-speed", {"model": "llama-3.3-70b"})
    sub = ds.sel(model="llama-3.3-70b", input_len=2048, output_len=300)
    feasible = int(sub["feasible"].sum())
    faint = [s for s in _elements(fig, hv.Scatter) if s.opts.get("style", backend="bokeh").kwargs.get("alpha", 1) < 1]
    shown = sum(len(s) for s in faint)
    assert shown == feasible > 0
    for s in faint:
        assert np.isfinite(s.dimension_values(0)).all() and np.isfinite(s.dimension_values(1)).all()


def test_pareto_front_equals_brute_force():
    """Independent check: a point is on the front iff no other point is at least as fast and as
    cheap and strictly better in one of them."""
    rng = np.random.default_rng(0)
    speed, cost = rng.lognormal(size=200), rng.lognormal(size=200)
    speed[::17] = np.nan  # infeasible points
    ok = np.isfinite(speed)
    brute = {
        i
        for i in np.flatnonzero(ok)
        if not any(
            (speed[j] >= speed[i]) and (cost[j] <= cost[i]) and (speed[j] > speed[i] or cost[j] < cost[i])
            for j in np.flatnonzero(ok)
        )
    }
    front = pareto_front(speed, cost)
    assert set(front.tolist()) == brute
    assert np.all(np.diff(speed[front]) > 0) and np.all(np.diff(cost[front]) > 0)


def test_roofline_ridge_and_phases(ds):
    """H100 SXM: 989 TFLOP/s over 3.35 TB/s puts the ridge at 295 FLOP/byte (the article's
    numbers); decode at batch 1 sits far left of it, prefill of 2048 tokens right of it."""
    fig = plot(ds, "roofline", {"model": "llama-3.3-70b", "gpu": "h100-sxm"})
    assert _elements(fig, hv.VLine)[0].data == pytest.approx(989e12 / 3.35e12)
    points = {s.label.split()[0]: s for s in _elements(fig, hv.Scatter)}
    assert points["decode"].dimension_values(0).max() < 989e12 / 3.35e12 < points["prefill"].dimension_values(0).min()


def test_prefill_share_is_a_percentage(ds):
    fig = plot(ds, "prefill-share", {"model": "llama-3.1-8b"})
    lines = {c.label: c.dimension_values(1) for c in _elements(fig, hv.Curve)}
    assert np.allclose(lines["1 output token"], 100.0)  # no decode step: all time is prefill
    later = lines["300 output tokens"]
    assert np.all((later > 0) & (later < 100)) and np.all(np.diff(later) > 0)  # longer prompts: more prefill


def test_gpu_catalog_labels_every_gpu(ds):
    fig = plot(ds, "gpu-catalog")
    text = set(_elements(fig, hv.Labels)[0].dimension_values(2))
    assert text == set(load_gpus())


def test_display_units():
    assert unit_of("kv_cache_bytes", "byte") == (1e9, "GB")
    assert unit_of("ttft_s", "s") == (1e-3, "ms")
    assert unit_of("usd_per_mtok_output", "USD/Mtoken").label == "$/Mtok"
    assert fmt_number(1234.5) == "1,234" or fmt_number(1234.5) == "1,235"
    assert fmt_number(0.04773) == "0.0477"
    assert tokens(2048) == "2k" and tokens(131072) == "128k" and tokens(1000) == "1,000"
    assert [t for t, _ in log2_ticks([512, 131072])] == [2.0**k for k in range(9, 18)]
    assert log_ticks(0.9, 210) == [1, 2, 5, 10, 20, 50, 100, 200]


def test_to_display_says_what_it_did(ds):
    shown = to_display(ds["ttft_s"])
    assert shown.attrs["units"] == "ms" and shown.attrs["si_units"] == "s"
    np.testing.assert_allclose(shown.values, ds["ttft_s"].values * 1e3, rtol=1e-6)


def test_pick_defaults_prefer_the_article_shape(ds):
    picked = pick(ds, {}, free=("batch",))
    values = {d: v for d, v, _ in picked.chosen}
    assert values["input_len"] == 2048 and values["output_len"] == 300
    assert values["model"] == "llama-3.1-8b" and values["gpu"] == "h100-sxm"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("kind", ["cost-vs-speed", "kv-vs-context"])
def test_png_export_offline(ds, kind, tmp_path):
    """PNG through matplotlib: no browser, no network; the image is not blank."""
    import matplotlib.image

    path = save(plot(ds, kind), tmp_path / f"{kind}.png")
    width, height = _png_size(path.read_bytes())
    assert width >= 600 and height >= 300
    pixels = matplotlib.image.imread(path)[..., :3]
    ink = (pixels < 0.9).any(axis=-1).mean()
    assert 0.01 < ink < 0.5, f"{ink:.3f} of the pixels are drawn"


def test_html_export_is_self_contained(ds, tmp_path):
    import re

    text = save(plot(ds, "roofline"), tmp_path / "roofline.html").read_text()
    assert re.search(r"<(script|link)[^>]*(src|href)\s*=", text) is None
    assert "Bokeh" in text and "data-root-id" in text


def test_save_rejects_other_formats(ds, tmp_path):
    with pytest.raises(SpecError, match=r"\.html or \.png"):
        save(plot(ds, "roofline"), tmp_path / "roofline.svg")
