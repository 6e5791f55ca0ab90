"""The agent end to end: security groups written with the CLI (and instance
tags), enforced by `sg-ofctl agent` on a private ovs-vswitchd, proven with real
packets between namespace VMs.

    a 10.0.0.1 fd00::a  `default` (row made with the CLI)
    b 10.0.0.2 fd00::b  `default` (row made by the agent from tags)
    c 10.0.0.3 fd00::c  `web` + `dns` (two groups)
    d 10.0.0.4          `sl` (stateless: ingress tcp/22, egress IPv4)
    e 10.0.0.5          port security off
    x 10.0.0.6          `lonely` (no ingress; egress tcp/80 only)
    n 10.0.0.9          no security group at all (`--no-security-group`)
"""
import json
import time

import pytest

from agent_testbed import Hypervisor, cut_after, eventually
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

MAC = {n: f"fa:16:3e:00:01:{i:02x}" for i, n in enumerate("abcdexfgn", 1)}
IP = {n: f"10.0.0.{i}" for i, n in enumerate("abcdexfgn", 1)}
IP6 = {"a": "fd00::a", "b": "fd00::b", "c": "fd00::c"}
NO = 0.5   # timeout of an attempt that must fail
SERVICES = {"a": [("tcp", 80), ("udp", 53)], "b": [("tcp", 80)], "d": [("tcp", 22), ("tcp", 80)],
            "c": [("tcp", p) for p in (80, 8000, 8080, 8081, 9000)] + [("udp", 53)],
            "e": [("tcp", 80), ("udp", 53)]}   # what each VM's echo servers listen on


def _rule(h, group, *args) -> str:
    return json.loads(h.cli("rule", "create", group, *args, "-f", "json"))["id"]


@pytest.fixture(scope="module")
def net():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv1")
        h.cli("group", "create", "web")
        _rule(h, "web", "--protocol", "tcp", "--dst-port", "80")
        _rule(h, "web", "--protocol", "tcp", "--dst-port", "80", "--ethertype", "IPv6")
        _rule(h, "web", "--protocol", "tcp", "--dst-port", "80", "--remote-ip", "10.0.0.2/32",
              "--action", "deny")
        _rule(h, "web", "--protocol", "tcp", "--dst-port", "8000:8080",
              "--remote-ip", "10.0.0.0/30")
        _rule(h, "web", "--protocol", "icmp", "--icmp-type", "8", "--icmp-code", "0",
              "--remote-ip", "10.0.0.1/32")
        h.cli("group", "create", "dns")
        _rule(h, "dns", "--protocol", "udp", "--dst-port", "53", "--remote-group", "default")
        h.cli("group", "create", "sl", "--stateless")
        for rid in h.cli("rule", "list", "sl", "-f", "value", "-c", "id").split():
            h.cli("rule", "delete", rid)
        _rule(h, "sl", "--protocol", "tcp", "--dst-port", "22")
        _rule(h, "sl", "--egress")
        h.cli("group", "create", "lonely")
        for rid in h.cli("rule", "list", "lonely", "-f", "value", "-c", "id").split():
            h.cli("rule", "delete", rid)
        _rule(h, "lonely", "--egress", "--protocol", "tcp", "--dst-port", "80")

        def port(name, *args):
            h.cli("port", "create", f"p{name}", "--mac", MAC[name], "--ip", IP[name], *args)
        port("a", "--ip", IP6["a"])
        port("c", "--ip", IP6["c"], "--group", "web", "--group", "dns")
        port("d", "--group", "sl")
        port("e", "--no-port-security")
        port("x", "--group", "lonely")
        port("n", "--no-security-group")
        h.start_agent()
        vms = {}
        for n in "acdexn":
            vms[n] = tb.add_vm(n, MAC[n], [IP[n]] + ([IP6[n]] if n in IP6 else []),
                               external_ids={"iface-id": f"p{n}"})
        vms["b"] = tb.add_vm("b", MAC["b"], [IP["b"], IP6["b"]], external_ids={
            "iface-id": "pb", "attached-mac": MAC["b"], "sg-ofctl-ips": f"{IP['b']},{IP6['b']}"})
        for vm in vms.values():
            h.wait_enforced(vm)
        for name, services in SERVICES.items():
            for proto, port in services:
                vms[name].serve(proto, port)
        h.vms = vms
        yield h


