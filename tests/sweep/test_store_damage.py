"""`sweep plot`, `report`, `explore` and `query` on a damaged store (issue 15): each ends in one line on
stderr naming the store and the damaged chunk or array, exit status 2 (as `show` and `query` do
for a chunk that cannot be decoded), never a traceback, and the store is left as it was, byte for
byte. Damage that decodes silently (a flipped data byte, a deleted chunk) is found by the
checksums, before anything is drawn from the wrong numbers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grids.sweeps import validate
from sweep.cli import main
from sweep.store.run import run_sweep
from tests.sweep.test_store_full_disk import digest
from tests.sweep.test_store_safety import RAW as SAFETY_RAW

RAW = {**SAFETY_RAW, "name": "damage"}
"""Two chunks of three points (one per GPU), as in test_store_safety: it compiles fast."""

CHUNK = "0/1/0/0/0/0"
"""The second engine chunk (gpu l4), in zarr's chunk-key layout."""


def _flip(at: int):
    def damage(store: Path, key: str) -> None:
        data = bytearray((store / key).read_bytes())
        data[at] ^= 0xFF
        (store / key).write_bytes(bytes(data))

    return damage


def _delete(store: Path, key: str) -> None:
    (store / key).unlink()


DAMAGE = {
    # name: (file, how, words the one line must hold)
    "data byte": (f"ttft_s/c/{CHUNK}", _flip(-1), f"ttft_s chunk (0, 1, 0, 0, 0, 0) [ttft_s/c/{CHUNK}]: checksum"),
    "header byte": (f"ttft_s/c/{CHUNK}", _flip(0), f"ttft_s chunk (0, 1, 0, 0, 0, 0) [ttft_s/c/{CHUNK}]"),
    "deleted chunk": (f"tpot_s/c/{CHUNK}", _delete, f"tpot_s chunk (0, 1, 0, 0, 0, 0) [tpot_s/c/{CHUNK}]: checksum"),
    "progress byte": (f"_progress/chunk_done/c/{CHUNK}", _flip(0), "_progress/chunk_done"),
    "progress chunk deleted": (f"_progress/chunk_done/c/{CHUNK}", _delete, "_progress/chunk_done: the store is marked"),
    "variable metadata": ("ttft_s/zarr.json", _delete, "ttft_s"),
    "root metadata": ("zarr.json", _delete, "zarr.json"),
}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return Path(run_sweep(validate(RAW, "test"), tmp_path_factory.mktemp("clean") / "s.zarr", progress=False))


def _command(name: str, store: Path, out: Path) -> list[str]:
    return {
        "plot": ["plot", str(store), "throughput-vs-batch", "-o", str(out / "f.html")],
        "report": ["report", str(store), "-o", str(out / "r.html")],
        "explore": ["explore", str(store), "--port", "5999"],
        "query": ["query", str(store), "--sel", "gpu=l4"],
    }[name]


@pytest.fixture
def no_server(monkeypatch):
    """`sweep explore` must stop before it serves: a server started would block the test."""

    def serve(*args, **kwargs):
        raise AssertionError("the explorer started serving a damaged store")

    monkeypatch.setattr("panel.serve", serve)


@pytest.mark.parametrize("command", ["plot", "report", "explore", "query"])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_store_is_named_in_one_line(clean, tmp_path, capsys, no_server, command, damage):
    store = tmp_path / "s.zarr"
    shutil.copytree(clean, store)
    key, how, words = DAMAGE[damage]
    how(store, key)
    before = digest(store)
    out = tmp_path / "out"
    out.mkdir()
    assert main(_command(command, store, out)) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"sweep {command}: error: {store}"), captured.err
    assert words in captured.err and "Traceback" not in captured.err
    assert digest(store) == before, "a failed read changed the store"
    assert os.listdir(out) == [], "a figure was written from a damaged store"


def test_an_intact_store_is_drawn(clean, tmp_path, capsys):
    """The check names nothing in an intact store: the same plot is drawn, and the store is unchanged."""
    before = digest(clean)
    assert main(_command("plot", clean, tmp_path)) == 0
    assert (tmp_path / "f.html").stat().st_size > 0
    assert capsys.readouterr().err == ""
    assert digest(clean) == before


@pytest.mark.parametrize("damage", ["header byte", "variable metadata"])
def test_nothing_more_is_printed_at_exit(clean, tmp_path, damage):
    """In a process of its own, the one line is all of stderr: zarr's concurrent reads stopped by
    the damage leave no pending task for asyncio to print at exit."""
    store = tmp_path / "s.zarr"
    shutil.copytree(clean, store)
    key, how, words = DAMAGE[damage]
    how(store, key)
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "sweep.cli", *_command("plot", store, tmp_path)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
