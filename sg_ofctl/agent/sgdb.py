"""The security-group database as the agent sees it: an ovsdbapp monitor that
holds only what this host needs (conditional monitoring, sgconditions.py),
converted to model values incrementally (sgreplica.py).

OVSDB pushes every change of a monitored row; the IDL thread marks the
changed rows dirty and calls `on_change()`.  `snapshot(local_names)` (worker
thread) records the changed rows' references, recomputes the monitor
conditions from them and the local iface-ids, and asks the server for the
difference (`monitor_cond_change`).  It converts and publishes a new state
only when the server has acknowledged conditions that cover every row the
current rows require (the fixpoint: a local port's groups, their rules, the
members of the remote groups they name).  Until then it returns the last
published state, with the local ports it does not cover yet as `pending`
(fail-closed, "waiting"), so no view ever lacks a row it needs: a deny rule
naming a remote group is never enforced before that group's members are here.

Members of a group = the addresses (fixed IPs + allowed address pairs) of
every port in it, bound to a host or not (Neutron's rule).

`write()` (the writer thread, agent/writer.py) sends the agent's writes for its
host over a second, long-lived connection that replicates only the rows they
touch (ovsdb/host_writes.py)."""
from __future__ import annotations

import logging
import threading
import time

import sg_ofctl.ovsdb  # noqa: F401  (before ovsdbapp: python-ovs without eventlet)
from sg_ofctl import errors
from sg_ofctl.agent import sgconditions, tags
from sg_ofctl.agent.idlwatch import ConnectionWatch
from sg_ofctl.agent.sgreplica import Dirty, PortRecord, Replica, SgState
from sg_ofctl.ovsdb import api as sg_api
from sg_ofctl.ovsdb import bindings as ovsdb_bindings
from sg_ofctl.ovsdb import convert, logs as log_rows
from sg_ofctl.ovsdb.host_writes import HostWrites, HostWritesResult

__all__ = ["PortRecord", "SgDatabase", "SgState"]
LOG = logging.getLogger(__name__)
GROUP, RULE, PORT = convert.GROUP, convert.RULE, convert.PORT


def _local_keys(local) -> frozenset:
    """(iface-id, its sg-ofctl-groups tag) of each local port: a port is
    covered once both its row and the groups its tags name are here."""
    if not hasattr(local, "present_ids"):
        return frozenset((name, "") for name in local)
    keys = {(name, "") for name in local.present_ids}
    keys.update((i.iface_id, i.external_ids[tags.GROUPS_KEY]) for i in local.interfaces
                if i.iface_id and tags.GROUPS_KEY in i.external_ids)
    return frozenset(keys)


class _Idl(ConnectionWatch, sg_api.SgIdl):
    tracker = None
    members = False      # the connection of the member rows (sgconditions.MEMBERS)

    def connection_changed(self) -> None:
        if self.tracker is not None:
            self.tracker.progressed()

    def run(self):
        before = (self.cond_seqno, self.state)
        changed = super().run()
        if (self.cond_seqno, self.state) != before and self.tracker is not None:
            self.tracker.progressed()      # a condition change acknowledged, a reply
        return changed

    def notify(self, event, row, updates=None):
        try:
            if self.tracker is not None:
                self.tracker.changed(sgconditions.MEMBERS if self.members
                                     else row._table.name, row.uuid)
        except Exception:  # never let the IDL thread die
            LOG.exception("SG database change notification")


class _Tracker:
    def __init__(self, on_change):
        self.on_change = on_change
        self.lock = threading.Lock()
        self.dirty = Dirty()
        self.progress = threading.Event()

    def changed(self, table, uuid):
        with self.lock:
            d = self.dirty
            if table == ovsdb_bindings.BINDING:
                d.bindings = True
            elif table == log_rows.LOG:
                d.logs = True
            elif table == PORT:
                d.ports.add(uuid)
            elif table == sgconditions.MEMBERS:
                d.members.add(uuid)
            elif table == GROUP:
                d.groups.add(uuid)
            elif table == RULE:
                d.rules.add(uuid)
        self.progressed()

    def progressed(self):
        self.progress.set()
        self.on_change()

    def take(self) -> Dirty:
        with self.lock:
            out, self.dirty = self.dirty, Dirty(False, bindings=False, logs=False)
            return out


