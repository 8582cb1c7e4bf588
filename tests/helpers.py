"""Helpers shared by the test tiers: free ports, waiting, running the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
VSTUDIO = [sys.executable, "-m", "vstudio"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f": {last}" if last else ""))


def need(binary: str, install: str) -> str:
    """Path of a required program; fail (never skip) naming the install step."""
    import shutil

    path = shutil.which(binary)
    if not path:
        pytest.fail(f"{binary} is missing: install it with '{install}' (make test does)")
    return path


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        input: bytes | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``vstudio ARGS`` as a user would; ``check`` asserts exit code 0."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([*VSTUDIO, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, input=input.decode() if input else None, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"vstudio {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def cli_json(*args: str, **kw: Any) -> Any:
    return json.loads(cli(*args, "--json", **kw).stdout)


def stop(proc: subprocess.Popen[bytes], wait: float = 15) -> None:
    """End a process the test started: politely, then for sure."""
    proc.terminate()
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()


def clear_of_minute_end(margin: float = 5.0) -> None:
    """Sleep into the next minute when this one ends within ``margin`` seconds: the farm's
    cached pages change generation with the clock's minute (a node's hours turn a queued
    job's reason), so a test that a page is kept must not straddle a minute's end."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.1)
