"""What holds across ports, and the compiler's input.

The rules across ports are decided here only (`port_problems`), and so is
membership: a group's members are the addresses of its ports
(`group_members`).  `HostView` is the compiler's input: one hypervisor's local
ports plus every group, rule and remote-group member address they depend on."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sg_ofctl.model.values import (DEFAULT_GROUP, Port, SecurityGroup, ValidationError,
                                   default_group, parse_cidr, parse_ip)


class MemberAddresses(frozenset):
    """A remote group's member addresses, validated and normalised once."""

    @classmethod
    def parse(cls, addresses, field_name: str = "members") -> "MemberAddresses":
        if isinstance(addresses, cls):
            return addresses
        if isinstance(addresses, str):
            raise ValidationError(field_name, addresses, "must be a list of addresses")
        return cls(str(parse_cidr(field_name, a)) if isinstance(a, str) and "/" in a
                   else parse_ip(field_name, a) for a in addresses)


# ---- rules across ports: decided here only ---------------------------------------
# Used by HostView (the compiler's input), the YAML format (desired.check), the
# database writes (ovsdb: port create/set, agents' tag-declared rows) and the
# agent's view builder (which leaves out exactly the ports named by a problem).

class AddressClash(ValidationError):
    """A MAC or fixed IP that two ports use on one network (the database layer
    reports it as a conflict with what it holds)."""

    def __init__(self, field_name, value, reason, ports):
        super().__init__(field_name, value, reason)
        self.ports = ports


def _label(port: Port) -> str:
    return port.name or port.id


def port_problems(ports: Iterable[Port], stateful_by_group: Mapping[str, bool],
                  group_names: Mapping[str, str] | None = None, *,
                  unique_ips: bool = True) -> list[tuple[Port, ValidationError]]:
    """Every cross-port problem, with the port it closes (a clash closes both):
    each of a port's groups exists (a key of `stateful_by_group`; `default`
    stands for a port without groups), its groups are all stateful or all
    stateless, and per network its MAC (and the MACs of its allowed address
    pairs, when port security is on) and its fixed IPs are no other port's.
    Ports are taken in name order, so the verdict does not depend on the
    caller's order.  `group_names` (id -> name) only makes messages readable.
    `unique_ips=False` leaves out the fixed-IP rule (HostView: see there)."""
    names = group_names or {}
    out: list[tuple[Port, ValidationError]] = []
    macs: dict = {}
    ips: dict = {}
    for port in sorted(ports, key=lambda p: (_label(p), p.id)):
        missing = [g for g in port.effective_groups if g not in stateful_by_group]
        if missing:
            out.append((port, ValidationError(
                "security_groups", names.get(missing[0], missing[0]),
                f"port {_label(port)!r} names a group that does not exist")))
            continue
        if len({stateful_by_group[g] for g in port.effective_groups}) > 1:
            out.append((port, ValidationError(
                "security_groups", [names.get(g, g) for g in port.effective_groups],
                f"port {_label(port)!r} mixes stateful and stateless groups")))
            continue
        own = {port.mac: "its MAC"}
        if port.port_security_enabled:
            for pair in port.allowed_address_pairs:
                if pair.mac_address and pair.mac_address not in own:
                    own[pair.mac_address] = "an allowed address pair"
        for mac, use in own.items():
            first = macs.setdefault((port.network, mac), (port, use))
            if first[0] is not port:
                out.extend(_clash("mac_address", mac, first, (port, use)))
        for ip in port.fixed_ips if unique_ips else ():
            first = ips.setdefault((port.network, ip), (port, "a fixed IP"))
            if first[0] is not port:
                out.extend(_clash("fixed_ips", ip, first, (port, "a fixed IP")))
    return out


def _clash(field_name, value, first, second):
    """The problem of both ports of a clash."""
    (a, a_use), (b, b_use) = first, second
    a_text, b_text = repr(_label(a)), repr(_label(b))
    if a_use != b_use:
        a_text, b_text = f"{a_text} ({a_use})", f"{b_text} ({b_use})"
    error = AddressClash(field_name, value, f"used by port {a_text} and port {b_text} "
                         f"on network {b.network}", (a, b))
    return [(a, error), (b, error)]


def check_ports(ports: Iterable[Port], stateful_by_group: Mapping[str, bool],
                group_names: Mapping[str, str] | None = None, *,
                unique_ips: bool = True) -> None:
    """Raise the first of port_problems() (ValidationError; AddressClash for a clash)."""
    problems = port_problems(ports, stateful_by_group, group_names, unique_ips=unique_ips)
    if problems:
        raise problems[0][1]


