"""The HTML report in headless Chromium: no JavaScript errors, no network request, and every
figure drawn on a canvas of real size with real pixels. Screenshot: outputs/report.png."""

from __future__ import annotations

from sweep.viz.figures import KINDS
from sweep.viz.report import write_report
from tests.browser.conftest import canvas_ink, drawn, wait_until
from tests.sweep.plot_fixtures import small_spec

LOCAL = ("file:", "data:", "blob:", "about:")


def test_report_renders_every_figure_offline(tab, outputs, tmp_path):
    page, log = tab
    path = write_report(small_spec(), tmp_path / "report.html")  # a spec: computed in memory
    page.goto(path.as_uri(), wait_until="load")
    figures = {kind: page.locator(f'.figure[data-kind="{kind}"] canvas') for kind in KINDS}
    wait_until(lambda: all(drawn(canvases) for canvases in figures.values()), 20, "every figure to draw")
    for kind, canvases in figures.items():
        assert canvases.count() >= 1, f"{kind}: no canvas"
        best = max(canvas_ink(canvases), key=lambda c: c["ink"])
        assert best["w"] >= 600 and best["h"] >= 300, f"{kind}: canvas {best['w']}x{best['h']}"
    page.screenshot(path=str(outputs / "report.png"), full_page=True)
    assert log.errors == [], log.errors
    remote = [url for url in log.requests if not url.startswith(LOCAL)]
    assert remote == [], f"the report fetched {remote}"
    assert page.locator("table.best tbody tr").count() >= 1
    assert page.locator("table.provenance").count() == 1
