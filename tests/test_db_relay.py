"""OVSDB relays of a 3-member cluster (`sg-ofctl db start --relay-of`), and
failover: a relay serves reads and forwards writes; a client on a relay keeps
its replica through a leader kill (no second full download: the relay answers
`monitor_cond_since` from its transaction history); the first write after a
leader kill lands within seconds of the new leader's election."""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import threading
import time

import pytest

from ovsdb_fixtures import (cluster, free_tcp_port, ok, run_cli, short_tmpdir,  # noqa: F401
                            state_dir)
from sg_ofctl.ovsdb import api, server, traffic

pytestmark = pytest.mark.root   # real ovsdb-server processes

ELECTED = re.compile(r"^(\S+)\|\d+\|raft\|INFO\|term (\d+): elected leader")


class Relay:
    def __init__(self, cluster):
        self.cluster = cluster
        self.dir = short_tmpdir("sgr")
        self.member = server.Member(self.dir)
        self.port = free_tcp_port()

    @property
    def remote(self) -> str:
        return f"tcp:127.0.0.1:{self.port}"

    def start(self) -> dict:
        return json.loads(ok("--state-dir", str(self.dir), "db", "start", "--relay-of",
                             self.cluster.remotes, "--listen", self.remote,
                             "--insecure-plain-tcp", "-f", "json"))

    def upstream(self) -> int:
        """The member the relay replicates now (from its log)."""
        lines = [line for line in self.member.log.read_text().splitlines()
                 if re.search(r"reconnect\|INFO\|tcp:127.0.0.1:\d+: connected$", line)]
        port = int(re.search(r":(\d+): connected$", lines[-1]).group(1))
        return self.cluster.client_ports.index(port)

    def close(self) -> None:
        server.stop(self.member)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def relay(cluster):
    r = Relay(cluster)
    try:
        r.start()
        yield r
    finally:
        r.close()


def make_leader(cluster, index: int) -> None:
    """Move the leadership to member `index`: a member stopped gracefully hands
    its leadership over to another; restart it and repeat."""
    for _ in range(10):
        leader = cluster.leader()
        if leader == index:
            return
        server.stop(cluster.members[leader])
        cluster.start_member(leader)
        cluster.wait_until(lambda: all(server.status(m).get("cluster_status") ==
                                       "cluster member" for m in cluster.members), "rejoined")
        cluster.wait_until(lambda: cluster.leader() is not None, "a leader")
    raise AssertionError(f"member {index} never became the leader")


def election_time(cluster, index: int, after_term: int) -> float:
    """When member `index` logged its election for a term after `after_term` (epoch s)."""
    for line in reversed(cluster.members[index].log.read_text().splitlines()):
        match = ELECTED.match(line)
        if match and int(match.group(2)) > after_term:
            stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    raise AssertionError(f"member {index} logged no election after term {after_term}")


def term(cluster, index: int) -> int:
    return int(server.status(cluster.members[index])["cluster_term"])


def bulk_rules(remote: str, group: str, count: int) -> None:
    with api.connect(remote, timeout=30, txn_timeout=180) as handle:   # a loaded machine
        with handle.create_transaction() as txn:
            txn.add(handle.group_create(group))
        for start in range(0, count, 50):
            with handle.create_transaction() as txn:
                for port in range(start + 1, min(start + 51, count + 1)):
                    txn.add(handle.rule_create(group, {"protocol": "tcp", "dst_port": port}))


def on_member(cluster, index: int):
    """An agent-like client (any member will do) that happens to be on member
    `index` (clients shuffle the remotes: retry until it is)."""
    for _ in range(30):
        client = api.connect(cluster.remotes, initialize=False, leader_only=False,
                             timeout=30)
        if client.idl._session.get_name() == cluster.remote_of(index):
            return client
        client.close()
    raise AssertionError(f"no client landed on member {index}")


