"""The security-group database as the agent sees it: an ovsdbapp monitor of
groups, rules and ports (all of them: remote groups need the addresses of
every member port, on any host), converted to model values incrementally.

OVSDB pushes every change; the IDL thread marks the changed rows dirty and
calls `on_change()`.  `snapshot()` (worker thread) converts only the dirty rows
and returns the same model objects for everything unchanged, so the
incremental compiler sees by identity what did not change.

Members of a group = the addresses (fixed IPs + allowed address pairs) of
every port in it, bound to a host or not (Neutron's rule: a port counts from
the moment it exists).

`write()` (the writer thread, agent/writer.py) sends the agent's writes for its
host over a second, long-lived connection that replicates only the rows they
touch (ovsdb/host_writes.py)."""
from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field

import sg_ofctl.ovsdb  # noqa: F401  (before ovsdbapp: python-ovs without eventlet)
from sg_ofctl import errors, model
from sg_ofctl.agent.idlwatch import ConnectionWatch
from sg_ofctl.ovsdb import api as sg_api
from sg_ofctl.ovsdb import bindings as ovsdb_bindings
from sg_ofctl.ovsdb import convert, logs as log_rows
from sg_ofctl.ovsdb.host_writes import HostWrites, HostWritesResult

LOG = logging.getLogger(__name__)
GROUP, RULE, PORT = convert.GROUP, convert.RULE, convert.PORT


@dataclass(frozen=True, slots=True)
class PortRecord:
    """One Port row: the model value (or why the row is invalid) and its
    external_ids (its hosts: SgState.bound, from Port_Binding rows)."""

    uuid: object
    name: str
    port: model.Port | None
    error: str | None
    external_ids: dict


@dataclass(frozen=True)
class SgState:
    groups: dict            # id -> model.SecurityGroup
    group_ids: dict         # name and id -> id
    ports: dict             # name -> PortRecord
    members: dict           # group id -> model.MemberAddresses
    bound: dict = field(default_factory=dict)   # port name -> hosts that have bound it
    logs: tuple = field(default=())   # model.logs.PacketLog of every valid, enabled log


class _Idl(ConnectionWatch, sg_api.SgIdl):
    tracker = None

    def connection_changed(self) -> None:
        if self.tracker is not None:
            self.tracker.on_change()

    def notify(self, event, row, updates=None):
        try:
            if self.tracker is not None:
                self.tracker.changed(row._table.name, row, event)
        except Exception:  # never let the IDL thread die
            LOG.exception("SG database change notification")


def _ref_uuid(row, column):
    try:
        datum = row._data.get(column)
        return datum.as_scalar() if datum is not None else None
    except Exception:
        return None


class _Tracker:
    def __init__(self, on_change):
        self.on_change = on_change
        self.lock = threading.Lock()
        self.all_dirty = True
        self.dirty_groups: set = set()     # group row uuids whose group or rules changed
        self.dirty_ports: set = set()
        self.bindings_changed = True
        self.logs_dirty = True

    def changed(self, table, row, event):
        with self.lock:
            if table == ovsdb_bindings.BINDING:
                self.bindings_changed = True
            elif table == log_rows.LOG:
                self.logs_dirty = True
            elif table == PORT:
                self.dirty_ports.add(row.uuid)
            elif table == GROUP:
                self.dirty_groups.add(row.uuid)
            elif table == RULE:
                gid = _ref_uuid(row, "security_group")
                if gid is None:
                    self.all_dirty = True
                else:
                    self.dirty_groups.add(gid)
        self.on_change()

    def take(self):
        with self.lock:
            out = (self.all_dirty, self.dirty_groups, self.dirty_ports,
                   self.bindings_changed)
            self.all_dirty, self.dirty_groups, self.dirty_ports = False, set(), set()
            self.bindings_changed = False
            return out

    def take_logs(self) -> bool:
        with self.lock:
            dirty, self.logs_dirty = self.logs_dirty, False
            return dirty


# The columns the agent reads: replicating only these keeps its memory down at
# 10,000 ports.  Its writes go through a second, long-lived connection that
# replicates only the rows they touch (see write()).
READ_COLUMNS = {
    PORT: ("id", "name", "mac", "fixed_ips", "allowed_address_pairs",
           "port_security_enabled", "no_security_groups", "security_groups", "network",
           "external_ids"),
    RULE: ("id", "security_group", "direction", "ethertype", "protocol",
                            "port_range_min", "port_range_max", "remote_ip_prefix",
                            "remote_group", "action", "description"),
}


