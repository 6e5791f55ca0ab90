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


def find_group(api, ref: str, field: str = "security_group"):
    row = _by_name_or_id(api, GROUP, ref)
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
    row.host, row.revision_number, row.created_at, row.updated_at = host, 1, stamp, stamp
    row.external_ids = dict(external_ids or {})
    return row


def write_port(row, port: model.Port, group_rows, new: bool = False) -> None:
    """Set the columns that differ (all of them on a new row)."""
    for column, value in convert.port_columns(port).items():
        if new or getattr(row, column) != value:
            setattr(row, column, value)
    if new or sorted(g.uuid for g in row.security_groups) != \
            sorted(g.uuid for g in group_rows):
        row.security_groups = list(group_rows)


# ---- the cross-port rules against the rows held --------------------------------------
def check_against_others(api, port: model.Port, exclude_uuids=(), also=()) -> None:
    """`port` (about to be written) against the other Port rows this client
    holds and the ports in `also` (written in the same transaction): its name
    is unique, then model.port_problems decides (groups exist, no stateful and
    stateless mix, MAC and fixed IPs unique per network).  A clash with what
    the database holds is an errors.Conflict."""
    others = [r for r in rows(api, PORT) if r.uuid not in exclude_uuids]
    for row in others:
        if row.name == port.name:
            raise errors.Conflict(f"name={port.name!r}: a port with this name exists "
                                  f"(id {row.id})")
    groups = rows(api, GROUP)
    stateful = {g.id: g.stateful for g in groups}
    stateful.setdefault(model.DEFAULT_GROUP, True)
    macs = {port.mac} | {p.mac_address for p in port.allowed_address_pairs if p.mac_address}
    near = []
    for row in others:
        if row.network == port.network and _may_clash(row, macs, port.fixed_ips):
            try:
                near.append(convert.port_from_row(row))
            except model.ValidationError:
                continue    # another writer's bad row: the agents refuse it anyway
    near += [p for p in also if p.network == port.network
             and _may_clash_port(p, macs, port.fixed_ips)]
    for subject, error in model.port_problems([port, *near], stateful,
                                              {g.id: g.name for g in groups}):
        if subject is port:
            if isinstance(error, model.AddressClash):
                raise errors.Conflict(str(error))
            raise error


def _may_clash(row, macs, ips) -> bool:
    """A cheap superset of the rows that can clash with these MACs and IPs (the
    stored texts are normalised: the model wrote them)."""
    if row.mac in macs or not set(row.fixed_ips).isdisjoint(ips):
        return True
    return any(text.rpartition(",")[2] in macs for text in row.allowed_address_pairs
               if "," in text)


def _may_clash_port(port: model.Port, macs, ips) -> bool:
    return port.mac in macs or not set(port.fixed_ips).isdisjoint(ips) or any(
        p.mac_address in macs for p in port.allowed_address_pairs)


class Command(ovsdbapp_command.BaseCommand):
    """A write serialised with every other (Global.revision); subclasses do()."""

    def run_idl(self, txn):
        bump_revision(self.api, txn)
        self.result = self.do(txn)

    def do(self, txn):
        raise NotImplementedError
