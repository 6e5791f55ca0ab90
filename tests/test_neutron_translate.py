"""Neutron's firewall-driver dicts -> model, and the compiler's Neutron placement.
Pure: neither neutron nor a switch is needed."""
import pytest

from sg_ofctl import pipeline
from sg_ofctl.compiler import Compiler, compile_host, format_flow
from sg_ofctl.model import ValidationError
from sg_ofctl.neutron.translate import (LocalPort, NeutronState, group_from_neutron,
                                        members_from_neutron, port_from_neutron,
                                        rule_from_neutron)

MAC = "fa:16:3e:12:34:56"


def neutron_port(device="p1", groups=("sg1",), **extra):
    port = {"id": device, "device": device, "mac_address": MAC, "network_id": "net",
            "device_owner": "compute:nova", "fixed_ips": ["10.0.0.5", "fd00::5"],
            "allowed_address_pairs": [{"ip_address": "10.0.0.100/32",
                                       "mac_address": "fa:16:3e:00:00:01"}],
            "port_security_enabled": True, "security_groups": list(groups),
            "security_group_rules": [], "security_group_source_groups": [],
            "admin_state_up": True, "status": "ACTIVE"}
    port.update(extra)
    return port


def test_ingress_rule_takes_source_prefix_and_protocol_number_text():
    rule = rule_from_neutron("sg1", {"direction": "ingress", "ethertype": "IPv4",
                                     "protocol": "6", "port_range_min": 22,
                                     "port_range_max": 22, "source_ip_prefix": "10.1.0.0/16",
                                     "stateful": True})
    assert (rule.direction, rule.ip_proto, rule.port_range) == ("ingress", 6, (22, 22))
    assert rule.remote_net is not None and str(rule.remote_net) == "10.1.0.0/16"
    assert rule.security_group_id == "sg1"


def test_egress_rule_takes_dest_prefix_and_normalized_cidr_wins():
    rule = rule_from_neutron("sg1", {"direction": "egress", "ethertype": "IPv4",
                                     "dest_ip_prefix": "10.1.2.3/16",
                                     "normalized_cidr": "10.1.0.0/16"})
    assert str(rule.remote_net) == "10.1.0.0/16"


def test_ipv6_icmp_name_and_address_group_remote():
    rule = rule_from_neutron("sg1", {"direction": "ingress", "ethertype": "IPv6",
                                     "protocol": "icmp", "remote_address_group_id": "ag1"})
    assert rule.ip_proto == 58 and rule.remote_group_id == "ag1"


def test_rule_ids_are_stable_and_distinct():
    a = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp"}
    b = dict(a, protocol="udp")
    assert rule_from_neutron("sg1", a).id == rule_from_neutron("sg1", dict(a)).id
    assert rule_from_neutron("sg1", a).id != rule_from_neutron("sg1", b).id


