"""Database rows <-> model values.

Rows are ovs IDL rows (or ovsdbapp RowViews) of the SG_ofctl schema; optional
columns come back as lists, references as rows.  Every value read from the
database goes through the model's validation, so a reader never sees a rule
the model would refuse.  `read_state()` is what an agent builds its HostView
from: every group as a model.SecurityGroup, every port as a model.Port
(ofport None) and the host each port is bound to.
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Mapping

from sg_ofctl import model
from sg_ofctl.vocabulary import pair_from_text, pair_to_text

GROUP = "Security_Group"
RULE = "Security_Group_Rule"
PORT = "Port"
GLOBAL = "Global"


def opt(value):
    """An optional (0..1) column's value, or None."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def protocol_value(text: str | None):
    """The stored protocol text as the user wrote it: a name, or a number as int."""
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def identity_key(rule: model.Rule) -> str:
    """The text of model.Rule.identity(): unique per group (a schema index)."""
    return "|".join("" if part is None else str(part) for part in rule.identity())


def rule_from_row(row, group_key: str = "id") -> model.Rule:
    """`group_key` "name" names the group and remote group by name (apply)."""
    remote = opt(row.remote_group)
    return model.Rule(
        id=row.id, security_group_id=getattr(row.security_group, group_key),
        direction=row.direction,
        ethertype=row.ethertype, protocol=protocol_value(opt(row.protocol)),
        port_range_min=opt(row.port_range_min), port_range_max=opt(row.port_range_max),
        remote_ip_prefix=opt(row.remote_ip_prefix),
        remote_group_id=getattr(remote, group_key) if remote is not None else None,
        action=row.action, description=row.description)


def rule_columns(rule: model.Rule) -> dict:
    """Columns of a Security_Group_Rule row, except the two references."""
    def some(value):
        return [] if value is None else [value]
    return {
        "id": rule.id, "direction": rule.direction, "ethertype": rule.ethertype,
        "protocol": some(None if rule.protocol is None else str(rule.protocol)),
        "port_range_min": some(rule.port_range_min),
        "port_range_max": some(rule.port_range_max),
        "remote_ip_prefix": some(rule.remote_ip_prefix),
        "action": rule.action, "description": rule.description,
        "identity": identity_key(rule),
    }


def port_from_row(row, key: str = "id") -> model.Port:
    """`key` "name": the port's id and its groups are names (apply)."""
    return model.Port(
        id=getattr(row, key), name=row.name, mac=row.mac, fixed_ips=tuple(row.fixed_ips),
        allowed_address_pairs=tuple(pair_from_text(t) for t in row.allowed_address_pairs),
        port_security_enabled=row.port_security_enabled,
        security_groups=tuple(sorted(getattr(g, key) for g in row.security_groups)),
        network=row.network, explicit_groups=row.no_security_groups)


def port_columns(port: model.Port) -> dict:
    """Columns of a Port row, except security_groups (references) and host.
    `no_security_groups`: the port has none at all (model.Port.explicit_groups),
    rather than an empty list that means `default`."""
    return {"id": port.id, "name": port.name, "mac": port.mac,
            "fixed_ips": list(port.fixed_ips),
            "allowed_address_pairs": [pair_to_text(p) for p in port.allowed_address_pairs],
            "port_security_enabled": port.port_security_enabled,
            "no_security_groups": port.explicit_groups,
            "network": port.network}


def group_from_rows(group_row, rule_rows) -> model.SecurityGroup:
    return model.SecurityGroup(
        id=group_row.id, name=group_row.name, description=group_row.description,
        stateful=group_row.stateful, rules=tuple(rule_from_row(r) for r in rule_rows))


@dataclasses.dataclass(frozen=True)
class DbState:
    """A consistent snapshot of the database as model values."""

    groups: Mapping[str, model.SecurityGroup]      # by group id
    ports: tuple[model.Port, ...]                  # ofport None
    hosts: Mapping[str, str]                       # port id -> host ("" = unbound;
    #                                                a port two hosts hold: the first by name)
    revision: int = 0

    def ports_on(self, host: str) -> tuple[model.Port, ...]:
        return tuple(p for p in self.ports if self.hosts.get(p.id) == host)

    def members(self) -> dict[str, frozenset[str]]:
        """Each group's member addresses (fixed IPs and allowed pairs) on any host;
        ports without a group count as members of `default`."""
        return {**{gid: frozenset() for gid in self.groups}, **model.group_members(self.ports)}


def state_from_tables(tables) -> DbState:
    """`tables` is idl.tables (read under the connection lock)."""
    rules_by_group: dict = {}
    for row in tables[RULE].rows.values():
        rules_by_group.setdefault(row.security_group.uuid, []).append(row)
    groups = {}
    for row in tables[GROUP].rows.values():
        group = group_from_rows(row, sorted(rules_by_group.get(row.uuid, ()),
                                            key=lambda r: r.id))
        groups[group.id] = group
    ports, hosts = [], {}
    bound: dict = {}
    for row in tables["Port_Binding"].rows.values():
        bound.setdefault(row.port, []).append(row.host)
    for row in tables[PORT].rows.values():
        port = port_from_row(row)
        ports.append(port)
        hosts[port.id] = min(bound.get(row.name, [""]))
    glob = next(iter(tables[GLOBAL].rows.values()), None)
    return DbState(groups=groups, ports=tuple(sorted(ports, key=lambda p: p.name)),
                   hosts=hosts, revision=glob.revision if glob is not None else 0)
