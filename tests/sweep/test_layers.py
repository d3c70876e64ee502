"""Imports point one way (DESIGN.md, Layout): every module of kernels/, grids/ and sweep/ is parsed
with ``ast`` and each of its imports, at module level, in functions, under ``if TYPE_CHECKING`` or
through ``importlib.import_module``, must name its own layer or a lower one.

Layers, lowest first: kernels < grids < sweep.engine < sweep.store < sweep.query <
sweep.calibration < sweep.viz < sweep.api < sweep.cli. ``sweep.api`` only re-exports: no module
imports it. ``sweep.bench`` sits beside the stack: it may import kernels, grids, sweep.engine and
sweep.store, and only sweep.cli imports it. ``kernels`` imports nothing third-party but jax,
jaxtyping and numpy (the standard library is allowed).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kernels", "grids", "sweep")

ORDER = (
    "kernels",
    "grids",
    "sweep.engine",
    "sweep.store",
    "sweep.query",
    "sweep.calibration",
    "sweep.viz",
    "sweep.api",
    "sweep.cli",
)
"""The layers, lowest first: a module may import its own layer and those before it."""

ALLOWED: dict[str, frozenset[str]] = {
    **{layer: frozenset(ORDER[: i + 1]) - {"sweep.api"} for i, layer in enumerate(ORDER)},
    "sweep.bench": frozenset({"kernels", "grids", "sweep.engine", "sweep.store", "sweep.bench"}),
}
ALLOWED["sweep.api"] |= {"sweep.api"}
ALLOWED["sweep.cli"] |= {"sweep.bench"}

KERNELS_THIRD_PARTY = frozenset({"jax", "jaxtyping", "numpy"})
"""What kernels may import besides itself and the standard library."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}
"""Every first-party module, by dotted name."""


def layer_of(module: str) -> str | None:
    """The layer a first-party module belongs to (its longest matching prefix), None for none."""
    matches = [layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len, default=None)


def imports(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import in ``source``, wherever it is."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                # `from sweep.bench import reference` imports the module sweep.bench.reference
                yield node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def violations(source: str, module: str, where: str, is_package: bool = False) -> list[str]:
    """What is wrong with the imports of ``module`` (``where``: its path, for the message)."""
    layer = layer_of(module)
    found = []
    for line, target in imports(source, module, is_package):
        top = target.split(".")[0]
        if top in PACKAGES:
            target_layer = layer_of(target)
            if target_layer is None:
                found.append(f"{where}:{line}: {module} imports {target}, which is in no layer")
            elif layer is not None and target_layer not in ALLOWED[layer]:
                found.append(
                    f"{where}:{line}: {module} ({layer}) imports {target} ({target_layer}); "
                    f"{layer} may import only {', '.join(sorted(ALLOWED[layer]))}"
                )
        elif layer == "kernels" and not (
            top in KERNELS_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__"
        ):
            found.append(
                f"{where}:{line}: {module} (kernels) imports {target}; kernels may import only "
                f"{', '.join(sorted(KERNELS_THIRD_PARTY))}, the standard library and itself"
            )
    return found


def test_every_module_is_in_a_layer():
    outside = [f"{path.relative_to(ROOT)} ({name})" for name, path in MODULES.items() if layer_of(name) is None]
    assert outside == ["sweep/__init__.py (sweep)"], (
        "modules outside every layer (put each in a subpackage of sweep/): " + ", ".join(outside)
    )


def test_imports_point_one_way():
    found = []
    for name, path in MODULES.items():
        found += violations(path.read_text(), name, str(path.relative_to(ROOT)), path.name == "__init__.py")
    assert not found, "imports against the layering (tests/sweep/test_layers.py):\n" + "\n".join(found)


def test_the_sweep_package_itself_is_only_a_docstring():
    body = ast.parse((ROOT / "sweep" / "__init__.py").read_text()).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), (
        "sweep/__init__.py: a docstring only (no imports, so importing one subpackage loads no other)"
    )


def test_every_package_says_what_it_is_for():
    missing = [
        str(path.relative_to(ROOT))
        for path in MODULES.values()
        if path.name == "__init__.py" and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not missing, "packages without a docstring: " + ", ".join(missing)


def test_the_econ_accessor_is_registered_in_one_module():
    registering = [
        str(path.relative_to(ROOT)) for path in MODULES.values() if "register_dataset_accessor" in path.read_text()
    ]
    assert registering == ["sweep/query/accessor.py"]


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("sweep.store.run", "def f():\n    from sweep.viz.report import write_report\n", "imports sweep.viz.report"),
        ("sweep.viz.report", "from sweep import api\n", "imports sweep.api (sweep.api)"),
        ("sweep.query.show", "if True:\n    import sweep.cli\n", "imports sweep.cli (sweep.cli)"),
        ("sweep.bench.bench", "from sweep.query import units\n", "imports sweep.query.units"),
        ("sweep.engine.plan", "from ..store import read\n", "imports sweep.store.read"),
        ("kernels.point", "import xarray\n", "kernels may import only"),
        ("grids.models", "import importlib\nimportlib.import_module('sweep.engine')\n", "imports sweep.engine"),
        ("sweep.engine.plan", "import sweep.widgets\n", "which is in no layer"),
    ],
)
def test_the_check_finds_an_import_upward(module, source, expected):
    found = violations(source, module, "example.py")
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.slow
def test_reading_a_store_imports_neither_jax_nor_the_engine():
    code = (
        "import json, sys; import sweep.store.read; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'grids', 'kernels') "
        "or m.startswith('sweep.engine'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout) == []