def test_a_relay_serves_reads_and_forwards_writes(cluster, relay):
    status = json.loads(ok("--state-dir", str(relay.dir), "db", "status", "-f", "json"))
    assert status["state"] == "running" and status["model"] == "relay"
    assert status["relay_of"] == cluster.remotes and "database" not in status
    ok("group", "create", "via-relay", db=relay.remote)              # forwarded to the leader
    ok("rule", "create", "via-relay", "--protocol", "tcp", "--dst-port", "22", db=relay.remote)
    ok("group", "create", "via-member", db=cluster.remotes)
    for remote in (cluster.remotes, relay.remote):
        names = ok("group", "list", "-f", "value", "-c", "Name", db=remote).split()
        assert {"via-relay", "via-member"} <= set(names), remote
    # Reads with several remotes take any server: a relay (never a leader) will do.
    with_dead = f"{relay.remote},tcp:127.0.0.1:{free_tcp_port()}"
    assert "via-member" in ok("--timeout", "20", "group", "list", db=with_dead)
    rules = json.loads(ok("rule", "list", "via-relay", "-f", "json", db=relay.remote))
    assert "22:22" in [r["Port Range"] for r in rules]
    # A bare restart starts the relay again (its options were saved), not a member.
    ok("--state-dir", str(relay.dir), "db", "stop")
    again = json.loads(ok("--state-dir", str(relay.dir), "db", "start", "-f", "json"))
    assert again["state"] == "started (relay)" and not relay.member.db.exists()
    assert "via-member" in ok("group", "list", "-f", "value", "-c", "Name", db=relay.remote)


@pytest.mark.parametrize("value, extra, expected", [
    ("", [], "relay-of='': expected the cluster's remotes"),
    ("tcp:127.0.0.1:6641,,tcp:127.0.0.1:6642", [], "relay-of='tcp:127.0.0.1:6641,,"),
    ("http://db:80", [], "relay-of='http://db:80': a remote is ssl:ADDR:PORT"),
    ("tcp:127.0.0.1:70000", ["--insecure-plain-tcp"], "relay-of='tcp:127.0.0.1:70000'"),
    ("tcp:127.0.0.1:6641", [], "relay-of='tcp:127.0.0.1:6641': plain-TCP"),
    ("ssl:127.0.0.1:6641", [], "relay-of='ssl:127.0.0.1:6641'"),
    (",".join(f"unix:/tmp/m{i}" for i in range(17)), [], "at most 16 remotes"),
    ("tcp:127.0.0.1:6641", ["--insecure-plain-tcp", "--cluster-address",
                            "tcp:127.0.0.1:6643"], "a relay is not a Raft member"),
])
def test_bad_relay_of_values_are_refused_before_anything_starts(state_dir, value, extra,
                                                                expected):
    rc, out, err = run_cli("--state-dir", str(state_dir), "db", "start", "--relay-of", value,
                           *extra)
    assert rc == 1 and expected in err, err
    assert server.Member(state_dir).pid() is None
    assert not server.Member(state_dir).options.exists()     # nothing remembered


def test_a_relay_never_takes_over_a_members_directory(state_dir):
    member = server.Member(state_dir)
    server.start(member)
    server.stop(member)
    rc, _, err = run_cli("--state-dir", str(state_dir), "db", "start", "--relay-of",
                         "unix:/tmp/elsewhere.sock")
    assert rc == 1 and "holds a database member" in err, err
    assert member.pid() is None