def test_tags_create_and_bind_the_port(net):
    ports = {p["Name"]: p for p in json.loads(net.cli("port", "list", "-f", "json"))}
    assert ports["pb"]["Host"] == "hv1" and ports["pa"]["Host"] == "hv1"
    assert ports["pb"]["Fixed IP Addresses"] == [IP["b"], IP6["b"]] or \
        IP["b"] in str(ports["pb"]["Fixed IP Addresses"])


def test_default_group(net):
    a, b, c, x = (net.vms[n] for n in "abcx")
    assert a.ping(b.ip) and b.ping(a.ip) and a.send("tcp", b.ip, 80)
    assert a.ping(IP6["b"])
    assert not x.send("tcp", a.ip, 80, timeout=NO)     # outside default: can't get in
    assert not c.send("udp", a.ip, 53, timeout=NO)      # c's egress is open; a refuses
    assert x.send("tcp", c.ip, 80)                       # egress open (tcp/80)


def test_rule_kinds(net):
    a, b, c, d, e, x = (net.vms[n] for n in "abcdex")
    assert a.send("tcp", c.ip, 80)                       # tcp port, any source
    assert not b.send("tcp", c.ip, 80, timeout=NO)       # deny beats allow
    assert a.send("tcp", c.ip, 8080) and b.send("tcp", c.ip, 8000)   # range + prefix
    assert not a.send("tcp", c.ip, 8081, timeout=NO)     # outside the range
    assert not x.send("tcp", c.ip, 8080, timeout=NO) and not e.send("tcp", c.ip, 8000,
                                                                     timeout=NO)
    assert a.send("udp", c.ip, 53)                       # udp from remote group default
    assert not e.send("udp", c.ip, 53, timeout=NO)       # e is not a member
    assert a.ping(c.ip) and not b.ping(c.ip, timeout=NO)  # icmp type 8 code 0 from a only
    assert a.send("tcp", IP6["c"], 80)                   # IPv6 rule
    assert not a.ping(IP6["c"], timeout=NO)              # no ICMPv6 rule
    assert a.send("tcp", d.ip, 22) and not a.send("tcp", d.ip, 80, timeout=NO)  # stateless
    assert e.send("tcp", c.ip, 80) and a.send("udp", e.ip, 53)  # port security off
    assert x.send("tcp", e.ip, 80) and not x.send("udp", e.ip, 53, timeout=NO)  # egress rule


def test_a_port_with_no_security_group_passes_nothing_until_given_one(net):
    a, c, e, n = (net.vms[v] for v in "acen")
    assert not a.ping(n.ip, timeout=NO) and not e.send("tcp", n.ip, 80, timeout=NO)
    assert not n.send("tcp", c.ip, 80, timeout=NO)      # c admits tcp/80 from anyone
    assert not n.send("tcp", e.ip, 80, timeout=NO)      # e has no filter at all
    net.cli("port", "set", "pn", "--group", "default")
    try:
        eventually(lambda: n.send("tcp", c.ip, 80, timeout=NO), 10, what="n's egress opened")
        assert a.ping(n.ip)                             # ingress from default members
    finally:
        net.cli("port", "set", "pn", "--no-security-group")
    eventually(lambda: not n.send("tcp", c.ip, 80, timeout=NO), 10, what="n closed again")


def test_stateful_replies_pass_unsolicited_do_not(net):
    c, e = net.vms["c"], net.vms["e"]
    # c has no ingress rule that matches these replies; conntrack lets them in.
    assert c.send("tcp", e.ip, 80) and c.send("udp", e.ip, 53) and c.ping(e.ip)
    # The same traffic started by e is refused (e is not in `default`, not 10.0.0.1).
    assert not e.send("udp", c.ip, 53, timeout=NO)
    assert not e.ping(c.ip, timeout=NO)


def test_spoofing(net):
    a, b = net.vms["a"], net.vms["b"]
    a.add_address("10.0.0.99/24")
    try:
        assert not a.ping(b.ip, source="10.0.0.99", timeout=NO)
        assert not a.send("tcp", b.ip, 80, src="10.0.0.99", timeout=NO)
    finally:
        a.exec("ip", "addr", "del", "10.0.0.99/24", "dev", "eth0", check=True)
    a.exec("ip", "link", "set", "eth0", "address", "fa:16:3e:00:01:99", check=True)
    try:
        assert not a.ping(b.ip, timeout=NO)
    finally:
        a.exec("ip", "link", "set", "eth0", "address", a.mac, check=True)
    assert a.ping(b.ip)


