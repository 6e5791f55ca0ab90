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


def _scenario_flows(name: str):
    return compile_host(scenario.host_view(scenario.load(f"/work/shared/scenarios/{name}.json")))


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


def _bad_flow() -> Flow:
    """ct() without an IP match: OVS refuses it (OFPBAC_MATCH_INCONSISTENT)."""
    return Flow("egress_verdict", 1, make_match(reg4=(2, 2)), (Ct(commit=True),),
                cookie(KIND_RULE, "test", "bad"))


def _extra_flow(priority: int) -> Flow:
    return Flow("egress_rules", priority, make_match(reg3=priority, eth_type=0x800),
                (Load("reg4", 1, 0, 1),), cookie(KIND_RULE, "test", str(priority)))


def test_install_read_back_and_reconcile(ovs_testbed):
    controller = ovs_testbed.start_controller()
    flows = [f for f in _scenario_flows("small") if Ct not in map(type, f.actions)
             or f.field("eth_type")]  # (ct flows without eth_type: see the ofctl test)
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
