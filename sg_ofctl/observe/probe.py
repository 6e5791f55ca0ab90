"""The packet a trace sends: from a port or IP to a port or IP, built from the
ports' real addresses, as ofproto/trace flow text and as the reference
evaluator's Packet.  Pure."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sg_ofctl.explain import address_for, endpoint
from sg_ofctl.model import HostView, Port, ValidationError
from sg_ofctl.reference import Packet

OUTSIDE_MAC = "fa:16:3e:ff:ff:fe"   # the MAC of "somewhere else" (as explain uses)
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}
# --state -> (the reference's connection state, ofproto/trace --ct-next flags)
STATES = {"new": ("new", "trk,new"), "established": ("est", "trk,est"),
          "reply": ("rpl", "trk,est,rpl")}
_L4_NAME = {(6, 4): "tcp", (6, 6): "tcp6", (17, 4): "udp", (17, 6): "udp6",
            (132, 4): "sctp", (132, 6): "sctp6", (1, 4): "icmp", (58, 6): "icmp6"}


@dataclass(frozen=True)
class TraceRequest:
    src: str
    dst: str
    protocol: str = "tcp"
    dst_port: int | None = None
    src_port: int = 40000
    icmp_type: int = 8
    icmp_code: int = 0
    state: str = "new"


@dataclass(frozen=True)
class Probe:
    flow: str            # ofproto/trace flow text
    ct_state: str        # --ct-next flags for every conntrack recirculation
    packet: Packet       # the same packet for the reference evaluator
    conn: str            # the reference's connection state
    src: str             # how the ends read: "port web-1 (10.0.0.1)", "10.9.9.9"
    dst: str


@dataclass(frozen=True)
class _End:
    port: Port | None    # a port (local or on another host)
    local: bool
    ip: str | None


def _end(view: HostView, others, value: str, field: str) -> _End:
    local = next((p for p in view.ports if value in (p.id, p.name)), None)
    if local is not None:
        return _End(local, True, None)
    port, ip = endpoint(others, value, field)
    return _End(port, False, ip)


def _check_number(field: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field, value, f"must be an integer from {low} to {high}")


def build_probe(view: HostView, request: TraceRequest, others=()) -> Probe:
    """`others`: ports of other hosts (a packet to or from them uses their
    addresses and crosses an uplink).  At least one end is a local port."""
    r = request
    if r.protocol not in PROTOCOLS:
        raise ValidationError("protocol", r.protocol, f"must be one of {', '.join(PROTOCOLS)}")
    if r.state not in STATES:
        raise ValidationError("state", r.state, f"must be one of {', '.join(STATES)}")
    src, dst = _end(view, others, r.src, "from"), _end(view, others, r.dst, "to")
    if not src.local and not dst.local:
        raise ValidationError("to", r.dst, "neither end is a port on this host's bridge")
    if src.local and dst.local and src.port is dst.port:
        raise ValidationError("to", r.dst, "is the sending port itself")
    outside = src.ip or dst.ip
    first = next((p.fixed_ips[0] for p in (dst.port, src.port) if p and p.fixed_ips), None)
    if outside is None and first is None:
        raise ValidationError("to", r.dst, "neither end has an IP address")
    version = ipaddress.ip_address(outside or first).version
    src_ip = src.ip or address_for(src.port, version, "from")
    dst_ip = dst.ip or address_for(dst.port, version, "to")
    if ipaddress.ip_address(src_ip).version != ipaddress.ip_address(dst_ip).version:
        raise ValidationError("to", r.dst, "is not of the sender's address family")
    proto = PROTOCOLS[r.protocol]
    if proto == 1 and version == 6:
        proto = 58
    _check_number("src_port", r.src_port, 1, 65535)
    if proto in (6, 17, 132):
        if r.dst_port is None:
            raise ValidationError("dst_port", None, f"{r.protocol} needs a destination port")
        _check_number("dst_port", r.dst_port, 1, 65535)
        l4 = dict(proto=proto, sport=r.src_port, dport=r.dst_port)
        prefix = {6: "tcp", 17: "udp", 132: "sctp"}[proto]
        l4_text = f"{prefix}_src={r.src_port},{prefix}_dst={r.dst_port}"
    else:
        _check_number("icmp_type", r.icmp_type, 0, 255)
        _check_number("icmp_code", r.icmp_code, 0, 255)
        icmp_type = r.icmp_type if version == 4 or r.icmp_type != 8 else 128
        l4 = dict(proto=proto, icmp_type=icmp_type, icmp_code=r.icmp_code)
        prefix = "icmp" if version == 4 else "icmpv6"
        l4_text = f"{prefix}_type={icmp_type},{prefix}_code={r.icmp_code}"
    vlan = None
    if src.local:
        in_port, eth_src = src.port.ofport, src.port.mac
    else:
        if not view.uplinks:
            raise ValidationError("from", r.src, "is not on this host and the bridge has no "
                                  "uplink a packet from it could arrive on")
        in_port = view.uplinks[0]
        eth_src = src.port.mac if src.port else OUTSIDE_MAC
        vlan = dst.port.network or None
    eth_dst = dst.port.mac if dst.port else OUTSIDE_MAC
    family = "ipv4" if version == 4 else "ipv6"
    packet = Packet(in_port=in_port, eth_src=eth_src, eth_dst=eth_dst, eth_type=family,
                    vlan=vlan, src_ip=src_ip, dst_ip=dst_ip, **l4)
    addr = ("nw_src={},nw_dst={}" if version == 4 else "ipv6_src={},ipv6_dst={}").format(
        src_ip, dst_ip)
    vlan_text = f",dl_vlan={vlan}" if vlan else ""
    flow = (f"{_L4_NAME[(proto, version)]},in_port={in_port},dl_src={eth_src},"
            f"dl_dst={eth_dst}{vlan_text},{addr},{l4_text}")
    conn, ct_state = STATES[r.state]
    return Probe(flow, ct_state, packet, conn, _label(src, src_ip), _label(dst, dst_ip))


def _label(end: _End, ip: str) -> str:
    if end.port is None:
        return ip
    where = "" if end.local else ", another host"
    return f"port {end.port.name or end.port.id} ({ip}{where})"