class SgDatabase:
    def __init__(self, remotes: str, on_change, timeout: float = 10.0):
        self.tracker = _Tracker(on_change)

        class Idl(_Idl):
            tracker = self.tracker
        self.remotes, self.timeout = remotes, timeout
        # Reads only (relays are never leaders); the agent never initialises the
        # database: it replicates only some columns, and its role may not write groups.
        self.api = sg_api.connect(remotes, timeout=timeout, idl_class=Idl, columns=READ_COLUMNS,
                                  leader_only=False, initialize=False)
        self._groups: dict = {}         # group uuid -> model.SecurityGroup | None
        self._group_errors: dict = {}   # group uuid -> error text
        self._ports: dict = {}          # port uuid -> PortRecord
        self._members: dict = {}
        self._bound: dict = {}          # port name -> hosts (Port_Binding rows)
        self._state: SgState | None = None
        self.errors: dict = {}          # what -> text (for status)
        self._writer = None             # the writer connection (writer thread only)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.api.close()

    def connected(self) -> bool:
        try:
            return bool(self.api.idl._session.is_connected())
        except Exception:
            return False

    # -- reads ---------------------------------------------------------------------------
    def snapshot(self) -> SgState:
        return self.api.read(self._snapshot)

    def _snapshot(self, t) -> SgState:
        all_dirty, dirty_groups, dirty_ports, bindings_changed = self.tracker.take()
        logs_dirty = self.tracker.take_logs() or all_dirty
        if all_dirty or bindings_changed or self._state is None:
            self._bound = ovsdb_bindings.hosts_by_port(t)
        if all_dirty:
            dirty_groups = set(self._groups) | set(t[GROUP].rows)
            dirty_ports = set(self._ports) | set(t[PORT].rows)
        else:
            # After a reconnect python-ovs refills its tables without notifying
            # the rows that vanished meanwhile: compare the row sets themselves.
            dirty_groups |= (set(self._groups) | set(self._group_errors)) ^ set(t[GROUP].rows)
            dirty_ports |= set(self._ports) ^ set(t[PORT].rows)
        if not dirty_groups and not dirty_ports and self._state is not None:
            if self._state.bound is not self._bound:
                self._state = dataclasses.replace(self._state, bound=self._bound)
            if logs_dirty:
                self._state = dataclasses.replace(self._state, logs=self._read_logs(t))
            return self._state
        groups_changed = bool(dirty_groups)
        if dirty_groups:
            rules_by_group: dict = {}
            for row in t[RULE].rows.values():
                gid = _ref_uuid(row, "security_group")
                if gid in dirty_groups:
                    rules_by_group.setdefault(gid, []).append(row)
            for uuid in dirty_groups:
                row = t[GROUP].rows.get(uuid)
                if row is None:
                    self._groups.pop(uuid, None)
                    self._group_errors.pop(uuid, None)
                    continue
                try:
                    group = convert.group_from_rows(
                        row, sorted(rules_by_group.get(uuid, ()), key=lambda r: r.id))
                    old = self._groups.get(uuid)
                    self._groups[uuid] = old if old == group else group
                    self._group_errors.pop(uuid, None)
                except model.ValidationError as e:
                    # A row the model refuses (another writer's bug): its ports stay closed.
                    self._groups.pop(uuid, None)
                    self._group_errors[uuid] = f"security group {row.name}: {e}"
                    LOG.error("security group %s in the database is invalid: %s", row.name, e)
        affected_members: set = set()
        for uuid in dirty_ports:
            old = self._ports.get(uuid)
            if old is not None and old.port is not None:
                affected_members.update(old.port.effective_groups)
            row = t[PORT].rows.get(uuid)
            if row is None:
                self._ports.pop(uuid, None)
                continue
            try:
                port, error = convert.port_from_row(row), None
                if old is not None and old.port == port:
                    port = old.port
                affected_members.update(port.effective_groups)
            except model.ValidationError as e:
                port, error = None, f"port {row.name}: {e}"
                LOG.error("port %s in the database is invalid: %s", row.name, e)
            self._ports[uuid] = PortRecord(uuid, row.name, port, error,
                                           dict(row.external_ids))
        groups = self._state.groups if self._state is not None and not groups_changed else \
            {g.id: g for g in self._groups.values()}
        group_ids = self._state.group_ids if self._state is not None and not groups_changed \
            else {**{g.id: g.id for g in groups.values()},
                  **{g.name: g.id for g in groups.values() if g.name}}
        if groups_changed:
            affected_members |= set(groups) ^ set(self._members)
        members = dict(self._members)
        fresh = model.group_members((r.port for r in self._ports.values() if r.port is not None),
                                    affected_members) if affected_members else {}
        for gid, addrs in fresh.items():
            old = members.get(gid)
            if old is None or old != addrs:
                members[gid] = model.MemberAddresses.parse(addrs)
        for gid in [g for g in members if g not in groups]:
            del members[gid]
        self._members = members
        self.errors = {f"group:{u}": e for u, e in self._group_errors.items()}
        self.errors.update({f"port:{r.name}": r.error for r in self._ports.values()
                            if r.error})
        logs = self._read_logs(t) if logs_dirty or self._state is None else self._state.logs
        self._state = SgState(groups, group_ids,
                              {r.name: r for r in self._ports.values()}, members, self._bound,
                              logs)
        return self._state

    def _read_logs(self, t) -> tuple:
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

    # -- writes (the writer thread) -------------------------------------------------------
    def write(self, writes: HostWrites) -> HostWritesResult:
        """Bindings and tag-declared rows of this host, in one transaction, over
        the writer connection: it replicates Global, the groups, and only the
        Port rows these writes touch or could clash with (its monitor
        condition is changed to writes.condition() first), never every port."""
        if self._writer is None:
            self._writer = sg_api.connect(self.remotes, tables=(), timeout=self.timeout,
                                          conditions={PORT: [False]}, initialize=False,
                                          leader_only=False)
        api = self._writer
        api.watch(PORT, writes.condition(), timeout=self.timeout)
        try:
            return api.run(api.host_writes(writes))
        except errors.UserError:
            raise
        except Exception as e:   # ovsdbapp's TimeoutException lists every command
            raise errors.DatabaseUnavailable(f"{writes.host}: the writes did not complete: "
                                             f"{type(e).__name__}") from None
