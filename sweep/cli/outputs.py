"""Output paths, checked before any computation: a mistyped path fails in a second, not after the
sweep or fit it was to hold.

Missing directories on the way to an output are created when it is written (as ``sweep run``,
``plot`` and ``report`` always did). Exit statuses (``sweep.cli.main``): a path that cannot be what
it should is bad input, status 2 (a component of it is a file, a file output names a directory);
a directory that refuses a new file (permission, read-only file system) is an environment
failure, status 1, as is any OSError while writing later (disk full).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from grids.errors import SpecError


def _probe(directory: Path, path: Path) -> None:
    """Create and remove a file in ``directory``: the one test that holds for every user, root
    included, and every file system (``os.access`` misses read-only mounts under root)."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".sweep-probe-"):
            pass
    except OSError as err:
        raise OSError(err.errno, f"cannot write in {directory} ({err.strerror})", str(path)) from None


def _mode(path: Path, flag: str, text: str) -> int | None:
    """``st_mode`` of ``path`` (symbolic links followed), None where nothing is there."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:
        raise SpecError(f"{flag} {text!r}: not a valid file name") from None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise SpecError(f"{flag} {text[:80]}...: file name too long") from None
        raise


def _existing(path: Path, flag: str, text: str) -> Path:
    """The nearest existing ancestor of ``path`` (the missing ones are created when written),
    which must be a directory."""
    existing = path.absolute().parent
    mode = _mode(existing, flag, text)
    while mode is None:
        existing = existing.parent
        mode = _mode(existing, flag, text)
    if not stat.S_ISDIR(mode):
        raise SpecError(f"{flag} {text}: {existing} is not a directory")
    return existing


def output_file(text: str, flag: str) -> Path:
    """The file a command will write: not a directory, under a directory (or missing directories
    below one) that accepts a new file. SpecError (status 2) or OSError (status 1)."""
    path = Path(text)
    if not text or text.endswith(os.sep):
        raise SpecError(f"{flag} {text!r}: expected a file name")
    mode = _mode(path, flag, text)
    if mode is not None and stat.S_ISDIR(mode):
        raise SpecError(f"{flag} {text}: is a directory; expected a file name")
    _probe(_existing(path, flag, text), path)
    return path


def output_store(text: str, flag: str) -> None:
    """A local store ``sweep run`` will write (fsspec URLs are left to the store): a directory or
    nothing yet, under a directory (or missing directories below one) that accepts a new file."""
    if "://" in text:
        return
    path = Path(text)
    mode = _mode(path, flag, text)
    if mode is not None and not stat.S_ISDIR(mode):
        raise SpecError(f"{flag} {text}: is a file; expected a store directory")
    _probe(path if mode is not None else _existing(path, flag, text), path)
