"""Clients writing at once never lose an update: every write verifies and bumps
Global.revision, so a client that planned on stale rows re-plans (OVSDB
transactions with ovsdbapp's retry)."""
from __future__ import annotations

import logging
import threading

from sg_ofctl import errors
from sg_ofctl.ovsdb import api

from ovsdb_fixtures import ok, sgdb, subprocess_cli  # noqa: F401
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


class RetryCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.retries = 0

    def emit(self, record):
        if "TRY_AGAIN" in record.getMessage():
            self.retries += 1


def run_together(workers):
    barrier = threading.Barrier(len(workers))
    failures = []

    def wrap(work):
        def body():
            try:
                barrier.wait()
                work()
            except Exception as e:          # noqa: BLE001 - reported below
                failures.append(e)
        return body
    threads = [threading.Thread(target=wrap(w)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return failures


def test_concurrent_writers_to_one_group_lose_nothing(sgdb):
    ok("group", "create", "shared", db=sgdb.remote)
    counter = RetryCounter()
    logger = logging.getLogger("ovsdbapp.backend.ovs_idl.transaction")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    clients, writes = 3, 15
    handles = [api.connect(sgdb.remote) for _ in range(clients)]

    def writer(n):
        def work():
            handle = handles[n]
            for i in range(writes):
                handle.run(handle.rule_create("shared", {"protocol": "tcp",
                                                         "dst_port": 1000 * (n + 1) + i}))
                handle.run(handle.group_set("shared", external_ids={f"c{n}-{i}": "x"}))
        return work
    try:
        failures = run_together([writer(n) for n in range(clients)])
    finally:
        logger.removeHandler(counter)
        logger.setLevel(old_level)
        for h in handles:
            h.close()
    assert failures == []
    group = ok("group", "show", "shared", "-f", "json", db=sgdb.remote)
    import json
    group = json.loads(group)
    ports = sorted(r["port_range_min"] for r in group["rules"] if "port_range_min" in r)
    assert ports == sorted(1000 * (n + 1) + i for n in range(clients) for i in range(writes))
    assert len(group["external_ids"]) == clients * writes
    # revision_number is a read-modify-write on the same row by every writer:
    # one lost update would leave it short.
    assert group["revision_number"] == 1 + 2 * clients * writes
    print(f"transactions retried after a conflict: {counter.retries}")


def test_two_ports_racing_for_one_address_one_wins(sgdb):
    handles = [api.connect(sgdb.remote) for _ in range(2)]
    results = []

    def creator(n):
        def work():
            handle = handles[n]
            try:
                handle.run(handle.port_create({
                    "name": f"p{n}", "mac": f"fa:16:3e:00:00:0{n + 1}",
                    "ips": ["10.0.0.7"], "network": 5}))
                results.append(("ok", n))
            except errors.Conflict as e:
                results.append(("conflict", str(e)))
        return work
    for _round in range(3):
        results.clear()
        try:
            assert run_together([creator(0), creator(1)]) == []
        finally:
            pass
        assert sorted(r[0] for r in results) == ["conflict", "ok"], results
        conflict = next(r[1] for r in results if r[0] == "conflict")
        assert "fixed_ips='10.0.0.7'" in conflict and "network 5" in conflict
        ok("port", "delete", next(f"p{r[1]}" for r in results if r[0] == "ok"),
           db=sgdb.remote)
    for h in handles:
        h.close()


def test_two_real_commands_at_once(sgdb):
    """Two sg-ofctl processes add rules to one group at the same moment."""
    import subprocess
    import sys
    from ovsdb_fixtures import ROOT, SG_OFCTL
    ok("group", "create", "g", db=sgdb.remote)
    procs = []
    for n in range(2):
        script = "; ".join(
            f"main(['--db', {sgdb.remote!r}, 'rule', 'create', 'g', '--protocol', 'udp', "
            f"'--dst-port', '{2000 + 10 * n + i}', '-f', 'value', '-c', 'id'])"
            for i in range(8))
        procs.append(subprocess.Popen([sys.executable, "-c",
                                       f"from sg_ofctl.cli import main; {script}"],
                                      cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    created = [line for out, _ in outputs for line in out.split()]
    assert len(created) == 16
    listed = ok("rule", "list", "g", "-f", "value", "-c", "ID", db=sgdb.remote).split()
    assert set(created) <= set(listed)
    assert SG_OFCTL  # the same entry point as the subprocess tests
    assert subprocess_cli("--db", sgdb.remote, "rule", "list", "g").returncode == 0


def test_clients_racing_to_initialise_a_new_database():
    from ovsdb_fixtures import new_database
    handles = []
    with new_database() as fresh:
        try:
            def connect():
                handles.append(api.connect(fresh.remote))
            assert run_together([connect] * 4) == []
            groups = handles[0].read(lambda t: [r.name for r in
                                                t["Security_Group"].rows.values()])
            assert groups == ["default"]
            assert len(handles[0].read(lambda t: list(t["Global"].rows))) == 1
        finally:
            for h in handles:
                h.close()
