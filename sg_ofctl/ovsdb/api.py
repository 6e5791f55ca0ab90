"""The ovsdbapp API of the security-group database.

`connect(remotes, tables=...)` returns an `SgApi` whose IDL replicates only the
tables the caller needs (the others are registered with the monitor condition
`false`, so rows can still be inserted but none are fetched).  Every write is an
ovsdbapp command run in one OVSDB transaction; see `commands.py`.

ovsdbapp's Backend keeps its connection in a class attribute; SgApi keeps it
per instance instead, so one process (a test, a REST server) can hold
connections to several databases.
"""
from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import re
import select
import threading
import time

from ovs import poller as ovs_poller
from ovs.db import idl as ovs_idl
from ovsdbapp import api as ovsdbapp_api
from ovsdbapp.backend import ovs_idl as ovsdbapp_backend
from ovsdbapp.backend.ovs_idl import connection as ovsdbapp_connection

from sg_ofctl import errors
from sg_ofctl.ovsdb import apply as apply_mod
from sg_ofctl.ovsdb import (bindings, commands, convert, fastjson, host_writes, logs,
                            port_commands, tls, traffic)
from sg_ofctl.ovsdb.server import SCHEMA_NAME, SCHEMA_PATH

LOG = logging.getLogger(__name__)
ALL_TABLES = (convert.GLOBAL, convert.GROUP, convert.RULE, convert.PORT, bindings.BINDING,
              logs.LOG)
# Failover of a 3-member cluster stalls a write ~2 s (docs/DATABASE.md): stay well above.
DEFAULT_TXN_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
# Reconnect backoff (ms): python-ovs doubles 1 s up to 8 s while no remote suits
# (a leader-only client finds only followers during an election), which made a
# failover cost 8-16 s.  Each remote is tried at once after a drop, then one
# every 250 ms (python-ovs doubles only below half the maximum): the first
# write lands within ~1.5 s of the new leader's election (docs/DATABASE.md).
RECONNECT_MIN_BACKOFF_MS = 250
RECONNECT_MAX_BACKOFF_MS = 500


class SgIdl(ovsdbapp_connection.OvsdbIdl):
    """The IDL of the security-group database.  Subclass it to watch changes
    (override notify(event, row, updates), or mix in ovsdbapp's
    RowEventHandler) and pass the class to connect(idl_class=...)."""

    full_downloads = 0      # replies that replaced the whole replica (see below)
    bytes_before_thread = 0     # received by the caller of connect() (traffic.py)

    def cooperative_yield(self):
        """ovsdbapp sleeps here after every row (for eventlet); we need not."""

    def _Idl__clear(self):
        """python-ovs empties its replica before a full snapshot: the first one,
        and after a reconnect whose `monitor_cond_since` the server could not
        answer from its transaction history.  Counted (bench/fleet.py, tests)."""
        self.full_downloads += 1
        return ovs_idl.Idl._Idl__clear(self)


class WakeableQueue(ovsdbapp_connection.TransactionQueue):
    """ovsdbapp's queue of transactions, whose alert (a pipe the connection
    thread polls) may also be rung without a transaction: `alert_notify()`
    wakes the thread to send a monitor condition change.  ovsdbapp consumes
    the alert only when it takes a transaction, so a bare ring left the pipe
    readable and the thread spinning; here each take consumes one waiting
    alert, never blocking (one consumer: the connection thread)."""

    def get_nowait(self, *args, **kwargs):
        try:
            item = queue.Queue.get_nowait(self)
        except queue.Empty:
            item = None
        if select.select([self.alert_fileno], [], [], 0)[0]:
            self._wait_queue.alert_notification_consume()
        if self.qsize():
            # The byte just consumed may have been a new transaction's (put
            # between the get and the select): never leave one without a wake-up.
            self.alert_notify()
        return item


