"""Simulated hosts for bench/fleet_fanout.py: one process holds many hosts, each
the agent's real database client (`sg_ofctl.agent.sgdb.SgDatabase`, its own
connection and monitor conditions) without OVS.  A checker thread does what
the agent's worker does on every change: takes the host's snapshot, and
records when an expected rule first appears in it.

The parent talks to `serve()` over a multiprocessing pipe:
  ("expect", group_id, dst_port)  -> None; hosts holding group_id then look for it
  ("seen",)                       -> {(group_id, dst_port): [epoch s per host]}
  ("stats",)                      -> bytes received, full downloads, all monitoring?
  ("stop",)
"""
from __future__ import annotations

import inspect
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sg_ofctl.agent import sgdb  # noqa: E402
from sg_ofctl.ovsdb import traffic  # noqa: E402

# The agent's client with conditional monitoring takes the host and its local
# iface-ids; the one before it replicated everything (both are measured).
CONDITIONAL = "host" in inspect.signature(sgdb.SgDatabase).parameters


class Host:
    def __init__(self, name: str, port_names: list[str], groups: set[str], remotes: str,
                 wake):
        self.name, self.port_names, self.groups = name, port_names, groups
        self.wake = wake
        kwargs = {"host": name} if CONDITIONAL else {}
        self.db = sgdb.SgDatabase(remotes, lambda: wake(self), timeout=120, **kwargs)
        self.downloads_at_start = 0

    def snapshot(self):
        return self.db.snapshot(self.port_names) if CONDITIONAL else self.db.snapshot()

    def monitoring(self) -> bool:
        idl = self.db.api.idl
        return self.db.connected() and idl.state == idl.IDL_S_MONITORING

    def received(self) -> int:
        return self.db.api.received_bytes()


class Checker:
    """Takes the snapshot of every host that changed; records expectations met."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changed: set = set()
        self.event = threading.Event()
        self.expected: list = []          # (group_id, dst_port)
        self.seen: dict = {}              # (group_id, dst_port) -> {host name: epoch s}
        self.hosts: list[Host] = []
        self.stopped = False

    def wake(self, host) -> None:
        with self.lock:
            self.changed.add(host)
        self.event.set()

    def expect(self, group_id: str, dst_port: int) -> None:
        with self.lock:
            self.expected.append((group_id, dst_port))
            self.seen[(group_id, dst_port)] = {}
            for host in self.hosts:
                if group_id in host.groups:
                    self.changed.add(host)       # it may have arrived already
        self.event.set()

    def run(self) -> None:
        while not self.stopped:
            self.event.wait(0.5)
            self.event.clear()
            with self.lock:
                changed, self.changed = self.changed, set()
                expected = list(self.expected)
            for host in changed:
                try:
                    state = host.snapshot()
                except Exception:                # not ready yet: the next change retries
                    continue
                now = time.time()
                for group_id, dst_port in expected:
                    seen = self.seen[(group_id, dst_port)]
                    if group_id not in host.groups or host.name in seen:
                        continue
                    group = state.groups.get(group_id)
                    if group is not None and any(r.port_range_min == dst_port
                                                 for r in group.rules):
                        seen[host.name] = now


def serve(conn, remotes_by_host: dict, ports_by_host: dict, groups_by_host: dict) -> None:
    """Process entry point: connect every host, then answer the parent."""
    traffic.install()
    checker = Checker()
    try:
        for name, remotes in remotes_by_host.items():
            host = Host(name, ports_by_host[name], set(groups_by_host[name]), remotes,
                        checker.wake)
            checker.hosts.append(host)
        for host in checker.hosts:               # the first view of each host
            host.snapshot()
            host.downloads_at_start = host.db.api.idl.full_downloads
        thread = threading.Thread(target=checker.run, daemon=True)
        thread.start()
        conn.send(("ready", len(checker.hosts)))
    except Exception as e:                       # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        message = conn.recv()
        if message[0] == "expect":
            checker.expect(message[1], message[2])
            conn.send(None)
        elif message[0] == "seen":
            with checker.lock:
                conn.send({k: list(v.values()) for k, v in checker.seen.items()})
        elif message[0] == "stats":
            hosts = checker.hosts
            conn.send({"bytes": sum(h.received() for h in hosts),
                       "full_downloads": sum(h.db.api.idl.full_downloads -
                                             h.downloads_at_start for h in hosts),
                       "hosts_downloading_again": sum(
                           h.db.api.idl.full_downloads > h.downloads_at_start
                           for h in hosts),
                       "monitoring": sum(h.monitoring() for h in hosts)})
        elif message[0] == "stop":
            checker.stopped = True
            for host in checker.hosts:
                host.db.close()
            conn.send(None)
            return
