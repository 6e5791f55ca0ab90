"""The compiler's flows on a real ovs-vswitchd: accepted, installed through os-ken
bundles, read back identical, changed atomically."""
import dataclasses
import re

import pytest

from sg_ofctl import scenario
from sg_ofctl.compiler import FlowDiff, compile_host
from sg_ofctl.compiler.flows import Ct, Flow, Load, make_match
from sg_ofctl.compiler.ids import KIND_RULE, cookie
from sg_ofctl.dataplane.render import ofctl_text

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


def _scenario_flows(name: str):
    return compile_host(scenario.host_view(scenario.load(scenario.path(name))))


def _installable_small():
    return list(_scenario_flows("small"))


@pytest.mark.parametrize("name", ["small", "medium"])
def test_ovs_accepts_every_compiled_flow(ovs_testbed, name):
    """Through `ovs-ofctl --bundle add-flows`: catches syntax and prerequisite errors."""
    flows = _scenario_flows(name)
    result = ovs_testbed.add_flows_ofctl(flows)
    bad = re.search(r"-:(\d+):", result.stderr)
    assert result.returncode == 0, result.stderr + (
        "rejected flow: " + ofctl_text(flows[int(bad.group(1)) - 1]) if bad else "")
    assert len(ovs_testbed.dump_flows()) == len(flows)


def test_named_tables_show_in_dumps(ovs_testbed):
    ovs_testbed.name_tables(first_table=5)
    ovs_testbed.ofctl("add-flow", ovs_testbed.bridge, "table=12,priority=1,actions=drop")
    assert ovs_testbed.dump_flows() == ['table="egress_rules", priority=1 actions=drop']


def test_tables_named_through_ovsdbapp_keep_other_entries(ovs_testbed):
    from sg_ofctl.dataplane.tables import name_tables
    ovs_testbed.vsctl("--", "--id=@t", "create", "Flow_Table", "name=theirs", "--", "set",
                      "Bridge", ovs_testbed.bridge, "flow_tables:200=@t")
    api = ovs_testbed.ovsdbapp_api()
    assert name_tables(api, ovs_testbed.bridge, first_table=5) is True
    assert name_tables(api, ovs_testbed.bridge, first_table=5) is False
    for table in ("table=12", "table=200"):
        ovs_testbed.ofctl("add-flow", ovs_testbed.bridge, f"{table},priority=1,actions=drop")
    assert ovs_testbed.dump_flows() == ['table="egress_rules", priority=1 actions=drop',
                                        'table=theirs, priority=1 actions=drop']


def _bad_flow() -> Flow:
    """ct() without an IP match: OVS refuses it (OFPBAC_MATCH_INCONSISTENT)."""
    return Flow("egress_verdict", 1, make_match(reg4=(2, 2)), (Ct(commit=True),),
                cookie(KIND_RULE, "test", "bad"))


def _extra_flow(priority: int) -> Flow:
    return Flow("egress_rules", priority, make_match(reg3=priority, eth_type=0x800),
                (Load("reg4", 1, 0, 1),), cookie(KIND_RULE, "test", str(priority)))


def test_install_read_back_and_reconcile(ovs_testbed):
    controller = ovs_testbed.start_controller()
    flows = _installable_small()
    first = controller.install_full(flows)
    assert (first["add"], first["modify"], first["delete"]) == (len(flows), 0, 0)
    assert sorted(controller.read_flows(), key=repr) == sorted(flows, key=repr)
    # A second full install finds nothing to do.
    again = controller.install_full(flows)
    assert (again["add"], again["modify"], again["delete"]) == (0, 0, 0)
    # A flow that is not desired is removed, a changed one replaced, a missing one added.
    stray, changed = _extra_flow(7), dataclasses.replace(flows[0], cookie=flows[0].cookie + 1)
    controller.apply(FlowDiff(add=[stray], modify=[changed], delete=[flows[1]]))
    fix = controller.install_full(flows)
    assert (fix["add"], fix["modify"], fix["delete"]) == (1, 1, 1)
    assert sorted(controller.read_flows(), key=repr) == sorted(flows, key=repr)


def test_a_bundle_with_one_bad_flow_changes_nothing(ovs_testbed):
    controller = ovs_testbed.start_controller()
    controller.install_full([_extra_flow(1)])
    with pytest.raises(RuntimeError, match="OFPBAC_MATCH_INCONSISTENT"):
        controller.apply(FlowDiff(add=[_extra_flow(2), _bad_flow()], delete=[_extra_flow(1)]))
    assert controller.read_flows() == [_extra_flow(1)]


