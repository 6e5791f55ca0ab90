"""What every write command shares: look-ups by name or id, the row writers
(the one way a group, rule or port row is filled in), the cross-port check of a
port against the rows a client holds, and the command base.

Every command checks its request against the rows the IDL holds, inside the
transaction, and builds model values so that the model's validation is the
only one.  Every write also verifies and bumps `Global.revision`: two clients
that write at once conflict, and ovsdbapp re-runs the loser's commands on
fresh data (so no update is lost and checks like "address already used"
hold).  What OVSDB itself enforces backs this up: unique ids/names (indexes),
one rule per identity in a group (index), unique (network, MAC) of ports
(index), and strong references (a group that a port or a rule still names
cannot be deleted).
"""
from __future__ import annotations

import uuid

from ovsdbapp.backend.ovs_idl import command as ovsdbapp_command

from sg_ofctl import errors, model
from sg_ofctl.ovsdb import convert
from sg_ofctl.ovsdb.convert import GLOBAL, GROUP, PORT, RULE


def new_id() -> str:
    return str(uuid.uuid4())


def rows(api, table):
    return list(api.tables[table].rows.values())


def _by_name_or_id(api, table, ref: str):
    """The row named `ref`, else the row whose id is `ref` (a name wins), or None."""
    table_rows = rows(api, table)
    named = next((r for r in table_rows if r.name == ref), None)
    return named if named is not None else next((r for r in table_rows if r.id == ref), None)


def group_index(api) -> dict:
    """Every group row by id and by name (a name wins): for many look-ups."""
    table_rows = rows(api, GROUP)
    return {**{r.id: r for r in table_rows}, **{r.name: r for r in table_rows}}


def find_group(api, ref: str, field: str = "security_group", index=None):
    row = index.get(ref) if index is not None else _by_name_or_id(api, GROUP, ref)
    if row is None:
        raise errors.NotFound(f"{field}={ref!r}: no such security group (name or id)")
    return row


def find_port(api, ref: str):
    row = _by_name_or_id(api, PORT, ref)
    if row is None:
        raise errors.NotFound(f"port={ref!r}: no such port (name or id)")
    return row


def find_rule(api, rule_id: str):
    for row in rows(api, RULE):
        if row.id == rule_id:
            return row
    raise errors.NotFound(f"rule={rule_id!r}: no such security group rule")


def row_by_id(api, table, row_id):
    return next((r for r in rows(api, table) if r.id == row_id), None)


def bump_revision(api, txn) -> None:
    """Serialise writers: verify Global.revision and increment it."""
    glob = next(iter(api.tables[GLOBAL].rows.values()), None)
    if glob is None:
        raise errors.UserError("the database is not initialised (no Global row)")
    glob.verify("revision")
    glob.revision = glob.revision + 1


def touch(row) -> None:
    row.revision_number = row.revision_number + 1
    row.updated_at = convert.now()


# ---- row writers ---------------------------------------------------------------------
def insert_rule(txn, api, rule: model.Rule, group_row, remote_row):
    row = txn.insert(api.tables[RULE])
    for column, value in convert.rule_columns(rule).items():
        setattr(row, column, value)
    row.security_group = group_row
    row.remote_group = [remote_row] if remote_row is not None else []
    row.created_at = convert.now()
    return row


def insert_group(txn, api, gid, name, description, stateful, external_ids):
    row = txn.insert(api.tables[GROUP])
    stamp = convert.now()
    row.id, row.name, row.description, row.stateful = gid, name, description, stateful
    row.revision_number, row.created_at, row.updated_at = 1, stamp, stamp
    row.external_ids = dict(external_ids)
    return row


def insert_port(txn, api, port: model.Port, group_rows, external_ids, host: str = ""):
    """The one way a Port row is created (CLI, apply, agents' tag-declared rows)."""
    row = txn.insert(api.tables[PORT])
    write_port(row, port, group_rows, new=True)
    stamp = convert.now()
    row.revision_number, row.created_at, row.updated_at = 1, stamp, stamp
    row.external_ids = dict(external_ids or {})
    if host:
        from sg_ofctl.ovsdb import bindings
        bindings.insert(txn, api, port.name, host)
    return row


