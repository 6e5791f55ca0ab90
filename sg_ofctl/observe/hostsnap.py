"""The host view the agent builds, rebuilt outside the agent: snapshots of the
local Open_vSwitch database and the security-group database through the
agent's own monitors and view builder (the same code, so the same view), plus
the bridge's table names.  `sg-ofctl trace` maps cookies and evaluates the
model on this view; it needs no running agent and never talks to it."""
from __future__ import annotations

from dataclasses import dataclass

from sg_ofctl import pipeline
from sg_ofctl.model import HostView


@dataclass(frozen=True)
class HostSnapshot:
    view: HostView
    others: tuple            # model.Port values of ports not enforced here
    closed: dict             # port name -> why its local interface is fail-closed
    table_names: dict        # OpenFlow table number -> pipeline table name


def table_names_of(local, bridge: str, first_table: int | None) -> dict[int, str]:
    """The pipeline's table numbers: from the names the agent gave the bridge's
    tables, else from `first_table` (default 0)."""
    declared = {t.name for t in pipeline.TABLES}
    found = {}
    with local.conn.lock:           # the IDL thread updates these rows
        rows = [b for b in local.idl.tables["Bridge"].rows.values() if b.name == bridge]
        for number, row in (rows[0].flow_tables.items() if rows else ()):
            name = row.name[0] if isinstance(row.name, list) and row.name else row.name
            if name in declared:
                found[int(number)] = name
    if first_table is None and len(found) == len(declared):
        return found
    first = pipeline.DEFAULT_FIRST_TABLE if first_table is None else first_table
    return {pipeline.table_number(t.name, first): t.name for t in pipeline.TABLES}


def snapshot(ovs_db: str, bridge: str, db_remotes: str, timeout: float = 10.0,
             first_table: int | None = None) -> HostSnapshot:
    from sg_ofctl import errors
    from sg_ofctl.agent.local_ovs import LocalOvs
    from sg_ofctl.agent.sgdb import SgDatabase
    from sg_ofctl.agent.view import ViewBuilder
    local = LocalOvs(ovs_db, bridge, lambda: None, timeout=timeout)
    try:
        local_state = local.snapshot()
        if not local_state.bridge_found:
            raise errors.NotFound(f"bridge={bridge!r}: no such bridge in {ovs_db}")
        names = table_names_of(local, bridge, first_table)
        sgdb = SgDatabase(db_remotes, lambda: None, timeout=timeout)
        try:
            sg = sgdb.snapshot()
        finally:
            sgdb.close()
    finally:
        local.close()
    built = ViewBuilder().build(local_state, sg)
    closed = {i.iface_id: built.problems[i.name] for i in local_state.interfaces
              if i.iface_id and i.name in built.problems}
    local_ids = {p.id for p in built.view.ports}
    others = tuple(r.port for name, r in sg.ports.items() if r.port is not None
                   and r.port.id not in local_ids and name not in closed)
    return HostSnapshot(built.view, others, closed, names)
