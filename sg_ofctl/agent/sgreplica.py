"""The agent's rows of the security-group database as model values, kept
incrementally: only changed rows are converted, and everything unchanged is
the same object as before (the incremental compiler sees by identity what did
not change).  Membership is an index updated per changed Port row
(members.py), so neither the first sync nor a change scans groups x ports.

`absorb()` takes the changed rows (cheap: it records what their references
are, which is all the monitor conditions need, sgconditions.py);
`publish()` converts them into an `SgState`, and is called only when the rows
held are complete for the conditions they require (sgdb.py)."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from sg_ofctl import model
from sg_ofctl.agent import sgconditions
from sg_ofctl.agent.members import MemberIndex
from sg_ofctl.agent.rowview import RowView
from sg_ofctl.ovsdb import bindings as ovsdb_bindings
from sg_ofctl.ovsdb import convert, logs as log_rows

LOG = logging.getLogger(__name__)
GROUP, RULE, PORT = convert.GROUP, convert.RULE, convert.PORT


@dataclass(frozen=True, slots=True)
class PortRecord:
    """One Port row: the model value (or why the row is invalid) and its
    external_ids.  `waiting`: a group it names has not arrived (fail-closed)."""

    uuid: object
    name: str
    port: model.Port | None
    error: str | None
    external_ids: dict
    waiting: bool = False


@dataclass(frozen=True)
class SgState:
    groups: dict            # id -> model.SecurityGroup
    group_ids: dict         # name and id -> id
    ports: dict             # name -> PortRecord
    members: dict           # group id -> model.MemberAddresses
    bound: dict = field(default_factory=dict)   # port name -> hosts that have bound it
    logs: tuple = field(default=())   # model.logs.PacketLog of every valid, enabled log
    pending: frozenset = frozenset()  # local names whose rows are still on their way


@dataclass
class Dirty:
    all: bool = True
    groups: set = field(default_factory=set)
    rules: set = field(default_factory=set)
    ports: set = field(default_factory=set)
    members: set = field(default_factory=set)     # rows of the member connection
    bindings: bool = True
    logs: bool = True


def raw_uuids(row, column) -> frozenset:
    """The uuids a reference column holds, whether or not their rows are here
    (python-ovs leaves out references to rows it does not hold)."""
    try:
        datum = row._data.get(column)
        return frozenset(k.value for k in datum.values) if datum is not None else frozenset()
    except Exception:
        return frozenset()


def _one(uuids: frozenset):
    return next(iter(uuids)) if uuids else None


class Replica:
    def __init__(self):
        self._held_ports: dict = {}     # port name -> sgconditions.HeldPort
        self._name_of: dict = {}        # port uuid -> name
        self._ports_of_group: dict = {}  # group uuid -> {port uuids naming it}
        self._rules: dict = {}          # rule uuid -> (group uuid, remote uuid | None)
        self._rules_by_group: dict = {}  # group uuid -> {rule uuid: remote uuid | None}
        self._group_ids: dict = {}      # group uuid -> id (held groups)
        self._todo_groups: set = set()
        self._todo_ports: set = set()
        self._mt = None                 # the member connection's tables (None: none)
        self._member_refs: dict = {}    # member row uuid -> its raw group uuids
        self._members_of_group: dict = {}  # group uuid -> {member row uuids naming it}
        self._todo_members: set = set()
        self._groups: dict = {}         # group uuid -> model.SecurityGroup
        self._group_errors: dict = {}
        self._records: dict = {}        # port uuid -> PortRecord
        self._by_name: dict = {}        # name -> PortRecord
        self._index = MemberIndex()
        self._members: dict = {}
        self._bound: dict = {}
        self._logs: tuple = ()
        self._state: SgState | None = None
        self.errors: dict = {}

    # -- what changed: references only ----------------------------------------------------
    def absorb(self, t, dirty: Dirty, mt=None) -> None:
        """`mt`: the tables of the member connection (sgconditions.MEMBERS), whose
        Port rows are the members of remote groups; None: membership comes from
        the Port rows of `t` (a replica of every row)."""
        self._mt = mt
        if mt is not None:
            self._absorb_members(mt, dirty)
        if dirty.bindings or dirty.all:
            self._bound = ovsdb_bindings.hosts_by_port(t)
        groups, rules, ports = dirty.groups, dirty.rules, dirty.ports
        # After a reconnect python-ovs may refill its tables without notifying
        # the rows that vanished meanwhile: compare the row sets themselves.
        groups = groups | (set(self._group_ids) ^ set(t[GROUP].rows))
        rules = rules | (set(self._rules) ^ set(t[RULE].rows))
        ports = ports | (set(self._name_of) ^ set(t[PORT].rows))
        if dirty.all:
            groups, rules, ports = set(t[GROUP].rows), set(t[RULE].rows), set(t[PORT].rows)
        for uuid in groups:
            row = t[GROUP].rows.get(uuid)
            present_before = uuid in self._group_ids
            if row is None:
                self._group_ids.pop(uuid, None)
            else:
                self._group_ids[uuid] = row.id
            if present_before != (row is not None):   # ports naming it convert anew
                self._todo_ports |= self._ports_of_group.get(uuid, set())
                self._todo_members |= self._members_of_group.get(uuid, set())
            self._todo_groups.add(uuid)
        for uuid in rules:
            old = self._rules.pop(uuid, None)
            if old is not None:
                self._rules_by_group.get(old[0], {}).pop(uuid, None)
                self._todo_groups.add(old[0])
            row = t[RULE].rows.get(uuid)
            if row is None:
                continue
            gid = _one(raw_uuids(row, "security_group"))
            ref = (gid, _one(raw_uuids(row, "remote_group")))
            self._rules[uuid] = ref
            self._rules_by_group.setdefault(gid, {})[uuid] = ref[1]
            self._todo_groups.add(gid)
        for uuid in ports:
            name = self._name_of.pop(uuid, None)
            if name is not None:
                old = self._held_ports.pop(name, None)
                for gid in old.groups if old is not None else ():
                    self._ports_of_group.get(gid, set()).discard(uuid)
            row = t[PORT].rows.get(uuid)
            self._todo_ports.add(uuid)
            if row is None:
                continue
            refs = raw_uuids(row, "security_groups")
            self._name_of[uuid] = row.name
            self._held_ports[row.name] = sgconditions.HeldPort(
                uuid, refs, not refs and row.port_security_enabled
                and not getattr(row, "no_security_groups", False))
            for gid in refs:
                self._ports_of_group.setdefault(gid, set()).add(uuid)

    def _absorb_members(self, mt, dirty: Dirty) -> None:
        rows = mt[PORT].rows
        changed = dirty.members | (set(self._member_refs) ^ set(rows))
        if dirty.all:
            changed |= set(rows)
        for uuid in changed:
            for gid in self._member_refs.pop(uuid, ()):
                self._members_of_group.get(gid, set()).discard(uuid)
            row = rows.get(uuid)
            self._todo_members.add(uuid)
            if row is not None:
                refs = raw_uuids(row, "security_groups")
                self._member_refs[uuid] = refs
                for gid in refs:
                    self._members_of_group.setdefault(gid, set()).add(uuid)

    def held(self, host: str, local_names: frozenset,
             tag_groups: frozenset = frozenset()) -> sgconditions.Held:
        bound = frozenset(n for n, hosts in self._bound.items() if host in hosts)
        defaults = frozenset(u for u, gid in self._group_ids.items()
                             if gid == model.DEFAULT_GROUP)
        return sgconditions.Held(host, frozenset(local_names), bound, self._held_ports,
                                 self._rules_by_group, defaults, tag_groups)

    # -- model values ---------------------------------------------------------------------
    def publish(self, t, logs_dirty: bool, local_names=None) -> SgState:
        groups_changed, ports_changed = bool(self._todo_groups), bool(self._todo_ports)
        touched: set = set()
        for uuid in self._todo_groups:
            self._convert_group(t, uuid)
        for uuid in self._todo_ports:
            touched |= self._convert_port(t, uuid)
        for uuid in self._todo_members:
            touched |= self._convert_member(uuid)
        self._todo_groups, self._todo_ports, self._todo_members = set(), set(), set()
        state = self._state
        if not groups_changed and state is not None:
            groups, group_ids = state.groups, state.group_ids
        else:
            groups = {g.id: g for g in self._groups.values()}
            group_ids = {**{g.id: g.id for g in groups.values()},
                         **{g.name: g.id for g in groups.values() if g.name}}
        if groups_changed or touched:
            members = dict(self._members)
            for gid in touched | (set(groups) ^ set(members)):
                if gid in groups:
                    members[gid] = self._index.members(gid)
                else:
                    members.pop(gid, None)
            self._members = members
        if logs_dirty or state is None:
            self._logs = _read_logs(t)
        local = self._by_name if local_names is None else \
            {n: self._by_name[n] for n in local_names if n in self._by_name}
        self.errors = {f"group:{u}": e for u, e in self._group_errors.items()}
        self.errors.update({f"port:{r.name}": r.error for r in local.values() if r.error})
        if state is not None and not groups_changed and not ports_changed and not touched and \
                state.bound is self._bound and state.logs is self._logs:
            self._state = dataclasses.replace(state, pending=frozenset()) \
                if state.pending else state
        else:
            ports = dict(self._by_name) if ports_changed or state is None else state.ports
            self._state = SgState(groups, group_ids, ports, self._members, self._bound,
                                  self._logs)
        return self._state

    def last(self, pending: frozenset) -> SgState:
        """The last published state, with `pending`: local names it does not cover."""
        state = self._state or SgState({}, {}, {}, {})
        return dataclasses.replace(state, pending=pending) if pending != state.pending \
            else state

    def _convert_group(self, t, uuid) -> None:
        row = t[GROUP].rows.get(uuid)
        if row is None:
            self._groups.pop(uuid, None)
            self._group_errors.pop(uuid, None)
            return
        rule_rows = [t[RULE].rows[r] for r in self._rules_by_group.get(uuid, ())
                     if r in t[RULE].rows]
        try:
            for rule in rule_rows:
                remote = raw_uuids(rule, "remote_group")
                if remote and _one(remote) not in self._group_ids:
                    raise model.ValidationError("remote_group", str(_one(remote)),
                                                f"rule {rule.id}: its group has not arrived")
            group = convert.group_from_rows(
                RowView(row, t), [RowView(r, t) for r in sorted(rule_rows, key=lambda r: r.id)])
            old = self._groups.get(uuid)
            self._groups[uuid] = old if old == group else group
            self._group_errors.pop(uuid, None)
        except model.ValidationError as e:
            # A row the model refuses (another writer's bug): its ports stay closed.
            self._groups.pop(uuid, None)
            self._group_errors[uuid] = f"security group {row.name}: {e}"
            LOG.error("security group %s in the database is invalid: %s", row.name, e)

    def _convert_port(self, t, uuid) -> set:
        old = self._records.pop(uuid, None)
        if old is not None and self._by_name.get(old.name) is old:
            del self._by_name[old.name]
        row = t[PORT].rows.get(uuid)
        if row is None:
            return self._index.set_port(uuid, (), ())
        refs = raw_uuids(row, "security_groups")
        waiting = any(g not in self._group_ids for g in refs)
        try:
            port, error = convert.port_from_row(RowView(row, t)), None
            if old is not None and old.port == port:
                port = old.port
            # Members of the groups it names that are here (a member row of a
            # remote group may name groups this agent does not hold).
            groups = port.security_groups if waiting else port.effective_groups
            touched = self._index.set_port(uuid, groups, port.addresses()) \
                if self._mt is None else set()
        except model.ValidationError as e:
            port, error = None, f"port {row.name}: {e}"
            touched = self._index.set_port(uuid, (), ())
        record = PortRecord(uuid, row.name, None if waiting else port, error,
                            dict(RowView(row, t).external_ids), waiting)
        self._records[uuid] = record
        self._by_name[row.name] = record
        return touched


    def _convert_member(self, uuid) -> set:
        """A row of the member connection: the held groups it names (ids),
        `default` for a port without any, and its addresses."""
        key = ("member", uuid)
        row = self._mt[PORT].rows.get(uuid) if self._mt is not None else None
        if row is None:
            return self._index.set_port(key, (), ())
        view = RowView(row, self._mt)
        refs = self._member_refs.get(uuid, frozenset())
        groups = [self._group_ids[g] for g in refs if g in self._group_ids]
        if not view.port_security_enabled:
            groups = []
        elif not refs and not getattr(view, "no_security_groups", False):
            groups = [model.DEFAULT_GROUP]
        try:
            port = convert.port_from_row(view)   # its groups: not held there (none)
        except model.ValidationError:
            return self._index.set_port(key, (), ())
        return self._index.set_port(key, sorted(groups), port.addresses())


def _read_logs(t) -> tuple:
    """The enabled packet logs; an invalid one (its target deleted) is skipped."""
    out = []
    for row in t[log_rows.LOG].rows.values() if log_rows.LOG in t else ():
        try:
            log = log_rows.log_from_row(row)
        except model.ValidationError:
            continue
        if log.enabled:
            out.append(log)
    return tuple(sorted(out, key=lambda log: log.name))
