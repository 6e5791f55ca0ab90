"""Neutron's firewall-driver dicts -> the sg-ofctl model.  Pure: no neutron import.

What arrives (neutron/db/securitygroups_rpc_base.py, the push-notification cache):
- rules per group, converted: direction, ethertype, protocol (name or number
  text), port_range_min/max, source_ip_prefix (ingress) or dest_ip_prefix
  (egress), remote_group_id or remote_address_group_id, stateful; no rule id;
- members per remote group or address group: {'IPv4': [(ip, mac)...], 'IPv6': [...]}
  (address groups: (cidr, None));
- ports: Port.to_dict() plus fixed_ips flattened to strings, security_groups,
  allowed_address_pairs, port_security_enabled; the local VLAN and ofport come
  from OVSDB, not from the dict.

`NeutronState` keeps the latest of each and builds the compiler's HostView,
leaving out (and reporting) what the model refuses, so one bad rule or port
never stops the others: a refused rule allows nothing, a refused port gets no
flows (its traffic is dropped), fail closed."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sg_ofctl.model import (AddressPair, HostView, MemberAddresses, Port, Rule,
                            SecurityGroup, ValidationError, port_problems)

LOG = logging.getLogger(__name__)

MAX_RULES_PER_GROUP = 10_000
MAX_MEMBERS = 1_000_000


def _rule_id(group_id: str, fields: tuple) -> str:
    """A stable id from the rule's content (Neutron sends no id): the same rule
    gets the same cookie across batches and agent restarts."""
    digest = hashlib.blake2b(repr(fields).encode(), digest_size=6).hexdigest()
    return f"{group_id}/{digest}"


MATCH_KEYS = frozenset((
    "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "source_port_range_min", "source_port_range_max", "source_ip_prefix", "dest_ip_prefix",
    "destination_ip_prefix",
    "remote_ip_prefix", "normalized_cidr", "remote_group_id", "remote_address_group_id",
    "stateful"))
# Keys that say nothing about which packets match.
INFO_KEYS = frozenset(("id", "security_group_id", "description", "tenant_id", "project_id",
                       "revision_number", "created_at", "updated_at", "tags",
                       "belongs_to_default_sg", "standard_attr_id"))


def rule_from_neutron(group_id: str, rule: Mapping) -> Rule:
    """One converted Neutron rule dict -> Rule (ValidationError names the field).
    A key this driver does not know is refused: ignoring a match it does not
    understand would allow more than the rule does."""
    if not isinstance(rule, Mapping):
        raise ValidationError("security_group_rules", rule, "each rule must be a mapping")
    for key in rule:
        if key not in MATCH_KEYS and key not in INFO_KEYS:
            raise ValidationError(str(key), rule[key], "unknown rule field")
    direction = rule.get("direction")
    if direction == "ingress":
        prefix = rule.get("source_ip_prefix")
    else:  # Neutron's own functional tests also write destination_ip_prefix
        prefix = rule.get("dest_ip_prefix") or rule.get("destination_ip_prefix")
    prefix = rule.get("normalized_cidr") or prefix or rule.get("remote_ip_prefix")
    remote = rule.get("remote_group_id") or rule.get("remote_address_group_id")
    fields = dict(direction=direction, ethertype=rule.get("ethertype", "IPv4"),
                  protocol=rule.get("protocol"), port_range_min=rule.get("port_range_min"),
                  port_range_max=rule.get("port_range_max"), remote_ip_prefix=prefix,
                  remote_group_id=remote,
                  source_port_range_min=rule.get("source_port_range_min"),
                  source_port_range_max=rule.get("source_port_range_max"))
    key = tuple(sorted((k, str(v)) for k, v in fields.items()))
    return Rule(id=_rule_id(group_id, key), security_group_id=group_id, **fields)


def group_from_neutron(group_id: str, rules: Iterable[Mapping],
                       stateful: bool | None = None) -> tuple[SecurityGroup, list[str]]:
    """A group from its rule dicts; refused rules are left out and reported.
    Rules that are the same to the model (e.g. 0.0.0.0/0 and no prefix) are one."""
    rules = list(rules)
    if len(rules) > MAX_RULES_PER_GROUP:
        raise ValidationError("security_group_rules", len(rules),
                              f"group {group_id} has more than {MAX_RULES_PER_GROUP} rules")
    out: dict[tuple, Rule] = {}
    errors = []
    flags = set()
    for raw in rules:
        try:
            rule = rule_from_neutron(group_id, raw)
        except ValidationError as e:
            shown = dict(raw) if isinstance(raw, Mapping) else raw
            errors.append(f"group {group_id}: rule {shown!r} refused: {e}")
            continue
        flags.add(raw.get("stateful", True) is not False)
        out.setdefault(rule.identity(), rule)
    if stateful is None:
        stateful = flags != {False}  # Neutron copies the group's flag onto each rule
    return SecurityGroup(id=group_id, stateful=stateful, rules=tuple(out.values())), errors


def members_from_neutron(remote_id: str, members) -> frozenset[str]:
    """{'IPv4': [(ip, mac), ...], 'IPv6': [...]} (or plain address lists) -> addresses."""
    if not isinstance(members, Mapping):
        raise ValidationError("members", members, f"members of {remote_id} must be a "
                              "mapping of ethertype to addresses")
    out = set()
    for ethertype, entries in members.items():
        if ethertype not in ("IPv4", "IPv6"):
            raise ValidationError("members", ethertype, f"members of {remote_id}: unknown "
                                  "ethertype")
        for entry in entries:
            address = entry[0] if isinstance(entry, (tuple, list)) else entry
            out.add(address)
            if len(out) > MAX_MEMBERS:
                raise ValidationError("members", len(out), f"{remote_id} has more than "
                                      f"{MAX_MEMBERS} members")
    return frozenset(out)


def port_security(port: Mapping) -> bool:
    return port.get("port_security_enabled", True) is not False


def port_from_neutron(port: Mapping, ofport: int, vlan: int) -> Port:
    """A Neutron port dict on a local VLAN -> Port (groups explicit: [] means none)."""
    secured = port_security(port)
    pairs = tuple(AddressPair(p["ip_address"], p.get("mac_address"))
                  for p in port.get("allowed_address_pairs") or () if secured)
    groups = tuple(port.get("security_groups") or ()) if secured else ()
    fixed = []
    for ip in port.get("fixed_ips") or ():
        fixed.append(ip["ip_address"] if isinstance(ip, Mapping) else ip)
    return Port(id=port.get("device") or port["id"], mac=port["mac_address"],
                fixed_ips=tuple(fixed), allowed_address_pairs=pairs,
                port_security_enabled=secured, security_groups=groups, network=vlan,
                ofport=ofport, explicit_groups=True)


@dataclass(frozen=True)
class LocalPort:
    """A port as the driver holds it: Neutron's dict (None for a trusted port) and
    where it is on br-int."""

    device: str
    mac: str
    ofport: int
    vlan: int
    port: Mapping | None = None


@dataclass
class NeutronState:
    """The latest rules, members and ports the agent gave the driver."""

    rules: dict[str, list] = field(default_factory=dict)
    members: dict[str, frozenset[str]] = field(default_factory=dict)
    ports: dict[str, LocalPort] = field(default_factory=dict)
    _groups: dict[str, tuple] = field(default_factory=dict)   # sg id -> (rules, group)
    _ports: dict[str, tuple] = field(default_factory=dict)    # device -> (LocalPort, Port)

    def set_rules(self, group_id: str, rules: Iterable[Mapping]) -> None:
        self.rules[group_id] = list(rules)

    def set_members(self, remote_id: str, members) -> None:
        """Validated once here, not in every batch's view."""
        self.members[remote_id] = MemberAddresses.parse(members_from_neutron(remote_id, members),
                                                        f"members[{remote_id}]")

    def _group(self, group_id: str, stateful: bool | None) -> SecurityGroup:
        rules = self.rules.get(group_id, [])
        cached = self._groups.get(group_id)
        if cached is not None and cached[0] == (rules, stateful):
            return cached[1]
        group, errors = group_from_neutron(group_id, rules, stateful)
        for error in errors:
            LOG.error("sg-ofctl: %s", error)
        self._groups[group_id] = ((list(rules), stateful), group)
        return group

    def host_view(self) -> tuple[HostView, list[tuple[str, str]]]:
        """The compiler's input, and (device, reason) for every port left out."""
        refused: list[tuple[str, str]] = []
        ports = []
        for local in self.ports.values():
            cached = self._ports.get(local.device)
            if cached is not None and cached[0] == local:
                ports.append(cached[1])
                continue
            try:
                if local.port is None:  # trusted: unfiltered
                    port = Port(id=local.device, mac=local.mac, network=local.vlan,
                                ofport=local.ofport, port_security_enabled=False)
                else:
                    port = port_from_neutron(local.port, local.ofport, local.vlan)
            except (ValidationError, KeyError, TypeError, AttributeError) as e:
                refused.append((local.device, f"{type(e).__name__}: {e}"))
                continue
            self._ports[local.device] = (local, port)
            ports.append(port)
        for device in set(self._ports) - set(self.ports):
            del self._ports[device]
        used = {g for p in ports for g in p.effective_groups}
        # A group with rules says whether it is stateful; one without takes that of
        # the groups it is used with (Neutron refuses ports that mix them).
        known = {gid: self._group(gid, None) for gid in used if self.rules.get(gid)}
        groups = dict(known)
        for gid in used - set(known):
            flags = {known[g].stateful for p in ports if gid in p.effective_groups
                     for g in p.effective_groups if g in known}
            groups[gid] = self._group(gid, flags != {False})
        remote = {r.remote_group_id for g in groups.values() for r in g.rules
                  if r.remote_group_id is not None}
        members = {rid: self.members.get(rid, frozenset()) for rid in remote}
        problems = port_problems(ports, {gid: g.stateful for gid, g in groups.items()},
                                 unique_ips=False)
        bad = {id(p) for p, _ in problems}
        refused += [(p.id, str(e)) for p, e in problems]
        ports = [p for p in ports if id(p) not in bad]
        return HostView(ports=tuple(ports), groups=groups, members=members), refused
