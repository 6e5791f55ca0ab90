"""Write commands on groups and rules (ovsdbapp commands), and the database's
initialisation.  How every write is checked and serialised: rows.py.

Creates generate their id before the transaction; a command re-run after a
failover first looks for that id, so a commit whose reply was lost is not
done twice.
"""
from __future__ import annotations

import time

from sg_ofctl import errors, model, vocabulary
from sg_ofctl.ovsdb import convert
from sg_ofctl.ovsdb.convert import GLOBAL, GROUP, PORT, RULE
from sg_ofctl.ovsdb.rows import (Command, bump_revision, find_group, find_port,  # noqa: F401
                                 find_rule, insert_group, insert_rule, new_id, row_by_id,
                                 rows, touch)


class Initialize(Command):
    """Create the Global row and the `default` group (with its rules) if missing."""

    def run_idl(self, txn):
        glob = next(iter(self.api.tables[GLOBAL].rows.values()), None)
        if glob is None:
            glob = txn.insert(self.api.tables[GLOBAL])
            glob.revision = 1
        else:
            bump_revision(self.api, txn)
        if any(r.name == model.DEFAULT_GROUP for r in rows(self.api, GROUP)):
            return
        template = model.default_group()
        group = insert_group(txn, self.api, template.id, template.name,
                             template.description, True, {})
        for rule in template.rules:
            rule = model.Rule(**{**_rule_fields(rule), "id": new_id()})
            insert_rule(txn, self.api, rule, group,
                        group if rule.remote_group_id else None)


def _rule_fields(rule: model.Rule) -> dict:
    return {f: getattr(rule, f) for f in ("id", "security_group_id", "direction", "ethertype",
                                          "protocol", "port_range_min", "port_range_max",
                                          "remote_ip_prefix", "remote_group_id", "action",
                                          "description")}


def ensure_initialized(api) -> None:
    def missing(tables):
        return not tables[GLOBAL].rows or not any(
            r.name == model.DEFAULT_GROUP for r in tables[GROUP].rows.values())
    if not api.read(missing):
        return
    try:
        api.run(Initialize(api))
    except (RuntimeError, errors.Conflict):
        # Another client initialised at the same moment: its rows arrive shortly.
        deadline = time.monotonic() + 5
        while api.read(missing) and time.monotonic() < deadline:
            time.sleep(0.05)
        if api.read(missing):
            raise


class GroupCreate(Command):
    def __init__(self, api, name, description, stateful, external_ids):
        super().__init__(api)
        self.gid = new_id()
        self.name, self.description = name, description
        self.stateful, self.external_ids = stateful, external_ids

    def do(self, txn):
        if row_by_id(self.api, GROUP, self.gid) is not None:
            return self.gid      # committed before a failover; not twice
        template = model.SecurityGroup(id=self.gid, name=self.name,
                                       description=self.description, stateful=self.stateful)
        if not self.name.strip():
            raise model.ValidationError("name", self.name, "must be a non-empty string")
        for row in rows(self.api, GROUP):
            if row.name == self.name:
                raise errors.Conflict(f"name={self.name!r}: a security group with this "
                                      f"name exists (id {row.id})")
        group = insert_group(txn, self.api, self.gid, template.name, template.description,
                             template.stateful, self.external_ids)
        for ethertype in model.ETHERTYPES:
            rule = model.Rule(id=new_id(), security_group_id=self.gid, direction="egress",
                              ethertype=ethertype)
            insert_rule(txn, self.api, rule, group, None)
        return self.gid


def ports_using(api, group_row) -> list:
    """Names of the ports that use the group (for `default`: also every port
    with port security and no group)."""
    implicit = group_row.id == model.DEFAULT_GROUP
    return sorted(p.name for p in rows(api, PORT)
                  if any(g.uuid == group_row.uuid for g in p.security_groups)
                  or (implicit and not p.security_groups and p.port_security_enabled))


