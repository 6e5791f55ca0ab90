"""Apply a whole desired state (sg_ofctl.state.Desired) in one transaction.

Kubernetes-like: the file is the whole desired set.  Groups and ports absent
from it are deleted, except `default`, which is reset to the file's rules when
the file has it and left alone otherwise.  Rules are matched by what they do
(model.Rule.identity()), so unchanged rules keep their ids; a changed
description is updated in place.  A port's `host` is never touched; external_ids
only when the file gives them.  The plan is computed inside the transaction
from the rows it verifies, so a concurrent writer makes it re-plan.
"""
from __future__ import annotations

import dataclasses

from sg_ofctl import errors, model, state, vocabulary
from sg_ofctl.ovsdb import commands, convert
from sg_ofctl.ovsdb.convert import GROUP, PORT, RULE


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


def _port_fields(port: model.Port) -> dict:
    return {"mac": port.mac, "ips": sorted(port.fixed_ips),
            "groups": sorted(port.security_groups), "network": port.network,
            "port_security": port.port_security_enabled,
            "allowed_addresses": sorted(vocabulary.pair_to_text(p)
                                        for p in port.allowed_address_pairs)}


def plan(have: state.Desired, want: state.Desired) -> list[tuple]:
    """The changes from `have` to `want`: (verb, kind, name, detail) tuples."""
    out = []
    for name, entry in want.groups.items():
        old = have.groups.get(name)
        g = entry.group
        if old is None:
            out.append(("create", "group", name, ""))
        else:
            if old.group.description != g.description:
                out.append(("update", "group", name,
                            f"description {old.group.description!r} -> {g.description!r}"))
            if old.group.stateful != g.stateful:
                out.append(("update", "group", name, f"stateful {old.group.stateful} -> "
                            f"{g.stateful}"))
            if entry.external_ids is not None and dict(old.external_ids or {}) != \
                    dict(entry.external_ids):
                out.append(("update", "group", name, "external_ids"))
        old_rules = {convert.identity_key(r): r for r in (old.group.rules if old else ())}
        new_rules = {convert.identity_key(r): r for r in g.rules}
        for key, rule in old_rules.items():
            if key not in new_rules:
                out.append(("delete", "rule", name, describe_rule(rule)))
            elif new_rules[key].description != rule.description:
                out.append(("update", "rule", name, describe_rule(new_rules[key])))
        for key, rule in new_rules.items():
            if key not in old_rules:
                out.append(("create", "rule", name, describe_rule(rule)))
    for name in have.groups:
        if name not in want.groups and name != model.DEFAULT_GROUP:
            out.append(("delete", "group", name, ""))
    for name, entry in want.ports.items():
        old = have.ports.get(name)
        if old is None:
            out.append(("create", "port", name, ""))
            continue
        before, after = _port_fields(old.port), _port_fields(entry.port)
        for key in before:
            if before[key] != after[key]:
                out.append(("update", "port", name, f"{key} {before[key]} -> {after[key]}"))
        if entry.external_ids is not None and dict(old.external_ids or {}) != \
                dict(entry.external_ids):
            out.append(("update", "port", name, "external_ids"))
    for name in have.ports:
        if name not in want.ports:
            out.append(("delete", "port", name, ""))
    return out


class ApplyCommand(commands.Command):
    def __init__(self, api, want: state.Desired, dry_run: bool):
        super().__init__(api)
        self.want, self.dry_run = want, dry_run

    def run_idl(self, txn):
        have = current(self.api.tables)
        changes = plan(have, self.want)
        self.result = changes
        if self.dry_run or not changes:
            return
        commands.bump_revision(self.api, txn)
        self._check_conflicts(have)
        self._execute(txn, have)

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

    def _execute(self, txn, have):
        api, tables = self.api, self.api.tables
        by_name = {row.name: row for row in tables[GROUP].rows.values()}
        for name, entry in self.want.groups.items():
            g = entry.group
            row = by_name.get(name)
            if row is None:
                row = commands.insert_group(txn, api, commands.new_id(), name, g.description,
                                            g.stateful, entry.external_ids or {})
                by_name[name] = row
                continue
            old = have.groups[name]
            if (old.group.description, old.group.stateful) != (g.description, g.stateful) or \
                    (entry.external_ids is not None
                     and dict(old.external_ids) != dict(entry.external_ids)):
                row.description, row.stateful = g.description, g.stateful
                if entry.external_ids is not None:
                    row.external_ids = dict(entry.external_ids)
                commands.touch(row)
        self._execute_rules(txn, by_name)
        for name, row in list(by_name.items()):
            if name not in self.want.groups and name != model.DEFAULT_GROUP:
                row.delete()
        self._execute_ports(txn, by_name)

    def _execute_rules(self, txn, by_name):
        api = self.api
        existing = {}
        for row in api.tables[RULE].rows.values():
            existing.setdefault(row.security_group.name, {})[row.identity] = row
        for name, row_map in existing.items():
            if name not in self.want.groups and name != model.DEFAULT_GROUP:
                for rule_row in row_map.values():
                    rule_row.delete()
        for name, entry in self.want.groups.items():
            group_row = by_name[name]
            have = existing.get(name, {})
            want = {}
            for rule in entry.group.rules:
                remote = rule.remote_group_id
                real = dataclasses.replace(rule, id=commands.new_id(),
                                           security_group_id=group_row.id,
                                           remote_group_id=by_name[remote].id
                                           if remote else None)
                want[convert.identity_key(real)] = (real, remote)
            changed = False
            for key, rule_row in have.items():
                if key not in want:
                    rule_row.delete()
                    changed = True
                elif rule_row.description != want[key][0].description:
                    rule_row.description = want[key][0].description
                    changed = True
            for key, (rule, remote) in want.items():
                if key not in have:
                    commands.insert_rule(txn, api, rule, group_row,
                                         by_name[remote] if remote else None)
                    changed = True
            if changed and name in existing:
                commands.touch(group_row)

    def _execute_ports(self, txn, by_name):
        api = self.api
        rows = {row.name: row for row in api.tables[PORT].rows.values()}
        for name, row in rows.items():
            if name not in self.want.ports:
                row.delete()
        for name, entry in self.want.ports.items():
            group_rows = [by_name[g] for g in entry.port.security_groups]
            row = rows.get(name)
            if row is None:
                row = txn.insert(api.tables[PORT])
                port = dataclasses.replace(entry.port, id=commands.new_id())
                stamp = convert.now()
                row.host, row.revision_number = "", 1
                row.created_at, row.updated_at = stamp, stamp
                row.external_ids = dict(entry.external_ids or {})
                from sg_ofctl.ovsdb.port_commands import write_port
                write_port(row, port, group_rows, new=True)
                continue
            old = convert.port_from_row(row)
            port = dataclasses.replace(entry.port, id=row.id)
            same_groups = sorted(g.uuid for g in row.security_groups) == \
                sorted(g.uuid for g in group_rows)
            if _port_fields(dataclasses.replace(old, security_groups=())) != \
                    _port_fields(dataclasses.replace(port, security_groups=())) \
                    or not same_groups or (entry.external_ids is not None
                                           and dict(row.external_ids) != entry.external_ids):
                from sg_ofctl.ovsdb.port_commands import write_port
                write_port(row, port, group_rows)
                if entry.external_ids is not None:
                    row.external_ids = dict(entry.external_ids)
                commands.touch(row)
