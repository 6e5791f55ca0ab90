"""Write commands on ports (rows.py: how every write is checked and serialised).
The agents' writes (bindings, tag-declared rows) are `HostPortWrites` (host_writes.py)."""
from __future__ import annotations

import dataclasses

from ovsdbapp.backend.ovs_idl import command as ovsdbapp_command

from sg_ofctl import model, vocabulary
from sg_ofctl.ovsdb import bindings, convert
from sg_ofctl.ovsdb.convert import PORT
from sg_ofctl.ovsdb.rows import (Command, check_against_others, find_group, find_port,
                                 insert_port, new_id, row_by_id, touch, write_port)


def _pairs(values):
    return tuple(v if isinstance(v, model.AddressPair)
                 else vocabulary.pair_from_text(v, "allowed_address") for v in values)


def _no_groups(fields, group_rows) -> bool:
    if not fields.get("no_security_groups"):
        return False
    if group_rows:
        raise model.ValidationError("no_security_groups", True,
                                    "a port with no security group cannot name groups")
    return True


class PortCreate(Command):
    """fields: name, mac, ips, groups, no_security_groups (none at all, not
    `default`), allowed_addresses, port_security, network, external_ids."""

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
        group_rows = list({g.uuid: g for g in (find_group(self.api, ref, "security_groups")
                                               for ref in f.get("groups") or ())}.values())
        port = model.Port(id=self.pid, name=name, mac=f.get("mac"),
                          fixed_ips=tuple(f.get("ips") or ()),
                          allowed_address_pairs=_pairs(f.get("allowed_addresses") or ()),
                          port_security_enabled=f.get("port_security", True),
                          security_groups=tuple(g.id for g in group_rows),
                          explicit_groups=_no_groups(f, group_rows),
                          network=f.get("network", 0) if f.get("network") is not None else 0)
        check_against_others(self.api, port)
        insert_port(txn, self.api, port, group_rows, f.get("external_ids"))
        return self.pid


class PortSet(Command):
    """changes: name, mac, network, port_security, ips, no_ips, groups, no_groups
    (clear the list: then empty means `default`), no_security_groups (none at
    all), allowed_addresses, no_allowed_addresses, external_ids (merged)."""

    def __init__(self, api, ref, changes):
        super().__init__(api)
        self.ref, self.changes = ref, changes

    def do(self, txn):
        c = self.changes
        row = find_port(self.api, self.ref)
        old = convert.port_from_row(row)
        cleared = c.get("no_groups") or c.get("no_security_groups")
        group_rows = [] if cleared else list(row.security_groups)
        for ref in c.get("groups") or ():
            group = find_group(self.api, ref, "security_groups")
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
            security_groups=tuple(g.id for g in group_rows),
            explicit_groups=_no_groups(c, group_rows) if c.get("no_security_groups") else
            old.explicit_groups and not c.get("no_groups"))
        if not port.name.strip():
            raise model.ValidationError("name", port.name, "must be a non-empty string")
        check_against_others(self.api, port, exclude_uuids=(row.uuid,))
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
        bindings.delete_for(self.api, [row.name for row in found.values()])
        for row in found.values():
            row.delete()
        return deleted


class PortBind(ovsdbapp_command.BaseCommand):
    """An admin's (or a test's) binding of one port: exactly `host`, or none ("")."""

    def __init__(self, api, ref, host: str):
        super().__init__(api)
        self.ref, self.host = ref, host

    def run_idl(self, txn):
        port = find_port(self.api, self.ref)
        found = False
        for row in list(self.api.tables[bindings.BINDING].rows.values()):
            if row.port == port.name:
                if row.host == self.host:
                    found = True
                else:
                    row.delete()
        if self.host and not found:
            bindings.insert(txn, self.api, port.name, self.host)
        self.result = port.id
