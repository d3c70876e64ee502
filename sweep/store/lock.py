"""The writer lock of a local store: one ``sweep run`` (or ``sweep verify --repair``) writes it at a time.

The lock is the file ``_progress/writer.lock`` inside the store, beside the chunk records (at the
store's root zarr would warn, on every read, that it is no zarr node). It holds the writer's pid,
hostname and start time as JSON, and appears whole: a complete temporary file is hard-linked to
the lock's name, which fails if a lock is there. A lock whose pid no longer exists on this host is
stale: it is reported in one line on stderr and taken over. A lock taken on another host cannot
be checked from here, so it refuses like a live one.

Stores at non-local fsspec URLs (s3://, gs://, ...) are not locked: object stores offer no
create-if-absent that fsspec exposes for every backend, and their writers are the Dask workers of
one client, which assigns each chunk to one task.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from sweep.store.errors import StoreError, StoreLockedError

LOCK = "_progress/writer.lock"

_HELD: set[Path] = set()
"""Locks this process holds: a writer that calls another (``--repair`` runs ``run_sweep``) nests."""

_TRIES = 10
"""Stale locks taken over before giving up (each try follows another process's release or takeover)."""


def lock_file(url: str) -> Path | None:
    """Where the writer lock of the store at ``url`` lives; None for a non-local URL (not locked)."""
    fs, root = fsspec.core.url_to_fs(url)
    return Path(root) / LOCK if isinstance(fs, LocalFileSystem) else None


def held(url: str) -> bool:
    """Whether this process holds the writer lock of ``url``."""
    path = lock_file(url)
    return path is not None and path in _HELD


@contextmanager
def writer_lock(url: str) -> Iterator[None]:
    """Hold the writer lock of the store at ``url`` while the block runs; released on any exit.

    Raises ``StoreLockedError`` (naming the store and the holder's pid) when a live process holds it.
    """
    path = lock_file(url)
    if path is None or path in _HELD:
        yield
        return
    made = _acquire(url, path)
    _HELD.add(path)
    try:
        yield
    finally:
        _HELD.discard(path)
        _release(path, made)


def _record() -> str:
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return json.dumps(dict(pid=os.getpid(), hostname=socket.gethostname(), started_utc=started))


def _acquire(url: str, path: Path) -> list[Path]:
    """Take the lock at ``path``; return the directories made for it (removed on release if empty)."""
    made = [d for d in (path.parent.parent, path.parent) if not d.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"{url}: cannot make its writer lock {path} ({err.strerror})") from None
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(_record())  # inside the try: a full disk leaves no part of it behind
        for _ in range(_TRIES):
            try:
                os.link(temporary, path)
                return made
            except FileExistsError:
                pass
            text = _read(path)
            if text is None:  # released since the link failed
                continue
            holder = _parse(text)
            if holder is None:
                raise StoreLockedError(
                    f"{url}: its writer lock {path} is unreadable; delete it if no `sweep run` is writing this store"
                )
            if not _stale(holder):
                raise StoreLockedError(
                    f"{url}: locked by pid {holder['pid']} on {holder['hostname']} since "
                    f"{holder.get('started_utc', '?')} (another `sweep run` is writing it); wait for it to "
                    f"finish, or delete {path} if that process is gone"
                )
            print(
                f"sweep: {url}: taking over the stale writer lock of pid {holder['pid']} on "
                f"{holder['hostname']} (started {holder.get('started_utc', '?')}; that process is gone)",
                file=sys.stderr,
            )
            _set_aside(path, text)
        raise StoreLockedError(f"{url}: could not take its writer lock {path} after {_TRIES} tries")
    except BaseException:
        temporary.unlink(missing_ok=True)
        _remove_empty(made)  # a store that was never made is left as it was: absent
        raise
    finally:
        temporary.unlink(missing_ok=True)


def _release(path: Path, made: list[Path]) -> None:
    holder = _parse(_read(path) or "")
    if holder is not None and holder["pid"] == os.getpid() and holder["hostname"] == socket.gethostname():
        path.unlink(missing_ok=True)
    _remove_empty(made)


def _remove_empty(made: list[Path]) -> None:
    """Remove the directories the lock alone needed (a store that was never made), if still empty."""
    for directory in reversed(made):
        with suppress(OSError):
            directory.rmdir()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _parse(text: str) -> dict | None:
    """The lock's record, or None if it is not one (a pid must be a positive integer)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    ok = isinstance(record, dict) and isinstance(record.get("hostname"), str)
    ok = ok and isinstance(record.get("pid"), int) and not isinstance(record["pid"], bool) and record["pid"] > 0
    return record if ok else None


def _stale(holder: dict) -> bool:
    """Whether the holder is a process of this host that no longer exists."""
    if holder["hostname"] != socket.gethostname():
        return False
    try:
        os.kill(holder["pid"], 0)  # signal 0: checks that the process exists, sends nothing
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


def _set_aside(path: Path, stale: str) -> None:
    """Remove the stale lock ``stale`` at ``path``, unless another process took it over meanwhile.

    Renaming is atomic, so of two processes taking over the same stale lock one moves it and the
    other finds nothing to move; a lock moved that is not the stale one is put back.
    """
    aside = path.with_name(f"{path.name}.{os.getpid()}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _read(aside) != stale:
        with suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)
