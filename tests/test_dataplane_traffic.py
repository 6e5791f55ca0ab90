"""Real packets between namespace "VMs" through the compiled pipeline, installed
by the os-ken driver on a private ovs-vswitchd (the network: tests/dataplane_net.py)."""
import contextlib
import dataclasses

from dataplane_net import HTTP_RULE, IP6S, SSH_IN, net  # noqa: F401
from sg_ofctl.model import Rule
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


def test_default_group_members_ping_each_other(net):
    a, b = net.vms["a"], net.vms["b"]
    assert a.ping(b.ip) and b.ping(a.ip)
    assert a.send("tcp", b.ip, 80) and a.send("udp", b.ip, 53)


def test_default_group_over_ipv6(net):
    a, b, c = net.vms["a"], net.vms["b"], net.vms["c"]
    assert a.ping(IP6S["b"]) and b.ping(IP6S["a"])
    assert a.send("tcp", IP6S["b"], 80)
    assert not a.ping(IP6S["c"], timeout=0.5)  # c allows no IPv6 in
    assert not c.ping(IP6S["a"], timeout=0.5)  # nor IPv6 out


def test_forged_ipv6_source_is_dropped(net):
    a = net.vms["a"]
    a.exec("ip", "addr", "add", "fd00::99/64", "dev", "eth0", "nodad", check=True)
    try:
        assert not a.ping(IP6S["b"], source="fd00::99", timeout=0.5)
        assert a.ping(IP6S["b"], source=IP6S["a"])
    finally:
        a.exec("ip", "addr", "del", "fd00::99/64", "dev", "eth0", check=True)


def test_ssh_only_group_accepts_tcp_22_only(net):
    a, b, c = net.vms["a"], net.vms["b"], net.vms["c"]
    assert a.send("tcp", c.ip, 22) and b.send("tcp", c.ip, 22)
    assert not a.send("tcp", c.ip, 80, timeout=0.5)
    assert not a.ping(c.ip, timeout=0.5)


def test_stateful_replies_pass_but_unsolicited_ingress_is_dropped(net):
    a, b, c = net.vms["a"], net.vms["b"], net.vms["c"]
    # c may send anything; its replies come back although c allows no icmp/udp in.
    assert c.ping(a.ip)
    assert c.send("udp", a.ip, 53)
    # b accepts only members of `default`, which c is not.
    assert not c.ping(b.ip, timeout=0.5)
    assert not c.send("udp", b.ip, 53, timeout=0.5)
    # Nobody may start icmp or udp towards c.
    assert not b.ping(c.ip, timeout=0.5)


def test_stateless_group_passes_only_what_its_rules_allow(net):
    a, b, d = net.vms["a"], net.vms["b"], net.vms["d"]
    assert a.send("tcp", d.ip, 22)  # in by rule; d's reply out by its egress rule
    assert not a.send("tcp", d.ip, 80, timeout=0.5)
    assert not a.ping(d.ip, timeout=0.5)
    # d's ping reaches a (`to-a`), but no rule lets the echo reply back in to d.
    assert not d.ping(a.ip, timeout=0.5)
    assert not d.send("tcp", b.ip, 80, timeout=0.5)  # b accepts only `default` members


def test_forged_source_ip_is_dropped(net):
    a, b = net.vms["a"], net.vms["b"]
    a.add_address("10.0.0.99/24")
    try:
        assert not a.ping(b.ip, source="10.0.0.99", timeout=0.5)
        assert not a.send("tcp", b.ip, 80, src="10.0.0.99", timeout=0.5)
        assert a.ping(b.ip, source=a.ip)
    finally:
        a.exec("ip", "addr", "del", "10.0.0.99/24", "dev", "eth0", check=True)


def test_forged_source_mac_is_dropped(net):
    a, b = net.vms["a"], net.vms["b"]
    a.exec("ip", "link", "set", "eth0", "address", "fa:16:3e:00:00:99", check=True)
    try:
        assert not a.ping(b.ip, timeout=0.5)
    finally:
        a.exec("ip", "link", "set", "eth0", "address", a.mac, check=True)
    assert a.ping(b.ip)