class GroupSet(Command):
    def __init__(self, api, ref, changes):
        super().__init__(api)
        self.ref, self.changes = ref, changes

    def do(self, txn):
        row = find_group(self.api, self.ref)
        name = self.changes.get("name")
        if name is not None and name != row.name:
            if row.id == model.DEFAULT_GROUP:
                raise errors.Conflict(f"name={name!r}: the default group cannot be renamed")
            if not name.strip():
                raise model.ValidationError("name", name, "must be a non-empty string")
            clash = next((r for r in rows(self.api, GROUP) if r.name == name), None)
            if clash is not None:
                raise errors.Conflict(f"name={name!r}: a security group with this name "
                                      f"exists (id {clash.id})")
            row.name = name
        description = self.changes.get("description")
        if description is not None:
            model.SecurityGroup(id=row.id, description=description)
            row.description = description
        stateful = self.changes.get("stateful")
        if stateful is not None and stateful != row.stateful:
            users = ports_using(self.api, row)
            if users:
                raise errors.Conflict(f"stateful={stateful}: group {row.name!r} is used by "
                                      f"ports {', '.join(users)}; stateful can only change "
                                      "while no port uses the group")
            row.stateful = stateful
        for key, value in (self.changes.get("external_ids") or {}).items():
            row.setkey("external_ids", key, value)
        touch(row)
        return row.id


class GroupDelete(Command):
    def __init__(self, api, refs):
        super().__init__(api)
        self.refs = refs

    def do(self, txn):
        targets, named = {}, []
        for ref in self.refs:
            row = find_group(self.api, ref)
            if row.id == model.DEFAULT_GROUP:
                raise errors.Conflict(f"security_group={ref!r}: the default group cannot "
                                      "be deleted")
            if row.uuid not in targets:
                targets[row.uuid] = row
                named.append((ref, row))
        for ref, row in named:
            users = ports_using(self.api, row)
            if users:
                raise errors.Conflict(f"security_group={ref!r}: in use by ports "
                                      f"{', '.join(users)}")
            remote_users = sorted(
                f"{r.security_group.name} (rule {r.id})" for r in rows(self.api, RULE)
                if any(g.uuid == row.uuid for g in r.remote_group)
                and r.security_group.uuid not in targets)
            if remote_users:
                raise errors.Conflict(f"security_group={ref!r}: remote group of rules in "
                                      f"groups {', '.join(remote_users)}")
        deleted = [row.id for row in targets.values()]
        for rule in rows(self.api, RULE):
            if rule.security_group.uuid in targets:
                rule.delete()
        for row in targets.values():
            row.delete()
        return deleted


class RuleCreate(Command):
    def __init__(self, api, group_ref, fields, rule_id=None):
        super().__init__(api)
        self.rid = rule_id or new_id()
        self.group_ref, self.fields = group_ref, fields

    def do(self, txn):
        if row_by_id(self.api, RULE, self.rid) is not None:
            return self.rid
        group = find_group(self.api, self.group_ref)
        fields = dict(self.fields)
        remote = None
        if fields.get("remote_group") is not None:
            remote = find_group(self.api, fields["remote_group"], "remote_group")
            fields["remote_group"] = remote.id
        rule = vocabulary.rule_from_fields(fields, self.rid, group.id)
        key = convert.identity_key(rule)
        # Without the whole Rule table (a fast client), the schema's index on
        # (security_group, identity) refuses the duplicate instead.
        for other in rows(self.api, RULE) if RULE in self.api.monitored else ():
            if other.security_group.uuid == group.uuid and other.identity == key:
                raise errors.Conflict(f"rule: group {group.name!r} already has this rule "
                                      f"(id {other.id})")
        insert_rule(txn, self.api, rule, group, remote)
        touch(group)
        return self.rid


class RuleDelete(Command):
    def __init__(self, api, ids):
        super().__init__(api)
        self.ids = ids

    def do(self, txn):
        found = {}
        for rid in self.ids:
            row = find_rule(self.api, rid)
            found[row.uuid] = row
        deleted = [row.id for row in found.values()]
        for group in {row.security_group.uuid: row.security_group
                      for row in found.values()}.values():
            touch(group)
        for row in found.values():
            row.delete()
        return deleted