def test_live_rule_add_and_remove_cuts_within_a_second(net):
    a, c = net.vms["a"], net.vms["c"]
    assert not a.send("tcp", c.ip, 9000, timeout=NO)
    rid = _rule(net, "web", "--protocol", "tcp", "--dst-port", "9000")
    eventually(lambda: a.send("tcp", c.ip, 9000, timeout=0.3), 3, what="tcp/9000 allowed")
    cut = a.session(c.ip, 9000, timeout=0.2)
    kept = a.session(c.ip, 80, timeout=0.5)
    assert cut.connected and cut.exchange() and kept.connected and kept.exchange()
    start = time.monotonic()
    net.cli("rule", "delete", rid)
    elapsed = cut_after(cut, start)
    assert elapsed < 1.0, f"revocation took {elapsed:.2f} s"
    assert kept.exchange() and kept.exchange()
    assert not cut.exchange()
    assert not a.send("tcp", c.ip, 9000, timeout=NO)


def test_remote_group_member_add_and_remove(net):
    x, c = net.vms["x"], net.vms["c"]
    assert not x.send("udp", c.ip, 53, timeout=NO)       # dns: from default members only
    _rule(net, "lonely", "--egress", "--protocol", "udp", "--dst-port", "53")
    net.cli("port", "set", "px", "--group", "default")
    eventually(lambda: x.send("udp", c.ip, 53, timeout=0.3), 3, what="x admitted")
    net.cli("port", "set", "px", "--no-group", "--group", "lonely")
    eventually(lambda: not x.send("udp", c.ip, 53, timeout=0.3), 3, what="x refused")


def test_bad_tags_keep_a_new_port_fail_closed_until_fixed(net):
    a, tb = net.vms["a"], net.tb
    f = tb.add_vm("f", MAC["f"], [IP["f"]], external_ids={
        "iface-id": "pf", "attached-mac": MAC["f"], "sg-ofctl-ips": IP["f"],
        "sg-ofctl-groups": "default,no-such-group"})
    eventually(lambda: net.port_state("vm-f") == "fail-closed", 5, what="f fail-closed")
    reason = next(p["reason"] for p in net.status()["ports"] if p["interface"] == "vm-f")
    assert "vm-f" in reason and "sg-ofctl-groups" in reason and "no-such-group" in reason
    assert "sg-ofctl-groups" in tb.log_tail("agent.log", 50)
    # NORMAL must not deliver to it either: not even a broadcast ARP from a.
    assert "no-forward" in _port_desc(tb, "vm-f")
    with f.sniffing(1.5) as seen:
        assert not a.ping(f.ip, timeout=1.0)
    # (the OVS namespace's own kernel may talk on the veth directly: MLD, DAD)
    from_a = [fr for fr in seen if fr[6:12] == bytes.fromhex(a.mac.replace(":", ""))]
    assert not from_a, f"{len(from_a)} frame(s) from a reached the fail-closed port"
    assert not f.ping(a.ip, timeout=NO)
    tb.vsctl("set", "Interface", "vm-f", "external_ids:sg-ofctl-groups=default")
    net.wait_enforced(f)
    assert eventually(lambda: f.ping(a.ip, timeout=0.3), 3) and a.ping(f.ip)
    assert "no-forward" not in _port_desc(tb, "vm-f")


def _port_desc(tb, name) -> str:
    """The config line of one port in `ovs-ofctl dump-ports-desc`."""
    text = tb.ofctl("dump-ports-desc", tb.bridge).stdout
    block = text.split(f"({name})")[1].split("\n")
    return next(line for line in block if "config:" in line).lower().replace(
        "no_fwd", "no-forward")


def test_status_command(net):
    from ovsdb_fixtures import run_cli
    rc, out, err = run_cli("status", "--run-dir", str(net.tb.dir), "-f", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["switch"]["connected"] and data["local_ovsdb"]["connected"] and \
        data["sg_database"]["connected"]
    assert data["flows"] > 50 and data["last_sync"]
    ports = {p["port"]: p for p in data["ports"]}
    assert ports["pc"]["groups"] == ["web", "dns"] or sorted(ports["pc"]["groups"]) == \
        ["dns", "web"]
    assert ports["pc"]["state"] == "enforced"
    rc, out, _ = run_cli("status", "--run-dir", str(net.tb.dir), "--ports")
    assert rc == 0 and "pa" in out and "enforced" in out
