"""Why is a packet allowed or dropped?  Pure: evaluates the reference semantics
on the sender's egress and the receiver's ingress, naming the deciding group
and rule.  An endpoint is a port (name or id) or an IP address outside."""
from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from sg_ofctl.model import HostView, Port, SecurityGroup, ValidationError
from sg_ofctl.reference import Packet, Reference

OUTSIDE_MAC = "fa:16:3e:ff:ff:fe"
UPLINK = 0xfeff
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}


@dataclass(frozen=True)
class Step:
    side: str       # "egress" or "ingress"
    port: str       # port name
    groups: tuple[str, ...]
    allowed: bool
    reason: str


def endpoint(ports, value: str, field: str):
    """(the port named or numbered `value`, None), or (None, the IP address)."""
    for port in ports:
        if value in (port.id, port.name):
            return port, None
    try:
        return None, str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(field, value, "is neither a port nor an IP address") from None


def address_for(port: Port, version: int, field: str) -> str:
    """The port's first fixed IP of that version."""
    for ip in port.fixed_ips:
        if ipaddress.ip_address(ip).version == version:
            return ip
    raise ValidationError(field, port.name or port.id, f"has no IPv{version} address")


def explain(groups: dict[str, SecurityGroup], ports, members, src: str, dst: str,
            protocol: str = "tcp", dst_port: int | None = None, src_port: int = 40000,
            icmp_type: int = 8, icmp_code: int = 0, state: str = "new") -> list[Step]:
    """The steps a packet from `src` to `dst` goes through, in order."""
    src_port_obj, src_ip = endpoint(ports, src, "from")
    dst_port_obj, dst_ip = endpoint(ports, dst, "to")
    if src_port_obj is None and dst_port_obj is None:
        raise ValidationError("to", dst, "at least one end must be a port")
    # The family: that of the outside address, else of the receiving port's first IP.
    outside = src_ip or dst_ip
    first = next((p.fixed_ips[0] for p in (dst_port_obj, src_port_obj) if p and p.fixed_ips),
                 None)
    if outside is None and first is None:
        raise ValidationError("to", dst, "neither end has an IP address")
    version = ipaddress.ip_address(outside or first).version
    if src_port_obj is not None:
        src_ip = address_for(src_port_obj, version, "from")
    if dst_port_obj is not None:
        dst_ip = address_for(dst_port_obj, version, "to")
    if protocol not in PROTOCOLS:
        raise ValidationError("protocol", protocol, f"must be one of {', '.join(PROTOCOLS)}")
    proto = PROTOCOLS[protocol]
    if proto == 1 and version == 6:
        proto = 58
    if proto in (6, 17, 132) and dst_port is None:
        raise ValidationError("dst_port", None, f"{protocol} needs a destination port")
    family = "ipv4" if version == 4 else "ipv6"
    l4 = dict(proto=proto, sport=src_port, dport=dst_port) if proto in (6, 17, 132) else \
        dict(proto=proto, icmp_type=icmp_type if proto == 1 else 128, icmp_code=icmp_code)
    steps = []
    for side, port in (("egress", src_port_obj), ("ingress", dst_port_obj)):
        if port is None:
            continue
        local = dataclasses.replace(port, ofport=1)
        view = HostView(ports=(local,), groups=groups, members=members, uplinks=(UPLINK,))
        if side == "egress":
            pkt = Packet(in_port=1, eth_src=local.mac, eth_dst=OUTSIDE_MAC, eth_type=family,
                         src_ip=src_ip, dst_ip=dst_ip, **l4)
        else:
            pkt = Packet(in_port=UPLINK, eth_src=OUTSIDE_MAC, eth_dst=local.mac,
                         eth_type=family, src_ip=src_ip, dst_ip=dst_ip,
                         vlan=local.network or None, **l4)
        outcome = Reference(view).evaluate(pkt, state)
        reason = outcome.reason
        if not local.port_security_enabled:
            reason = "port security is disabled: no filtering"
        names = tuple(groups[g].display_name if g in groups else g
                      for g in local.effective_groups)
        steps.append(Step(side, port.name or port.id, names, outcome.action != "drop", reason))
    return steps
