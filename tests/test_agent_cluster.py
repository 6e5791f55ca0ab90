"""The whole system on a clustered database: two hypervisors (each ovs-vswitchd
in its own namespace, linked by an uplink) and a 3-member Raft cluster.  The
leader is killed; changes made through the surviving members still reach both
agents, and the traffic follows."""
import os
import signal

from agent_testbed import Hypervisor, eventually
from ovs_testbed import OvsTestbed, run
from ovsdb_fixtures import cluster, ok  # noqa: F401
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

MAC = {"cli": "fa:16:3e:00:04:01", "srv": "fa:16:3e:00:04:02"}
IP = {"cli": "10.0.4.1", "srv": "10.0.4.2"}


def test_agents_follow_changes_after_the_leader_dies(cluster):  # noqa: F811
    # Unix remotes of every member: reachable from the hypervisors' namespaces.
    remotes = ",".join(m.local_remote for m in cluster.members)
    with OvsTestbed() as ta, OvsTestbed() as tb:
        link_a, link_b = f"up-{tb.tag}", f"up-{ta.tag}"
        run(["ip", "-n", ta.ns, "link", "add", link_a, "type", "veth", "peer", "name", link_b,
             "netns", tb.ns])
        for t, link in ((ta, link_a), (tb, link_b)):
            run(["ip", "-n", t.ns, "link", "set", link, "up"])
            t.vsctl("add-port", t.bridge, link)
        a, b = Hypervisor(ta, remotes, "hv-a"), Hypervisor(tb, remotes, "hv-b")
        a.cli("group", "create", "web")
        a.cli("port", "create", "cli", "--mac", MAC["cli"], "--ip", IP["cli"])
        a.cli("port", "create", "srv", "--mac", MAC["srv"], "--ip", IP["srv"],
              "--group", "web")
        a.start_agent()
        b.start_agent()
        cli = ta.add_vm("cli", MAC["cli"], [IP["cli"]], external_ids={"iface-id": "cli"})
        srv = tb.add_vm("srv", MAC["srv"], [IP["srv"]], external_ids={"iface-id": "srv"})
        a.wait_enforced(cli)
        b.wait_enforced(srv)
        srv.serve("tcp", 8080)
        assert not cli.send("tcp", srv.ip, 8080, timeout=0.5)

        leader = cluster.leader()
        os.kill(cluster.members[leader].pid(), signal.SIGKILL)
        # A change through the survivors (the CLI moves to the new leader).
        ok("--timeout", "30", "rule", "create", "web", "--protocol", "tcp", "--dst-port",
           "8080", "--remote-group", "default", db=remotes)
        eventually(lambda: cli.send("tcp", srv.ip, 8080, timeout=0.3), 30,
                   what="host B's agent enforces the rule made after the failover")
        ports = {line.split()[0]: line.split()[1:] for line in ok(
            "--timeout", "30", "port", "list", "-f", "value", "-c", "name", "-c", "host",
            db=remotes).splitlines()}
        assert ports["cli"] == ["hv-a"] and ports["srv"] == ["hv-b"]
