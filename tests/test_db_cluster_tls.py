"""A 3-member Raft cluster with TLS between members and towards clients, with
the agents' relays (issue 11): it survives a leader kill for admins and agents,
and a host without a certificate of the cluster's CA (another CA, a
hypervisor's certificate, plain TCP) cannot join, read or kick a member."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from ovsdb_fixtures import free_tcp_port, run_cli, short_tmpdir
from sg_ofctl.agent import sgdb as sgdb_mod
from sg_ofctl.ovsdb import server, tls
from sg_ofctl.ovsdb.host_writes import HostWrites
from polling import eventually
from tls_fixtures import Pki, as_client, pki, raw_tcp_request  # noqa: F401 (fixture)

SIZE = 3


class TlsCluster:
    def __init__(self, pki: Pki):
        self.pki = pki
        self.dirs = [short_tmpdir("sgc") for _ in range(SIZE)]
        self.members = [server.Member(d) for d in self.dirs]
        self.keys = [pki.member(f"m{i}") for i in range(SIZE)]
        self.raft_ports = [free_tcp_port() for _ in range(SIZE)]
        self.admin_ports = [free_tcp_port() for _ in range(SIZE)]
        self.agent_ports = [free_tcp_port() for _ in range(SIZE)]

    def raft(self, i: int) -> str:
        return f"ssl:127.0.0.1:{self.raft_ports[i]}"

    @property
    def admin_remotes(self) -> str:
        return ",".join(f"ssl:127.0.0.1:{p}" for p in self.admin_ports)

    @property
    def agent_remotes(self) -> str:
        return ",".join(f"ssl:127.0.0.1:{p}" for p in self.agent_ports)

    def start(self) -> None:
        for i in range(SIZE):
            join = [] if i == 0 else ["--join", self.raft(0)]
            rc, _, err = run_cli(*self.keys[i].global_args(), "--state-dir", str(self.dirs[i]),
                                 "db", "start", "--cluster-address", self.raft(i), *join,
                                 "--listen", f"ssl:127.0.0.1:{self.admin_ports[i]}",
                                 "--agent-listen", f"ssl:127.0.0.1:{self.agent_ports[i]}",
                                 "--agent-ca-cert", self.pki.agent_ca_cert)
            assert rc == 0, err
        wait_until(lambda: all(server.status(m).get("cluster_status") == "cluster member"
                               for m in self.members), "all members joined")

    def leader(self) -> int:
        for i, member in enumerate(self.members):
            if member.pid() and server.status(member).get("cluster_role") == "leader":
                return i
        raise AssertionError("no leader")

    def servers(self, i: int) -> list[str]:
        """The members that member i knows: ["sid at address", ...]."""
        out = subprocess.run(["ovs-appctl", "-t", str(self.members[i].ctl), "cluster/status",
                              "SG_ofctl"], capture_output=True, text=True, timeout=10).stdout
        return sorted(re.findall(r"\((\w+ at [^)]+)\)", out.split("Servers:")[-1]))

    def stop(self) -> None:
        for member in self.members:
            server.stop(member)
        for d in self.dirs:
            subprocess.run(["rm", "-rf", str(d)], check=False)


def wait_until(predicate, what: str, timeout: float = 30) -> None:
    eventually(predicate, timeout, 0.1, what, ignore=(Exception,))


@pytest.fixture(scope="module")
def cluster(pki):
    c = TlsCluster(pki)
    try:
        c.start()
        _admin(pki, c, "group", "list")          # the first client initialises the database
        yield c
    finally:
        c.stop()


def _admin(pki, cluster, *argv):
    rc, out, err = as_client(pki.admin("alice"), cluster.admin_remotes, "--timeout", "30",
                             *argv)
    assert rc == 0, err
    return out


def test_raft_between_members_is_tls(cluster):
    status = server.status(cluster.members[0])
    assert status["cluster_address"] == cluster.raft(0)
    for i in range(SIZE):
        assert any(s.endswith(cluster.raft(i)) for s in cluster.servers(0))
        assert raw_tcp_request(cluster.raft_ports[i]) == ""      # no plain-TCP Raft


def test_a_tls_cluster_survives_a_leader_kill_for_admins_and_agents(pki, cluster):
    _admin(pki, cluster, "group", "create", "before-kill")
    _admin(pki, cluster, "port", "create", "vm-k", "--mac", "fa:16:3e:00:01:01", "--ip",
           "10.1.0.1")
    host = pki.host("compute-1")
    tls.configure(tls.KeyMaterial(host.private_key, host.certificate, host.ca_cert))
    agent = sgdb_mod.SgDatabase(cluster.agent_remotes, lambda *a: None, timeout=15)
    try:
        agent.write(HostWrites("compute-1", bind=("vm-k",)))
        leader = cluster.leader()
        # The leader's host dies: its member and its agents' relay.
        relay_pid = server.status(cluster.members[leader])["agent_relay_pid"]
        os.kill(cluster.members[leader].pid(), signal.SIGKILL)
        os.kill(relay_pid, signal.SIGKILL)
        survivors = [i for i in range(SIZE) if i != leader]
        wait_until(lambda: any(server.status(cluster.members[i]).get("cluster_role") ==
                               "leader" for i in survivors), "a new leader")
        _admin(pki, cluster, "group", "create", "after-kill")
        names = _admin(pki, cluster, "group", "list", "-f", "value", "-c", "Name").split()
        assert {"before-kill", "after-kill"} <= set(names)
        wait_until(lambda: agent.snapshot().bound.get("vm-k") == {"compute-1"}, "agent view")
        agent.write(HostWrites("compute-1", unbind=("vm-k",)))   # through a surviving relay
        ports = json.loads(_admin(pki, cluster, "port", "list", "-f", "json"))
        assert {p["Name"]: p["Host"] for p in ports}["vm-k"] == ""
    finally:
        agent.close()
        tls.forget()


def test_a_tls_relay_of_the_cluster_serves_admins_and_agents(pki, cluster):
    """`db start --relay-of` with a cluster-CA certificate: admins on its --listen,
    agents (the hypervisors' CA, role sg-agent) on its agents' relay."""
    state, port, agent_port = short_tmpdir("sgr"), free_tcp_port(), free_tcp_port()
    relay_remote, agent_remote = f"ssl:127.0.0.1:{port}", f"ssl:127.0.0.1:{agent_port}"
    agent = None
    try:
        rc, out, err = run_cli(*pki.member("relay-1").global_args(), "--state-dir",
                               str(state), "db", "start", "--relay-of", cluster.admin_remotes,
                               "--listen", relay_remote, "--agent-listen", agent_remote,
                               "--agent-ca-cert", pki.agent_ca_cert, "-f", "json")
        assert rc == 0, err
        started = json.loads(out)
        assert started["model"] == "relay" and "warning" not in started
        rc, _, err = as_client(pki.admin("alice"), relay_remote, "port", "create", "vm-r",
                               "--mac", "fa:16:3e:00:02:01", "--ip", "10.2.0.1")
        assert rc == 0, err                     # written through the relay
        assert "vm-r" in _admin(pki, cluster, "port", "list", "-f", "value", "-c", "Name")
        rc, _, _ = as_client(pki.host("compute-2"), relay_remote, "group", "list")
        assert rc != 0                          # a hypervisor cannot use the admin listener
        assert raw_tcp_request(port) == ""      # nor can plain TCP
        host = pki.host("compute-2")
        tls.configure(tls.KeyMaterial(host.private_key, host.certificate, host.ca_cert))
        agent = sgdb_mod.SgDatabase(agent_remote, lambda *a: None, timeout=15)
        agent.write(HostWrites("compute-2", bind=("vm-r",)))
        ports = json.loads(_admin(pki, cluster, "port", "list", "-f", "json"))
        assert {p["Name"]: p["Host"] for p in ports}["vm-r"] == "compute-2"
    finally:
        if agent is not None:
            agent.close()
        tls.forget()
        server.stop(server.Member(state))
        subprocess.run(["rm", "-rf", str(state)], check=False)


def _rogue_member(cluster, keys, scheme: str = "ssl", extra=()):
    """Start a would-be member in its own directory, joining member 0."""
    state = short_tmpdir("sgr")
    port = free_tcp_port()
    alive = next(i for i in range(SIZE) if cluster.members[i].pid())
    join = cluster.raft(alive).replace("ssl:", f"{scheme}:")
    rc, _, err = run_cli(*(keys.global_args() if keys else []), "--state-dir", str(state),
                         "db", "start", "--cluster-address", f"{scheme}:127.0.0.1:{port}",
                         "--join", join, *extra)
    return state, rc, err


def test_a_member_certificate_of_the_cluster_ca_does_join(pki, cluster):
    """The control for the test below: the same steps with the right certificate."""
    state, rc, err = _rogue_member(cluster, pki.member("m8"))
    member = server.Member(state)
    try:
        assert rc == 0, err
        wait_until(lambda: server.status(member).get("cluster_status") == "cluster member",
                   "the new member joined")
        dump = subprocess.run(["ovsdb-client", "--timeout=5", "dump", member.local_remote,
                               "SG_ofctl", "Security_Group"], capture_output=True, text=True)
        assert "default" in dump.stdout
    finally:
        subprocess.run(["ovs-appctl", "-t", str(member.ctl), "cluster/leave", "SG_ofctl"],
                       capture_output=True, text=True, timeout=10)
        wait_until(lambda: server.status(member).get("cluster_status") != "cluster member",
                   "the new member left")
        server.stop(member)
        subprocess.run(["rm", "-rf", str(state)], check=False)


@pytest.mark.parametrize("who", ["other-ca", "hypervisor-cert", "plain-tcp"])
def test_a_host_without_a_cluster_certificate_cannot_join_read_or_kick(pki, cluster, who):
    before = [cluster.servers(i) for i in range(SIZE) if cluster.members[i].pid()]
    if who == "other-ca":
        rogue_pki = Pki.create()
        keys, scheme, extra = rogue_pki.member("m9"), "ssl", ()
    elif who == "hypervisor-cert":
        rogue_pki, keys, scheme, extra = None, pki.host("m9"), "ssl", ()
    else:
        rogue_pki, keys, scheme, extra = None, None, "tcp", ("--insecure-plain-tcp",)
    state, rc, err = _rogue_member(cluster, keys, scheme, extra)
    member = server.Member(state)
    try:
        assert rc == 0, err                           # it runs, but is not let in
        time.sleep(5)
        rogue = server.status(member)
        assert rogue.get("cluster_status") != "cluster member", rogue
        # no read: the would-be member never receives the database
        dump = subprocess.run(["ovsdb-client", "--timeout=3", "dump", member.local_remote,
                               "SG_ofctl", "Security_Group"], capture_output=True, text=True)
        assert "before-kill" not in dump.stdout and "default" not in dump.stdout
        # no kick: its request never reaches the cluster
        sid = subprocess.run(["ovsdb-tool", "db-sid", str(cluster.members[1].db)],
                             capture_output=True, text=True).stdout.strip()
        subprocess.run(["ovs-appctl", "-t", str(member.ctl), "cluster/kick", "SG_ofctl", sid],
                       capture_output=True, text=True, timeout=10)
        time.sleep(2)
        after = [cluster.servers(i) for i in range(SIZE) if cluster.members[i].pid()]
        assert after == before and len(after[0]) == SIZE
        assert any(s.endswith(cluster.raft(1)) for s in after[0])
    finally:
        server.stop(member)
        subprocess.run(["rm", "-rf", str(state)], check=False)
        if rogue_pki is not None:
            rogue_pki.close()


def test_joining_without_key_material_is_refused_before_start(cluster, tmp_path):
    rc, out, err = run_cli("--state-dir", str(tmp_path), "db", "start", "--cluster-address",
                           "ssl:127.0.0.1:1", "--join", cluster.raft(0))
    assert rc == 1 and "TLS needs --private-key" in err
    assert server.Member(tmp_path).pid() is None