def check_remote_groups(groups: Iterable[SecurityGroup], known) -> None:
    """Every rule's remote group is one of `known` (group ids)."""
    for group in groups:
        for rule in group.rules:
            if rule.remote_group_id is not None and rule.remote_group_id not in known:
                raise ValidationError("remote_group_id", rule.remote_group_id,
                                      f"rule {rule.id} of group {group.display_name!r} "
                                      "names a group that does not exist")


@dataclass(frozen=True)
class HostView:
    """The compiler's input: one host's local ports, the groups they use (and the
    groups their rules name), the addresses of every remote group's members
    anywhere in the cloud, and the host's uplink ofports (trunks, tunnels)."""

    ports: tuple[Port, ...]
    groups: Mapping[str, SecurityGroup]
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    uplinks: tuple[int, ...] = ()

    def __post_init__(self):
        groups = dict(self.groups)
        if any(p.port_security_enabled and not p.security_groups and not p.explicit_groups
               for p in self.ports):
            groups.setdefault(DEFAULT_GROUP, default_group())
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "ports", tuple(self.ports))
        members = {gid: MemberAddresses.parse(addrs, f"members[{gid}]")
                   for gid, addrs in dict(self.members).items()}
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "uplinks", tuple(sorted(set(self.uplinks))))
        self._check()

    def _check(self):
        ofports: dict[int, str] = {}
        for port in self.ports:
            if port.ofport is None:
                raise ValidationError("ofport", None, f"local port {port.id} has no ofport")
            if port.ofport in ofports or port.ofport in self.uplinks:
                raise ValidationError("ofport", port.ofport, f"used by {port.id} and "
                                      f"{ofports.get(port.ofport, 'an uplink')}")
            ofports[port.ofport] = port.id
        # Fixed IPs unique per network is the cloud's address plan: every writer
        # and the agent's view enforce it; the compiler is right for any
        # addresses (the property tests share IPs between ports on purpose).
        check_ports(self.ports, {gid: g.stateful for gid, g in self.groups.items()},
                    unique_ips=False)
        check_remote_groups(self.groups.values(), set(self.groups) | set(self.members))

    def member_addresses(self, group_id: str) -> frozenset[str]:
        return self.members.get(group_id, frozenset())

    def groups_of(self, port: Port) -> tuple[SecurityGroup, ...]:
        return tuple(self.groups[g] for g in port.effective_groups)

    def is_stateful(self, port: Port) -> bool:
        return all(g.stateful for g in self.groups_of(port))


def group_members(ports: Iterable[Port], groups: Iterable[str] | None = None
                  ) -> dict[str, frozenset[str]]:
    """Each group's members: the addresses (fixed IPs and allowed address pairs)
    of its ports, wherever they are; a port without groups is a member of
    `default`, a port without port security of none.  `groups` limits the
    answer to those groups (each of them present, maybe empty)."""
    wanted = None if groups is None else set(groups)
    out: dict[str, set[str]] = {g: set() for g in wanted or ()}
    for port in ports:
        for gid in port.effective_groups:
            if wanted is None or gid in wanted:
                out.setdefault(gid, set()).update(port.addresses())
    return {gid: frozenset(addrs) for gid, addrs in out.items()}


def host_view(ports: Iterable[Port], groups: Iterable[SecurityGroup],
              remote_members: Mapping[str, Iterable[str]] | None = None,
              uplinks: Iterable[int] = ()) -> HostView:
    """A HostView whose members are its own ports' addresses plus
    `remote_members` (the addresses of members on other hosts)."""
    ports = tuple(ports)
    members = group_members(ports)
    for gid, addresses in (remote_members or {}).items():
        members[gid] = members.get(gid, frozenset()) | frozenset(addresses)
    return HostView(ports=ports, groups={g.id: g for g in groups}, members=members,
                    uplinks=tuple(uplinks))


def build_groups(groups: Iterable) -> dict[str, SecurityGroup]:
    """Mappings or SecurityGroup values -> {id: group}, refusing duplicate ids."""
    out = {}
    for g in groups:
        if not isinstance(g, SecurityGroup):
            if not isinstance(g, Mapping):
                raise ValidationError("security_groups", g, "each group must be a mapping")
            known = {f.name for f in dataclasses.fields(SecurityGroup)}
            for key in g:
                if key not in known:
                    raise ValidationError(key, g[key], "unknown security group field")
            g = SecurityGroup(**{**g, "rules": tuple(g.get("rules", ()))})
        if g.id in out:
            raise ValidationError("security_group.id", g.id, "duplicate group id")
        out[g.id] = g
    return out
