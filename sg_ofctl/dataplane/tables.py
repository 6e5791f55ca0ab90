"""Name the pipeline's tables in OVS (Flow_Table rows referenced from the
bridge's flow_tables), so that flow dumps read `table=egress_rules`."""
from __future__ import annotations

from sg_ofctl import pipeline


def wanted_names(first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> dict[int, str]:
    return {pipeline.table_number(t.name, first_table): t.name for t in pipeline.TABLES}


def name_tables_commands(bridge: str, first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> list:
    """ovs-vsctl arguments (one transaction) that name the tables."""
    args = []
    for number, name in wanted_names(first_table).items():
        args += ["--", f"--id=@t{number}", "create", "Flow_Table", f"name={name}",
                 "--", "set", "Bridge", bridge, f"flow_tables:{number}=@t{number}"]
    return args[1:]


def _single(value):
    return (value[0] if value else None) if isinstance(value, list) else value


def name_tables(api, bridge: str, first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> bool:
    """The same through an ovsdbapp Open_vSwitch API.  Other tables' entries are
    kept; nothing is written if the names are already right.  Returns True if
    it changed something."""
    current = api.db_get("Bridge", bridge, "flow_tables").execute(check_error=True)
    # ovsdbapp gives the referenced Flow_Table rows themselves.
    names = {number: _single(row.name) for number, row in current.items()}
    wanted = wanted_names(first_table)
    if all(names.get(number) == name for number, name in wanted.items()):
        return False
    with api.transaction(check_error=True) as txn:
        merged = dict(current)
        for number, name in wanted.items():
            if names.get(number) != name:
                merged[number] = txn.add(api.db_create("Flow_Table", name=name))
        txn.add(api.db_set("Bridge", bridge, ("flow_tables", merged)))
    return True
