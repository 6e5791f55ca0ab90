"""What a sandbox created, written down *before* each thing is created, so that
`stop` (in another process, or after a crash half-way through `start`) removes
exactly that: processes by pid, namespaces by name, then the directory."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from sg_ofctl.sandbox.proc import alive, netns_pids, read_pidfile, run, stop_pid

STATE = "state.json"


class Ledger:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.path = self.dir / STATE
        try:
            self.data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            self.data = {"namespaces": [], "pids": [], "pidfiles": [], "sg_state_dirs": []}

    def exists(self) -> bool:
        return self.path.exists()

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)

    def set(self, key: str, value) -> None:
        self.data[key] = value
        self._save()

    def add(self, kind: str, value) -> None:
        self.data.setdefault(kind, []).append(value)
        self._save()

    def pids(self) -> list[int]:
        """Every recorded pid that still runs, pidfiles included."""
        pids = list(self.data.get("pids", []))
        pids += [p for f in self.data.get("pidfiles", []) if (p := read_pidfile(f))]
        return [p for p in dict.fromkeys(pids) if alive(p)]

    def undo(self, log=print) -> list[str]:
        """Remove everything recorded; never raises.  Returns what it could not remove."""
        left = []
        # 1. processes: the recorded ones, then anything else inside our namespaces.
        for ns in self.data.get("namespaces", []):
            for pid in netns_pids(ns):
                self.data.setdefault("pids", []).append(pid)
        for pid in self.pids():
            stop_pid(pid)
            if alive(pid):
                left.append(f"process {pid}")
        # 2. security-group databases (sg-ofctl db stop, by their pidfile).
        for state_dir in self.data.get("sg_state_dirs", []):
            if Path(state_dir).exists():
                proc = run([sys.executable, "-m", "sg_ofctl.cli", "--state-dir", state_dir,
                            "db", "stop"], check=False)
                if proc.returncode:
                    left.append(f"database {state_dir}: {proc.stderr.strip()}")
        # 3. namespaces (their veths, taps and bridges go with them).
        existing = set(list_netns())
        for ns in reversed(self.data.get("namespaces", [])):
            if ns in existing:
                proc = run(["ip", "netns", "del", ns], check=False)
                if proc.returncode:
                    left.append(f"namespace {ns}: {proc.stderr.strip()}")
        # 4. files.
        for extra in self.data.get("paths", []):
            shutil.rmtree(extra, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            left.append(f"directory {self.dir}")
        for item in left:
            log(f"    could not remove {item}")
        return left


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]
