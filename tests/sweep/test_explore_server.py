"""`sweep explore` as a server under hostile clients (issue 15): it listens on 127.0.0.1 only
unless told otherwise; malformed HTTP (garbage bytes, a bad request line, a header beyond the size
limit, a negative Content-Length), bad paths and query parameters, websocket handshakes with junk,
and clients that close the socket mid-request leave it serving; each bad request is logged in one
line, and nothing in the log is a traceback. The server runs in a subprocess, stopped in a finally."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from grids.sweeps import validate
from sweep.store.run import run_sweep
from tests.processes import stop
from tests.sweep.test_store_damage import RAW

ROOT = Path(__file__).resolve().parents[2]
LOGGED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ sweep explore: (.*)$", re.MULTILINE)
"""A line of the explorer's request log (``sweep.viz.explore.log_requests_in_one_line``)."""

WS = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}"
    "Origin: http://127.0.0.1:{port}\r\n\r\n"
)

BAD = [
    # (name, bytes sent ({port} filled in), whether the client closes without reading, the log line expected or None)
    ("garbage bytes", b"\x00\xff\xfe\x80garbage\r\n\r\n", False, r"Malformed HTTP message from 127\.0\.0\.1"),
    ("no request line", b"GET\r\n\r\n", False, r"Malformed HTTP message from 127\.0\.0\.1"),
    ("path outside", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", False, r"404 GET /\.\./\.\./etc/passwd"),
    ("unknown path", b"GET /nope%00%ff HTTP/1.1\r\nHost: x\r\n\r\n", False, r"404 GET /nope%00%ff"),
    (
        "undecodable query",
        b"GET /?bokeh-session-id=%ff%00&x=%%%% HTTP/1.1\r\nHost: x\r\n\r\n",
        False,
        r"400 GET /\?bokeh-session-id=%ff%00&x=%%%% \(127\.0\.0\.1\): Invalid unicode",
    ),
    ("websocket without upgrade", b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", False, r"400 GET /ws"),
    (
        "websocket, no subprotocol, junk frame",
        WS.format(port="{port}", extra="").encode() + b"\x81\xff junk",
        False,
        r"GET /ws \(127\.0\.0\.1\): ProtocolError: Subprotocol header is not 'bokeh'",
    ),
    (
        "websocket, junk token",
        WS.format(port="{port}", extra="Sec-WebSocket-Protocol: bokeh, \x8e\x8f\r\n").encode() + b"\x88\x00",
        False,
        r"GET /ws \(127\.0\.0\.1\): \w+Error",
    ),
    ("header beyond the limit", b"GET / HTTP/1.1\r\nX: " + b"a" * 200_000 + b"\r\n\r\n", False, r"Unsatisfiable read"),
    (
        "negative Content-Length",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        False,
        r"Malformed HTTP message from 127\.0\.0\.1: Only integer Content-Length",
    ),
    # clients that close the socket mid-request: tornado drops them without a word; the server goes on
    ("closed in the request line", b"GET / HT", True, None),
    ("closed in the headers", b"GET / HTTP/1.1\r\nHost: x\r\n", True, None),
    ("closed before the answer", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True, None),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError:
        return None


def _send(port: int, data: bytes, close: bool) -> None:
    """Send ``data`` on a new connection; unless ``close``, read until the server answers or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            if not close:
                sock.recv(4096)
        except OSError:  # the server may reset a connection it refuses (a header beyond its limit)
            pass


def _listening(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port`` (hex, from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def _wait(what: str, ready, timeout_s: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"the explorer exited ({proc.returncode}) waiting for {what}:\n{log.read_text(errors='replace')}"
            )
        if value := ready():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return run_sweep(validate(RAW, "test"), tmp_path_factory.mktemp("explore") / "s.zarr", progress=False)


def test_the_explorer_serves_through_bad_requests(store, tmp_path):
    port = _free_port()
    log = tmp_path / "explore.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweep.cli", "explore", store, "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait("the first page", lambda: _status(url) == 200, 90, proc, log)
        assert f"sweep explore: serving {store} on {url} (Ctrl-C stops)" in log.read_text()
        if Path("/proc/net/tcp").exists():  # this machine only: 127.0.0.1, no wildcard, no IPv6
            assert _listening(port) == ["0100007F"]
        for name, data, close, expected in BAD:
            before = len(LOGGED.findall(log.read_text(errors="replace")))
            _send(port, data.replace(b"{port}", str(port).encode()), close)
            if expected is not None:
                line = _wait(
                    f"the log line of {name}",
                    lambda n=before: LOGGED.findall(log.read_text(errors="replace"))[n:],
                    15,
                    proc,
                    log,
                )
                assert len(line) == 1 and re.search(expected, line[0]), (name, line)
            assert _status(f"{url}liveness") == 200, f"no answer after {name}"
        assert _status(url) == 200  # and the page itself
        text = log.read_text(errors="replace")
        assert len(LOGGED.findall(text)) == sum(expected is not None for *_, expected in BAD), text
        assert "Traceback" not in text and proc.poll() is None
    finally:
        stop(proc)


@pytest.mark.parametrize(("flags", "address"), [([], "127.0.0.1"), (["--address", "0.0.0.0"], "0.0.0.0")])
def test_the_explorer_binds_loopback_unless_told(store, capsys, monkeypatch, flags, address):
    """`sweep explore` hands panel 127.0.0.1 by default, and the address given with --address."""
    from sweep.cli import main

    served = {}
    monkeypatch.setattr("panel.serve", lambda *args, **kwargs: served.update(kwargs))
    monkeypatch.setattr("sweep.viz.explore.log_requests_in_one_line", lambda: None)  # tornado's loggers as they are
    assert main(["explore", store, "--port", "5999", *flags]) == 0
    assert served["address"] == address and served["port"] == 5999
    assert capsys.readouterr().out == f"sweep explore: serving {store} on http://{address}:5999/ (Ctrl-C stops)\n"
