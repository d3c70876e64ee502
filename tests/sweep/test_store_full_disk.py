"""A disk that fills during `sweep run` (issue 15): exit status 1 and one line saying what the run
left in the store and how to go on; the same command, once there is room, completes the store,
identical to an uninterrupted run's (every variable bit for bit, the records of progress and
checksums, `sweep verify` clean). And nothing lost: a complete store that a run or a report
meets on a full disk is left as it was, byte for byte.

The full disk is made two ways: always, by zarr's file writer raising ENOSPC after a given number
of chunks (where the operating system raises it: the write of a chunk file, inside zarr, in the
run's writer thread); and, where a mount is permitted, by a real tmpfs of a few hundred KiB."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.storage._local as zarr_local

from sweep.cli import main
from sweep.store.lock import LOCK
from sweep.store.read import CHECKSUMS, PROGRESS, done_chunks

ROOT = Path(__file__).resolve().parents[2]

SPEC_TOML = """name = "full-disk"
[axes]
model = ["llama-3.1-8b"]
gpu = ["h100-sxm", "l4"]
tp = [1]
batch = [1, 2, 4, 8, 16, 32]
input_len = [512]
output_len = [128]
[engine]
chunk_points = 3
"""
"""Four chunks of three points (two per GPU)."""

CHUNKS = 4


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "full-disk.toml"
    path.write_text(SPEC_TOML)
    return path


@pytest.fixture(scope="module")
def clean(spec_file) -> Path:
    """The store of an uninterrupted run, by the same command."""
    store = spec_file.parent / "clean.zarr"
    assert main(["run", str(spec_file), "-o", str(store), "-q"]) == 0
    return store


def digest(store: Path) -> dict[str, str]:
    """SHA-256 of every file under ``store``, by relative path: the store byte for byte."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file()
    }


def same_as(clean: Path, path: Path) -> None:
    """Every variable and coordinate bit for bit, the attrs but the creation time, and the records of
    progress and checksums identical."""
    a = xr.open_zarr(clean, consolidated=False, zarr_format=3).load()
    b = xr.open_zarr(path, consolidated=False, zarr_format=3).load()
    assert a.attrs.pop("created_utc") and b.attrs.pop("created_utc")
    xr.testing.assert_identical(a, b)
    for name in a.variables:
        if a[name].dtype.kind in "biuf":  # bit for bit: NaN payloads and signed zeros too
            bits = [np.ascontiguousarray(ds[name].values).view(np.uint8) for ds in (a, b)]
            np.testing.assert_array_equal(*bits)
    for record in (PROGRESS, CHECKSUMS):
        np.testing.assert_array_equal(
            zarr.open_array(str(clean), path=record, mode="r")[...],
            zarr.open_array(str(path), path=record, mode="r")[...],
        )


def _full_after(monkeypatch, chunks_done: int | None = None, metadata_files: int | None = None) -> None:
    """zarr's writer of one file raises ENOSPC, as write(2) on a full disk does (no file name): for
    any chunk of data once ``chunks_done`` chunks are marked done, or for any metadata file after
    ``metadata_files`` of them."""
    put = zarr_local._put
    seen = {"done": 0, "metadata": 0}

    def full_put(path: Path, value, exclusive: bool = False) -> int:
        key = path.as_posix()
        if "/_progress/chunk_done/c/" in key:
            seen["done"] += 1
        elif key.endswith("zarr.json"):
            seen["metadata"] += 1
            if metadata_files is not None and seen["metadata"] > metadata_files:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        elif chunks_done is not None and seen["done"] >= chunks_done and "/_progress/" not in key:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return put(path, value, exclusive)

    monkeypatch.setattr(zarr_local, "_put", full_put)


def _run(capsys, spec_file: Path, store: Path) -> tuple[int, str]:
    status = main(["run", str(spec_file), "-o", str(store), "-q"])
    return status, capsys.readouterr().err


def test_a_disk_full_mid_run_leaves_a_store_the_rerun_completes(clean, spec_file, tmp_path, capsys, monkeypatch):
    store = tmp_path / "s.zarr"
    with monkeypatch.context() as patch:
        _full_after(patch, chunks_done=2)
        status, err = _run(capsys, spec_file, store)
    assert status == 1
    assert err == (
        f"sweep run: error: No space left on device; {store} is incomplete: 2 of {CHUNKS} chunks written "
        "and kept; once fixed (space freed), the same command resumes it\n"
    )
    assert int(done_chunks(store).sum()) == 2
    assert not (store / LOCK).exists(), "the writer lock outlived the run"
    assert not list(store.rglob("*.partial")), "a half-written file was left"
    assert main(["verify", str(store)]) == 0  # what is kept is whole
    assert "clean: 2 of 4 chunks" in capsys.readouterr().out
    assert _run(capsys, spec_file, store) == (0, "")
    same_as(clean, store)
    assert main(["verify", str(store)]) == 0