def test_only_our_cookies_are_read_back(ovs_testbed):
    controller = ovs_testbed.start_controller()
    ovs_testbed.ofctl("add-flow", ovs_testbed.bridge, "table=0,priority=1,cookie=0x1,actions=drop")
    controller.install_full([_extra_flow(3)])
    assert controller.read_flows() == [_extra_flow(3)]
    assert len(ovs_testbed.dump_flows()) == 2


def test_conntrack_flush_messages_are_accepted(ovs_testbed):
    controller = ovs_testbed.start_controller()
    controller.call("ct_flush_zone", zone=3)
    controller.call("ct_flush", match={"zone": 3, "ip_proto": 6, "src": "10.0.0.1",
                                       "dst_port": 22})
    controller.call("ct_flush", match={})


def _every_feature_view():
    """Uplinks, a VLAN network, allowed pairs, IPv6, a stateless group, deny,
    ICMP type/code, port ranges, remote groups of both families, no port security."""
    from sg_ofctl.model import HostView, Port, Rule, SecurityGroup
    web = SecurityGroup("web", rules=(
        Rule("r1", direction="ingress", protocol="tcp", port_range_min=1000,
             port_range_max=1999),
        Rule("r2", direction="ingress", protocol="icmp", port_range_min=8, port_range_max=0),
        Rule("r3", direction="ingress", ethertype="IPv6", protocol="icmpv6", port_range_min=128),
        Rule("r4", direction="ingress", action="deny", protocol="udp", port_range_min=53,
             port_range_max=53, remote_ip_prefix="10.9.0.0/16"),
        Rule("r5", direction="egress", ethertype="IPv6", remote_group_id="web"),
        Rule("r6", direction="ingress", remote_group_id="web", action="deny", protocol="sctp",
             port_range_min=9, port_range_max=9),
        Rule("r7", direction="egress", protocol=47)))
    plain = SecurityGroup("plain", stateful=False, rules=(
        Rule("s1", direction="ingress", protocol="udp", port_range_min=4789,
             port_range_max=4789),))
    ports = (
        Port("p1", "fa:16:3e:00:01:01", ("10.1.0.1", "2001:db8::1"), ofport=1, network=5,
             security_groups=("web",),
             allowed_address_pairs=({"ip_address": "10.1.0.128/25"},
                                    {"ip_address": "10.1.0.200",
                                     "mac_address": "fa:16:3e:00:01:99"})),
        Port("p2", "fa:16:3e:00:01:02", ("10.1.0.2",), ofport=2, security_groups=("plain",)),
        Port("p3", "fa:16:3e:00:01:03", ("10.1.0.3",), ofport=3, port_security_enabled=False),
        Port("p4", "fa:16:3e:00:01:04", ("10.1.0.4",), ofport=4))
    return HostView(ports=ports, groups={"web": web, "plain": plain},
                    members={"web": frozenset({"10.1.0.1", "2001:db8::1", "10.2.0.0/24"}),
                             "default": frozenset({"10.1.0.4"})}, uplinks=(9,))


def test_ovs_accepts_every_rule_and_port_kind(ovs_testbed):
    flows = compile_host(_every_feature_view())
    result = ovs_testbed.add_flows_ofctl(flows)
    bad = re.search(r"-:(\d+):", result.stderr)
    assert result.returncode == 0, result.stderr + (
        "rejected flow: " + ofctl_text(flows[int(bad.group(1)) - 1]) if bad else "")


def test_controller_restart_resends_nothing(ovs_testbed):
    flows = _installable_small()
    ovs_testbed.start_controller().install_full(flows)
    ovs_testbed.controller.stop()
    again = ovs_testbed.start_controller().install_full(flows)
    assert (again["add"], again["modify"], again["delete"]) == (0, 0, 0)


def test_vswitchd_restart_reinstalls_everything(ovs_testbed):
    flows = _installable_small()
    controller = ovs_testbed.start_controller()
    controller.install_full(flows)
    ovs_testbed.restart_vswitchd()
    controller.wait_reconnect()
    again = controller.install_full(flows)
    assert (again["add"], again["modify"], again["delete"]) == (len(flows), 0, 0)
    assert sorted(controller.read_flows(), key=repr) == sorted(flows, key=repr)
