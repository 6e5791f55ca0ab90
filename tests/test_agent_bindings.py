"""The agent's database writes as a pure plan (agent/bindings.py): what it
creates from tags, updates, binds, unbinds, deletes, and which VLAN tags it
sets, from a snapshot of the local interfaces and the security-group database."""
from __future__ import annotations

from sg_ofctl import model
from sg_ofctl.agent.bindings import plan_writes
from sg_ofctl.agent.local_ovs import LocalInterface, LocalState
from sg_ofctl.agent.sgdb import PortRecord, SgState
from sg_ofctl.agent.tags import CREATED_BY, TAGS_APPLIED
from sg_ofctl.agent.view import Built

HOST = "hv1"
GROUP_IDS = {"web": "g-web", "g-web": "g-web", "default": "default"}


def iface(name, ofport, port_id=None, vlan=None, **tags):
    ids = {"iface-id": port_id} if port_id else {}
    ids.update({k.replace("_", "-"): v for k, v in tags.items()})
    return LocalInterface(name, f"P{name}", ofport, ids, vlan)


_HOSTS: dict = {}    # port name -> the host record() bound it to (SgState.bound)


def record(name, host="", tag_made=False, tags_text=None, network=0):
    port = model.Port(id=f"id-{name}", name=name, mac="fa:16:3e:00:0a:01",
                      fixed_ips=("10.0.10.1",), network=network)
    ids = {CREATED_BY: "hv0", TAGS_APPLIED: tags_text or ""} if tag_made else {}
    _HOSTS[name] = host
    return PortRecord(port.id, name, port, None, ids)


def plan(interfaces, records=(), enforced=None, present=None):
    local = LocalState(True, 1, tuple(interfaces), frozenset(
        present if present is not None else (i.iface_id for i in interfaces if i.iface_id)))
    sg = SgState({}, GROUP_IDS, {r.name: r for r in records}, {},
                 {r.name: frozenset({_HOSTS[r.name]}) for r in records if _HOSTS.get(r.name)})
    built = Built(view=None, ports_by_iface=dict(enforced or {}))
    return plan_writes(local, sg, built, HOST)


TAGGED = dict(attached_mac="fa:16:3e:00:0a:05", sg_ofctl_ips="10.0.10.5",
              sg_ofctl_groups="web")


def test_nothing_to_do_is_an_empty_plan():
    p = plan([iface("t1", 1, "p1"), iface("up", 2)], [record("p1", host=HOST)])
    assert not p and not p.db


def test_tags_create_a_missing_row_bound_here_once():
    p = plan([iface("t1", 1, "p5", **TAGGED), iface("t1b", 2, "p5", **TAGGED)])
    (spec,) = p.db.create
    assert (spec.name, spec.mac, spec.ips, spec.groups) == \
        ("p5", "fa:16:3e:00:0a:05", ("10.0.10.5",), ("web",))
    assert spec.external_ids == {CREATED_BY: HOST,
                                 TAGS_APPLIED: "fa:16:3e:00:0a:05|10.0.10.5|web"}
    assert p.creating == {"t1": "p5", "t1b": "p5"} and not p.db.bind


def test_the_database_row_wins_over_tags_and_is_bound_here():
    p = plan([iface("t1", 1, "p1", **TAGGED)], [record("p1", host="hv2")])
    assert p.db.create == () and p.db.update == () and p.db.bind == ("p1",)


def test_a_tag_made_row_follows_its_tags():
    text = "fa:16:3e:00:0a:05|10.0.10.5|web"
    same = plan([iface("t1", 1, "p1", **TAGGED)],
                [record("p1", host=HOST, tag_made=True, tags_text=text)])
    assert not same
    changed = plan([iface("t1", 1, "p1", **{**TAGGED, "sg_ofctl_ips": "10.0.10.6"})],
                   [record("p1", host=HOST, tag_made=True, tags_text=text)])
    (spec,) = changed.db.update
    assert spec.ips == ("10.0.10.6",) and spec.external_ids == {
        TAGS_APPLIED: "fa:16:3e:00:0a:05|10.0.10.6|web"}


def test_bad_tags_keep_a_new_port_closed_and_an_old_row_as_it_is():
    bad = {**TAGGED, "sg_ofctl_groups": "web,nosuch"}
    new = plan([iface("t1", 1, "p1", **bad)])
    assert not new.db and "nosuch" in new.tag_errors["t1"]
    old = plan([iface("t1", 1, "p1", **bad)], [record("p1", host=HOST, tag_made=True)])
    assert not old.db and "nosuch" in old.tag_errors_kept["t1"] and not old.tag_errors


def test_ports_that_left_are_unbound_or_their_tag_made_rows_deleted():
    records = [record("api", host=HOST), record("tagged", host=HOST, tag_made=True),
               record("elsewhere", host="hv2"), record("no-ofport-yet", host=HOST)]
    p = plan([], records, present={"no-ofport-yet"})
    assert p.db.unbind == ("api",) and p.db.delete == ("tagged",)
    assert p.db.bind == () and p.db.create == ()


def test_vlan_tag_follows_the_network_of_enforced_ports():
    on5 = record("p1", host=HOST, network=5)
    p = plan([iface("t1", 1, "p1")], [on5], enforced={"t1": on5.port})
    assert p.vlan_tags == {"Pt1": 5}
    untagged = record("p2", host=HOST)
    p = plan([iface("t2", 2, "p2", vlan=5)], [untagged], enforced={"t2": untagged.port})
    assert p.vlan_tags == {"Pt2": None}
    closed = plan([iface("t1", 1, "p1")], [on5])       # not enforced: no tag yet
    assert closed.vlan_tags == {}
