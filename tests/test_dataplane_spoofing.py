"""Anti-spoofing with real frames: a VM forges ARP, DHCP-server, router
advertisement and neighbour advertisement frames; c sniffs what reaches it.
Every test sends a legitimate frame too, so a silent sniffer can't pass it."""
import ipaddress
import struct

from dataplane_net import IP6S, net  # noqa: F401
from sg_ofctl.compiler.build import link_local
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

BROADCAST = "ff:ff:ff:ff:ff:ff"
ALL_NODES_MAC, ALL_NODES = "33:33:00:00:00:01", "ff02::1"


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _ip(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def arp_reply(src_mac: str, sender_ip: str, sender_mac: str | None = None) -> bytes:
    """A broadcast ARP reply: `sender_ip` is-at `sender_mac`."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + _mac(sender_mac or src_mac) + \
        _ip(sender_ip) + b"\0" * 6 + _ip(sender_ip)
    return _mac(BROADCAST) + _mac(src_mac) + b"\x08\x06" + body


def udp_broadcast(src_mac: str, src_ip: str, sport: int, dport: int, marker: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(marker), 0) + marker
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, _ip(src_ip),
                       _ip("255.255.255.255"))
    checksum = sum(struct.unpack("!10H", head))
    checksum = ~((checksum & 0xffff) + (checksum >> 16)) & 0xffff
    head = head[:10] + struct.pack("!H", checksum) + head[12:]
    return _mac(BROADCAST) + _mac(src_mac) + b"\x08\x00" + head + udp


def icmpv6(src_mac: str, src_ip: str, icmp_type: int, body: bytes) -> bytes:
    """To all nodes; checksum left 0 (OVS does not check it; the sniffer sees it)."""
    icmp = struct.pack("!BBH", icmp_type, 0, 0) + body
    head = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, _ip(src_ip), _ip(ALL_NODES))
    return _mac(ALL_NODES_MAC) + _mac(src_mac) + b"\x86\xdd" + head + icmp


def neighbour_advert(src_mac: str, src_ip: str, target: str) -> bytes:
    return icmpv6(src_mac, src_ip, 136, struct.pack("!I", 0x20000000) + _ip(target))


def router_advert(src_mac: str, src_ip: str, marker: bytes) -> bytes:
    return icmpv6(src_mac, src_ip, 134, struct.pack("!BBHII", 64, 0, 1800, 0, 0) + marker)


def test_arp_may_only_claim_own_ip_and_mac(net):
    a, b, c = net.vms["a"], net.vms["b"], net.vms["c"]
    own, other_ip, other_mac = (arp_reply(a.mac, a.ip), arp_reply(a.mac, b.ip),
                                arp_reply(a.mac, a.ip, sender_mac=b.mac))
    with c.sniffing() as seen:
        a.send_frames(other_ip, other_mac, own)
    assert own in seen
    assert other_ip not in seen and other_mac not in seen


def test_vm_cannot_be_a_dhcp_server(net):
    a, c = net.vms["a"], net.vms["c"]
    client = udp_broadcast(a.mac, a.ip, 68, 67, b"dhcp-client")
    server = udp_broadcast(a.mac, a.ip, 67, 68, b"dhcp-server")
    with c.sniffing() as seen:
        a.send_frames(server, client)
    assert client in seen and server not in seen


def test_vm_cannot_send_router_advertisements(net):
    a, c = net.vms["a"], net.vms["c"]
    lla = link_local(a.mac)
    advert = router_advert(a.mac, lla, b"rogue-router")
    own_na = neighbour_advert(a.mac, lla, IP6S["a"])
    with c.sniffing() as seen:
        a.send_frames(advert, own_na)
    assert own_na in seen and advert not in seen


def test_neighbour_advertisements_only_for_own_addresses(net):
    a, c = net.vms["a"], net.vms["c"]
    lla = link_local(a.mac)
    own, other = neighbour_advert(a.mac, lla, IP6S["a"]), neighbour_advert(a.mac, lla, IP6S["b"])
    forged_source = neighbour_advert(a.mac, link_local(net.vms["b"].mac), IP6S["a"])
    with c.sniffing() as seen:
        a.send_frames(other, forged_source, own)
    assert own in seen
    assert other not in seen and forged_source not in seen
