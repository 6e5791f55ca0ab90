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
