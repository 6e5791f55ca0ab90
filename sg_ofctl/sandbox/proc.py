"""Processes and commands, by pid only: what the sandbox, the Mininet runner and
the functional tests share.  Nothing here kills by name."""
from __future__ import annotations

import os
import signal
import subprocess
import time


def run(cmd, *, env=None, check=True, timeout=30, input=None) -> subprocess.CompletedProcess:
    """Run a command; with `check`, a non-zero exit raises RuntimeError that
    names the command and carries its output."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          input=input)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stderr}{proc.stdout}")
    return proc


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except (FileNotFoundError, ProcessLookupError):
        return False


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL: one process, by pid."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.02)


def read_pidfile(path) -> int | None:
    try:
        return int(open(path).read().strip())
    except (FileNotFoundError, ValueError):
        return None


def netns_pids(ns: str) -> list[int]:
    """The pids of every process in network namespace `ns`."""
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]
