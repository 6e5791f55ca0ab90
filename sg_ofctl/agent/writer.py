"""The agent's database writer: executes the latest `bindings.WritePlan` off
the flow path, in its own thread.

The worker submits a plan after every round; a plan that arrives while one is
being written replaces any plan still waiting (the newest snapshot wins), so
a burst of 500 tag-declared ports is one transaction, and a rule change in the
meantime is enforced by the worker with its usual latency.  Each plan is one
transaction on the security-group database (ovsdb/host_writes.py) and one on
the local Open_vSwitch database (VLAN tags).  What it writes comes back
through the monitors and wakes the worker, which then enforces it.

Failures (the database unreachable, a timeout) are retried with the newest
plan after 0.2 s, doubling to 5 s.  An item that cannot be written (a clash
with another port) is reported by name in the status and logged once.
"""
from __future__ import annotations

import logging
import threading
import time

from sg_ofctl.agent.bindings import WritePlan

LOG = logging.getLogger(__name__)


class DatabaseWriter(threading.Thread):
    def __init__(self, *, sgdb, local, on_error, on_failures_changed=None):
        super().__init__(name="sg-ofctl-db-writer", daemon=True)
        self.sgdb, self.local = sgdb, local
        self.on_error, self.on_failures_changed = on_error, on_failures_changed
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._next: WritePlan | None = None
        self.failed: dict = {}         # port name -> why its row could not be written
        self.stats = {"plans_written": 0, "rows_written": 0, "last_write_seconds": None}
        self._logged: set = set()

    def submit(self, plan: WritePlan) -> None:
        """Write this plan next, replacing one that still waits (or is retried
        after a failure): the newest snapshot wins, an empty plan included."""
        with self._lock:
            self._next = plan if plan else None
        if plan:
            self._wake.set()

    def busy(self) -> bool:
        with self._lock:
            return self._next is not None

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        delay = None
        while not self._stopping.is_set():
            self._wake.wait(delay)
            if self._stopping.is_set():
                break
            self._wake.clear()
            with self._lock:
                plan = self._next
            if plan is None:
                delay = None
                continue
            try:
                self.write(plan)
            except Exception as e:   # unreachable database, timeout: retry, newest plan
                self.on_error(f"database writes: {type(e).__name__}: {e}")
                LOG.log(logging.WARNING if delay is None else logging.DEBUG,
                        "database writes failed (retrying, the newest plan, from 0.2 s "
                        "up to every 5 s): %s: %s", type(e).__name__, e)
                delay = min(5.0, (delay or 0.1) * 2)
                continue
            if delay is not None:
                LOG.info("database writes succeed again")
            delay = None
            with self._lock:
                if self._next is plan:
                    self._next = None

    def write(self, plan: WritePlan) -> None:
        start = time.monotonic()
        if plan.db:
            w = plan.db
            result = self.sgdb.write(w)
            # A plan made before the monitors brought back the previous writes
            # repeats them: those items are found done and nothing is written.
            LOG.log(logging.INFO if result.written else logging.DEBUG,
                    "database writes: %d row(s) written in %.0f ms (planned: create %d, "
                    "update %d, delete %d, bind %d, unbind %d)", result.written,
                    (time.monotonic() - start) * 1000, len(w.create), len(w.update),
                    len(w.delete), len(w.bind), len(w.unbind))
            for name, why in result.skipped.items():
                LOG.debug("port %s: %s", name, why)
            before = dict(self.failed)
            for name in {s.name for s in w.create + w.update} - set(result.failed):
                self.failed.pop(name, None)
            self.failed.update(result.failed)
            failures_changed = self.failed != before
            for name, error in result.failed.items():
                if (name, error) not in self._logged:
                    self._logged.add((name, error))
                    LOG.error("port %s: its row cannot be written: %s", name, error)
                    self.on_error(f"port {name}: {error}")
            self.stats["rows_written"] += result.written
        else:
            failures_changed = False
        if plan.vlan_tags:
            LOG.info("setting the VLAN tag of %d port(s)", len(plan.vlan_tags))
            self.local.set_vlan_tags(dict(plan.vlan_tags))
        self.stats["plans_written"] += 1
        self.stats["last_write_seconds"] = round(time.monotonic() - start, 4)
        if failures_changed and self.on_failures_changed is not None:
            # What the rows written bring comes back through the monitors; a
            # failure does not, so the worker is told (its status names it).
            self.on_failures_changed()
