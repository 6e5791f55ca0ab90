"""Restarts with traffic running: the agent (reads back, sends nothing when
nothing changed, loses no packet), ovs-vswitchd (loses every flow: the agent
reinstalls on reconnect), and a new port that has no flows yet (gets nothing)."""
import json
import re
import subprocess
import sys
import time

import pytest

from agent_testbed import Hypervisor, eventually
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database
from sg_ofctl import pipeline

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

MAC = {"a": "fa:16:3e:00:02:01", "b": "fa:16:3e:00:02:02", "g": "fa:16:3e:00:02:07",
       "h": "fa:16:3e:00:02:08", "l": "fa:16:3e:00:02:09"}
IP = {"a": "10.0.1.1", "b": "10.0.1.2", "g": "10.0.1.7", "h": "10.0.1.8", "l": "10.0.1.9"}

# A UDP probe every 10 ms (like `ping -i 0.01`), each with a sequence number; the
# echo server sends it back.  Prints how many came back.
STREAM = r"""
import json, socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
sent, got, end = 0, set(), time.monotonic() + seconds
while time.monotonic() < end:
    s.sendto(str(sent).encode(), (host, port)); sent += 1
    stop = time.monotonic() + 0.01
    while time.monotonic() < stop:
        try:
            got.add(int(s.recv(64)))
        except BlockingIOError:
            time.sleep(0.001)
stop = time.monotonic() + 0.5
while time.monotonic() < stop:
    try:
        got.add(int(s.recv(64)))
    except BlockingIOError:
        time.sleep(0.005)
print(json.dumps({"sent": sent, "received": len(got),
                  "lost": sorted(set(range(sent)) - got)[:20]}))
"""


def stream(vm, ip, port, seconds) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", vm.ns, sys.executable, "-c", STREAM, ip,
                             str(port), str(seconds)], stdout=subprocess.PIPE, text=True)


def min_flow_age(tb) -> float:
    out = tb.ofctl("dump-flows", tb.bridge).stdout
    return min(float(d) for d in re.findall(r"duration=([\d.]+)s", out))


@pytest.fixture(scope="module")
def net():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-r")
        for n in "ab":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n])
        h.start_agent()
        h.vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                 for n in "ab"}
        for vm in h.vms.values():
            h.wait_enforced(vm)
        h.vms["b"].serve("udp", 7)
        h.vms["b"].serve("tcp", 80)
        yield h


def test_agent_restart_sends_nothing_and_loses_nothing(net):
    a, b, tb = net.vms["a"], net.vms["b"], net.tb
    session = a.session(b.ip, 80)
    assert session.connected and session.exchange()
    flows_before = sorted(tb.dump_flows())
    probe = stream(a, b.ip, 7, 4.0)
    time.sleep(0.5)
    assert net.stop_agent() == 0                # SIGTERM: a clean exit
    assert json.loads(net.status_file.read_text())["state"] == "stopped"
    time.sleep(0.3)                             # flows stay while no agent runs
    restarted = time.monotonic()
    net.start_agent()
    status = net.wait_synced()
    assert status["first_sync_flow_mods"] == 0 and status["flow_mods_total"] == 0
    result = json.loads(probe.communicate(timeout=20)[0])
    assert result["sent"] > 150 and result["received"] == result["sent"], result
    assert session.exchange()
    assert sorted(tb.dump_flows()) == flows_before
    # No flow was re-added: every flow is older than the new agent.
    assert min_flow_age(tb) > time.monotonic() - restarted - 0.5


def test_vswitchd_restart_reinstalls_everything(net):
    a, b, tb = net.vms["a"], net.vms["b"], net.tb
    full_before = net.status()["full_syncs"]
    tb.restart_vswitchd()
    eventually(lambda: net.status().get("full_syncs", 0) > full_before, 30,
               what="a full sync after the reconnect")
    assert eventually(lambda: a.ping(b.ip, timeout=0.3), 10, what="traffic back")
    assert a.send("tcp", b.ip, 80) and a.send("udp", b.ip, 7)
    assert len(tb.dump_flows()) == net.status()["flows"]


def test_a_new_port_gets_nothing_before_its_flows_are_in(net):
    a, tb = net.vms["a"], net.tb
    g = tb.add_vm("g", MAC["g"], [IP["g"]], external_ids={"iface-id": "pg"})  # no row yet
    eventually(lambda: net.port_state("vm-g") == "fail-closed", 5, what="g fail-closed")
    with g.sniffing(1.5) as seen:
        assert not a.ping(g.ip, timeout=1.0)
    from_a = [fr for fr in seen if fr[6:12] == bytes.fromhex(a.mac.replace(":", ""))]
    assert not from_a, f"{len(from_a)} frame(s) from a reached the port with no flows"
    assert not g.ping(a.ip, timeout=0.5)
    net.cli("port", "create", "pg", "--mac", MAC["g"], "--ip", IP["g"])
    net.wait_enforced(g)
    assert eventually(lambda: g.ping(a.ip, timeout=0.3), 3) and a.ping(g.ip)
    ports = {p["Name"]: p for p in json.loads(net.cli("port", "list", "-f", "json"))}
    assert ports["pg"]["Host"] == "hv-r"


