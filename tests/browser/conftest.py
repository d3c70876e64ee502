"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

`scripts/ensure-chromium.sh` installs it (the project's test setup calls it). Without it the
browser tests are skipped on a developer's machine and fail under CI (CI=true): a browser test
that cannot run must never pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SWEEP_CHROMIUM", "/usr/bin/chromium"))
"""Debian's chromium; SWEEP_CHROMIUM names another Chromium binary."""
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUTS = Path(__file__).resolve().parents[2] / "outputs"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (apt-get install chromium)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


class PageLog:
    """JavaScript errors, console errors and requests of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda err: self.errors.append(f"pageerror: {err}"))
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("request", lambda req: self.requests.append(req.url))


@pytest.fixture
def tab(browser):
    """(page, log): a fresh page in its own context, with its errors and requests recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    yield page, PageLog(page)
    context.close()


@pytest.fixture(scope="session")
def outputs() -> Path:
    OUTPUTS.mkdir(exist_ok=True)
    return OUTPUTS


CANVAS_INK = """
canvas => {
  const w = canvas.width, h = canvas.height;
  const box = canvas.getBoundingClientRect();
  let ink = 0;
  const ctx = w && h ? canvas.getContext("2d") : null;
  if (ctx) {
    const data = ctx.getImageData(0, 0, w, h).data;
    for (let i = 0; i < data.length; i += 4 * 5) {   // every 5th pixel
      if (data[i + 3] > 0 && (data[i] < 230 || data[i + 1] < 230 || data[i + 2] < 230)) ink++;
    }
  }
  return {w, h, cssw: box.width, cssh: box.height, ink, url: w && h ? canvas.toDataURL().length : 0};
}
"""
"""Size of a canvas and how many of its sampled pixels are drawn (neither transparent nor white)."""

SIGNATURE = "canvases => canvases.map(c => c.width && c.height ? c.toDataURL() : '').join('|')"
"""All canvases' pixels as one string: it changes when a figure is redrawn differently."""


def canvas_ink(locator) -> list[dict]:
    return locator.evaluate_all(f"canvases => canvases.map({CANVAS_INK})")


def drawn(locator, min_ink: int = 300) -> bool:
    """Whether some canvas under ``locator`` is at least 100 x 100 px with ``min_ink`` drawn samples."""
    return any(c["w"] >= 100 and c["h"] >= 100 and c["cssw"] > 0 and c["ink"] >= min_ink for c in canvas_ink(locator))


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.25) -> None:
    """Poll ``condition()`` until true; fail naming ``what`` after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
