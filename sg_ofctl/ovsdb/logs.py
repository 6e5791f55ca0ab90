"""Packet-log rows: row <-> model.logs.PacketLog, and the write commands
(create, set, delete), serialised with every other write (rows.Command)."""
from __future__ import annotations

from sg_ofctl import errors
from sg_ofctl.model import ValidationError
from sg_ofctl.model.logs import PacketLog, parse_rate
from sg_ofctl.ovsdb.convert import GROUP, PORT, now, opt
from sg_ofctl.ovsdb.rows import Command, find_group, find_port, new_id, rows

LOG = "Log"


def log_from_row(row) -> PacketLog:
    """The model value, or ValidationError (e.g. its group or port was deleted:
    the weak reference emptied, and the log is inert)."""
    group, port = opt(row.security_group), opt(row.port)
    if group is None and port is None:
        raise ValidationError("target", row.name, "its security group or port was deleted")
    return PacketLog(id=row.id, name=row.name, group_id=group.id if group else None,
                     port_id=port.id if port else None, event=row.event, rate=row.rate,
                     enabled=row.enabled, description=row.description)


def log_fields(row) -> dict:
    """What `log show` prints."""
    group, port = opt(row.security_group), opt(row.port)
    target = f"security group {group.name}" if group is not None else \
        f"port {port.name}" if port is not None else "(deleted)"
    return {"id": row.id, "name": row.name, "target": target, "event": row.event,
            "rate": f"{row.rate}/s", "enabled": row.enabled, "description": row.description,
            "created_at": row.created_at}


def find_log(api, ref: str):
    for row in rows(api, LOG):
        if ref in (row.name, row.id):
            return row
    raise errors.NotFound(f"log={ref!r}: no such log (name or id)")


class LogCreate(Command):
    def __init__(self, api, fields: dict):
        super().__init__(api)
        self.fields, self.log_id = fields, new_id()

    def do(self, txn):
        f = self.fields
        if any(r.id == self.log_id for r in rows(self.api, LOG)):
            return self.log_id          # a re-run after a failover: done already
        if any(r.name == f["name"] for r in rows(self.api, LOG)):
            raise errors.Conflict(f"name={f['name']!r}: already used by another log")
        group = find_group(self.api, f["group"], "group") if f.get("group") else None
        port = find_port(self.api, f["port"]) if f.get("port") else None
        PacketLog(id=self.log_id, name=f["name"], group_id=group.id if group else None,
                  port_id=port.id if port else None, event=f.get("event", "all"),
                  rate=f.get("rate", 100), description=f.get("description", ""))
        row = txn.insert(self.api.tables[LOG])
        row.id, row.name, row.description = self.log_id, f["name"], f.get("description", "")
        row.security_group = [group] if group is not None else []
        row.port = [port] if port is not None else []
        row.event, row.rate = f.get("event", "all"), parse_rate(f.get("rate", 100))
        row.enabled, row.created_at, row.external_ids = True, now(), {}
        return self.log_id


class LogSet(Command):
    def __init__(self, api, ref: str, changes: dict):
        super().__init__(api)
        self.ref, self.changes = ref, {k: v for k, v in changes.items() if v is not None}

    def do(self, txn):
        row = find_log(self.api, self.ref)
        c = self.changes
        current = log_from_row(row) if (opt(row.security_group) or opt(row.port)) else None
        if current is not None:       # validate the result before writing anything
            PacketLog(**{**current.__dict__, **{k: v for k, v in c.items()
                                               if k in ("event", "rate", "enabled",
                                                        "description")}})
        for key in ("event", "enabled", "description"):
            if key in c:
                setattr(row, key, c[key])
        if "rate" in c:
            row.rate = parse_rate(c["rate"])


class LogDelete(Command):
    def __init__(self, api, refs):
        super().__init__(api)
        self.refs = list(refs)

    def do(self, txn):
        found = [find_log(self.api, ref) for ref in self.refs]   # all exist, or nothing
        for row in found:
            row.delete()


TABLES = (LOG, GROUP, PORT)
