"""The Panel explorer, served on 127.0.0.1 in a subprocess, in headless Chromium: it loads with
no JavaScript error, draws its figure, and choosing another variable redraws it.
Screenshots: outputs/explore_before.png, outputs/explore_after.png."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sweep.api import run_sweep
from tests.browser.conftest import SIGNATURE, drawn, wait_until
from tests.processes import stop
from tests.sweep.plot_fixtures import small_spec

pytestmark = pytest.mark.slow  # a subprocess

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"the explorer exited with status {proc.returncode}:\n{log.read_text(errors='replace')}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def explorer(tmp_path):
    """The URL of the explorer of a small store, served by `sweep.viz.explore.serve` in a subprocess."""
    store = run_sweep(small_spec(), tmp_path / "small.zarr", progress=False)
    port = _free_port()
    code = f"from sweep.viz.explore import serve; serve({str(store)!r}, {port})"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = tmp_path / "explore.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: _answers(url, proc, log), 90, f"the explorer to answer on {url}", poll_s=0.5)
        yield url
    finally:
        stop(proc)


def test_explorer_redraws_when_a_widget_changes(tab, explorer, outputs):
    page, log = tab
    page.goto(explorer, wait_until="load")
    canvases = page.locator("canvas")
    wait_until(lambda: drawn(canvases), 30, "the explorer's figure to draw")
    page.wait_for_timeout(300)  # let the last layer settle before taking the reference pixels
    before = canvases.evaluate_all(SIGNATURE)
    page.screenshot(path=str(outputs / "explore_before.png"), full_page=True)

    variable = page.locator("select").first  # the variable chooser comes first
    options = variable.locator("option").all_inner_texts()
    assert variable.input_value() == "output throughput (tokens/s)", options
    target = next(text for text in options if text.startswith("per-user speed"))
    variable.select_option(label=target)
    wait_until(lambda: canvases.evaluate_all(SIGNATURE) != before, 20, "the figure to redraw")
    wait_until(lambda: drawn(canvases), 10, "the redrawn figure to have pixels")
    page.wait_for_timeout(300)
    page.screenshot(path=str(outputs / "explore_after.png"), full_page=True)
    assert variable.input_value() == target

    assert log.errors == [], log.errors
    remote = [url for url in log.requests if not url.startswith((explorer, "ws://127.0.0.1", "blob:", "data:"))]
    assert remote == [], f"the explorer fetched {remote}"
