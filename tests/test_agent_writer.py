"""The agent's database writer (agent/writer.py) with stand-in databases: it
writes the newest plan, a newer plan replaces one still waiting (an empty one
included), a failed write is retried with the newest plan, and an item that
cannot be written is kept by name for the status."""
from __future__ import annotations

import threading
import time

from sg_ofctl.agent.bindings import WritePlan
from sg_ofctl.agent.writer import DatabaseWriter
from sg_ofctl.ovsdb.host_writes import HostWrites, HostWritesResult


class FakeSg:
    def __init__(self):
        self.written, self.fail, self.gate = [], 0, threading.Event()
        self.gate.set()

    def write(self, writes):
        self.gate.wait(5)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database away")
        self.written.append(writes)
        failed = {"bad": "mac_address='x': used by port 'a'"} if "bad" in writes.bind else {}
        return HostWritesResult(written=len(writes.bind), failed=failed)


class FakeLocal:
    def __init__(self):
        self.tags = []

    def set_vlan_tags(self, tags):
        self.tags.append(tags)


def plan(*names, vlan=None) -> WritePlan:
    return WritePlan(HostWrites("hv1", bind=names), vlan or {})


def until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def writer_with(sg, local=None):
    errors, kicks = [], []
    w = DatabaseWriter(sgdb=sg, local=local or FakeLocal(), on_error=errors.append,
                       on_failures_changed=lambda: kicks.append(1))
    w.start()
    return w, errors, kicks


def test_the_newest_plan_replaces_one_that_waits():
    sg = FakeSg()
    w, _, _ = writer_with(sg)
    try:
        sg.gate.clear()                 # the first write blocks
        w.submit(plan("p1"))
        until(lambda: w.busy())
        time.sleep(0.05)
        w.submit(plan("p2"))
        w.submit(plan("p3"))            # replaces p2 before it is written
        sg.gate.set()
        until(lambda: len(sg.written) == 2 and not w.busy())
        assert [x.bind for x in sg.written] == [("p1",), ("p3",)]
    finally:
        w.stop()


def test_an_empty_plan_cancels_one_that_waits():
    sg = FakeSg()
    w, _, _ = writer_with(sg)
    try:
        sg.gate.clear()
        w.submit(plan("p1"))
        until(lambda: w.busy())
        time.sleep(0.05)
        w.submit(plan("p2"))
        w.submit(plan())                # the snapshot now needs nothing
        sg.gate.set()
        time.sleep(0.3)
        assert [x.bind for x in sg.written] == [("p1",)]
    finally:
        w.stop()


def test_a_failed_write_is_retried_with_the_newest_plan_and_bad_items_are_kept():
    sg, local = FakeSg(), FakeLocal()
    sg.fail = 2
    w, errors, kicks = writer_with(sg, local)
    try:
        w.submit(plan("p1", "bad", vlan={"Pp1": 5}))
        until(lambda: sg.written)
        assert sg.written[0].bind == ("p1", "bad") and local.tags == [{"Pp1": 5}]
        assert any("database away" in e for e in errors)
        assert w.failed == {"bad": "mac_address='x': used by port 'a'"} and kicks == [1]
        until(lambda: not w.busy())
    finally:
        w.stop()
