"""A 3-member Raft cluster on 127.0.0.1: the leader is killed (SIGKILL) in the
middle of a stream of writes; every write that reported success is on the
survivors, the CLI keeps working, and the killed member rejoins and catches up."""
from __future__ import annotations

import json
import os
import signal
import threading

from sg_ofctl.ovsdb import api, server

from ovsdb_fixtures import cluster, ok, run_cli  # noqa: F401
from polling import eventually
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


def rule_ports_on(remote: str) -> set[int]:
    """The dst ports of group `stream`'s rules, read from one member only."""
    with api.connect(remote, timeout=20, initialize=False) as handle:
        def read(tables):
            return {r.port_range_min[0] for r in tables["Security_Group_Rule"].rows.values()
                    if r.security_group.name == "stream" and r.port_range_min}
        return handle.read(read)


def test_leader_killed_during_writes(cluster):
    ok("group", "create", "stream", db=cluster.remotes)
    acknowledged, failed = [], []
    stop = threading.Event()

    def writer():
        with api.connect(cluster.remotes, timeout=30, txn_timeout=40) as handle:
            port = 1
            while not stop.is_set() and port < 400:
                try:
                    handle.run(handle.rule_create("stream", {"protocol": "tcp",
                                                             "dst_port": port}))
                    acknowledged.append(port)
                except Exception as e:        # noqa: BLE001 - a failed write may be lost
                    failed.append((port, repr(e)))
                port += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        cluster.wait_until(lambda: len(acknowledged) >= 15, "15 writes before the kill")
        leader = cluster.leader()
        pid = cluster.members[leader].pid()
        before_kill = len(acknowledged)
        os.kill(pid, signal.SIGKILL)
        cluster.wait_until(lambda: len(acknowledged) >= before_kill + 15,
                           "15 writes after the kill", timeout=60)
    finally:
        stop.set()
        thread.join(90)
    assert not thread.is_alive()
    survivors = [i for i in range(3) if i != leader]
    for i in survivors:
        present = rule_ports_on(cluster.remote_of(i))
        missing = sorted(set(acknowledged) - present)
        assert missing == [], f"member {i} lacks acknowledged writes {missing}"
    print(f"acknowledged {len(acknowledged)} writes ({before_kill} before the kill), "
          f"failed {failed}")
    assert len(failed) <= 2, failed

    # The CLI keeps working with the same list of remotes (one is dead).
    out = json.loads(ok("--timeout", "20", "rule", "create", "stream", "--protocol", "udp",
                        "--dst-port", "53", "-f", "json", db=cluster.remotes))
    assert out["protocol"] == "udp"
    assert "stream" in ok("--timeout", "20", "group", "list", "-f", "value", "-c", "Name",
                          db=cluster.remotes).split()
    rc, _, err = run_cli("--timeout", "20", "group", "create", "stream",
                         db=cluster.remotes)
    assert rc == 1 and "name='stream'" in err

    # The killed member restarts from its own files, rejoins and catches up.
    killed = cluster.members[leader]
    restarted = json.loads(ok("--state-dir", str(cluster.dirs[leader]), "db", "start",
                              "-f", "json"))
    assert restarted["state"].startswith("started (exists") and restarted["model"] == "clustered"
    cluster.wait_until(lambda: server.status(killed).get("cluster_status") ==
                       "cluster member", "the killed member rejoined")
    expected = set(acknowledged) | {53}
    cluster.wait_until(lambda: expected <= rule_ports_on(cluster.remote_of(leader)),
                       "the rejoined member has every acknowledged write")
    statuses = [server.status(m) for m in cluster.members]
    assert sum(s.get("cluster_role") == "leader" for s in statuses) == 1
    assert all(s["state"] == "running" and s["model"] == "clustered" for s in statuses)


def test_cluster_members_through_the_cli(cluster):
    status = json.loads(ok("--state-dir", str(cluster.dirs[0]), "db", "status", "-f", "json"))
    assert status["model"] == "clustered" and status["cluster_status"] == "cluster member"
    assert status["cluster_role"] in ("leader", "follower")
    # A write through one member is read back through another.
    ok("group", "create", "via-0", db=cluster.remote_of(0))
    eventually(lambda: "via-0" in ok("group", "list", "-f", "value", "-c", "Name",
                                     db=cluster.remote_of(2)).split(),
               10, 0.1, "the group written through member 0, read through member 2")
