"""Helpers for tests that start a server in a process of its own."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen) -> None:
    """End ``proc``: terminate, and kill it if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
