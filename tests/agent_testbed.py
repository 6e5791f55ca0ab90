"""Hypervisors for the agent's tests: a private ovs-vswitchd (OvsTestbed, its
own network namespace) with `sg-ofctl agent` running as a subprocess inside that
namespace, listening on 127.0.0.1:6653 there (each namespace has its own
loopback, so parallel test beds never collide), and a shared private
security-group database.  Everything is stopped by pid on close."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from ovs_testbed import OvsTestbed, stop_pid
from ovsdb_fixtures import ok

from polling import eventually  # noqa: F401  (re-exported for the agent tests)

OF_LISTEN = "127.0.0.1:6653"


def cut_after(session, start: float, limit: float = 3.0) -> float:
    """Seconds from `start` to the first exchange on `session` whose data was
    dropped (that exchange's send time: the cut was in effect by then)."""
    while time.monotonic() - start < limit:
        sent = time.monotonic()
        if not session.exchange():
            return sent - start
    raise AssertionError(f"the session was not cut within {limit} s")


class Hypervisor:
    def __init__(self, testbed: OvsTestbed, db: str, name: str):
        self.tb, self.db, self.name = testbed, db, name
        self.proc: subprocess.Popen | None = None
        self.status_file = testbed.dir / f"agent-{testbed.bridge}.json"

    def cli(self, *argv) -> str:
        return ok(*argv, db=self.db)

    def start_agent(self, wait: bool = True, *extra: str) -> None:
        log = open(self.tb.dir / "agent.log", "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.tb.ns, sys.executable, "-m", "sg_ofctl.cli",
             "--db", self.db, "agent", "--bridge", self.tb.bridge, "--ovs-db", self.tb.db,
             "--listen", OF_LISTEN, "--host", self.name, "--run-dir", str(self.tb.dir),
             "--switch-pki-dir", str(self.tb.dir / "pki"), *extra],
            stdout=log, stderr=subprocess.STDOUT, env=self.tb.env)
        log.close()
        self.tb._undo.append(self.stop_agent)
        if wait:
            self.wait_synced()

    def stop_agent(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=10)
        rc = self.proc.wait()
        self.proc = None
        return rc

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def wait_synced(self, timeout: float = 30.0) -> dict:
        """Until the running agent has connected and synced at least once."""
        pid = self.proc.pid if self.proc else None

        def synced():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("the agent exited:\n" + self.tb.log_tail("agent.log", 40))
            s = self.status()
            return s if s.get("switch", {}).get("connected") and s.get("syncs") and \
                s.get("first_sync_flow_mods") is not None and s.get("state") == "running" \
                and s.get("pid") == pid else None
        return eventually(synced, timeout, what="the agent's first sync")

    def port_state(self, iface: str) -> str | None:
        for p in self.status().get("ports", []):
            if p["interface"] == iface:
                return p["state"]
        return None

    def wait_enforced(self, vm, timeout: float = 15.0) -> None:
        eventually(lambda: self.port_state(f"vm-{vm.name}"[:15]) == "enforced", timeout,
                   what=f"{vm.name} enforced\n" + self.tb.log_tail("agent.log", 10))
