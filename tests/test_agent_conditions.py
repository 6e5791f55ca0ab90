"""Pure: the agent's monitor conditions (sgconditions.py) and its member index
(members.py)."""
from __future__ import annotations

import uuid

from sg_ofctl.agent import sgconditions as sc
from sg_ofctl.agent.members import MemberIndex

WEB, DB, ADMIN, DEFAULT, OTHER = (uuid.uuid4() for _ in range(5))


def _held(local=("p1",), **kw):
    ports = {
        "p1": sc.HeldPort("u-p1", frozenset({WEB})),
        "p2": sc.HeldPort("u-p2", frozenset({DB})),
        "p3": sc.HeldPort("u-p3", frozenset(), uses_default=True),
        "p9": sc.HeldPort("u-p9", frozenset({OTHER})),
    }
    rules = {WEB: {"r1": DB, "r2": None}, DB: {"r3": ADMIN}, DEFAULT: {"r4": DEFAULT},
             OTHER: {"r5": OTHER}}
    return sc.Held("hv1", frozenset(local), kw.get("bound", frozenset()), ports, rules,
                   frozenset({DEFAULT}))


def _includes(g):
    return ["security_groups", "includes", ["set", [["uuid", str(g)]]]]


def test_a_port_brings_its_groups_their_rules_and_remote_members_only():
    c = sc.conditions(_held())
    assert c[sc.GLOBAL] == [False]
    assert c[sc.RULE] == [["security_group", "==", ["uuid", str(WEB)]]]
    assert ["_uuid", "==", ["uuid", str(DB)]] in c[sc.GROUP]
    assert ["name", "==", "default"] in c[sc.GROUP]
    assert ["_uuid", "==", ["uuid", str(ADMIN)]] not in c[sc.GROUP]   # DB's rule: not ours
    assert c[sc.PORT] == [["name", "==", "p1"]]          # `==` only: hashed by the server
    assert c[sc.MEMBERS] == [_includes(DB)]
    assert c[sc.BINDING] == [["host", "==", "hv1"], ["port", "==", "p1"]]
    assert c[sc.LOG] == [["security_group", "==", ["uuid", str(WEB)]],
                         ["port", "==", ["uuid", "u-p1"]]]


def test_a_port_without_groups_uses_default_and_its_members_are_the_portless():
    c = sc.conditions(_held(local=("p3",)))
    assert c[sc.RULE] == [["security_group", "==", ["uuid", str(DEFAULT)]]]
    assert _includes(DEFAULT) in c[sc.MEMBERS]
    assert ["security_groups", "==", ["set", []]] in c[sc.MEMBERS]


def test_bound_ports_are_fetched_by_name_and_nothing_else_follows():
    c = sc.conditions(_held(local=(), bound=frozenset({"gone-1"})))
    assert c[sc.PORT] == [["name", "==", "gone-1"]]
    assert c[sc.RULE] == [False] and c[sc.LOG] == [False]


def test_a_local_name_not_yet_held_asks_for_its_row_only():
    c = sc.conditions(_held(local=("new-port",)))
    assert c[sc.PORT] == [["name", "==", "new-port"]]
    assert c[sc.RULE] == [False]


def test_conditions_are_canonical_and_initial_is_narrow():
    a = sc.conditions(_held(local=("p1", "p2")))
    b = sc.conditions(_held(local=("p2", "p1")))
    assert a == b
    first = sc.initial("hv1")
    assert first[sc.PORT] == [False] and first[sc.RULE] == [False]
    assert first[sc.MEMBERS] == [False]
    assert first[sc.GROUP] == [["name", "==", "default"]]
    assert first[sc.BINDING] == [["host", "==", "hv1"]]


def test_member_index_counts_shared_addresses_and_reports_touched_groups():
    index = MemberIndex()
    assert index.set_port("a", ("g1", "g2"), ("10.0.0.1", "10.0.0.9")) == {"g1", "g2"}
    assert index.set_port("b", ("g1",), ("10.0.0.9",)) == {"g1"}
    assert index.members("g1") == {"10.0.0.1", "10.0.0.9"}
    first = index.members("g1")
    assert index.members("g1") is first           # unchanged: the same object
    assert index.set_port("a", ("g1", "g2"), ("10.0.0.1", "10.0.0.9")) == set()
    assert index.set_port("a", ("g2",), ("10.0.0.1",)) == {"g1", "g2"}
    assert index.members("g1") == {"10.0.0.9"}     # b still has it
    assert index.members("g2") == {"10.0.0.1"}
    assert index.set_port("b", (), ()) == {"g1"}
    assert index.members("g1") == frozenset() and index.members("nope") == frozenset()


def test_a_pending_port_waits_fail_closed_and_no_row_is_made_from_its_tags():
    """While its rows are on their way a local port is closed with the reason
    'waiting' (no error), and its tags create no row (the row may exist)."""
    import dataclasses

    from sg_ofctl.agent import view as view_mod
    from sg_ofctl.agent.bindings import plan_writes
    from sg_ofctl.agent.local_ovs import LocalInterface, LocalState
    from sg_ofctl.agent.sgreplica import SgState
    tags = {"iface-id": "vm-1", "attached-mac": "fa:16:3e:00:00:01",
            "sg-ofctl-ips": "10.0.0.1"}
    local = LocalState(True, 1, (LocalInterface("tap1", "tap1", 1, tags),),
                       frozenset({"vm-1"}))
    state = SgState({}, {"default": "default"}, {}, {})
    waiting = dataclasses.replace(state, pending=frozenset({"vm-1"}))
    built = view_mod.ViewBuilder().build(local, waiting)
    assert built.problems == {"tap1": view_mod.WAITING} and built.quiet == {"tap1"}
    assert not plan_writes(local, waiting, built, "hv1").db.create
    # Once the state covers it and it has no row, its tags make one.
    built = view_mod.ViewBuilder().build(local, state)
    assert "no port named" in built.problems["tap1"]
    assert [s.name for s in plan_writes(local, state, built, "hv1").db.create] == ["vm-1"]
