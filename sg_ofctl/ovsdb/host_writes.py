"""What an agent writes to the security-group database for its host, as one
command: bind and unbind ports, create, update and delete the rows that
instance tags declare.  The whole set goes in one transaction, over the
agent's long-lived writer connection, which replicates only the Port rows the
writes touch or could clash with (`HostWrites.condition()`): not a replica of
every port per write.

The command re-checks every item on the rows as they are now, so a plan made
from an older snapshot is safe: a row another agent created meanwhile ("a port
with this name exists") is skipped as the benign race it is, a binding already
in place is not rewritten, and a row is only deleted or unbound while it is
still bound to this host (its own Port_Binding row; other hosts' stay, and a
tag-made row another host has bound meanwhile stays too).  One bad item (a
clash, a group that vanished) is reported by name and the others are written.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ovsdbapp.backend.ovs_idl import command as ovsdbapp_command

from sg_ofctl import errors, model
from sg_ofctl.ovsdb import bindings, convert
from sg_ofctl.ovsdb.rows import (HeldPorts, bump_revision, check_against_others,
                                 find_group, group_index, insert_port, new_id, touch,
                                 write_port)


@dataclasses.dataclass(frozen=True)
class PortSpec:
    """A row that tags declare: MAC, fixed IPs, groups (names or ids)."""

    name: str
    mac: str
    ips: tuple[str, ...]
    groups: tuple[str, ...]
    external_ids: Mapping[str, str] = dataclasses.field(default_factory=dict)  # merged


@dataclasses.dataclass(frozen=True)
class HostWrites:
    host: str
    create: tuple[PortSpec, ...] = ()
    update: tuple[PortSpec, ...] = ()
    delete: tuple[str, ...] = ()     # tag-made rows of ports that left this host
    bind: tuple[str, ...] = ()
    unbind: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete or self.bind or self.unbind)

    def names(self) -> set[str]:
        return ({s.name for s in self.create + self.update}
                | set(self.delete) | set(self.bind) | set(self.unbind))

    def condition(self) -> list:
        """The Port rows to replicate (clauses ORed): the rows written, and every
        row a created or updated port could clash with (same MAC or fixed IP;
        any row with allowed address pairs, whose MACs a condition cannot see)."""
        if not self:
            return [False]
        clauses: list = [["name", "==", n] for n in sorted(self.names())]
        specs = self.create + self.update
        if specs:
            clauses += [["mac", "==", m] for m in sorted({s.mac for s in specs})]
            clauses += [["fixed_ips", "includes", ip]
                        for ip in sorted({ip for s in specs for ip in s.ips})]
            clauses.append(["allowed_address_pairs", "!=", ["set", []]])
        return clauses

    def conditions(self) -> dict:
        """{table: condition} for the writer connection: the Port rows of
        condition(), the bindings of the ports written, the groups that specs
        name, and Global only when rows are written (it is bumped then; held
        otherwise, every write anywhere would wake every agent)."""
        specs = self.create + self.update
        refs = sorted({g for s in specs for g in s.groups})
        names = sorted(self.names())
        return {
            convert.PORT: self.condition(),
            bindings.BINDING: [["port", "==", n] for n in names] or [False],
            convert.GROUP: [[c, "==", r] for r in refs for c in ("id", "name")] or [False],
            convert.GLOBAL: [True] if specs or self.delete else [False],
        }


@dataclasses.dataclass
class HostWritesResult:
    written: int = 0
    skipped: dict = dataclasses.field(default_factory=dict)   # name -> why (benign)
    failed: dict = dataclasses.field(default_factory=dict)    # name -> error text


class HostPortWrites(ovsdbapp_command.BaseCommand):
    def __init__(self, api, writes: HostWrites):
        super().__init__(api)
        self.writes = writes

    def __str__(self):
        w = self.writes
        return (f"HostPortWrites(host={w.host!r}, create={len(w.create)}, "
                f"update={len(w.update)}, delete={len(w.delete)}, bind={len(w.bind)}, "
                f"unbind={len(w.unbind)})")

    __repr__ = __str__

    def run_idl(self, txn):
        w, result = self.writes, HostWritesResult()
        self.result = result
        held = HeldPorts(self.api)         # read once, before any insert
        self._groups = group_index(self.api)
        by_name = dict(held.by_name)
        for spec in w.create:
            if spec.name in by_name:
                result.skipped[spec.name] = "a port with this name exists (made meanwhile)"
                continue
            self._guard(result, spec.name, self._create, txn, spec, held)
        for spec in w.update:
            row = by_name.get(spec.name)
            if row is None:
                result.skipped[spec.name] = "no such port (deleted meanwhile)"
                continue
            self._guard(result, spec.name, self._update, row, spec, held)
        bound = bindings.rows_by_port(self.api.tables)
        for name in w.delete:
            row, held_by = by_name.get(name), bound.get(name, {})
            if row is not None and w.host in held_by:
                held_by.pop(w.host).delete()
                if held_by:         # another host has it now (the VM moved): keep the row
                    result.skipped[name] = f"bound to {', '.join(sorted(held_by))} meanwhile"
                else:
                    row.delete()
                result.written += 1
        if result.written:
            # Rows made, changed or deleted: serialised with every other writer
            # (what they check).  Nothing written: the transaction stays empty.
            bump_revision(self.api, txn)
        for name in w.bind:          # Port_Binding rows of this host (bindings.py)
            if name in by_name and w.host not in bound.get(name, {}):
                bindings.insert(txn, self.api, name, w.host)
                result.written += 1
        for name in w.unbind:
            if w.host in bound.get(name, {}):
                bound[name].pop(w.host).delete()
                result.written += 1

    @staticmethod
    def _guard(result, name, write, *args) -> None:
        try:
            write(*args)
            result.written += 1
        except (model.ValidationError, errors.UserError) as e:
            result.failed[name] = str(e)

    def _port(self, spec: PortSpec, base: model.Port | None):
        group_rows = list({g.uuid: g for g in (find_group(self.api, ref, "security_groups",
                                                          self._groups)
                                               for ref in spec.groups)}.values())
        fields = dict(mac=spec.mac, fixed_ips=spec.ips,
                      security_groups=tuple(g.id for g in group_rows))
        port = dataclasses.replace(base, **fields) if base is not None else \
            model.Port(id=new_id(), name=spec.name, **fields)
        return port, group_rows

    def _create(self, txn, spec: PortSpec, held: HeldPorts) -> None:
        port, group_rows = self._port(spec, None)
        check_against_others(self.api, port, held=held)
        insert_port(txn, self.api, port, group_rows, spec.external_ids, host=self.writes.host)
        held.add(port)

    def _update(self, row, spec: PortSpec, held: HeldPorts) -> None:
        port, group_rows = self._port(spec, convert.port_from_row(row))
        check_against_others(self.api, port, exclude_uuids=(row.uuid,), held=held)
        write_port(row, port, group_rows)
        held.add(port, replaces=row.uuid)
        for key, value in spec.external_ids.items():
            row.setkey("external_ids", key, value)
        touch(row)
