"""The rule and port vocabulary that people type, shared by the YAML format, the
command line and the database client: `dst_port`, `icmp_type`, `remote_ip`,
`remote_group`, port-range text and allowed-address-pair text.

Pure: text <-> model values; every value is validated by building the model's.
"""
from __future__ import annotations

from typing import Mapping

from sg_ofctl import model

RULE_KEYS = ("direction", "ethertype", "protocol", "dst_port", "icmp_type", "icmp_code",
             "remote_ip", "remote_group", "action", "description")
# model.Rule field -> the vocabulary's name for it, in error messages.
_FIELD_NAMES = {"remote_ip_prefix": "remote_ip", "remote_group_id": "remote_group"}


def _ascii_number(text: str) -> bool:
    text = text.strip()
    return text.isascii() and text.isdigit() and len(text) <= 18   # int() refuses > 4300


def parse_port_range(value) -> tuple[int, int]:
    """`PORT` or `MIN:MAX` -> (min, max) (the model checks the bounds)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, str):
        low, sep, high = value.partition(":")
        if _ascii_number(low) and (not sep or _ascii_number(high)):
            return int(low), int(high if sep else low)
    raise model.ValidationError("dst_port", value, "must be PORT or MIN:MAX")


def port_range_text(rule: model.Rule) -> str:
    """What a table shows in its port-range column: `MIN:MAX` or `type=T,code=C`."""
    low, high = rule.port_range_min, rule.port_range_max
    if low is None:
        return ""
    if rule.ip_proto in model.ICMP_NUMBERS:
        return f"type={low}" + (f",code={high}" if high is not None else "")
    return f"{low}:{high}"


def rule_from_fields(fields: Mapping, rule_id: str, group_id: str) -> model.Rule:
    """The vocabulary -> a validated model.Rule.  `remote_group` must already be
    the group's id (or, in a file, its name)."""
    for key, value in fields.items():
        if key not in RULE_KEYS:
            raise model.ValidationError(key, value, "unknown rule field (known: "
                                        f"{', '.join(RULE_KEYS)})")
    ethertype = fields.get("ethertype") or "IPv4"
    model.require_choice("ethertype", ethertype, model.ETHERTYPES)
    proto = model.parse_protocol(fields.get("protocol"), ethertype)
    low = high = None
    renamed = {}
    if fields.get("dst_port") is not None:
        if proto in model.ICMP_NUMBERS or proto is None:
            raise model.ValidationError("dst_port", fields["dst_port"],
                                        "needs protocol tcp, udp or sctp"
                                        + (" (use icmp_type/icmp_code for ICMP)"
                                           if proto is not None else ""))
        low, high = parse_port_range(fields["dst_port"])
        renamed = {"port_range_min": ("dst_port", fields["dst_port"]),
                   "port_range_max": ("dst_port", fields["dst_port"])}
    for key in ("icmp_type", "icmp_code"):
        if fields.get(key) is not None and proto not in model.ICMP_NUMBERS:
            raise model.ValidationError(key, fields[key], "needs protocol icmp or icmpv6")
    if proto in model.ICMP_NUMBERS:
        low, high = fields.get("icmp_type"), fields.get("icmp_code")
        renamed = {"port_range_min": ("icmp_type", low), "port_range_max": ("icmp_code", high)}
    description = fields.get("description")
    try:
        return model.Rule(
            id=rule_id, security_group_id=group_id,
            direction=fields.get("direction") or "ingress", ethertype=ethertype,
            protocol=fields.get("protocol"), port_range_min=low, port_range_max=high,
            remote_ip_prefix=fields.get("remote_ip"),
            remote_group_id=fields.get("remote_group"),
            action=fields.get("action") or "allow",
            description="" if description is None else description)
    except model.ValidationError as e:
        if e.field in renamed:
            name, value = renamed[e.field]
            raise model.ValidationError(name, value, e.reason) from None
        if e.field in _FIELD_NAMES:
            raise model.ValidationError(_FIELD_NAMES[e.field], e.value, e.reason) from None
        raise


def rule_to_fields(rule: model.Rule, group_name=lambda gid: gid) -> dict:
    """model.Rule -> the minimal vocabulary (defaults left out)."""
    out = {"direction": rule.direction}
    if rule.ethertype != "IPv4":
        out["ethertype"] = rule.ethertype
    if rule.protocol is not None:
        out["protocol"] = rule.protocol
    if rule.ip_proto in model.ICMP_NUMBERS:
        if rule.port_range_min is not None:
            out["icmp_type"] = rule.port_range_min
        if rule.port_range_max is not None:
            out["icmp_code"] = rule.port_range_max
    elif rule.port_range_min is not None:
        low, high = rule.port_range_min, rule.port_range_max
        out["dst_port"] = low if low == high else f"{low}:{high}"
    if rule.remote_ip_prefix is not None:
        out["remote_ip"] = rule.remote_ip_prefix
    if rule.remote_group_id is not None:
        out["remote_group"] = group_name(rule.remote_group_id)
    if rule.action != "allow":
        out["action"] = rule.action
    if rule.description:
        out["description"] = rule.description
    return out


def rule_sort_key(rule: model.Rule):
    """A stable, readable order: ingress first, then by what the rule matches."""
    return (rule.direction != "ingress", rule.ethertype, rule.ip_proto is not None,
            rule.ip_proto or 0, rule.port_range_min or 0, rule.port_range_max or 0,
            rule.remote_ip_prefix or "", rule.remote_group_id or "", rule.action,
            rule.description)


def pair_to_text(pair: model.AddressPair) -> str:
    return pair.ip_address if pair.mac_address is None else \
        f"{pair.ip_address},{pair.mac_address}"


def pair_from_text(text, field: str = "allowed_address_pairs") -> model.AddressPair:
    """`IP[/LEN][,MAC]` -> AddressPair (validated)."""
    if not isinstance(text, str):
        raise model.ValidationError(field, text, "expected IP[,MAC]")
    ip, _, mac = text.partition(",")
    return model.AddressPair(ip.strip(), mac.strip() or None)


def pair_from_value(value, field: str = "allowed_addresses") -> model.AddressPair:
    """`IP[,MAC]` text or a `{ip: IP, mac: MAC}` mapping -> AddressPair."""
    if isinstance(value, Mapping):
        unknown = set(value) - {"ip", "mac"}
        if unknown or "ip" not in value:
            raise model.ValidationError(field, dict(value),
                                        "a pair is IP[,MAC] or {ip: IP, mac: MAC}")
        return model.AddressPair(value["ip"], value.get("mac"))
    return pair_from_text(value, field)