def test_refused_rule_is_left_out_and_named():
    group, errors = group_from_neutron("sg1", [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "dccp",
         "port_range_min": 1, "port_range_max": 9},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp"}])
    assert [r.ip_proto for r in group.rules] == [6]
    assert len(errors) == 1 and "port_range_min" in errors[0] and "sg1" in errors[0]


def test_same_rule_twice_is_one_rule():
    group, errors = group_from_neutron("sg1", [
        {"direction": "egress", "ethertype": "IPv4"},
        {"direction": "egress", "ethertype": "IPv4", "dest_ip_prefix": "0.0.0.0/0"}])
    assert len(group.rules) == 1 and not errors


def test_stateful_false_on_the_rules_makes_a_stateless_group():
    group, _ = group_from_neutron("sg1", [{"direction": "egress", "ethertype": "IPv4",
                                           "stateful": False}])
    assert group.stateful is False


def test_members_from_ip_mac_tuples_and_address_group_cidrs():
    assert members_from_neutron("sg", {"IPv4": [("10.0.0.7", MAC)],
                                       "IPv6": [("fd00::7", MAC)]}) == {"10.0.0.7", "fd00::7"}
    assert members_from_neutron("ag", {"IPv4": [("10.2.0.0/24", None)]}) == {"10.2.0.0/24"}
    with pytest.raises(ValidationError, match="ethertype"):
        members_from_neutron("sg", {"IPX": []})


def test_port_dict_becomes_a_port_with_explicit_groups():
    port = port_from_neutron(neutron_port(), ofport=7, vlan=3)
    assert (port.id, port.ofport, port.network, port.mac) == ("p1", 7, 3, MAC)
    assert port.fixed_ips == ("10.0.0.5", "fd00::5")
    assert port.allowed_address_pairs[0].mac_address == "fa:16:3e:00:00:01"
    assert port.effective_groups == ("sg1",)


def test_explicit_empty_groups_mean_none_not_default():
    port = port_from_neutron(neutron_port(groups=()), ofport=7, vlan=3)
    assert port.effective_groups == ()


def test_port_security_off_drops_groups_and_pairs():
    port = port_from_neutron(neutron_port(port_security_enabled=False), ofport=7, vlan=3)
    assert not port.port_security_enabled and port.effective_groups == ()


def _state(*ports, rules=None, members=None):
    state = NeutronState()
    for sg, sg_rules in (rules or {}).items():
        state.set_rules(sg, sg_rules)
    for rid, m in (members or {}).items():
        state.set_members(rid, m)
    for i, p in enumerate(ports, 1):
        state.ports[p["device"]] = LocalPort(p["device"], p["mac_address"], i, 5, p)
    return state


def test_state_builds_a_view_with_remote_members_and_unknown_groups_empty():
    state = _state(neutron_port(groups=("sg1", "sg2")),
                   rules={"sg1": [{"direction": "ingress", "ethertype": "IPv4",
                                   "remote_group_id": "rg"}]},
                   members={"rg": {"IPv4": [("10.9.0.1", MAC)]}})
    view, refused = state.host_view()
    assert not refused
    assert view.member_addresses("rg") == {"10.9.0.1"}
    assert view.groups["sg2"].rules == ()


def test_state_refuses_a_port_that_mixes_stateful_and_stateless_and_keeps_others():
    state = _state(neutron_port("a", groups=("sf", "sl")), neutron_port("b", groups=("sf",),
                                                                        mac_address="fa:16:3e:00:00:09"),
                   rules={"sf": [{"direction": "egress", "ethertype": "IPv4"}],
                          "sl": [{"direction": "egress", "ethertype": "IPv6",
                                  "stateful": False}]})
    view, refused = state.host_view()
    assert [p.id for p in view.ports] == ["b"]
    assert refused[0][0] == "a" and "mixes stateful and stateless" in refused[0][1]


def test_trusted_port_is_unfiltered():
    state = NeutronState()
    state.ports["dhcp"] = LocalPort("dhcp", MAC, 4, 5, None)
    view, _ = state.host_view()
    assert not view.ports[0].port_security_enabled


# ---- the Neutron placement --------------------------------------------------------

def _neutron_flows(state):
    view, _ = state.host_view()
    return compile_host(view, pipeline.neutron_placement())


def test_neutron_placement_hooks_exits_and_zone():
    state = _state(neutron_port(), rules={"sg1": [{"direction": "egress",
                                                   "ethertype": "IPv4"}]})
    text = [format_flow(f) for f in _neutron_flows(state)]
    hooks = [t for t in text if t.startswith("table=neutron_transient")]
    assert any("priority=100" in t and "in_port=1 " in t and "goto_table:classify" in t
               for t in hooks)
    # ingress hook for the port's MAC and its allowed pair's MAC, on its local VLAN
    # (the `network` register, reg6 = the local VLAN, is what Neutron's consumers read)
    assert sum("vlan_vid=0x1005" in t and "load:0x5->NXM_NX_REG6[]" in t for t in hooks) == 2
    # the conntrack zone is the local VLAN (as Neutron's clean-ups expect), both sides
    assert any(t.startswith("table=classify,") and "load:0x5->NXM_NX_REG2[]" in t
               for t in text)
    assert any(t.startswith("table=forward,priority=100,") and "load:0x5->NXM_NX_REG7[]" in t
               for t in text)
    exit_flow = [t for t in text if t.startswith("table=forward,priority=0,")]
    assert exit_flow[0].endswith("actions=move:NXM_NX_REG0[]->NXM_NX_REG5[],"
                                 "resubmit(,neutron_accepted_egress)")
    out = [t for t in text if t.startswith("table=ingress_output,priority=100,")]
    assert out[0].endswith("resubmit(,neutron_accepted_ingress),output:1")
    # NORMAL only in Neutron's table 94, which its consumers' table 91 leads to
    assert [t for t in text if "NORMAL" in t] == [
        t for t in text if t.startswith("table=neutron_egress_normal,priority=1,")]
    assert any(t.startswith("table=neutron_accepted_egress,priority=1,") and
               t.endswith("actions=resubmit(,neutron_egress_normal)") for t in text)


def test_neutron_placement_numbers_tables_around_neutrons():
    placement = pipeline.neutron_placement()
    assert pipeline.table_number("classify", placement.first_table) == 100
    assert pipeline.table_number("neutron_transient") == 60
    assert pipeline.table_number("neutron_accepted_egress") == 91
    with pytest.raises(ValidationError, match="first_table"):
        pipeline.neutron_placement(80)


def test_unchanged_port_resent_costs_no_flow_mod():
    state = _state(neutron_port(), rules={"sg1": [{"direction": "egress",
                                                   "ethertype": "IPv4"}]})
    compiler = Compiler(pipeline.neutron_placement())
    assert compiler.update(state.host_view()[0])
    state.ports["p1"] = LocalPort("p1", MAC, 1, 5, neutron_port())   # Neutron re-sends it
    state.set_rules("sg1", [{"direction": "egress", "ethertype": "IPv4"}])
    assert len(compiler.update(state.host_view()[0])) == 0


def test_member_change_costs_one_flow_mod_per_table():
    state = _state(neutron_port(), rules={"sg1": [{"direction": "ingress", "ethertype": "IPv4",
                                                   "remote_group_id": "rg"}]},
                   members={"rg": {"IPv4": [("10.9.0.1", MAC)]}})
    compiler = Compiler(pipeline.neutron_placement())
    compiler.update(state.host_view()[0])
    state.set_members("rg", {"IPv4": [("10.9.0.1", MAC), ("10.9.0.2", MAC)]})
    change = compiler.update(state.host_view()[0])
    assert (len(change.add), len(change.modify), len(change.delete)) == (1, 0, 0)


def test_source_port_range_is_matched_and_bad_ones_are_refused():
    rule = rule_from_neutron("sg1", {"direction": "egress", "ethertype": "IPv4",
                                     "protocol": "tcp", "source_port_range_min": 12345,
                                     "source_port_range_max": 12346})
    assert rule.source_port_range == (12345, 12346)
    from sg_ofctl.compiler.build import rule_l4_matches
    assert [m["tcp_src"] for m in rule_l4_matches(rule)] == [(12345, None), (12346, None)]
    with pytest.raises(ValidationError, match="source_port_range_min"):
        rule_from_neutron("sg1", {"direction": "egress", "ethertype": "IPv4",
                                  "protocol": "icmp", "source_port_range_min": 1,
                                  "source_port_range_max": 2})


def test_unknown_rule_key_refuses_the_rule():
    group, errors = group_from_neutron("sg1", [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "dscp_mark": 10}])
    assert group.rules == () and "dscp_mark" in errors[0]


def test_only_the_neutron_package_imports_neutron():
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parent.parent / "sg_ofctl"
    offenders = []
    for path in root.rglob("*.py"):
        if path.parent.name == "neutron" and path.parent.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "neutron" or n.startswith(("neutron.", "neutron_lib")) for n in names):
                offenders.append(str(path))
    assert offenders == []
    translate = (root / "neutron" / "translate.py").read_text()
    assert "import neutron" not in translate and "from neutron" not in translate


def test_destination_ip_prefix_is_read_as_dest_ip_prefix():
    # Neutron's functional tests write it so; its own driver silently ignores the key
    # (and allows every destination): we match it.
    rule = rule_from_neutron("sg1", {"direction": "egress", "ethertype": "IPv6",
                                     "protocol": "icmp", "destination_ip_prefix": "2001:db8::2"})
    assert str(rule.remote_net) == "2001:db8::2/128"
