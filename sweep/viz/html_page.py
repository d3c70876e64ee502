"""Self-contained HTML pages of bokeh figures: BokehJS inlined, nothing fetched from the network."""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import holoviews as hv
from bokeh.embed import components
from bokeh.embed.bundle import bundle_for_objs_and_resources
from bokeh.resources import INLINE

from sweep.viz.base import ensure_backends


def write_page(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all: to a temporary file beside it, renamed over
    it once written. A full disk leaves neither a half-written page nor a damaged earlier one."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would have made it (mkstemp: 0o600)
        os.replace(temporary, path)
    except BaseException as err:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(err, OSError) and err.filename is None:  # write(2) names no file: name the page
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


CSS = """
body { font-family: system-ui, -apple-system, "DejaVu Sans", Arial, sans-serif; margin: 24px auto;
       max-width: 1000px; color: #222; line-height: 1.45; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em; }
.lede { color: #555; margin-top: 0; }
.figure { margin: 12px 0 28px 0; } .figure p { margin: 4px 0 10px 0; color: #444; }
.error { color: #a00; }
table { border-collapse: collapse; font-size: 0.9em; margin: 8px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; white-space: nowrap; }
table.provenance td { text-align: left; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
       font-size: 0.85em; word-break: break-all; }
"""


def _inline_bundle(models: Sequence[Any]) -> Any:
    """BokehJS and the extensions the models use, inlined.

    Bokeh's resources list the external files (``__javascript__``, ``__css__``) of every model
    class imported, used or not: importing HoloViews imports Panel, whose ReactiveESM models name
    a script under ``static/extensions``, which a standalone file cannot load. Those are dropped;
    a figure that itself uses a model with external files is refused.
    """
    bundle = bundle_for_objs_and_resources(models, INLINE)
    used = {type(obj) for model in models for obj in model.references()}
    external = [
        url for cls in used for attr in ("__javascript__", "__css__") for url in (getattr(cls, attr, None) or [])
    ]
    if external:
        raise RuntimeError(f"figure needs files that cannot be inlined: {external}")
    bundle.js_files, bundle.css_files = [], []
    return bundle


def _render(fig: Any) -> Any:
    ensure_backends()
    return hv.render(fig, backend="bokeh")


def figure_page(
    figures: Sequence[tuple[str, Any]],
    title: str,
    before: str = "",
    between: Sequence[str] = (),
    after: str = "",
    kinds: Sequence[str] = (),
) -> str:
    """One HTML page: ``before``, then each (caption_html, figure) in a ``div.figure`` (with
    ``data-kind`` from ``kinds``), ``between[i]`` after figure i, then ``after``.

    A caption_html whose figure is None is shown alone (e.g. why a figure could not be drawn).
    """
    models = [_render(fig) for _, fig in figures if fig is not None]
    script, divs = components(models) if models else ("", [])
    resources = ""
    if models:
        bundle = _inline_bundle(models)
        js, css = bundle
        resources = f"{css}\n{js}"
    divs = list(divs)
    body = []
    for i, (caption, fig) in enumerate(figures):
        kind = html.escape(kinds[i]) if i < len(kinds) else str(i)
        inner = caption + (divs.pop(0) if fig is not None else "")
        body.append(f'<div class="figure" data-kind="{kind}">{inner}</div>')
        if i < len(between):
            body.append(between[i])
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n"
        f"{resources}\n</head>\n<body>\n{before}\n" + "\n".join(body) + f"\n{after}\n{script}\n</body>\n</html>\n"
    )
