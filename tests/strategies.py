"""Hypothesis strategies shared by the property tests: security-group models
(host views), raw packets, and plausible VM traffic for a view."""
from __future__ import annotations

from hypothesis import strategies as st

from helpers import MAC, UPLINK
from sg_ofctl.model import AddressPair, HostView, Port, Rule, SecurityGroup, host_view
from sg_ofctl.reference import Packet, _eui64

V4 = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6", "10.0.1.9", "192.168.0.1"]
V6 = ["fd00::1", "fd00::2", "fd00::3", "fd00::9"]
PREFIXES4 = ["10.0.0.0/29", "10.0.0.4/30", "192.168.0.0/16", "10.0.0.2/32", "0.0.0.0/0"]
PREFIXES6 = ["fd00::/126", "fd00::2/128", "::/0"]
GROUPS = ["g0", "g1", "g2"]
L4_PORTS = [20, 21, 22, 23, 53, 67, 68, 80, 443, 546, 547, 8080]
EXTRA_MACS = ["fa:16:3e:aa:00:01", "fa:16:3e:aa:00:02"]
ICMP6_TYPES = [128, 129, 133, 134, 135, 136, 137, 143]


@st.composite
def rules(draw, group_ids):
    direction = draw(st.sampled_from(["ingress", "egress"]))
    ethertype = draw(st.sampled_from(["IPv4", "IPv4", "IPv6"]))
    protocol = draw(st.sampled_from([None, "tcp", "udp", "icmp", "sctp", "47"]))
    kw = {}
    if protocol in ("tcp", "udp", "sctp") and draw(st.booleans()):
        low = draw(st.sampled_from(L4_PORTS))
        kw["port_range_min"] = low
        kw["port_range_max"] = draw(st.sampled_from([p for p in L4_PORTS if p >= low]))
    if protocol == "icmp" and draw(st.booleans()):
        kw["port_range_min"] = draw(st.sampled_from([0, 8, 128, 129, 3]))
        if draw(st.booleans()):
            kw["port_range_max"] = draw(st.sampled_from([0, 1]))
    remote = draw(st.sampled_from(["none", "prefix", "group"]))
    if remote == "prefix":
        kw["remote_ip_prefix"] = draw(st.sampled_from(PREFIXES4 if ethertype == "IPv4"
                                                      else PREFIXES6))
    elif remote == "group":
        kw["remote_group_id"] = draw(st.sampled_from(group_ids))
    action = draw(st.sampled_from(["allow", "allow", "allow", "deny"]))
    return dict(direction=direction, ethertype=ethertype, protocol=protocol, action=action, **kw)


@st.composite
def models(draw) -> HostView:
    stateful = {g: draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True
                for g in GROUPS}
    groups = {}
    for gid in GROUPS:
        raw = draw(st.lists(rules(GROUPS + ["default"]), max_size=5))
        built, seen = [], set()
        for i, r in enumerate(raw):
            rule = Rule(id=f"{gid}-r{i}", **r)
            if rule.identity() not in seen:
                seen.add(rule.identity())
                built.append(rule)
        groups[gid] = SecurityGroup(id=gid, stateful=stateful[gid], rules=tuple(built))
    ports = []
    for n in range(1, draw(st.integers(1, 4)) + 1):
        secure = draw(st.integers(0, 5)) > 0
        kind = draw(st.booleans())
        choices = [g for g in GROUPS if stateful[g] == kind] if secure else []
        port_groups = draw(st.lists(st.sampled_from(choices), unique=True, max_size=2)) \
            if choices else []
        if secure and not port_groups and not kind:
            port_groups = []  # gets `default`, which is stateful
        ips = draw(st.lists(st.sampled_from(V4 + V6), unique=True, min_size=1, max_size=2))
        pairs = ()
        if secure and draw(st.integers(0, 3)) == 0:
            pairs = (AddressPair(draw(st.sampled_from(["10.0.1.9", "10.0.0.4/30", "fd00::9"])),
                                 EXTRA_MACS[n % 2] if n <= 2 and draw(st.booleans()) else None),)
        ports.append(Port(id=f"p{n}", mac=MAC(n), fixed_ips=tuple(ips), ofport=n,
                          allowed_address_pairs=pairs, port_security_enabled=secure,
                          security_groups=tuple(port_groups),
                          network=draw(st.sampled_from([0, 0, 5]))))
    remote = {g: draw(st.lists(st.sampled_from(V4 + V6), max_size=2))
              for g in GROUPS + ["default"]}
    return host_view(ports, groups.values(), remote, uplinks=(UPLINK,))


