"""Running ovsdb-server processes: spawn one that detaches (and fail if a
listener could not be opened), stop one by its pid, tell whether it lives.
Shared by server.py (members) and relay.py (the agents' relay)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


class ServerError(RuntimeError):
    """ovsdb-server or ovsdb-tool failed; the message says which and why."""


def spawn(argv: list[str], log: Path, stop_it, name: str) -> None:
    """Run a detaching ovsdb-server; a listener it could not open is a failure."""
    log_size = log.stat().st_size if log.exists() else 0
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    failed = [line for line in log_since(log, log_size).splitlines()
              if "listen failed" in line or "|ERR|" in line and "stream_ssl" in line]
    if result.returncode == 0 and failed:
        # ovsdb-server keeps running without the listener: that is no use here.
        stop_it()
        raise ServerError(f"{name} did not start: {failed[0].split('|')[-1]} "
                          f"(log: {log})")
    if result.returncode != 0:
        lines = (result.stderr.strip() or tail(log)).splitlines()
        raise ServerError(f"{name} did not start: {lines[-1] if lines else 'no output'} "
                          f"(log: {log})")


def log_since(path: Path, offset: int) -> str:
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def tail(path: Path) -> str:
    try:
        return path.read_text()[-2000:]
    except OSError:
        return ""


def stop_pid(pid: int, timeout: float = 10.0) -> str:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return "stopped"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return "killed"


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