@contextlib.contextmanager
def http_rule_added(net):
    """Add ingress tcp/80 to `ssh-in` as a live FlowDiff; remove it after."""
    with_http = dataclasses.replace(SSH_IN, rules=SSH_IN.rules + (HTTP_RULE,))
    view = dataclasses.replace(net.view, groups={**net.view.groups, "ssh-in": with_http})
    change = net.compiler.update(view)
    assert change and not change.delete
    net.controller.apply(change)
    try:
        yield
    finally:
        net.controller.apply(net.compiler.update(net.view))


def test_live_rule_change_changes_the_verdict(net):
    a, c = net.vms["a"], net.vms["c"]
    assert not a.send("tcp", c.ip, 80, timeout=0.5)
    with http_rule_added(net):
        assert a.send("tcp", c.ip, 80)
        assert a.send("tcp", c.ip, 22)
    assert not a.send("tcp", c.ip, 80, timeout=0.5)
    assert a.send("tcp", c.ip, 22)


def test_removing_a_rule_cuts_its_established_connections(net):
    a, c = net.vms["a"], net.vms["c"]
    with http_rule_added(net):
        session = a.session(c.ip, 80, timeout=0.5)
        assert session.connected and session.exchange()
        kept = a.session(c.ip, 22, timeout=0.5)
        assert kept.connected and kept.exchange()
    assert not session.exchange()
    assert not session.exchange()
    assert kept.exchange()


def test_conntrack_flush_by_tuple_then_by_zone(net):
    a, b, c = net.vms["a"], net.vms["b"], net.vms["c"]
    sessions = [vm.session(c.ip, 22) for vm in (a, b)]
    assert all(s.connected and s.exchange() for s in sessions)

    def tcp_to_c(ip):
        return [e for e in net.conntrack() if e.startswith("tcp,") and
                f"orig=(src={ip},dst={c.ip}," in e]
    assert tcp_to_c(a.ip) and tcp_to_c(b.ip)
    for zone in (a.ofport, c.ofport):      # zones are per port: each side has the connection
        net.controller.call("ct_flush", match={"zone": zone, "ip_proto": 6, "src": a.ip})
    assert not tcp_to_c(a.ip) and tcp_to_c(b.ip)
    net.controller.call("ct_flush_zone", zone=c.ofport)
    assert not [e for e in net.conntrack() if f"zone={c.ofport}," in e]


def test_established_tcp_survives_a_vswitchd_restart(net):
    """ovs-vswitchd loses its flows and conntrack; the controller reinstalls
    everything on reconnect and an established connection carries on."""
    a, c = net.vms["a"], net.vms["c"]
    session = a.session(c.ip, 22)
    assert session.connected and session.exchange()
    net.restart_vswitchd()
    net.controller.wait_reconnect()
    result = net.controller.install_full(net.compiler.flows.values())
    assert result["add"] > 0 and not result["delete"]
    assert session.exchange()
    assert a.ping(net.vms["b"].ip) and not a.ping(c.ip, timeout=0.5)


def test_deny_in_one_group_beats_allow_in_another(net):
    a, b, c = net.vms["a"], net.vms["b"], net.vms["c"]
    assert b.send("udp", a.ip, 53)  # allowed by `default` (b is a member)
    to_a = net.view.groups["to-a"]
    deny = Rule("deny-b-dns", security_group_id="to-a", direction="ingress", protocol="udp",
                port_range_min=53, port_range_max=53, remote_ip_prefix=f"{b.ip}/32",
                action="deny")
    view = dataclasses.replace(net.view, groups={
        **net.view.groups, "to-a": dataclasses.replace(to_a, rules=to_a.rules + (deny,))})
    net.controller.apply(net.compiler.update(view))
    try:
        assert not b.send("udp", a.ip, 53, timeout=0.5)
        assert c.send("udp", a.ip, 53)  # `to-a` still allows the rest of 10.0.0.0/24
        assert b.ping(a.ip)
    finally:
        net.controller.apply(net.compiler.update(net.view))
    assert b.send("udp", a.ip, 53)
