"""The read side an agent builds its HostView from: every group as a
model.SecurityGroup, every port as a model.Port (ofport None) and its host."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from sg_ofctl import model
from sg_ofctl.ovsdb import api

from ovsdb_fixtures import new_database, ok, sgdb  # noqa: F401
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "three-tier.yaml"


def test_state_is_model_values_and_builds_a_host_view(sgdb):
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    with api.connect(sgdb.remote) as handle:
        handle.run(handle.port_bind("web-1-eth0", "compute-1"))
        handle.run(handle.port_bind("monitor-eth0", "compute-1"))
        handle.run(handle.port_bind("db-1-eth0", "compute-2"))
        state = handle.state()
    assert all(isinstance(g, model.SecurityGroup) for g in state.groups.values())
    by_name = {g.name: g for g in state.groups.values()}
    assert set(by_name) == {"default", "web", "db", "ssh-bastion"}
    assert by_name["default"].id == model.DEFAULT_GROUP
    web = by_name["web"]
    deny = [r for r in web.rules if r.action == "deny"]
    assert len(deny) == 1 and deny[0].port_range == (25, 25) and deny[0].direction == "egress"
    from_bastion = [r for r in web.rules if r.remote_group_id == by_name["ssh-bastion"].id]
    assert len(from_bastion) == 2
    assert all(p.ofport is None for p in state.ports)
    assert [p.name for p in state.ports_on("compute-1")] == ["monitor-eth0", "web-1-eth0"]
    assert state.hosts[next(p.id for p in state.ports if p.name == "web-2-eth0")] == ""
    members = state.members()
    assert members[web.id] == {"10.0.2.11", "fd00:2::11", "10.0.2.12", "fd00:2::12",
                               "10.0.2.100"}
    assert members[model.DEFAULT_GROUP] == {"10.0.4.5"}
    local = tuple(dataclasses.replace(p, ofport=i + 1)
                  for i, p in enumerate(state.ports_on("compute-1")))
    view = model.HostView(ports=local, groups=state.groups, members=members)
    monitor = next(p for p in view.ports if p.name == "monitor-eth0")
    assert [g.name for g in view.groups_of(monitor)] == ["default"]
    assert view.is_stateful(monitor)
    assert state.revision > 0


def test_only_the_tables_a_client_needs_are_replicated(sgdb):
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    with api.connect(sgdb.remote, tables=("Security_Group",)) as handle:
        counts = handle.read(lambda t: {name: len(t[name].rows) for name in t})
    assert counts["Security_Group"] == 4 and counts["Global"] == 1
    assert counts["Security_Group_Rule"] == 0 and counts["Port"] == 0
    with api.connect(sgdb.remote, tables=("Security_Group",),
                     conditions={"Port": [["name", "==", "db-1-eth0"]]}) as handle:
        ports = handle.read(lambda t: [r.name for r in t["Port"].rows.values()])
    assert ports == ["db-1-eth0"]


def test_a_watcher_is_told_of_changes_made_by_another_client(sgdb):
    """What an agent does: its own IDL class gets pushed updates, nothing polls."""
    import threading

    seen = []
    arrived = threading.Event()

    class Watcher(api.SgIdl):
        def notify(self, event, row, updates=None):
            if row._table.name == "Security_Group_Rule" and event == "create":
                seen.append(row.id)
                arrived.set()

    with api.connect(sgdb.remote, idl_class=Watcher) as watcher:
        seen.clear()
        arrived.clear()
        rule_id = ok("rule", "create", "default", "--protocol", "tcp", "--dst-port", "22",
                     "-f", "value", "-c", "id", db=sgdb.remote).strip()
        assert arrived.wait(10)
        assert seen == [rule_id]
        assert watcher.read(lambda t: any(r.id == rule_id
                                          for r in t["Security_Group_Rule"].rows.values()))


def test_group_with_a_rule_naming_itself_can_be_deleted(sgdb):
    ok("group", "create", "selfref", db=sgdb.remote)
    ok("rule", "create", "selfref", "--remote-group", "selfref", db=sgdb.remote)
    ok("group", "delete", "selfref", db=sgdb.remote)
    assert ok("group", "list", "-f", "value", "-c", "Name", db=sgdb.remote) == "default\n"
    assert ok("rule", "list", "-f", "value", "-c", "Security Group",
              db=sgdb.remote).split() == ["default"] * 4


def test_an_agent_first_on_an_empty_database_reads_it_and_writes_nothing():
    """It replicates only some columns: initialising from there failed (KeyError)."""
    from sg_ofctl.agent.sgdb import SgDatabase
    with new_database() as db:
        db.start()
        agent_view = SgDatabase(db.remote, on_change=lambda: None)
        try:
            state = agent_view.snapshot()
            assert state.groups == {} and state.ports == {}
        finally:
            agent_view.close()
        assert ok("group", "list", "-f", "value", "-c", "Name", db=db.remote).split() == \
            ["default"]