def test_a_client_on_a_relay_keeps_its_replica_through_a_leader_kill(cluster, relay):
    bulk_rules(cluster.remotes, "bulk", 600)
    make_leader(cluster, relay.upstream())      # the hard case: the relay's source dies
    traffic.install()
    client = api.connect(relay.remote, initialize=False, leader_only=False, timeout=30)
    member_client = on_member(cluster, cluster.leader())       # the member to be killed
    try:
        first = client.received_bytes()
        assert client.idl.full_downloads == 1 and first > 100_000, first
        count = client.read(lambda t: len(t["Security_Group_Rule"].rows))
        before = (client.received_bytes(), member_client.received_bytes())
        seqno = client.idl._session.get_seqno()
        leader = cluster.leader()
        os.kill(cluster.members[leader].pid(), signal.SIGKILL)
        ok("--timeout", "30", "rule", "create", "bulk", "--protocol", "udp", "--dst-port",
           "53", db=relay.remote)                 # forwarded to the new leader
        cluster.wait_until(lambda: client.read(lambda t: len(t["Security_Group_Rule"].rows))
                           == count + 1, "the relay's client sees the write after the kill")
        cluster.wait_until(lambda: member_client.read(
            lambda t: len(t["Security_Group_Rule"].rows)) == count + 1,
            "the member's client sees it")
        assert relay.upstream() != leader         # the relay moved to a survivor
        after = (client.received_bytes() - before[0],
                 member_client.received_bytes() - before[1])
        print(f"first download {first} B; after the kill: relay client {after[0]} B "
              f"(reconnected: {client.idl._session.get_seqno() != seqno}), "
              f"member client {after[1]} B")
        assert client.idl.full_downloads == 1 and member_client.idl.full_downloads == 1
        assert after[0] < first / 20 and after[1] < first / 20, (first, after)
    finally:
        client.close()
        member_client.close()


def test_the_first_write_after_a_leader_kill_lands_within_seconds_of_the_election(cluster):
    ok("group", "create", "failover", db=cluster.remotes)
    leader = cluster.leader()
    old_term = term(cluster, leader)
    done: dict = {}
    with api.connect(cluster.remotes, timeout=30) as handle:   # leader-only, like the CLI
        handle.run(handle.rule_create("failover", {"protocol": "tcp", "dst_port": 1}))

        def write():
            handle.run(handle.rule_create("failover", {"protocol": "tcp", "dst_port": 2}))
            done["at"] = time.time()
        writer = threading.Thread(target=write)
        os.kill(cluster.members[leader].pid(), signal.SIGKILL)
        killed = time.time()
        writer.start()
        writer.join(40)
    assert "at" in done, "the write did not complete"
    survivors = [i for i in range(3) if i != leader]
    new_leader = next(i for i in survivors if server.status(cluster.members[i])
                      .get("cluster_role") == "leader")
    elected = election_time(cluster, new_leader, old_term)
    print(f"elected {elected - killed:.2f} s after the kill; first write "
          f"{done['at'] - elected:.2f} s after the election")
    assert done["at"] - elected <= 6.0


def test_a_client_moves_to_another_relay_without_a_full_download(cluster):
    """Relays of one cluster share its transaction ids: a client whose relay dies
    asks the next one for what it missed, and gets only that."""
    relays = [Relay(cluster), Relay(cluster)]
    client = None
    try:
        for relay in relays:
            relay.start()
        bulk_rules(cluster.remotes, "bulk", 500)
        traffic.install()
        remotes = ",".join(r.remote for r in relays)
        for _ in range(30):                     # clients shuffle: land on relay 0
            client = api.connect(remotes, initialize=False, leader_only=False, timeout=30)
            if client.idl._session.get_name() == relays[0].remote:
                break
            client.close()
            client = None
        assert client is not None, "no client landed on relay 0"
        cluster.wait_until(lambda: client.read(lambda t: len(t["Security_Group_Rule"].rows))
                           >= 500, "relay 0 has every rule")
        first, count = client.received_bytes(), client.read(
            lambda t: len(t["Security_Group_Rule"].rows))
        os.kill(relays[0].member.pid(), signal.SIGKILL)
        ok("rule", "create", "bulk", "--protocol", "udp", "--dst-port", "53",
           db=cluster.remotes)
        cluster.wait_until(lambda: client.read(lambda t: len(t["Security_Group_Rule"].rows))
                           == count + 1, "the client sees the write through relay 1")
        assert client.idl._session.get_name() == relays[1].remote
        after = client.received_bytes() - first
        print(f"first download {first} B; after moving to relay 1: {after} B")
        assert client.idl.full_downloads == 1 and after < first / 10, (first, after)
    finally:
        if client is not None:
            client.close()
        for relay in relays:
            relay.close()