MACS = [MAC(n) for n in range(1, 5)] + EXTRA_MACS + ["fa:16:3e:00:00:77", "ff:ff:ff:ff:ff:ff"]


@st.composite
def packets(draw) -> Packet:
    eth_type = draw(st.sampled_from(["ipv4", "ipv4", "ipv6", "ipv6", "arp", "lldp"]))
    base = dict(in_port=draw(st.sampled_from([1, 2, 3, 4, UPLINK, 99])),
                eth_src=draw(st.sampled_from(MACS[:-1])), eth_dst=draw(st.sampled_from(MACS)),
                eth_type=eth_type, vlan=draw(st.sampled_from([None, None, None, 0, 5, 7])))
    if eth_type == "arp":
        return Packet(**base, arp_spa=draw(st.sampled_from(V4 + ["0.0.0.0"])),
                      arp_sha=draw(st.sampled_from(MACS[:-1])))
    if eth_type == "lldp":
        return Packet(**base)
    pool = V4 + ["0.0.0.0"] if eth_type == "ipv4" else \
        V6 + ["::"] + [_eui64(MAC(n)) for n in (1, 2)] + [_eui64(EXTRA_MACS[0])]
    kw = dict(src_ip=draw(st.sampled_from(pool)), dst_ip=draw(st.sampled_from(pool)))
    proto = draw(st.sampled_from([6, 17, 132, 1, 58, 47, None]))
    if proto in (6, 17, 132):
        kw.update(proto=proto, sport=draw(st.sampled_from(L4_PORTS + [40000])),
                  dport=draw(st.sampled_from(L4_PORTS)))
    elif proto in (1, 58):
        proto = 1 if eth_type == "ipv4" else 58
        types = [0, 8, 3] if proto == 1 else ICMP6_TYPES
        kw.update(proto=proto, icmp_type=draw(st.sampled_from(types)),
                  icmp_code=draw(st.sampled_from([0, 1])))
        if proto == 58 and kw["icmp_type"] in (135, 136):
            kw["nd_target"] = draw(st.sampled_from(pool))
    elif proto is not None:
        kw["proto"] = proto
    return Packet(**base, **kw)


@st.composite
def plausible(draw, view: HostView) -> Packet:
    """A packet a real VM would send: its own MAC and address, to another port's."""
    pkt = draw(packets())
    src = draw(st.sampled_from(view.ports))
    dst = draw(st.sampled_from(view.ports))
    family = draw(st.sampled_from(["ipv4", "ipv6"]))
    def pick(port):
        same = [a.split("/")[0] for a in port.addresses() if (":" in a) == (family == "ipv6")]
        return draw(st.sampled_from(same)) if same else None
    src_ip, dst_ip = pick(src), pick(dst)
    if pkt.eth_type not in ("ipv4", "ipv6") or src_ip is None or dst_ip is None:
        return pkt
    proto = pkt.proto
    if proto in (1, 58):
        proto = 1 if family == "ipv4" else 58
    nd = pkt.nd_target if proto == 58 and pkt.icmp_type in (135, 136) else None
    if nd is not None:
        nd = draw(st.sampled_from([src_ip, dst_ip]))
    icmp_type = pkt.icmp_type
    if proto == 1 and icmp_type not in (0, 8, 3):
        icmp_type = 8
    if proto == 58 and icmp_type in (0, 8, 3, None):
        icmp_type = 128
    return Packet(in_port=src.ofport, eth_src=src.mac, eth_dst=dst.mac, eth_type=family,
                  src_ip=src_ip, dst_ip=dst_ip, proto=proto, sport=pkt.sport, dport=pkt.dport,
                  icmp_type=icmp_type if proto in (1, 58) else None,
                  icmp_code=pkt.icmp_code if proto in (1, 58) else None, nd_target=nd)
