"""Two hypervisors (two ovs-vswitchd, each in its own network namespace, their
bridges linked by a veth pair: an uplink) sharing one security-group database.
A remote-group rule on host B admits a VM on host A once A's agent has bound
it (created its row from the instance tags), and stops admitting it when its
tags move it out of the group."""
import json
import time

import pytest

from agent_testbed import Hypervisor, cut_after, eventually
from ovs_testbed import OvsTestbed, run
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


@pytest.fixture
def hosts():
    with new_database() as db, OvsTestbed() as ta, OvsTestbed() as tb:
        link_a, link_b = f"up-{tb.tag}", f"up-{ta.tag}"
        run(["ip", "-n", ta.ns, "link", "add", link_a, "type", "veth", "peer", "name", link_b,
             "netns", tb.ns])
        for t, link in ((ta, link_a), (tb, link_b)):
            run(["ip", "-n", t.ns, "link", "set", link, "up"])
            t.vsctl("add-port", t.bridge, link)       # no iface-id: an uplink
        a, b = Hypervisor(ta, db.remote, "host-a"), Hypervisor(tb, db.remote, "host-b")
        a.cli("group", "create", "client")
        a.cli("group", "create", "other")
        a.cli("group", "create", "server")
        a.cli("rule", "create", "server", "--protocol", "tcp", "--dst-port", "80",
              "--remote-group", "client")
        a.start_agent()
        b.start_agent()
        yield a, b


def test_remote_group_member_on_another_host(hosts):
    a, b = hosts
    b.cli("port", "create", "srv", "--mac", "fa:16:3e:00:03:02", "--ip", "10.0.2.2",
          "--group", "server")
    srv = b.tb.add_vm("srv", "fa:16:3e:00:03:02", ["10.0.2.2"],
                      external_ids={"iface-id": "srv"})
    b.wait_enforced(srv)
    srv.serve("tcp", 80)
    cli = a.tb.add_vm("cli", "fa:16:3e:00:03:01", ["10.0.2.1"], external_ids={
        "iface-id": "cli", "attached-mac": "fa:16:3e:00:03:01", "sg-ofctl-ips": "10.0.2.1",
        "sg-ofctl-groups": "other"})
    a.wait_enforced(cli)
    assert not cli.send("tcp", srv.ip, 80, timeout=0.5)   # not a member of `client`
    b_status = b.status()
    assert b_status["uplinks"] and a.status()["uplinks"]
    # The tags move it into `client`: A's agent updates the row it created, B admits it.
    a.tb.vsctl("set", "Interface", "vm-cli", "external_ids:sg-ofctl-groups=client")
    eventually(lambda: cli.send("tcp", srv.ip, 80, timeout=0.3), 5, what="cli admitted on B")
    ports = {p["Name"]: p for p in json.loads(a.cli("port", "list", "-f", "json"))}
    assert ports["cli"]["Host"] == "host-a" and ports["srv"]["Host"] == "host-b"
    session = cli.session(srv.ip, 80, timeout=0.3)
    assert session.connected and session.exchange()
    start = time.monotonic()
    a.tb.vsctl("set", "Interface", "vm-cli", "external_ids:sg-ofctl-groups=other")
    elapsed = cut_after(session, start)
    assert elapsed < 1.0, f"the session was cut {elapsed:.2f} s after the tag change"
    assert not cli.send("tcp", srv.ip, 80, timeout=0.5)
    # The VM leaves host A: its tag-made row goes, so B forgets its address.
    a.tb.vsctl("del-port", a.tb.bridge, "vm-cli")
    eventually(lambda: "cli" not in a.cli("port", "list", "-f", "value", "-c", "name").split(),
               5, what="the tag-made row deleted")