def test_a_disk_full_while_the_store_is_made_leaves_nothing(clean, spec_file, tmp_path, capsys, monkeypatch):
    """Full before the store's metadata is all written: no half-made store (which a rerun could not
    resume) is left, and the same command then makes it whole."""
    store = tmp_path / "s.zarr"
    with monkeypatch.context() as patch:
        _full_after(patch, metadata_files=5)
        status, err = _run(capsys, spec_file, store)
    assert (status, err) == (
        1,
        f"sweep run: error: No space left on device; nothing was written to {store}; once fixed, the same "
        "command starts it\n",
    )
    assert not store.exists()
    assert _run(capsys, spec_file, store) == (0, "")
    same_as(clean, store)


def test_a_complete_store_is_not_touched_by_a_rerun_on_a_full_disk(clean, spec_file, tmp_path, capsys, monkeypatch):
    """Nothing lost: a rerun (no --overwrite) of a complete store writes nothing to it. On a disk so
    full that not even its writer lock can be written, it says so, and the store is unchanged."""
    store = tmp_path / "s.zarr"
    shutil.copytree(clean, store)
    before = digest(store)
    with monkeypatch.context() as patch:
        _full_after(patch, chunks_done=0, metadata_files=0)  # zarr can write nothing
        assert _run(capsys, spec_file, store) == (0, "")
        assert digest(store) == before

        def no_room(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        patch.setattr(Path, "write_text", no_room)  # the writer lock's record
        status, err = _run(capsys, spec_file, store)
    assert (status, err) == (1, f"sweep run: error: No space left on device; {store} is complete and unchanged\n")
    assert digest(store) == before


# --- a real full disk: a small tmpfs ---------------------------------------------------------

DRIVER = textwrap.dedent(
    """
    import json, math, os, shutil, subprocess, sys
    from pathlib import Path

    spec, clean, mount, keep = sys.argv[1:]
    def pages(root):
        return sum(math.ceil(p.stat().st_size / 4096) for p in Path(root).rglob("*") if p.is_file())
    def chunk_pages(root):
        return sum(math.ceil(p.stat().st_size / 4096) for p in Path(root).rglob("*")
                   if p.is_file() and "/c/" in p.as_posix() and "_progress" not in p.as_posix()
                   and p.relative_to(root).parts[0] in chunked)
    import zarr
    chunked = set(zarr.open_group(clean, mode="r")["_progress/checksum"].attrs["variables"])
    total, data = pages(clean), chunk_pages(clean)
    size = 4096 * (total - data // 2)  # the metadata and about half of the chunks fit
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f"mount -t tmpfs failed: {mounted.stderr.strip()}", file=sys.stderr)
        sys.exit(77)
    from sweep.cli import main
    store = os.path.join(mount, "s.zarr")
    first = main(["run", spec, "-o", store, "-q"])
    sys.stderr.flush()
    print("--- report", file=sys.stderr, flush=True)
    left = sorted(str(p.relative_to(store)) for p in Path(store).rglob("*"))
    def files(root):
        return {str(p): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}
    before = files(store)
    report = main(["report", store, "-o", os.path.join(mount, "r.html")])  # on the full disk
    untouched = files(store) == before
    sys.stderr.flush()
    print("--- rerun", file=sys.stderr, flush=True)
    subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)
    second = main(["run", spec, "-o", store, "-q"])
    shutil.copytree(store, keep)
    print(json.dumps(dict(size=size, first=first, report=report, untouched=untouched, second=second, left=left,
                          outputs=sorted(os.listdir(mount)))))
    """
)


def _namespace() -> list[str]:
    """A private mount namespace: as root, or else as root of a new user namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("no `unshare` here to mount a tmpfs in a private mount namespace")
    return ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]


@pytest.mark.skipif(sys.platform != "linux", reason="tmpfs and mount namespaces are Linux's")
def test_a_small_tmpfs_fills_and_the_rerun_completes_the_store(spec_file, tmp_path):
    """The same story on a real full disk: `sweep run` into a tmpfs with room for about half the
    chunks stops with exit 1 and its one line, a report written to the full disk fails in one line
    leaving no half-written file; once the tmpfs is grown, the same command completes the store,
    identical to an uninterrupted run of the same process."""
    clean = tmp_path / "clean.zarr"
    mount = tmp_path / "mnt"
    mount.mkdir()
    keep = tmp_path / "kept.zarr"
    code = (
        f"from sweep.cli import main; raise SystemExit(main(['run', {str(spec_file)!r}, '-o', {str(clean)!r}, '-q']))"
    )
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    try:
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
        done = subprocess.run(
            [*_namespace(), sys.executable, str(driver), str(spec_file), str(clean), str(mount), str(keep)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as err:
        pytest.fail(f"{err}: {getattr(err, 'stderr', '')}")
    if done.returncode == 77 or (done.returncode != 0 and "unshare" in done.stderr):
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    print(done.stderr)  # the lines quoted in the issue (pytest -s shows them)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    run_err, report_err, rerun_err = done.stderr.split("--- ")
    assert result["first"] == 1, done.stderr
    line = run_err.strip()
    assert "\n" not in line and line.startswith("sweep run: error: No space left on device; "), line
    assert " is incomplete: " in line and "chunks written and kept; once fixed (space freed), the same command" in line
    written = int(line.split(" is incomplete: ")[1].split(" of ")[0])
    assert 0 < written < CHUNKS, line
    assert not [name for name in result["left"] if name.endswith(".partial")]
    assert result["report"] == 1
    report_line = report_err.removeprefix("report").strip()
    assert report_line == f"sweep report: error: {mount / 'r.html'}: No space left on device", report_line
    assert result["outputs"] == ["s.zarr"], "the report left a half-written file on the full disk"
    assert result["untouched"], "the failed report changed the store"
    assert result["second"] == 0 and rerun_err.removeprefix("rerun").strip() == ""
    same_as(clean, keep)
    assert main(["verify", str(keep)]) == 0


@pytest.mark.parametrize("command", ["plot", "report"])
def test_a_page_on_a_full_disk_keeps_the_store_and_the_earlier_page(clean, tmp_path, capsys, monkeypatch, command):
    """Nothing lost: `sweep plot` or `report` of a complete store whose page cannot be written
    (the disk fills halfway through it) exits 1 naming the page; the store is byte for byte as it
    was, the page written before at that path is whole, and no part of the new one is left."""
    import builtins

    from sweep.viz import html_page

    page = tmp_path / "page.html"
    page.write_text("the page of an earlier run")
    before = digest(clean)

    def half_full(file, *args, **kwargs):
        handle = builtins.open(file, *args, **kwargs)  # noqa: SIM115 (returned open, as open() does)

        def write(text: str) -> int:
            handle.buffer.write(text[: len(text) // 2].encode())
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        handle.write = write
        return handle

    monkeypatch.setattr(html_page, "open", half_full, raising=False)  # the page writer's open() only
    args = ["plot", str(clean), "throughput-vs-batch"] if command == "plot" else ["report", str(clean)]
    assert main([*args, "-o", str(page)]) == 1
    assert capsys.readouterr().err == f"sweep {command}: error: {page}: No space left on device\n"
    assert page.read_text() == "the page of an earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
    assert digest(clean) == before


def test_a_repair_stopped_by_a_full_disk_is_resumed_by_the_same_command(clean, tmp_path, capsys, monkeypatch):
    """`sweep verify --repair` recomputes a damaged chunk with `sweep run`'s machinery: a full disk
    stops it with the same one line, and the same command then completes the store identically."""
    store = tmp_path / "s.zarr"
    shutil.copytree(clean, store)
    chunk = store / "ttft_s" / "c" / "0" / "1" / "0" / "0" / "0" / "0"
    chunk.unlink()  # reads as NaN: a checksum mismatch
    with monkeypatch.context() as patch:
        _full_after(patch, chunks_done=0)  # no chunk's data can be written
        assert main(["verify", "--repair", "-q", str(store)]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        f"sweep verify: error: No space left on device; {store} is incomplete: {CHUNKS - 1} of {CHUNKS} chunks "
        "written and kept; once fixed (space freed), the same command resumes it\n"
    )
    assert main(["verify", "--repair", "-q", str(store)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == f"{store}: completed: computed the 1 chunks not written" and "clean: 4 of 4" in out[-1]
    same_as(clean, store)
