"""The agent's SG database client with per-host conditional monitoring, against
a real ovsdb-server: what it holds, what wakes it, how its conditions follow
its ports and rules, that no published state lacks a row it needs, and that a
reconnect resumes with monitor_cond_since (no second download)."""
from __future__ import annotations

import threading

import pytest

from ovsdb_fixtures import Cluster, new_database
from polling import eventually
from sg_ofctl.agent import sgconditions as sc
from sg_ofctl.agent.sgdb import SgDatabase
from sg_ofctl.ovsdb import api as sg_api

pytestmark = pytest.mark.root   # a real ovsdb-server

MEMBERS = 60


def _port(api, name, n, groups=(), host=None):
    api.run(api.port_create({"name": name, "mac": f"fa:16:3e:00:{n // 256:02x}:{n % 256:02x}",
                             "ips": [f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"],
                             "groups": list(groups)}))
    if host:
        api.run(api.port_bind(name, host))


def _fleet(api):
    """web (local on hv1) allows ingress from db; db has MEMBERS ports on other
    hosts; `other` and its ports are none of hv1's business."""
    for name in ("web", "db", "other", "admin"):
        api.run(api.group_create(name))
    api.run(api.rule_create("web", {"direction": "ingress", "remote_group": "db"}))
    api.run(api.rule_create("other", {"direction": "ingress", "remote_group": "other"}))
    api.run(api.rule_create("admin", {"direction": "ingress", "remote_group": "admin"}))
    _port(api, "p1", 1, ["web"], "hv1")
    for i in range(MEMBERS):
        _port(api, f"db-{i}", 100 + i, ["db"], f"hv{2 + i % 5}")
    for i in range(20):
        _port(api, f"other-{i}", 1000 + i, ["other"], "hv9")


class Agent:
    """The agent's client for host hv1, counting its wake-ups."""

    def __init__(self, remote, names=("p1",)):
        self.kicks = 0
        self.rows_received = 0
        self.names = frozenset(names)
        self.db = SgDatabase(remote, self._kick, host="hv1")
        changed = self.db.tracker.changed

        def counting(table, uuid):
            self.rows_received += 1
            changed(table, uuid)
        self.db.tracker.changed = counting

    def _kick(self):
        self.kicks += 1

    def converge(self, names=None, timeout=10.0):
        self.names = frozenset(names) if names is not None else self.names

        def done():
            state = self.db.snapshot(self.names)
            return state if not state.pending and self.db._acked() else None
        return eventually(done, timeout, 0.01, "the agent's conditions to settle")

    def rows(self, table):
        return self.db.api.read(lambda t: list(t[table].rows.values()))

    def member_rows(self):
        """The Port rows of the member connection (sgconditions.MEMBERS)."""
        return self.db.member_api.read(lambda t: list(t[sc.PORT].rows.values()))

    def close(self):
        self.db.close()


@pytest.fixture
def env():
    with new_database() as db:
        with sg_api.connect(db.remote) as admin:
            _fleet(admin)
            agent = Agent(db.remote)
            try:
                yield admin, agent
            finally:
                agent.close()


def test_holds_only_its_share_and_is_not_woken_by_other_hosts(env):
    admin, agent = env
    state = agent.converge()
    assert {r.name for r in agent.rows(sc.PORT)} == {"p1"}
    assert {r.name for r in agent.member_rows()} == {f"db-{i}" for i in range(MEMBERS)}
    assert {r.name for r in agent.rows(sc.GROUP)} == {"web", "db", "default"}
    assert {r.security_group.name for r in agent.rows(sc.RULE)} == {"web"}   # not db's
    assert agent.rows(sc.GLOBAL) == []
    assert {(r.port, r.host) for r in agent.rows(sc.BINDING)} == {("p1", "hv1")}
    web, db = state.group_ids["web"], state.group_ids["db"]
    assert len(state.members[db]) == MEMBERS and web in state.groups
    assert "other" not in state.group_ids
    # Changes elsewhere in the fleet: another group's rules and ports, other
    # hosts' bindings, and every write's bump of Global.
    before = (agent.kicks, agent.rows_received)
    admin.run(admin.rule_create("other", {"direction": "egress", "protocol": "tcp"}))
    admin.run(admin.port_set("other-3", {"ips": ["10.9.9.9"]}))
    admin.run(admin.port_bind("other-4", "hv8"))
    _port(admin, "other-new", 3000, ["other"], "hv9")
    admin.run(admin.rule_create("db", {"direction": "egress", "protocol": "udp"}))  # db's own
    with sg_api.connect(admin.ovsdb_connection.idl._session.get_name()) as probe:
        assert len(probe.tables[sc.PORT].rows) == MEMBERS + 22     # all of them were written
    assert (agent.kicks, agent.rows_received) == before
    assert agent.db.snapshot(agent.names) is state


def test_conditions_follow_a_port_that_arrives_changes_groups_and_leaves(env):
    admin, agent = env
    agent.converge()
    _port(admin, "p2", 2, ["admin"])
    _port(admin, "adm-1", 5, ["admin"], "hv3")
    state = agent.db.snapshot(agent.names | {"p2"})
    assert "p2" in state.pending          # fail-closed while on its way, not "no such port"
    state = agent.converge(agent.names | {"p2"})
    admin_id = state.group_ids["admin"]
    assert state.ports["p2"].port.security_groups == (admin_id,)
    assert state.members[admin_id] == {"10.0.0.2", "10.0.0.5"}
    assert any(r.remote_group_id == admin_id for r in state.groups[admin_id].rules)
    # p2 changes groups: admin's rules and members leave, db's come.
    admin.run(admin.port_set("p2", {"groups": ["db"], "no_groups": True}))
    state = eventually(lambda: (lambda s: s if admin_id not in s.groups else None)(
        agent.converge()), 10, 0.02, "admin's rows gone")
    assert {r.name for r in agent.rows(sc.PORT)} == {"p1", "p2"}
    assert {r.name for r in agent.member_rows()} == \
        {"p2"} | {f"db-{i}" for i in range(MEMBERS)}
    # p1 leaves: web's rules go, db's members stay (p2 is in db... as a member
    # only if a local rule names db: none does now).
    state = agent.converge({"p2"})
    assert {r.name for r in agent.rows(sc.PORT)} == {"p1", "p2"}   # p1: bound here (unbind)
    assert {r.security_group.name for r in agent.rows(sc.RULE)} == {"db"}
    assert agent.member_rows() == []


def test_a_member_on_another_host_reaches_this_agent(env):
    admin, agent = env
    state = agent.converge()
    db = state.group_ids["db"]
    _port(admin, "db-new", 4000, ["db"], "hv7")
    eventually(lambda: "10.0.15.160" in agent.converge().members[db], 10, 0.02,
               "the new member")
    admin.run(admin.port_delete(["db-3"]))
    eventually(lambda: "10.0.0.103" not in agent.converge().members[db], 10, 0.02,
               "the member removed")


def test_a_port_without_groups_gets_default_and_its_members_anywhere(env):
    """default's members are the ports without groups (and those naming it),
    on any host; ports with "no security group at all" are members of nothing."""
    admin, agent = env
    _port(admin, "bare-local", 7)
    _port(admin, "bare-far", 8, host="hv5")
    _port(admin, "named-default", 9, ["default"], host="hv6")
    admin.run(admin.port_create({"name": "none-at-all", "mac": "fa:16:3e:00:00:0a",
                                 "ips": ["10.0.0.10"], "no_security_groups": True}))
    state = agent.converge({"p1", "bare-local"})
    assert state.ports["bare-local"].port.effective_groups == ("default",)
    assert any(r.remote_group_id == "default" for r in state.groups["default"].rules)
    assert state.members["default"] == {"10.0.0.7", "10.0.0.8", "10.0.0.9"}
    assert "none-at-all" in {r.name for r in agent.member_rows()}   # fetched, not counted


def test_a_deny_rule_is_never_published_without_its_remote_members(env):
    """Watch every state the agent publishes while a deny rule naming a group
    it does not hold yet arrives: none holds the rule without all members."""
    admin, agent = env
    agent.converge()
    for i in range(MEMBERS):
        _port(admin, f"adm-{i}", 2000 + i, ["admin"], "hv4")
    want = {f"10.0.{(2000 + i) // 256 % 256}.{(2000 + i) % 256}" for i in range(MEMBERS)}
    seen, held, stop = [], [0], threading.Event()

    def watch():
        while not stop.is_set():
            state = agent.db.snapshot(agent.names)
            rule_rows = agent.db.api.read(lambda t: len(t[sc.RULE].rows))
            seen.append(state)
            if rule_rows > sum(len(g.rules) for g in state.groups.values()
                               if g.id == state.group_ids.get("web")):
                held[0] += 1
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        admin.run(admin.rule_create("web", {"direction": "ingress", "remote_group": "admin",
                                            "action": "deny", "protocol": "tcp"}))
        eventually(lambda: any(r.action == "deny" for s in seen[-1:]
                               for g in s.groups.values() for r in g.rules), 10, 0.01,
                   "the deny rule")
    finally:
        stop.set()
        watcher.join()
    published = 0
    for state in seen:
        for group in state.groups.values():
            for rule in group.rules:
                if rule.action == "deny":
                    published += 1
                    assert state.members.get(rule.remote_group_id) == want
    assert published


def test_a_reconnect_resumes_without_a_second_download():
    """monitor_cond_since: after the connection drops, the agent receives what
    it missed, not its whole view again (a cluster keeps the history for it)."""
    cluster = Cluster(size=1)
    try:
        cluster.start()
        remote = cluster.remote_of(0)
        with sg_api.connect(remote) as admin:
            _fleet(admin)
            agent = Agent(remote)
            try:
                state = agent.converge()
                first = agent.rows_received
                assert first >= MEMBERS
                session = agent.db.api.idl._session
                reconnects = session.get_seqno()
                with agent.db.api.ovsdb_connection.lock:
                    agent.db.api.idl.force_reconnect()
                _port(admin, "db-late", 4001, ["db"], "hv2")     # missed, maybe
                db = state.group_ids["db"]
                eventually(lambda: "10.0.15.161" in agent.converge().members[db], 10, 0.02,
                           "the member written around the reconnect")
                assert session.get_seqno() != reconnects            # it did reconnect
                assert agent.rows_received - first <= 3, "downloaded its view again"
                assert len(agent.converge().members[db]) == MEMBERS + 1
            finally:
                agent.close()
    finally:
        cluster.stop()