# The columns the agent reads: replicating only these keeps its memory down.
# (A change of another column, such as a group's revision_number bumped by a
# rule added to it, is not even sent.)
READ_COLUMNS = {
    GROUP: ("id", "name", "description", "stateful"),
    PORT: ("id", "name", "mac", "fixed_ips", "allowed_address_pairs",
           "port_security_enabled", "no_security_groups", "security_groups", "network",
           "external_ids"),
    RULE: ("id", "security_group", "direction", "ethertype", "protocol",
                            "port_range_min", "port_range_max", "remote_ip_prefix",
                            "remote_group", "action", "description"),
}


class SgDatabase:
    def __init__(self, remotes: str, on_change, timeout: float = 10.0,
                 host: str | None = None):
        """`host`: monitor only what this host needs (snapshot() is then given
        the local iface-ids); None: every row (sg-ofctl trace, explain)."""
        self.tracker = _Tracker(on_change)

        class Idl(_Idl):
            tracker = self.tracker

        class MemberIdl(Idl):
            members = True
        self.remotes, self.timeout, self.host = remotes, timeout, host
        self._wanted = sgconditions.initial(host) if host is not None else \
            {sgconditions.GLOBAL: sgconditions.NOTHING}
        self._target = self._wanted      # what the rows held require
        main = {k: v for k, v in self._wanted.items() if k != sgconditions.MEMBERS}
        # Reads only (relays are never leaders); the agent never initialises the
        # database: it replicates only some columns, and its role may not write groups.
        self.api = sg_api.connect(remotes, timeout=timeout, idl_class=Idl, columns=READ_COLUMNS,
                                  leader_only=False, initialize=False, conditions=main)
        self.member_api = None
        # (condition key -> IDL table) of each connection
        self._links = [(self.api, {k: k for k in main})]
        if host is not None:
            self.member_api = sg_api.connect(
                remotes, tables=(), timeout=timeout, idl_class=MemberIdl,
                columns=READ_COLUMNS, leader_only=False, initialize=False,
                conditions={**{t: sgconditions.NOTHING for t in sg_api.ALL_TABLES},
                            PORT: self._wanted[sgconditions.MEMBERS]})
            self._links.append((self.member_api, {sgconditions.MEMBERS: PORT}))
        self.replica = Replica()
        self._keys: frozenset | None = None      # _local_keys() of the last conditions
        self._covered: frozenset = frozenset()   # ... of the last published state
        self._logs_dirty = True
        self._published = False
        self._writer = None             # the writer connection (writer thread only)

    @property
    def errors(self) -> dict:
        return self.replica.errors

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.member_api is not None:
            self.member_api.close()
        self.api.close()

    def connected(self) -> bool:
        """Both connections (the member rows' one too) are up."""
        try:
            return all(api.idl._session.is_connected() for api, _ in self._links)
        except Exception:
            return False

    # -- reads ---------------------------------------------------------------------------
    def snapshot(self, local=()) -> SgState:
        """The newest complete state for `local` (a local_ovs.LocalState, or
        iface-ids).  Before the first one, wait for it (at most `timeout`
        seconds, else DatabaseUnavailable: the worker retries); after, never
        wait: a state still on its way leaves its new local ports `pending`."""
        keys = _local_keys(local)
        deadline = time.monotonic() + self.timeout
        while True:
            self.tracker.progress.clear()
            state, complete = self.api.read(lambda t: self._read_members(
                lambda members: self._step(t, members, keys)))
            if complete or self._published:
                return state
            left = deadline - time.monotonic()
            if left <= 0:
                raise errors.DatabaseUnavailable(
                    f"db={self.remotes!r}: the rows this host needs did not arrive within "
                    f"{self.timeout:g} s")
            self.tracker.progress.wait(min(left, 0.5))

    def prefetch(self, local) -> None:
        """Start the fixpoint for `local` now, in a thread of its own, while the
        agent starts up (os-ken, the switch's connection): its first round
        then finds the rows here."""
        def run():
            try:
                self.snapshot(local)
            except Exception as e:     # the worker's first round tells it again
                LOG.info("prefetching the rows of this host: %s", e)
        threading.Thread(target=run, name="sg-ofctl-sgdb-prefetch", daemon=True).start()

    def _read_members(self, function):
        """function(the member connection's tables, or None) under its lock."""
        return self.member_api.read(function) if self.member_api is not None else \
            function(None)

    def _step(self, t, members, keys: frozenset):
        dirty = self.tracker.take()
        self._logs_dirty |= dirty.logs or dirty.all
        self.replica.absorb(t, dirty, members)
        names = frozenset(name for name, _ in keys)
        if self.host is not None:
            if keys != self._keys or dirty.all or dirty.ports or dirty.rules or \
                    dirty.groups or dirty.bindings:
                tag_groups = frozenset(g for _, text in keys for g in tags.split(text))
                self._target = sgconditions.conditions(
                    self.replica.held(self.host, names, tag_groups))
                self._keys = keys
            self._request()
            if not self._acked():
                return self.replica.last(frozenset(n for n, _ in keys - self._covered)), \
                    False
        state = self.replica.publish(t, self._logs_dirty, names if self.host else None)
        self._logs_dirty, self._covered, self._published = False, keys, True
        return state, True

    def _request(self) -> None:
        """Ask each connection for its part of the target conditions (under the
        connection locks; the IDL threads send them), unless a change is still
        in flight there: python-ovs would spin until its reply (its wait()
        wakes at once while a change waits), and the reply wakes this worker."""
        target = self._target
        for api, keys in self._links:
            idl = api.idl
            if all(target[k] == self._wanted.get(k) for k in keys) or \
                    any(t.condition_state.requested is not None for t in idl.tables.values()):
                continue
            for key, table in keys.items():
                if target[key] != self._wanted.get(key):
                    idl.cond_change(table, target[key])
                    self._wanted = {**self._wanted, key: target[key]}
            # Wake the IDL thread to send it (api.WakeableQueue consumes a bare
            # wake-up; no placeholder transaction takes the writers' queue slot).
            api.ovsdb_connection.txns.alert_notify()

    def _acked(self) -> bool:
        """Each server acknowledged exactly the target conditions, and sent their rows."""
        if self._target != self._wanted:
            return False
        for api, keys in self._links:
            idl = api.idl
            if idl.state != idl.IDL_S_MONITORING:
                return False
            for key, table in keys.items():
                cs = idl.tables[table].condition_state
                if cs.new is not None or cs.requested is not None or \
                        cs.acked != self._wanted[key]:
                    return False
        return True

    # -- writes (the writer thread) -------------------------------------------------------
    def write(self, writes: HostWrites) -> HostWritesResult:
        """Bindings and tag-declared rows of this host, in one transaction, over
        the writer connection: it replicates only the rows these writes touch
        or could clash with (writes.conditions()), never every port."""
        if self._writer is None:
            self._writer = sg_api.connect(
                self.remotes, tables=(), timeout=self.timeout, initialize=False,
                leader_only=False, conditions=HostWrites(writes.host).conditions())
        api = self._writer
        api.watch_tables(writes.conditions(), timeout=self.timeout)
        try:
            return api.run(api.host_writes(writes))
        except errors.UserError:
            raise
        except Exception as e:   # ovsdbapp's TimeoutException lists every command
            raise errors.DatabaseUnavailable(f"{writes.host}: the writes did not complete: "
                                             f"{type(e).__name__}") from None
