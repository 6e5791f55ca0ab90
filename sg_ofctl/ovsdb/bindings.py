"""Port bindings: which host has bound which port, one `Port_Binding` row
(`port` = the port's name, `host`) per host that has it.

Bindings have a table of their own (schema 1.1.0; before, a `host` column of
Port) so that OVSDB RBAC can let an agent write exactly its own: the role's
authorization column is `host`, compared with the agent certificate's CN, and
an insert or delete is all a bind or unbind needs.  Two hosts may hold a port
for a moment (a VM moving); each removes only its own row.  Not serialised with
the other writes (no Global.revision): binding changes no invariant.
"""
from __future__ import annotations

from ovsdbapp.backend.ovs_idl import command as ovsdbapp_command

BINDING = "Port_Binding"


def hosts_by_port(tables) -> dict[str, frozenset[str]]:
    """{port name: hosts that have bound it}."""
    out: dict[str, set] = {}
    for row in tables[BINDING].rows.values():
        out.setdefault(row.port, set()).add(row.host)
    return {name: frozenset(hosts) for name, hosts in out.items()}


def rows_by_port(tables) -> dict[str, dict]:
    """{port name: {host: its Port_Binding row}}."""
    out: dict[str, dict] = {}
    for row in tables[BINDING].rows.values():
        out.setdefault(row.port, {})[row.host] = row
    return out


def host_text(tables, name: str) -> str:
    """The hosts of one port, for display ("" = unbound)."""
    return ",".join(sorted(row.host for row in tables[BINDING].rows.values()
                           if row.port == name))


def insert(txn, api, name: str, host: str):
    row = txn.insert(api.tables[BINDING])
    row.port, row.host = name, host
    return row


def delete_for(api, names) -> None:
    """Delete every binding of these ports (the ports are being deleted)."""
    names = set(names)
    for row in list(api.tables[BINDING].rows.values()):
        if row.port in names:
            row.delete()


class Bind(ovsdbapp_command.BaseCommand):
    """Bind these ports to `host` (insert the rows it lacks), or with
    unbind=True remove `host`'s rows for them."""

    def __init__(self, api, names, host: str, unbind: bool = False):
        super().__init__(api)
        self.names, self.host, self.unbind = set(names), host, unbind

    def run_idl(self, txn):
        have = {row.port: row for row in self.api.tables[BINDING].rows.values()
                if row.host == self.host and row.port in self.names}
        if self.unbind:
            for row in have.values():
                row.delete()
        else:
            for name in self.names - set(have):
                insert(txn, self.api, name, self.host)
        self.result = len(have) if self.unbind else len(self.names)

    def __str__(self):
        return (f"{'Unbind' if self.unbind else 'Bind'}({len(self.names)} ports, "
                f"host={self.host!r})")

    __repr__ = __str__


class SetBinding(ovsdbapp_command.BaseCommand):
    """An admin's (or a test's) binding of one port: exactly `host`, or none ("")."""

    def __init__(self, api, ref, host: str):
        super().__init__(api)
        self.ref, self.host = ref, host

    def run_idl(self, txn):
        from sg_ofctl.ovsdb.rows import find_port
        port = find_port(self.api, self.ref)
        found = False
        for row in list(self.api.tables[BINDING].rows.values()):
            if row.port == port.name:
                if row.host == self.host:
                    found = True
                else:
                    row.delete()
        if self.host and not found:
            insert(txn, self.api, port.name, self.host)
        self.result = port.id
