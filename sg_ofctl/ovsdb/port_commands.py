"""Write commands on ports (see commands.py for how every write is serialised)."""
from __future__ import annotations

import dataclasses

from sg_ofctl import errors, model, vocabulary
from sg_ofctl.ovsdb import convert
from sg_ofctl.ovsdb.commands import (Command, find_group, find_port, new_id, row_by_id,
                                     rows, touch)
from sg_ofctl.ovsdb.convert import GROUP, PORT


def _pairs(values):
    return tuple(v if isinstance(v, model.AddressPair)
                 else vocabulary.pair_from_text(v, "allowed_address") for v in values)


def check_against_others(api, port: model.Port, group_rows, exclude_uuid=None) -> None:
    """Name, MAC and fixed IPs unique (per network); no stateful/stateless mix."""
    kinds = {g.stateful for g in group_rows}
    if not group_rows and port.port_security_enabled:
        kinds = {next((g.stateful for g in rows(api, GROUP) if g.id == model.DEFAULT_GROUP),
                      True)}
    if len(kinds) > 1:
        raise model.ValidationError("security_groups", sorted(g.name for g in group_rows),
                                    f"port {port.name!r} mixes stateful and stateless groups")
    for row in rows(api, PORT):
        if row.uuid == exclude_uuid:
            continue
        if row.name == port.name:
            raise errors.Conflict(f"name={port.name!r}: a port with this name exists "
                                  f"(id {row.id})")
        if row.network != port.network:
            continue
        if row.mac == port.mac:
            raise errors.Conflict(f"mac_address={port.mac!r}: already used by port "
                                  f"{row.name!r} on network {port.network}")
        shared = sorted(set(row.fixed_ips) & set(port.fixed_ips))
        if shared:
            raise errors.Conflict(f"fixed_ips={shared[0]!r}: already used by port "
                                  f"{row.name!r} on network {port.network}")


def write_port(row, port: model.Port, group_rows, new: bool = False) -> None:
    for column, value in convert.port_columns(port).items():
        if new or getattr(row, column) != value:
            setattr(row, column, value)
    if new or sorted(g.uuid for g in row.security_groups) != \
            sorted(g.uuid for g in group_rows):
        row.security_groups = list(group_rows)


class PortCreate(Command):
    """fields: name, mac, ips, groups, allowed_addresses, port_security, network,
    external_ids."""

    def __init__(self, api, fields):
        super().__init__(api)
        self.pid = new_id()
        self.fields = fields

    def do(self, txn):
        if row_by_id(self.api, PORT, self.pid) is not None:
            return self.pid
        f = self.fields
        name = f.get("name")
        if not isinstance(name, str) or not name.strip():
            raise model.ValidationError("name", name, "must be a non-empty string")
        group_rows = list({g.uuid: g for g in (find_group(self.api, ref, "security_group")
                                               for ref in f.get("groups") or ())}.values())
        port = model.Port(id=self.pid, name=name, mac=f.get("mac"),
                          fixed_ips=tuple(f.get("ips") or ()),
                          allowed_address_pairs=_pairs(f.get("allowed_addresses") or ()),
                          port_security_enabled=f.get("port_security", True),
                          security_groups=tuple(g.id for g in group_rows),
                          network=f.get("network", 0) if f.get("network") is not None else 0)
        check_against_others(self.api, port, group_rows)
        row = txn.insert(self.api.tables[PORT])
        write_port(row, port, group_rows, new=True)
        stamp = convert.now()
        row.host, row.revision_number, row.created_at, row.updated_at = "", 1, stamp, stamp
        row.external_ids = dict(f.get("external_ids") or {})
        return self.pid


class PortSet(Command):
    """changes: name, mac, network, port_security, ips, no_ips, groups, no_groups,
    allowed_addresses, no_allowed_addresses, external_ids (merged)."""

    def __init__(self, api, ref, changes):
        super().__init__(api)
        self.ref, self.changes = ref, changes

    def do(self, txn):
        c = self.changes
        row = find_port(self.api, self.ref)
        old = convert.port_from_row(row)
        group_rows = [] if c.get("no_groups") else list(row.security_groups)
        for ref in c.get("groups") or ():
            group = find_group(self.api, ref, "security_group")
            if all(g.uuid != group.uuid for g in group_rows):
                group_rows.append(group)
        ips = () if c.get("no_ips") else old.fixed_ips
        pairs = () if c.get("no_allowed_addresses") else old.allowed_address_pairs
        port = dataclasses.replace(
            old,
            name=c["name"] if c.get("name") is not None else old.name,
            mac=c["mac"] if c.get("mac") is not None else old.mac,
            network=c["network"] if c.get("network") is not None else old.network,
            port_security_enabled=c["port_security"] if c.get("port_security") is not None
            else old.port_security_enabled,
            fixed_ips=ips + tuple(c.get("ips") or ()),
            allowed_address_pairs=pairs + _pairs(c.get("allowed_addresses") or ()),
            security_groups=tuple(g.id for g in group_rows))
        if not port.name.strip():
            raise model.ValidationError("name", port.name, "must be a non-empty string")
        check_against_others(self.api, port, group_rows, exclude_uuid=row.uuid)
        write_port(row, port, group_rows)
        for key, value in (c.get("external_ids") or {}).items():
            row.setkey("external_ids", key, value)
        touch(row)
        return row.id


class PortDelete(Command):
    def __init__(self, api, refs):
        super().__init__(api)
        self.refs = refs

    def do(self, txn):
        found = {}
        for ref in self.refs:
            row = find_port(self.api, ref)
            found[row.uuid] = row
        deleted = [row.id for row in found.values()]
        for row in found.values():
            row.delete()
        return deleted


class PortBind(Command):
    """An agent records the host that has bound the port.  Not serialised with
    the other writes: binding changes no invariant."""

    def __init__(self, api, ref, host):
        super().__init__(api)
        self.ref, self.host = ref, host

    def run_idl(self, txn):
        row = find_port(self.api, self.ref)
        if row.host != self.host:
            row.host = self.host
        self.result = row.id

