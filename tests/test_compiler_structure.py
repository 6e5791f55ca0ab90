"""Structure of the compiled flows: purity, the pipeline declaration, scaling,
determinism and the incremental compiler's agreement with a full compile."""
import dataclasses
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings

from helpers import group, rule, view, vm
from sg_ofctl import pipeline, pipeline_doc, scenario
from sg_ofctl.compiler import Compiler, CompilerError, compile_host, diff
from sg_ofctl.compiler.flows import Goto
from sg_ofctl.model import Rule
from strategies import models



def _scenario(name):
    return scenario.load(scenario.path(name))


def test_compiler_is_pure():
    code = ("import sys, sg_ofctl.compiler, sg_ofctl.model, sg_ofctl.reference; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('os_ken', 'ovsdbapp', 'eventlet')]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pipeline_doc_is_up_to_date():
    assert pipeline_doc.main(["--check"]) == 0, "run: python -m sg_ofctl.pipeline_doc"


def test_every_flow_follows_the_declaration():
    for name in ("small", "medium"):
        for flow in compile_host(scenario.host_view(_scenario(name))):
            pipeline.check_flow(flow)
    ports = [vm(1, "g"), vm(2), vm(3, "s")]
    groups = [group("g", rule("a", protocol="tcp", port_range_min=1, port_range_max=99,
                              remote_group_id="g"), rule("d", action="deny",
                                                         remote_group_id="s")),
              group("s", rule("x", "egress", protocol="icmp"), stateful=False)]
    for flow in compile_host(view(ports, groups)):
        pipeline.check_flow(flow)


def _break_static_flows(monkeypatch, change):
    from sg_ofctl.compiler import build
    original = build.static_flows
    monkeypatch.setattr(build, "static_flows", lambda *a: change(original(*a)))


@pytest.mark.parametrize("change, message", [
    (lambda flows: flows + [dataclasses.replace(flows[0], match=(("tcp_dst", 80, None),))],
     "does not declare match field tcp_dst"),
    (lambda flows: flows + [dataclasses.replace(flows[0], actions=(Goto("ingress_rules"),))],
     "may not continue to ingress_rules"),
    (lambda flows: flows + [dataclasses.replace(flows[0], table="nowhere")],
     "undeclared table"),
    (lambda flows: [f for f in flows if not (f.table == "forward" and f.priority == 0)],
     "no priority-0 flow for its declared miss 'goto deliver'"),
    (lambda flows: [dataclasses.replace(f, actions=()) if f.table == "forward"
                    and f.priority == 0 else f for f in flows],
     "differs from its declared miss 'goto deliver'"),
])
def test_the_compiler_refuses_a_flow_that_leaves_the_declaration(monkeypatch, change, message):
    """Checked when flows are built, not only here: a bad flow never reaches a switch."""
    _break_static_flows(monkeypatch, change)
    compiler = Compiler()
    with pytest.raises(CompilerError, match=message):
        compiler.update(view([vm(1, "g")], [group("g", rule("a"))]))
    monkeypatch.undo()
    assert compiler.update(view([vm(1, "g")], [group("g", rule("a"))]))   # recovers


def test_flow_count_is_not_ports_times_rules():
    def count(n_ports, n_rules):
        rules = [rule(f"r{i}", protocol="tcp", port_range_min=1000 + i, port_range_max=1000 + i)
                 for i in range(n_rules)]
        return len(compile_host(view([vm(i, "g") for i in range(1, n_ports + 1)],
                                     [group("g", *rules)])))
    base = count(10, 10)
    assert count(20, 10) - base == count(30, 10) - count(20, 10)   # linear in ports
    assert count(10, 20) - base == 10                              # one flow per exact rule
    assert count(20, 20) - count(20, 10) == 10                     # independent of ports


def test_member_change_is_at_most_two_flow_mods_and_rule_add_independent_of_ports():
    data = _scenario("medium")
    v = scenario.host_view(data)
    compiler = Compiler()
    compiler.update(v)
    v2 = scenario.with_member_added(v, data["updates"]["member_add"])
    member = compiler.update(v2)
    assert 1 <= len(member) <= 2
    added = compiler.update(scenario.with_rule_added(v2, data["updates"]["rule_add"]))
    assert 1 <= len(added) <= 3   # the rule's own flows, not one per port
    removed = compiler.update(v)
    assert len(removed) == len(added) + len(member)


def test_compile_is_deterministic_across_restarts():
    v = scenario.host_view(_scenario("medium"))
    assert compile_host(v) == compile_host(v)
    again = scenario.host_view(_scenario("medium"))
    assert not diff(compile_host(v), compile_host(again))


def test_diff_is_minimal():
    v1 = view([vm(1, "g"), vm(2)], [group("g", rule("a", protocol="tcp"))])
    g2 = group("g", rule("a", protocol="tcp"), rule("b", protocol="udp"))
    v2 = dataclasses.replace(v1, groups={**v1.groups, "g": g2})
    d = diff(compile_host(v1), compile_host(v2))
    assert (len(d.add), len(d.modify), len(d.delete)) == (1, 0, 0)
    assert not diff(compile_host(v1), compile_host(v1))
    back = diff(compile_host(v2), compile_host(v1))
    assert (len(back.add), len(back.modify), len(back.delete)) == (0, 0, 1)


def _apply(flows, d):
    by_key = {f.key: f for f in flows}
    for f in d.delete:
        assert by_key.pop(f.key) == f
    for f in d.modify:
        assert f.key in by_key
        by_key[f.key] = f
    for f in d.add:
        assert f.key not in by_key
        by_key[f.key] = f
    return set(by_key.values())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(first=models(), second=models(), third=models())
def test_incremental_compiler_matches_full_compile(first, second, third):
    compiler = Compiler()
    installed = set()
    for v in (first, second, first, third):
        installed = _apply(installed, compiler.update(v))
        assert installed == set(compile_host(v))


def test_incremental_member_and_rule_changes_match_full_compile():
    v = scenario.host_view(_scenario("small"))
    compiler = Compiler()
    installed = _apply(set(), compiler.update(v))
    for gid in list(v.groups):
        members = {**v.members, gid: v.member_addresses(gid) | {"10.99.0.1", "fd00::99"}}
        v = dataclasses.replace(v, members=members)
        installed = _apply(installed, compiler.update(v))
        assert installed == set(compile_host(v))
        grp = v.groups[gid]
        extra = Rule(id=f"{gid}-new", security_group_id=gid, protocol="udp",
                     remote_group_id=gid, ethertype="IPv6")
        v = dataclasses.replace(v, groups={**v.groups,
                                           gid: dataclasses.replace(grp, rules=grp.rules +
                                                                    (extra,))})
        installed = _apply(installed, compiler.update(v))
        assert installed == set(compile_host(v))