class SgApi(ovsdbapp_backend.Backend, ovsdbapp_api.API):
    schema = SCHEMA_NAME
    lookup_table = {
        convert.GROUP: (convert.GROUP, "name", None),
        convert.PORT: (convert.PORT, "name", None),
        convert.RULE: (convert.RULE, "id", None),
    }

    def __init__(self, connection, tables):
        self.monitored = frozenset(tables)
        super().__init__(connection, start=True, auto_index=False)

    @property
    def ovsdb_connection(self):
        return self._connection

    @ovsdb_connection.setter
    def ovsdb_connection(self, connection):
        self._connection = connection

    def close(self):
        """Stop the connection thread, never blocking on a full queue of
        transactions (ovsdbapp's stop() puts its sentinel with a blocking put)."""
        conn = self._connection
        if not conn.is_running:
            return
        conn.is_running = False
        with contextlib.suppress(queue.Full):
            conn.txns.put_nowait(None)
        conn.txns.alert_notify()
        if conn.thread is not None:
            conn.thread.join(5)

    def received_bytes(self) -> int:
        """Bytes this connection's thread received (after traffic.install())."""
        thread = self._connection.thread
        return self.idl.bytes_before_thread + traffic.received(
            thread.ident if thread is not None else None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- reads (a consistent view: the IDL thread does not run meanwhile) ----
    def read(self, function):
        """Call function(tables) under the connection lock and return its result."""
        with self._connection.lock:
            return function(self.tables)

    def watch(self, table: str, condition: list, timeout: float = 10.0) -> None:
        """Replicate the rows of `table` that match `condition` (an OVSDB monitor
        condition; its clauses are ORed) and wait until they are here."""
        self.watch_tables({table: condition}, timeout)

    def watch_tables(self, conditions: dict, timeout: float = 10.0) -> None:
        """watch() for several tables ({table: condition}) at once: one round trip."""
        conditions = {t: c or [False] for t, c in conditions.items()}
        with self._connection.lock:
            for table, condition in conditions.items():
                self.idl.cond_change(table, condition)
        # An empty transaction wakes the connection thread, which sends the change.
        self.create_transaction(check_error=True).commit()
        deadline = time.monotonic() + timeout

        def pending():
            with self._connection.lock:
                return any(s.new is not None or s.requested is not None or s.acked != c
                           for s, c in ((self.idl.tables[t].condition_state, c)
                                        for t, c in conditions.items()))
        while pending():
            if time.monotonic() > deadline:
                raise errors.DatabaseUnavailable(
                    f"the database did not answer a monitor change within {timeout:g} s")
            time.sleep(0.002)

    def state(self) -> convert.DbState:
        """All groups, rules and ports as model values (needs all tables)."""
        return self.read(convert.state_from_tables)

    # ---- writes: each returns an ovsdbapp command -------------------------
    def run(self, command):
        """Execute one command in its own transaction; return its result."""
        try:
            with self.create_transaction(check_error=True, log_errors=False) as txn:
                txn.add(command)
        except RuntimeError as e:
            raise translate_error(e) from None
        return command.result

    def create_transaction(self, check_error=True, log_errors=False, **kwargs):
        return super().create_transaction(check_error=check_error, log_errors=log_errors)

    def group_create(self, name, description="", stateful=True, external_ids=None):
        return commands.GroupCreate(self, name, description, stateful, external_ids or {})

    def group_set(self, ref, **changes):
        return commands.GroupSet(self, ref, changes)

    def group_delete(self, refs):
        return commands.GroupDelete(self, list(refs))

    def rule_create(self, group_ref, fields, rule_id=None):
        return commands.RuleCreate(self, group_ref, dict(fields), rule_id)

    def rule_delete(self, ids):
        return commands.RuleDelete(self, list(ids))

    def port_create(self, fields):
        return port_commands.PortCreate(self, dict(fields))

    def port_set(self, ref, changes):
        return port_commands.PortSet(self, ref, dict(changes))

    def port_delete(self, refs):
        return port_commands.PortDelete(self, list(refs))

    def port_bind(self, ref, host):
        """The port's binding: exactly this host ("" = none); agents write their
        bindings with host_writes()."""
        return port_commands.PortBind(self, ref, host)

    def host_writes(self, writes: host_writes.HostWrites):
        """For agents: bind/unbind and the tag-declared rows of one host, at once
        (the result is a host_writes.HostWritesResult)."""
        return host_writes.HostPortWrites(self, writes)

    def log_create(self, fields):
        return logs.LogCreate(self, dict(fields))

    def log_set(self, ref, **changes):
        return logs.LogSet(self, ref, changes)

    def log_delete(self, refs):
        return logs.LogDelete(self, list(refs))

    def apply(self, desired, dry_run=False):
        return apply_mod.ApplyCommand(self, desired, dry_run)


_INDEX = re.compile(r'multiple rows in "(\w+)" table to have identical values '
                    r'\((.*?)\) for index on columns? (.*?)\.  ')
_RBAC = re.compile(r'(RBAC rules for client "[^"]*" role "[^"]*" prohibit [^.]*)')
_REFERENCED = re.compile(r'cannot delete (\w+) row \S+ because of (\d+) remaining')


def translate_error(exc: RuntimeError) -> Exception:
    """OVSDB constraint errors (what the schema enforces) -> one-line user errors."""
    text = str(exc).replace('\\"', '"')
    match = _INDEX.search(text)
    if match:
        table, values, columns = match.groups()
        if table == convert.RULE:
            return errors.Conflict("rule: the security group already has an identical rule")
        columns = columns.replace('"', "").replace(" and ", ",")
        return errors.Conflict(f"{columns}={values!r}: already used by another "
                               f"{table.replace('_', ' ').lower()}")
    match = _RBAC.search(text)
    if match:
        return errors.PermissionDenied(f"permission denied: {match.group(1)}")
    match = _REFERENCED.search(text)
    if match:
        return errors.Conflict(f"{match.group(1)}: still used by {match.group(2)} "
                               "other row(s)")
    if "timed out" in text:
        return errors.DatabaseUnavailable(f"the database did not complete the request "
                                          f"in time ({text})")
    return exc


def parse_remotes(remotes: str) -> list[str]:
    out = [r.strip() for r in remotes.split(",") if r.strip()]
    if not out:
        raise errors.UserError(f"db={remotes!r}: no database remote given")
    for remote in out:
        tls.check_client_remote(remote)
    return out


def connect(remotes: str, tables=ALL_TABLES, timeout: float = DEFAULT_CONNECT_TIMEOUT,
            txn_timeout: float = DEFAULT_TXN_TIMEOUT, initialize: bool = True,
            conditions=None, idl_class=None, columns=None,
            leader_only: bool | None = None) -> SgApi:
    """Connect to the database at `remotes` (comma-separated), replicating only
    `tables` (Global and Security_Group always, unless `conditions` narrows
    them), plus the rows that match `conditions` ({table: OVSDB condition, its
    clauses ORed}); wait at most `timeout` seconds for the initial contents.
    `SgApi.monitored` names the tables replicated whole.  `columns`
    ({table: [column, ...]}) replicates only those columns of a table (a reader
    that never writes the others saves memory: the agent).  `leader_only`
    (default: with several remotes) talks only to the cluster leader; agents,
    which may talk to relays (never leaders), pass False."""
    remote_list = parse_remotes(remotes)
    fastjson.install()
    received_before = traffic.received(threading.get_ident())
    helper = ovs_idl.SchemaHelper(schema_json=_schema_json())
    if columns:
        for table in ALL_TABLES:
            if table in columns:
                helper.register_columns(table, list(columns[table]))
            else:
                helper.register_table(table)
    else:
        helper.register_all()
    if leader_only is None:
        leader_only = len(remote_list) > 1
    if not leader_only:
        # Any member or relay will do: spread the clients over them (python-ovs
        # tries the remotes in order; ovsdb-server's own clients shuffle them too).
        random.shuffle(remote_list)
    idl = (idl_class or SgIdl)(",".join(remote_list), helper, leader_only=leader_only)
    set_reconnect_backoff(idl)
    conditions = dict(conditions or {})
    wanted = (set(tables) | {convert.GLOBAL, convert.GROUP}) - set(conditions)
    if convert.PORT in set(tables) | set(conditions):
        wanted.add(bindings.BINDING)      # small; ports are shown with their hosts
    for table in ALL_TABLES:
        if table in conditions:
            idl.cond_change(table, conditions[table])
        elif table not in wanted:
            idl.cond_change(table, [False])
    _wait_connected(idl, remotes, timeout)
    conn = ovsdbapp_connection.Connection(idl, txn_timeout)
    conn.txns = WakeableQueue(1)
    api = SgApi(conn, wanted)
    idl.bytes_before_thread = traffic.received(threading.get_ident()) - received_before
    if initialize:
        try:
            commands.ensure_initialized(api)
        except Exception:
            api.close()
            raise
    return api


def set_reconnect_backoff(idl, min_ms: int = RECONNECT_MIN_BACKOFF_MS,
                          max_ms: int = RECONNECT_MAX_BACKOFF_MS) -> None:
    """Shorten the IDL session's reconnect backoff (python-ovs's set_backoff()
    refuses less than 1 s, so the FSM's fields are set directly)."""
    fsm = idl._session.reconnect
    fsm.min_backoff, fsm.max_backoff = min_ms, max(max_ms, min_ms)
    fsm.backoff = min(fsm.backoff, fsm.max_backoff)


def _schema_json() -> dict:
    """The schema file, parsed by the standard library (python-ovs's parser is slow)."""
    with open(SCHEMA_PATH) as f:
        return json.load(f)


def _wait_connected(idl, remotes: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not idl.has_ever_connected():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            idl.close()
            raise errors.DatabaseUnavailable(
                f"db={remotes!r}: the security-group database did not answer within "
                f"{timeout:g} s (is it running? start one with `sg-ofctl db start`)")
        idl.run()
        poller = ovs_poller.Poller()
        idl.wait(poller)
        poller.timer_wait(int(min(remaining, 0.01) * 1000) + 1)
        poller.block()
    idl.run()