def write_port(row, port: model.Port, group_rows, new: bool = False) -> None:
    """Set the columns that differ (all of them on a new row)."""
    for column, value in convert.port_columns(port).items():
        if new or getattr(row, column) != value:
            setattr(row, column, value)
    if new or _group_uuids(row) != sorted(g.uuid for g in group_rows):
        row.security_groups = list(group_rows)


def _group_uuids(row) -> list:
    """The uuids a Port row names, also those of groups this client does not
    replicate (an agent's writer holds only the groups its writes name)."""
    datum = getattr(row, "_data", {}).get("security_groups") \
        if "security_groups" not in getattr(row, "_changes", {}) else None
    if datum is None:
        return sorted(g.uuid for g in row.security_groups)
    return sorted(k.value for k in datum.values)


# ---- the cross-port rules against the rows held --------------------------------------
class HeldPorts:
    """The Port rows a client holds, read once and indexed by what can clash
    (name; network + MAC, pair MAC or fixed IP), plus the ports written so far
    in this transaction.  The stored texts are normalised (the model wrote
    them), so they are compared as they are."""

    def __init__(self, api):
        self.by_name: dict = {}
        self._claims: dict = {}       # (network, MAC or IP) -> [row]
        self._written: dict = {}      # (network, MAC or IP) -> [model.Port]
        self._stale: set = set()      # rows rewritten in this transaction
        for row in rows(api, PORT):
            self.by_name[row.name] = row
            network = row.network
            pair_macs = [t.rpartition(",")[2] for t in row.allowed_address_pairs if "," in t]
            for value in {row.mac, *row.fixed_ips, *pair_macs}:
                self._claims.setdefault((network, value), []).append(row)
        groups = rows(api, GROUP)
        self.stateful = {g.id: g.stateful for g in groups}
        self.stateful.setdefault(model.DEFAULT_GROUP, True)
        self.group_names = {g.id: g.name for g in groups}

    def near(self, port: model.Port, exclude_uuids) -> list[model.Port]:
        """The held and written ports that could clash with `port`."""
        keys = {(port.network, v) for v in (port.mac, *port.fixed_ips, *(
            p.mac_address for p in port.allowed_address_pairs if p.mac_address))}
        found, out = set(), []
        for key in keys:
            for row in self._claims.get(key, ()):
                if row.uuid in found or row.uuid in exclude_uuids or row.uuid in self._stale:
                    continue
                found.add(row.uuid)
                try:
                    out.append(convert.port_from_row(row))
                except model.ValidationError:
                    continue    # another writer's bad row: the agents refuse it anyway
            for other in self._written.get(key, ()):
                if other.id not in found:
                    found.add(other.id)
                    out.append(other)
        return out

    def add(self, port: model.Port, replaces=None) -> None:
        """`port` is written in this transaction (over the row `replaces`)."""
        if replaces is not None:
            self._stale.add(replaces)
        self.by_name[port.name] = None
        for value in {port.mac, *port.fixed_ips, *(
                p.mac_address for p in port.allowed_address_pairs if p.mac_address)}:
            self._written.setdefault((port.network, value), []).append(port)


def check_against_others(api, port: model.Port, exclude_uuids=(), held=None) -> None:
    """`port` (about to be written) against the other Port rows this client
    holds (`held`, read once per transaction) and the ports written before it
    in the same transaction: its name is unique, then model.port_problems
    decides (groups exist, no stateful and stateless mix, MAC and fixed IPs
    unique per network).  A clash with what the database holds is an
    errors.Conflict."""
    held = held if held is not None else HeldPorts(api)
    same_name = held.by_name.get(port.name, False)
    if same_name is not False and (same_name is None or same_name.uuid not in exclude_uuids):
        raise errors.Conflict(f"name={port.name!r}: a port with this name exists"
                              + (f" (id {same_name.id})" if same_name is not None else ""))
    for subject, error in model.port_problems([port, *held.near(port, exclude_uuids)],
                                              held.stateful, held.group_names):
        if subject is port:
            if isinstance(error, model.AddressClash):
                raise errors.Conflict(str(error))
            raise error


class Command(ovsdbapp_command.BaseCommand):
    """A write serialised with every other (Global.revision); subclasses do()."""

    def run_idl(self, txn):
        bump_revision(self.api, txn)
        self.result = self.do(txn)

    def do(self, txn):
        raise NotImplementedError
