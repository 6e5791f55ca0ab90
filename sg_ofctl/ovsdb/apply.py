"""Apply a whole desired state (sg_ofctl.state.Desired) in one transaction.

Kubernetes-like: the file is the whole desired set.  Groups and ports absent
from it are deleted, except `default`, which is reset to the file's rules when
the file has it and left alone otherwise.  Rules are matched by what they do
(model.Rule.identity()), so unchanged rules keep their ids; a changed
description is updated in place.  A port's bindings are never touched (but a
deleted port's go with it); external_ids
only when the file gives them.

`plan(have, want)` is the list of typed changes (the dataclasses below); the
dry run prints it, and the executor writes exactly that list, each change by
its own `write()`: the two cannot disagree.  The plan is computed inside the
transaction from the rows it verifies, so a concurrent writer makes it re-plan.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ovsdbapp.backend.ovs_idl import command as ovsdbapp_command

from sg_ofctl import errors, model, state, vocabulary
from sg_ofctl.ovsdb import bindings, convert
from sg_ofctl.ovsdb.convert import GROUP, PORT, RULE
from sg_ofctl.ovsdb.rows import (bump_revision, insert_group, insert_port, insert_rule,
                                 new_id, touch)


def current(tables) -> state.Desired:
    """The database as a Desired value (names instead of ids)."""
    rules = {}
    for row in tables[RULE].rows.values():
        rule = convert.rule_from_row(row, group_key="name")
        rules.setdefault(rule.security_group_id, []).append(rule)
    groups = {}
    for row in tables[GROUP].rows.values():
        group = model.SecurityGroup(id=row.name, name=row.name, description=row.description,
                                    stateful=row.stateful,
                                    rules=tuple(rules.get(row.name, ())))
        groups[row.name] = state.DesiredGroup(group, dict(row.external_ids))
    ports = {}
    for row in tables[PORT].rows.values():
        port = convert.port_from_row(row, key="name")
        ports[row.name] = state.DesiredPort(port, dict(row.external_ids))
    return state.Desired(groups=groups, ports=ports)


def describe_rule(rule: model.Rule) -> str:
    return " ".join(f"{k}={v}" for k, v in vocabulary.rule_to_fields(rule).items())


# ---- the changes ---------------------------------------------------------------------
class _Rows:
    """What the executor looks rows up in while it walks a plan."""

    def __init__(self, api, txn):
        self.api, self.txn = api, txn
        self.groups = {r.name: r for r in api.tables[GROUP].rows.values()}
        self.ports = {r.name: r for r in api.tables[PORT].rows.values()}
        self.rules: dict = {}
        for r in api.tables[RULE].rows.values():   # keyed as plan() sees them (names)
            key = convert.identity_key(convert.rule_from_row(r, group_key="name"))
            self.rules.setdefault(r.security_group.name, {})[key] = r
        self.touched: dict = {}     # uuid -> row: revision bumped once at the end

    def touch(self, row) -> None:
        self.touched[row.uuid] = row


@dataclasses.dataclass(frozen=True)
class Change:
    verb: ClassVar[str]
    kind: ClassVar[str]
    name: str

    @property
    def detail(self) -> str:
        return ""

    def text(self) -> str:
        sign = {"create": "+", "delete": "-", "update": "~"}[self.verb]
        return f"{sign} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")

    def write(self, rows: _Rows) -> None:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class CreateGroup(Change):
    verb, kind = "create", "group"
    group: model.SecurityGroup = None
    external_ids: Any = None

    def write(self, rows):
        g = self.group
        rows.groups[self.name] = insert_group(rows.txn, rows.api, new_id(), self.name,
                                              g.description, g.stateful,
                                              self.external_ids or {})


@dataclasses.dataclass(frozen=True)
class SetGroupField(Change):
    """column: description, stateful or external_ids."""
    verb, kind = "update", "group"
    column: str = ""
    old: Any = None
    new: Any = None

    @property
    def detail(self):
        if self.column == "external_ids":
            return "external_ids"
        old, new = (repr(self.old), repr(self.new)) if self.column == "description" \
            else (self.old, self.new)
        return f"{self.column} {old} -> {new}"

    def write(self, rows):
        row = rows.groups[self.name]
        setattr(row, self.column, dict(self.new) if self.column == "external_ids"
                else self.new)
        rows.touch(row)


@dataclasses.dataclass(frozen=True)
class RuleChange(Change):
    kind = "rule"
    rule: model.Rule = None      # security_group_id / remote_group_id are names
    existed: bool = True         # the group existed before (then its revision moves)

    @property
    def detail(self):
        return describe_rule(self.rule)

    def _row(self, rows):
        return rows.rules[self.name][convert.identity_key(self.rule)]

    def _touch(self, rows):
        if self.existed:
            rows.touch(rows.groups[self.name])


@dataclasses.dataclass(frozen=True)
class CreateRule(RuleChange):
    verb = "create"

    def write(self, rows):
        group = rows.groups[self.name]
        remote = self.rule.remote_group_id
        rule = dataclasses.replace(self.rule, id=new_id(), security_group_id=group.id,
                                   remote_group_id=rows.groups[remote].id if remote else None)
        insert_rule(rows.txn, rows.api, rule, group, rows.groups[remote] if remote else None)
        self._touch(rows)


@dataclasses.dataclass(frozen=True)
class SetRuleDescription(RuleChange):
    verb = "update"

    def write(self, rows):
        self._row(rows).description = self.rule.description
        self._touch(rows)


@dataclasses.dataclass(frozen=True)
class DeleteRule(RuleChange):
    verb = "delete"

    def write(self, rows):
        self._row(rows).delete()
        self._touch(rows)


@dataclasses.dataclass(frozen=True)
class DeleteGroup(Change):
    """With its rules (OVSDB refuses a group that a rule still points at)."""
    verb, kind = "delete", "group"

    def write(self, rows):
        for rule_row in rows.rules.get(self.name, {}).values():
            rule_row.delete()
        rows.groups[self.name].delete()


@dataclasses.dataclass(frozen=True)
class CreatePort(Change):
    verb, kind = "create", "port"
    port: model.Port = None      # security_groups are names
    external_ids: Any = None

    def write(self, rows):
        groups = [rows.groups[g] for g in self.port.security_groups]
        port = dataclasses.replace(self.port, id=new_id(),
                                   security_groups=tuple(g.id for g in groups))
        rows.ports[self.name] = insert_port(rows.txn, rows.api, port, groups,
                                            self.external_ids)


# Port field (as apply shows it) -> (column, value of the column from a model.Port)
PORT_FIELDS = {
    "mac": ("mac", lambda p: p.mac),
    "ips": ("fixed_ips", lambda p: sorted(p.fixed_ips)),
    "groups": ("security_groups", lambda p: sorted(p.security_groups)),
    "no_security_groups": ("no_security_groups", lambda p: p.explicit_groups),
    "network": ("network", lambda p: p.network),
    "port_security": ("port_security_enabled", lambda p: p.port_security_enabled),
    "allowed_addresses": ("allowed_address_pairs",
                          lambda p: sorted(vocabulary.pair_to_text(a)
                                           for a in p.allowed_address_pairs)),
}


@dataclasses.dataclass(frozen=True)
class SetPortField(Change):
    """field: a key of PORT_FIELDS, or external_ids."""
    verb, kind = "update", "port"
    field: str = ""
    old: Any = None
    new: Any = None

    @property
    def detail(self):
        return "external_ids" if self.field == "external_ids" else \
            f"{self.field} {self.old} -> {self.new}"

    def write(self, rows):
        row = rows.ports[self.name]
        if self.field == "external_ids":
            row.external_ids = dict(self.new)
        elif self.field == "groups":
            row.security_groups = [rows.groups[g] for g in self.new]
        else:
            setattr(row, PORT_FIELDS[self.field][0], self.new)
        rows.touch(row)


@dataclasses.dataclass(frozen=True)
class DeletePort(Change):
    verb, kind = "delete", "port"

    def write(self, rows):
        bindings.delete_for(rows.api, [self.name])
        rows.ports.pop(self.name).delete()


# ---- the plan ------------------------------------------------------------------------
def plan(have: state.Desired, want: state.Desired) -> list[Change]:
    """The changes from `have` to `want`, in the order they are written."""
    out: list[Change] = []
    for name, entry in want.groups.items():
        old = have.groups.get(name)
        g = entry.group
        if old is None:
            out.append(CreateGroup(name, g, entry.external_ids))
        else:
            for column in ("description", "stateful"):
                if getattr(old.group, column) != getattr(g, column):
                    out.append(SetGroupField(name, column, getattr(old.group, column),
                                             getattr(g, column)))
            if entry.external_ids is not None and dict(old.external_ids or {}) != \
                    dict(entry.external_ids):
                out.append(SetGroupField(name, "external_ids", old.external_ids,
                                         dict(entry.external_ids)))
    for name, entry in want.groups.items():
        old = have.groups.get(name)
        old_rules = {convert.identity_key(r): r for r in (old.group.rules if old else ())}
        new_rules = {convert.identity_key(r): r for r in entry.group.rules}
        for key, rule in old_rules.items():
            if key not in new_rules:
                out.append(DeleteRule(name, rule, old is not None))
            elif new_rules[key].description != rule.description:
                out.append(SetRuleDescription(name, new_rules[key], old is not None))
        for key, rule in new_rules.items():
            if key not in old_rules:
                out.append(CreateRule(name, rule, old is not None))
    out += [DeletePort(name) for name in have.ports if name not in want.ports]
    for name, entry in want.ports.items():
        old = have.ports.get(name)
        if old is None:
            out.append(CreatePort(name, entry.port, entry.external_ids))
            continue
        for field, (_column, value) in PORT_FIELDS.items():
            before, after = value(old.port), value(entry.port)
            if before != after:
                out.append(SetPortField(name, field, before, after))
        if entry.external_ids is not None and dict(old.external_ids or {}) != \
                dict(entry.external_ids):
            out.append(SetPortField(name, "external_ids", old.external_ids,
                                    dict(entry.external_ids)))
    out += [DeleteGroup(name) for name in have.groups
            if name not in want.groups and name != model.DEFAULT_GROUP]
    return out


def execute(api, txn, changes: list[Change]) -> None:
    """Write exactly `changes`, in order, in this transaction."""
    rows = _Rows(api, txn)
    for change in changes:
        change.write(rows)
    for row in rows.touched.values():
        touch(row)


class ApplyCommand(ovsdbapp_command.BaseCommand):
    """Result: the plan (a list of Change); written unless dry_run."""

    def __init__(self, api, want: state.Desired, dry_run: bool):
        super().__init__(api)
        self.want, self.dry_run = want, dry_run

    def run_idl(self, txn):
        have = current(self.api.tables)
        changes = plan(have, self.want)
        self.result = changes
        if self.dry_run or not changes:
            return
        bump_revision(self.api, txn)
        self._check_conflicts(have)
        execute(self.api, txn, changes)

    def _check_conflicts(self, have):
        if model.DEFAULT_GROUP not in self.want.groups:
            kept = have.groups.get(model.DEFAULT_GROUP)
            for rule in kept.group.rules if kept else ():
                remote = rule.remote_group_id
                if remote and remote != model.DEFAULT_GROUP and remote not in self.want.groups:
                    raise errors.Conflict(
                        f"remote_group={remote!r}: a rule of group 'default' (kept: the "
                        "file has no 'default') names this group, which the file leaves "
                        "out; add 'default' to the file or keep the group")
        for name, entry in self.want.groups.items():
            old = have.groups.get(name)
            if old is None or old.group.stateful == entry.group.stateful:
                continue
            users = sorted(p for p, e in have.ports.items()
                           if name in e.port.effective_groups)
            if users:
                raise errors.Conflict(f"groups.{name}.stateful={entry.group.stateful}: the "
                                      f"group is used by ports {', '.join(users)}; stateful "
                                      "can only change while no port uses the group")
