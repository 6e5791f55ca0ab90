"""Validated, immutable security groups, rules and ports, and the parsers of
their fields.  Field names follow Neutron's API.  Every constructor validates
its input and raises ValidationError naming the field and the bad value."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

import netaddr

from sg_ofctl import safetext


class ValidationError(ValueError):
    """Bad user input: names the field and the value."""

    def __init__(self, field_name: str, value, reason: str):
        self.field = field_name
        self.value = value
        self.reason = reason
        super().__init__(f"{field_name}={safetext.quote(value)}: {reason}")


DIRECTIONS = ("ingress", "egress")
ETHERTYPES = ("IPv4", "IPv6")
ACTIONS = ("allow", "deny")
DEFAULT_GROUP = "default"

# IANA protocol numbers for the names Neutron accepts.
PROTOCOL_NUMBERS = {
    "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8,
    "udp": 17, "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44,
    "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
    "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89,
    "pgm": 113, "vrrp": 112, "sctp": 132, "dccp": 33, "udplite": 136,
}
ICMP_NUMBERS = (1, 58)
# Protocols whose destination port Open vSwitch can match.
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp"}
# Protocols that have ports which Open vSwitch cannot match: refused, never widened.
UNMATCHABLE_PORT_PROTOCOLS = {33: "dccp", 136: "udplite"}


def _require_str(field_name, value, *, allow_empty=False, limit=safetext.MAX_NAME):
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ValidationError(field_name, value, "must be a non-empty string"
                              if not allow_empty else "must be a string")
    problem = safetext.text_problem(value, limit)
    if problem:
        raise ValidationError(field_name, value, problem)
    return value


def require_choice(field_name, value, choices):
    if value not in choices:
        raise ValidationError(field_name, value, f"must be one of {', '.join(choices)}")
    return value


def _require_int(field_name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and safetext.ascii_int(value) is not None:
            value = safetext.ascii_int(value)
        else:
            raise ValidationError(field_name, value, "must be an integer")
    if not low <= value <= high:
        raise ValidationError(field_name, value, f"must be between {low} and {high}")
    return value


def parse_mac(field_name: str, value) -> str:
    """A unicast MAC address in lower-case colon form."""
    try:
        mac = netaddr.EUI(value, dialect=netaddr.mac_unix_expanded)
    except (netaddr.AddrFormatError, TypeError, ValueError):
        raise ValidationError(field_name, value, "is not a MAC address") from None
    if mac.version != 48:
        raise ValidationError(field_name, value, "is not a 48-bit MAC address")
    if int(mac) >> 40 & 1:
        raise ValidationError(field_name, value, "is a multicast MAC address")
    if int(mac) == 0:
        raise ValidationError(field_name, value, "is the all-zero MAC address")
    return str(mac)


def parse_ip(field_name: str, value) -> str:
    """A single IP address (no prefix), normalised."""
    if not isinstance(value, str) or "/" in value:
        raise ValidationError(field_name, value, "is not an IP address")
    try:
        return str(netaddr.IPAddress(value))
    except (netaddr.AddrFormatError, TypeError, ValueError):
        raise ValidationError(field_name, value, "is not an IP address") from None


def parse_cidr(field_name: str, value) -> netaddr.IPNetwork:
    """An IP prefix; host bits are cleared (the normalised CIDR)."""
    if not isinstance(value, str):
        raise ValidationError(field_name, value, "is not an IP address or CIDR")
    try:
        net = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, TypeError, ValueError):
        raise ValidationError(field_name, value, "is not an IP address or CIDR") from None
    return net.cidr


def parse_protocol(value, ethertype: str) -> int | None:
    """Protocol name or number (or None/'any') -> IP protocol number or None."""
    if value is None or value == "any":
        return None
    if isinstance(value, bool):
        raise ValidationError("protocol", value, "is not a protocol name or number")
    if isinstance(value, int) or (isinstance(value, str) and value.isascii()
                                  and value.isdigit()):
        number = _require_int("protocol", value, 0, 255)
    elif not isinstance(value, str) or value.lower() not in PROTOCOL_NUMBERS:
        raise ValidationError("protocol", value, "unknown protocol name (use a name like "
                              "tcp, udp, icmp, icmpv6, sctp or a number 0-255)")
    else:
        number = PROTOCOL_NUMBERS[value.lower()]
    if ethertype == "IPv6" and number == 1:
        return 58
    if ethertype == "IPv4" and number == 58:
        raise ValidationError("protocol", value, "ICMPv6 needs ethertype IPv6")
    return number


@dataclass(frozen=True, slots=True)
class Rule:
    """One security-group rule.  `protocol` keeps what the user wrote;
    `ip_proto` is the resolved number (None for any)."""

    id: str
    security_group_id: str = ""
    direction: str = "ingress"
    ethertype: str = "IPv4"
    protocol: str | int | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    action: str = "allow"
    description: str = ""
    # Source ports: not in Neutron's API, but in its firewall drivers' rule dicts.
    source_port_range_min: int | None = None
    source_port_range_max: int | None = None
    ip_proto: int | None = field(default=None, init=False, compare=False)
    normalized_cidr: str | None = field(default=None, init=False, compare=False)

    def __post_init__(self):
        _require_str("id", self.id)
        require_choice("direction", self.direction, DIRECTIONS)
        require_choice("ethertype", self.ethertype, ETHERTYPES)
        require_choice("action", self.action, ACTIONS)
        _require_str("description", self.description, allow_empty=True,
                     limit=safetext.MAX_DESCRIPTION)
        proto = parse_protocol(self.protocol, self.ethertype)
        object.__setattr__(self, "ip_proto", proto)
        self._check_ports(proto)
        self._check_source_ports(proto)
        self._check_remote()

    def _check_ports(self, proto):
        lo, hi = self.port_range_min, self.port_range_max
        if lo is None and hi is None:
            return
        if proto in ICMP_NUMBERS:
            if lo is None:
                raise ValidationError("port_range_max", hi, "an ICMP code needs an ICMP type "
                                      "(port_range_min)")
            _require_int("port_range_min", lo, 0, 255)
            if hi is not None:
                _require_int("port_range_max", hi, 0, 255)
            return
        if proto in UNMATCHABLE_PORT_PROTOCOLS:
            name = UNMATCHABLE_PORT_PROTOCOLS[proto]
            raise ValidationError("port_range_min", lo, f"Open vSwitch cannot match {name} "
                                  "ports; refusing rather than allowing all ports")
        if proto not in PORT_PROTOCOLS:
            raise ValidationError("port_range_min", lo, f"protocol {self.protocol!r} has no "
                                  "ports (use tcp, udp or sctp)")
        if lo is None or hi is None:
            missing = "port_range_min" if lo is None else "port_range_max"
            raise ValidationError(missing, None, "a port range needs both min and max")
        lo = _require_int("port_range_min", lo, 1, 65535)
        hi = _require_int("port_range_max", hi, 1, 65535)
        if lo > hi:
            raise ValidationError("port_range_min", lo, f"is greater than port_range_max {hi}")
        object.__setattr__(self, "port_range_min", lo)
        object.__setattr__(self, "port_range_max", hi)

    def _check_source_ports(self, proto):
        lo, hi = self.source_port_range_min, self.source_port_range_max
        if (lo, hi) != (None, None) and proto not in PORT_PROTOCOLS:
            raise ValidationError("source_port_range_min", lo, f"protocol {self.protocol!r} "
                                  "has no ports Open vSwitch can match (use tcp, udp or sctp)")
        if (lo is None) != (hi is None):
            raise ValidationError("source_port_range_min" if lo is None else
                                  "source_port_range_max", None, "needs both min and max")
        if lo is not None and _require_int("source_port_range_min", lo, 1, 65535) > \
                _require_int("source_port_range_max", hi, 1, 65535):
            raise ValidationError("source_port_range_min", lo, f"is greater than {hi}")

    @property
    def source_port_range(self) -> tuple[int, int] | None:
        """(min, max) of the source port, None when any."""
        low, high = self.source_port_range_min, self.source_port_range_max
        if low is None or high is None or (low, high) == (1, 65535):
            return None
        return low, high

    def _check_remote(self):
        if self.remote_ip_prefix is not None and self.remote_group_id is not None:
            raise ValidationError("remote_group_id", self.remote_group_id,
                                  "remote_ip_prefix and remote_group_id are exclusive")
        if self.remote_group_id is not None:
            _require_str("remote_group_id", self.remote_group_id)
        if self.remote_ip_prefix is None:
            return
        net = parse_cidr("remote_ip_prefix", self.remote_ip_prefix)
        if (net.version == 4) != (self.ethertype == "IPv4"):
            raise ValidationError("remote_ip_prefix", self.remote_ip_prefix,
                                  f"does not match ethertype {self.ethertype}")
        object.__setattr__(self, "normalized_cidr", str(net))

    @property
    def port_range(self) -> tuple[int, int] | None:
        """(min, max) for tcp/udp/sctp, None when all ports (1-65535 included)."""
        low, high = self.port_range_min, self.port_range_max
        if self.ip_proto not in PORT_PROTOCOLS or low is None or high is None:
            return None
        if (low, high) == (1, 65535):
            return None
        return low, high

    @property
    def icmp_type_code(self) -> tuple[int | None, int | None]:
        if self.ip_proto not in ICMP_NUMBERS:
            return None, None
        return self.port_range_min, self.port_range_max

    @property
    def remote_net(self) -> netaddr.IPNetwork | None:
        """The remote prefix, or None when it is any (absent or /0)."""
        if self.normalized_cidr is None:
            return None
        net = netaddr.IPNetwork(self.normalized_cidr)
        return None if net.prefixlen == 0 else net

    def identity(self) -> tuple:
        """What makes two rules duplicates (Neutron: everything but id/description)."""
        rng = self.port_range
        identity = (self.direction, self.ethertype, self.ip_proto,
                    rng if self.ip_proto in PORT_PROTOCOLS else self.icmp_type_code,
                    str(self.remote_net) if self.remote_net else None,
                    self.remote_group_id, self.action)
        source = self.source_port_range
        return identity if source is None else identity + (source,)


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    id: str
    name: str = ""
    description: str = ""
    stateful: bool = True
    rules: tuple[Rule, ...] = ()

    def __post_init__(self):
        _require_str("security_group.id", self.id)
        _require_str("name", self.name, allow_empty=True)
        if "," in self.name:
            raise ValidationError("name", self.name, "a group name cannot contain a comma "
                                  "(instance tags list groups separated by commas)")
        _require_str("description", self.description, allow_empty=True,
                     limit=safetext.MAX_DESCRIPTION)
        if not isinstance(self.stateful, bool):
            raise ValidationError("stateful", self.stateful, "must be true or false")
        rules = tuple(_as_rule(r, self.id) for r in self.rules)
        seen: dict[tuple, str] = {}
        for rule in rules:
            if rule.security_group_id != self.id:
                raise ValidationError("security_group_id", rule.security_group_id,
                                      f"rule {rule.id} is listed under group {self.id}")
            if rule.identity() in seen:
                raise ValidationError("rule", rule.id, f"duplicates rule {seen[rule.identity()]}")
            seen[rule.identity()] = rule.id
        object.__setattr__(self, "rules", rules)

    @property
    def display_name(self) -> str:
        return self.name or self.id


def _as_rule(value, group_id: str) -> Rule:
    if isinstance(value, Rule):
        if not value.security_group_id:
            return dataclasses.replace(value, security_group_id=group_id)
        return value
    if not isinstance(value, Mapping):
        raise ValidationError("rules", value, "each rule must be a mapping")
    data = dict(value)
    data.setdefault("security_group_id", group_id)
    known = {f.name for f in dataclasses.fields(Rule) if f.init}
    for key in data:
        if key not in known:
            raise ValidationError(key, data[key], "unknown rule field")
    return Rule(**data)


@dataclass(frozen=True, slots=True)
class AddressPair:
    """An allowed address pair: extra source IP (or CIDR), optional own MAC."""

    ip_address: str
    mac_address: str | None = None

    def __post_init__(self):
        net = parse_cidr("allowed_address_pairs.ip_address", self.ip_address)
        object.__setattr__(self, "ip_address", str(net.ip) if net.size == 1 else str(net))
        if self.mac_address is not None:
            object.__setattr__(self, "mac_address",
                               parse_mac("allowed_address_pairs.mac_address", self.mac_address))


@dataclass(frozen=True, slots=True)
class Port:
    """An instance NIC.  `network` is its VLAN tag on the bridge (0 = untagged)
    and the key of its conntrack zone; `ofport` is set once it is on a bridge.
    `explicit_groups`: `security_groups` is the whole list even when empty (a
    port with "no security group", as in Neutron: it passes only what a VM needs
    to boot); otherwise an empty list means `default`.  Kept only where it
    matters (no groups, port security on): equal ports compare equal."""

    id: str
    mac: str
    fixed_ips: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    port_security_enabled: bool = True
    security_groups: tuple[str, ...] = ()
    network: int = 0
    ofport: int | None = None
    name: str = ""
    explicit_groups: bool = False

    def __post_init__(self):
        _require_str("port.id", self.id)
        _require_str("name", self.name, allow_empty=True)
        object.__setattr__(self, "mac", parse_mac("mac_address", self.mac))
        if isinstance(self.fixed_ips, str):
            raise ValidationError("fixed_ips", self.fixed_ips, "must be a list of addresses")
        ips = tuple(dict.fromkeys(parse_ip("fixed_ips", ip) for ip in self.fixed_ips))
        object.__setattr__(self, "fixed_ips", ips)
        pairs = tuple(p if isinstance(p, AddressPair) else _as_pair(p)
                      for p in self.allowed_address_pairs)
        object.__setattr__(self, "allowed_address_pairs", pairs)
        if not isinstance(self.port_security_enabled, bool):
            raise ValidationError("port_security_enabled", self.port_security_enabled,
                                  "must be true or false")
        if isinstance(self.security_groups, str):
            raise ValidationError("security_groups", self.security_groups,
                                  "must be a list of group ids")
        groups = tuple(dict.fromkeys(_require_str("security_groups", g)
                                     for g in self.security_groups))
        object.__setattr__(self, "security_groups", groups)
        if not self.port_security_enabled and (groups or pairs):
            what = "security_groups" if groups else "allowed_address_pairs"
            raise ValidationError(what, list(groups or pairs),
                                  "port security is disabled on this port")
        object.__setattr__(self, "network", _require_int("network", self.network, 0, 4094))
        if not isinstance(self.explicit_groups, bool):
            raise ValidationError("explicit_groups", self.explicit_groups, "must be a bool")
        object.__setattr__(self, "explicit_groups",
                           self.explicit_groups and not groups and self.port_security_enabled)
        if self.ofport is not None:
            object.__setattr__(self, "ofport", _require_int("ofport", self.ofport, 1, 0xfeff))

    @property
    def effective_groups(self) -> tuple[str, ...]:
        """The port's groups; `default` when it has none (and port security is on)."""
        if not self.port_security_enabled:
            return ()
        if self.explicit_groups:
            return self.security_groups
        return self.security_groups or (DEFAULT_GROUP,)

    def addresses(self) -> tuple[str, ...]:
        """Every source address the port may use: fixed IPs and allowed pairs."""
        return self.fixed_ips + tuple(p.ip_address for p in self.allowed_address_pairs)


def _as_pair(value) -> AddressPair:
    if isinstance(value, str):
        return AddressPair(value)
    if isinstance(value, Mapping) and "ip_address" in value:
        unknown = set(value) - {"ip_address", "mac_address"}
        if unknown:
            key = sorted(unknown)[0]
            raise ValidationError(f"allowed_address_pairs.{key}", value[key], "unknown field")
        return AddressPair(value["ip_address"], value.get("mac_address"))
    raise ValidationError("allowed_address_pairs", value,
                          "each pair needs an ip_address (and optional mac_address)")


def default_group(group_id: str = DEFAULT_GROUP) -> SecurityGroup:
    """The `default` group: ingress from its own members, egress anywhere."""
    rules = []
    for ethertype in ETHERTYPES:
        rules.append(Rule(id=f"{group_id}-egress-{ethertype}", direction="egress",
                          ethertype=ethertype))
        rules.append(Rule(id=f"{group_id}-ingress-{ethertype}", direction="ingress",
                          ethertype=ethertype, remote_group_id=group_id))
    return SecurityGroup(id=group_id, name=DEFAULT_GROUP,
                         description="Default security group", rules=tuple(rules))

