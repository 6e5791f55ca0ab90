"""The headers of a logged packet (the first bytes the switch sends): Ethernet
(802.1Q), ARP, IPv4/IPv6, TCP/UDP/SCTP ports, ICMP type/code.  Pure; a
truncated or odd frame gives what could be read, never an exception."""
from __future__ import annotations

import ipaddress
import struct

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse_frame(data: bytes) -> dict:
    out: dict = {}
    if len(data) < 14:
        return out
    out["eth_dst"], out["eth_src"] = _mac(data[0:6]), _mac(data[6:12])
    (eth_type,), offset = struct.unpack_from("!H", data, 12), 14
    if eth_type == 0x8100 and len(data) >= 18:
        out["vlan"] = struct.unpack_from("!H", data, 14)[0] & 0xfff
        (eth_type,), offset = struct.unpack_from("!H", data, 16), 18
    if eth_type == 0x0806 and len(data) >= offset + 28:
        out["eth_type"] = "arp"
        out["arp_sha"] = _mac(data[offset + 8:offset + 14])
        out["arp_spa"] = str(ipaddress.IPv4Address(data[offset + 14:offset + 18]))
        out["arp_tpa"] = str(ipaddress.IPv4Address(data[offset + 24:offset + 28]))
        return out
    if eth_type == 0x0800 and len(data) >= offset + 20:
        ihl = (data[offset] & 0x0f) * 4
        out["eth_type"], out["proto"] = "ipv4", data[offset + 9]
        out["src_ip"] = str(ipaddress.IPv4Address(data[offset + 12:offset + 16]))
        out["dst_ip"] = str(ipaddress.IPv4Address(data[offset + 16:offset + 20]))
        offset += ihl
    elif eth_type == 0x86DD and len(data) >= offset + 40:
        out["eth_type"], out["proto"] = "ipv6", data[offset + 6]
        out["src_ip"] = str(ipaddress.IPv6Address(data[offset + 8:offset + 24]))
        out["dst_ip"] = str(ipaddress.IPv6Address(data[offset + 24:offset + 40]))
        offset += 40
    else:
        out["eth_type"] = f"0x{eth_type:04x}"
        return out
    proto = out["proto"]
    if proto in (6, 17, 132) and len(data) >= offset + 4:
        out["sport"], out["dport"] = struct.unpack_from("!HH", data, offset)
    elif proto in (1, 58) and len(data) >= offset + 2:
        out["icmp_type"], out["icmp_code"] = data[offset], data[offset + 1]
    return out