def test_the_network_becomes_the_vlan_tag_of_the_ovs_port(net):
    a, tb = net.vms["a"], net.tb
    net.cli("port", "create", "ph", "--mac", MAC["h"], "--ip", IP["h"])
    h = tb.add_vm("h", MAC["h"], [IP["h"]], external_ids={"iface-id": "ph"})
    net.wait_enforced(h)
    assert eventually(lambda: h.ping(a.ip, timeout=0.3), 3)
    net.cli("port", "set", "ph", "--network", "7")
    eventually(lambda: tb.vsctl("get", "Port", "vm-h", "tag") == "7", 5, what="tag 7")
    assert not h.ping(a.ip, timeout=0.5)                # another network now
    net.cli("port", "set", "ph", "--network", "0")
    eventually(lambda: tb.vsctl("get", "Port", "vm-h", "tag") == "[]", 5, what="no tag")
    assert eventually(lambda: h.ping(a.ip, timeout=0.3), 3)


def test_sigint_stops_cleanly_and_leaves_the_flows(net):
    import signal
    a, b, tb = net.vms["a"], net.vms["b"], net.tb
    flows = sorted(tb.dump_flows())
    net.proc.send_signal(signal.SIGINT)
    assert net.proc.wait(timeout=15) == 0
    net.proc = None
    assert json.loads(net.status_file.read_text())["state"] == "stopped"
    assert sorted(tb.dump_flows()) == flows and a.ping(b.ip)
    net.start_agent()
    assert net.wait_synced()["first_sync_flow_mods"] == 0


def test_sg_database_outage_is_reported_and_survived(net):
    from sg_ofctl.ovsdb import server
    a, b = net.vms["a"], net.vms["b"]
    member = server.Member(__import__("pathlib").Path(net.db[len("unix:"):]).parent)
    server.stop(member)
    try:
        eventually(lambda: not net.status()["sg_database"]["connected"], 10,
                   what="the status shows the database down")
        assert a.ping(b.ip)                    # enforcement goes on
    finally:
        server.start(member)
    eventually(lambda: net.status()["sg_database"]["connected"], 20,
               what="the status shows the database back")
    net.cli("port", "set", "pb", "--no-port-security")   # a change after the outage
    try:
        eventually(lambda: any(p["port"] == "pb" and p["groups"] == []
                               for p in net.status()["ports"]), 10, what="change applied")
    finally:
        net.cli("port", "set", "pb", "--port-security")
    eventually(lambda: any(p["port"] == "pb" and p["groups"] == ["default"]
                           for p in net.status()["ports"]), 10, what="change back applied")
    assert a.ping(b.ip)


def test_a_port_that_leaves_is_unbound_and_its_flows_go(net):
    tb = net.tb
    net.cli("port", "create", "pl", "--mac", MAC["l"], "--ip", IP["l"])
    net.wait_enforced(tb.add_vm("l", MAC["l"], [IP["l"]], external_ids={"iface-id": "pl"}))
    flows = net.status()["flows"]
    tb.vsctl("del-port", tb.bridge, "vm-l")
    eventually(lambda: net.port_state("vm-l") is None and net.status()["flows"] < flows, 5,
               what="vm-l gone from the status, its flows removed")
    ports = {p["Name"]: p for p in json.loads(net.cli("port", "list", "-f", "json"))}
    assert ports["pl"]["Host"] == ""                     # a row made with the API stays
    assert len(tb.dump_flows()) == net.status()["flows"]


def test_first_table_option():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-t")
        for n in "ab":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n])
        h.start_agent(True, "--first-table", "40")
        vms = [tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"}) for n in "ab"]
        for vm in vms:
            h.wait_enforced(vm)
        assert not vms[0].ping(vms[1].ip, timeout=0.5)   # table 0 is someone else's: empty
        tb.ofctl("add-flow", tb.bridge, "table=0,priority=0,actions=goto_table:40")
        assert eventually(lambda: vms[0].ping(vms[1].ip, timeout=0.3), 3)
        tables = {int(t) for t in re.findall(r"table=(\d+)", tb.ofctl(
            "dump-flows", "--no-names", tb.bridge).stdout)}
        assert min(tables - {0}) == 40 and max(tables) == 40 + len(pipeline.TABLES) - 1
        assert 'table="egress_rules"' in "\n".join(tb.dump_flows()) or \
            "table=egress_rules" in "\n".join(tb.dump_flows())
        h.stop_agent()
        h.start_agent(True, "--first-table", "40")       # the table-0 flow is not ours
        assert h.wait_synced()["first_sync_flow_mods"] == 0
        assert vms[0].ping(vms[1].ip)
