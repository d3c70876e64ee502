"""Reading input files at the boundary, the one way every loader reads them.

An input file (a config.json, a sweep spec, a catalogue, a profile, a measurement file) is read
only if it is a regular file (a directory, FIFO or device is refused before anything waits on it),
no larger than ``MAX_BYTES``, UTF-8 text, and (JSON, TOML) nested no deeper than ``MAX_DEPTH``.
Each failure is a SpecError naming the file: bad input, exit status 2 in the CLI. A file that
exists but cannot be read (permission) is an environment failure and stays an OSError (exit 1).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grids.errors import SpecError

MAX_BYTES = 64 * 2**20
"""Largest input file read, 64 MiB: the largest shipped one is a few KiB; a measurement CSV of
64 MiB holds about half a million rows. A larger file is refused before it is read."""

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects (tables) accepted in a JSON or TOML input: a
config.json nests three levels (text_config, rope_scaling), a profile two."""


def is_file(path: Path | str) -> bool:
    """Whether ``path`` names an existing file of any kind; False for a name the system cannot
    even look up (too long, a NUL byte), where ``Path.exists`` would raise."""
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def read_bytes(path: Path | str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. Opened without blocking, so a FIFO
    is refused instead of waited on, and checked on the open descriptor (no race with a rename)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise SpecError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory; expected a regular file") from None
    except ValueError:  # a NUL byte in the name
        raise SpecError(f"{path!r}: not a valid file name") from None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise SpecError(f"{str(path)[:80]}...: file name too long") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{path}: is {_kind(info.st_mode)}; expected a regular file")
        if info.st_size > limit:
            raise SpecError(f"{path}: {info.st_size:,} bytes, more than the limit of {limit:,} for an input file")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while read
        raise SpecError(f"{path}: more than the limit of {limit:,} bytes for an input file")
    return data


def read_text(path: Path | str, limit: int = MAX_BYTES) -> str:
    """A regular file's text, which must be UTF-8 (a leading byte-order mark is dropped)."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of parsed JSON or TOML (a scalar 0, ``[1]`` 1, ``{"a": [1]}`` 2), counted
    only up to ``limit + 1``: without recursion, so any depth the parser built is measured."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > limit:
            break
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _check_depth(path: Path | str, value: Any) -> Any:
    if depth(value) > MAX_DEPTH:
        raise SpecError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    return value


def _parse(path: Path | str, limit: int, loads: Callable[[str], Any], kind: str) -> Any:
    """``loads`` of the text of a regular UTF-8 file, nested at most MAX_DEPTH levels."""
    text = read_text(path, limit)
    try:
        value = loads(text)
    except RecursionError:
        raise SpecError(f"{path}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:  # a decode error (both are ValueErrors), or an integer of over 4300 digits
        raise SpecError(f"{path}: not valid {kind} ({err})") from None
    return _check_depth(path, value)


def read_json(path: Path | str, limit: int = MAX_BYTES) -> Any:
    """Parsed JSON of a regular UTF-8 file, nested at most MAX_DEPTH levels."""
    return _parse(path, limit, json.loads, "JSON")


def read_toml(path: Path | str, limit: int = MAX_BYTES) -> dict[str, Any]:
    """Parsed TOML of a regular UTF-8 file, nested at most MAX_DEPTH levels."""
    value: dict[str, Any] = _parse(path, limit, tomllib.loads, "TOML")
    return value
