"""Flows of each part of a host's view: shared tables, one port, one group's
rules, one remote-group reference, one member address.  Each function depends
only on its arguments, so the incremental compiler can recompute one part."""
from __future__ import annotations

from typing import Iterable, NamedTuple

from sg_ofctl import pipeline as P
from sg_ofctl.compiler import ids
from sg_ofctl.compiler.conntrack import conntrack_flows, pending_commit_flows
from sg_ofctl.compiler.flows import (Conjunction, Ct, Flow, Goto, Load, Move, Normal, Output,
                                     PopVlan, PushVlan, Resubmit, SetVlan, intern, ip_value,
                                     make_match, set_bits)
from sg_ofctl.compiler.flows import Action
from sg_ofctl.compiler.portranges import range_to_masks
from sg_ofctl.model import ICMP_NUMBERS, PORT_PROTOCOLS, Port, Rule, SecurityGroup

ETH_IP, ETH_ARP, ETH_IPV6 = 0x0800, 0x0806, 0x86DD
ETH_OF = {"IPv4": ETH_IP, "IPv6": ETH_IPV6}
UDP, ICMPV6 = 17, 58
PORT_FIELD = {6: "tcp_dst", 17: "udp_dst", 132: "sctp_dst"}
SOURCE_PORT_FIELD = {6: "tcp_src", 17: "udp_src", 132: "sctp_src"}
VLAN_PRESENT = 0x1000
# ICMPv6 types: RS, RA, NS, NA, redirect; MLD query, report, done, v2 report.
RS, RA, NS, NA, REDIRECT = 133, 134, 135, 136, 137
MLD = (130, 131, 132, 143)

# Priorities in the rules tables: deny above allow; a conjunction above the
# plain flows of the same action (OVS only tries conjunctions above the best hard match).
PRIO_DENY_CONJ, PRIO_DENY, PRIO_ALLOW_CONJ, PRIO_ALLOW = 40, 30, 20, 10
CONJ_PRIORITY = {"deny": PRIO_DENY_CONJ, "allow": PRIO_ALLOW_CONJ}
PLAIN_PRIORITY = {"deny": PRIO_DENY, "allow": PRIO_ALLOW}
VERDICT_BITS = {"allow": P.VERDICT_ALLOW, "deny": P.VERDICT_DENY}


class RemoteRef(NamedTuple):
    """Rules that name one remote group, per table, ethertype and action, share
    one conjunction: (any of their other matches) AND (address in the group)."""

    remote_group_id: str
    direction: str
    ethertype: str
    action: str

    @property
    def key(self) -> str:
        return "|".join(self)


def port_zone(port: Port, placement: P.Placement = P.STANDALONE) -> int:
    """The local port's conntrack zone: its own (its ofport), or in Neutron's
    br-int its network's (the local VLAN)."""
    if port.ofport is None:
        raise ValueError(f"port {port.id} has no ofport")
    return placement.port_zone(port.ofport, port.network)


def _load(reg: P.Register, value: int, ofs: int = 0, nbits: int = 32) -> Load:
    return Load(reg.field, value, ofs, nbits)


def _flow(table, priority, match, actions, cookie) -> Flow:
    return Flow(table, priority, match, intern(tuple(actions)), cookie)


def _m(**fields):
    return make_match(**fields)


# ---- shared tables --------------------------------------------------------------

def static_flows(placement: P.Placement = P.STANDALONE) -> list[Flow]:
    flows = []
    c = ids.cookie(ids.KIND_STATIC, "static")
    add = lambda table, prio, actions, **m: flows.append(_flow(table, prio, _m(**m), actions, c))  # noqa: E731

    # egress_spoof: unspecified sources (DHCP discover, DAD) from a port whose MAC
    # classify checked; egress_guard lets only those protocols through.
    add("egress_spoof", 90, [Goto("egress_guard")], eth_type=ETH_IP, ipv4_src=0)
    add("egress_spoof", 90, [Goto("egress_guard")], eth_type=ETH_IPV6, ipv6_src=0)

    # egress_guard: protocols a VM always may, or never may, send.
    for sport, dport, eth in ((67, 68, ETH_IP), (547, 546, ETH_IPV6)):
        add("egress_guard", 100, [], eth_type=eth, ip_proto=UDP, udp_src=sport, udp_dst=dport)
    for icmp in (RA, REDIRECT):
        add("egress_guard", 100, [], eth_type=ETH_IPV6, ip_proto=ICMPV6, icmpv6_type=icmp)
    for sport, dport, eth in ((68, 67, ETH_IP), (546, 547, ETH_IPV6)):
        add("egress_guard", 90, [Goto("forward")], eth_type=eth, ip_proto=UDP,
            udp_src=sport, udp_dst=dport)
    for icmp in (RS, NS) + MLD:
        add("egress_guard", 90, [Goto("forward")], eth_type=ETH_IPV6, ip_proto=ICMPV6,
            icmpv6_type=icmp)
    add("egress_guard", 90, [Goto("egress_nd")], eth_type=ETH_IPV6, ip_proto=ICMPV6,
        icmpv6_type=NA)
    add("egress_guard", 80, [], eth_type=ETH_IP, ipv4_src=0)
    add("egress_guard", 80, [], eth_type=ETH_IPV6, ipv6_src=0)
    add("egress_guard", 0, [Goto("egress_ct")])

    # forward: anything not for a filtered local port; a new connection that the
    # sender allowed is committed here, in its zone (for a filtered local port,
    # after that port's verdict: `ingress_output`).  In Neutron's br-int it leaves
    # to its accepted-egress table (91 -> 94 NORMAL) with reg5 = the sending port
    # (0 for an unfiltered one) and reg6 = its local VLAN (the `network` register
    # is reg6), as Neutron's accepted-egress consumers read them.
    exit_: list[Action] = [Goto("deliver")]
    if placement.neutron:
        assert P.NETWORK.field == P.NEUTRON_NET_REG
        exit_ = [Move(P.SRC_PORT.field, P.NEUTRON_PORT_REG), Resubmit("neutron_accepted_egress")]
    for eth in (ETH_IP, ETH_IPV6):
        add("forward", 1, [Ct(commit=True)] + exit_, eth_type=eth,
            reg5=(P.FLAG_COMMIT_PENDING, P.FLAG_COMMIT_PENDING))
    add("forward", 0, exit_)
    if placement.neutron:
        # The tables Neutron's firewall driver sets up for the parties after it
        # (logging, FWaaS): accepted egress -> egress-normal -> NORMAL; accepted
        # ingress and dropped traffic end there.  Its priorities, its actions.
        add("neutron_accepted_egress", 1, [Resubmit("neutron_egress_normal")])
        add("neutron_egress_normal", 1, [Normal()])
        add("neutron_accepted_ingress", 0, [])

    # ingress_guard: pop a trunk's VLAN tag, then what always reaches a VM.
    add("ingress_guard", 200, [PopVlan(), Resubmit("ingress_guard")],
        vlan_vid=(VLAN_PRESENT, VLAN_PRESENT))
    add("ingress_guard", 100, [Goto("ingress_output")], eth_type=ETH_ARP)
    for icmp in (RS, RA, NS, NA) + MLD:
        add("ingress_guard", 100, [Goto("ingress_output")], eth_type=ETH_IPV6,
            ip_proto=ICMPV6, icmpv6_type=icmp)
    for sport, dport, eth in ((67, 68, ETH_IP), (547, 546, ETH_IPV6)):
        add("ingress_guard", 100, [Goto("ingress_output")], eth_type=eth, ip_proto=UDP,
            udp_src=sport, udp_dst=dport)
    add("ingress_guard", 50, [Goto("ingress_ct")], eth_type=ETH_IP)
    add("ingress_guard", 50, [Goto("ingress_ct")], eth_type=ETH_IPV6)

    for direction in ("egress", "ingress"):
        flows += conntrack_flows(direction, c)
    flows += pending_commit_flows(c)
    return flows


# ---- uplinks and ports ----------------------------------------------------------

def uplink_flows(uplinks: Iterable[int], networks: Iterable[int],
                 placement: P.Placement = P.STANDALONE) -> list[Flow]:
    """Trunk/tunnel ports: tagged frames of a local network, untagged ones as network 0."""
    flows = []
    for ofport in uplinks:
        c = ids.cookie(ids.KIND_UPLINK, f"uplink:{ofport}")
        flows.append(_flow("classify", 50, _m(in_port=ofport, vlan_vid=0),
                           [_load(P.NETWORK, 0), Goto("forward")], c))
        for net in networks:
            if net:
                flows.append(_flow("classify", 50, _m(in_port=ofport, vlan_vid=VLAN_PRESENT | net),
                                   [_load(P.NETWORK, net), Goto("forward")],
                                   c))
    return flows


MULTICAST = (0x010000000000, 0x010000000000)   # the group bit of eth_dst


def deliver_flows(ports: tuple, uplinks: tuple) -> list[Flow]:
    """`deliver`: L2 delivery to known ports only.  `ports`: (ofport, network,
    MACs if port security is off, else ()) of every enforced local port;
    `uplinks`: ofports of trunks/tunnels (network 0 untagged, others tagged).
    OVS never outputs a packet to its in_port, so a flood skips the sender."""
    c = ids.cookie(ids.KIND_UPLINK, "deliver")
    flows = []
    nets = sorted({net for _o, net, _m in ports} | ({0} if uplinks else set()))
    for net in nets:
        zone = {P.NETWORK.field: net}
        local = [Output(o) for o, n, _m in ports if n == net]
        out = [Output(u) for u in uplinks]
        tag = [PushVlan(), SetVlan(net)] if net else []
        tagged = {"vlan_vid": (VLAN_PRESENT, VLAN_PRESENT)}
        for o, n, macs in ports:
            for mac in macs if n == net else ():
                flows.append(_flow("deliver", 100, _m(**zone, eth_dst=_mac_int(mac)),
                                   [Output(o)], c))
                if net:
                    flows.append(_flow("deliver", 110, _m(**zone, **tagged,
                                                          eth_dst=_mac_int(mac)),
                                       [PopVlan(), Output(o)], c))
        flood = local + (tag + out if out else [])
        if flood:
            flows.append(_flow("deliver", 50, _m(**zone, eth_dst=MULTICAST), flood, c))
        if out:
            flows.append(_flow("deliver", 10, _m(**zone), tag + out, c))
        if net and out:   # from an uplink, already tagged
            flows.append(_flow("deliver", 60, _m(**zone, **tagged, eth_dst=MULTICAST),
                               out + ([PopVlan()] + local if local else []), c))
            flows.append(_flow("deliver", 20, _m(**zone, **tagged), out, c))
    return flows


def port_macs(port: Port) -> tuple[str, ...]:
    """The port's MAC and its allowed address pairs' MACs."""
    return tuple(dict.fromkeys([port.mac] + [p.mac_address for p in
                                             port.allowed_address_pairs if p.mac_address]))


def _mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def link_local(mac: str) -> str:
    """The IPv6 link-local address (EUI-64) of a MAC."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups)


def source_bindings(port: Port) -> list[tuple[str, str]]:
    """(MAC, address) pairs the port may send from, link-local addresses included."""
    pairs = [(port.mac, ip) for ip in port.fixed_ips]
    macs = [port.mac]
    for pair in port.allowed_address_pairs:
        mac = pair.mac_address or port.mac
        pairs.append((mac, pair.ip_address))
        if mac not in macs:
            macs.append(mac)
    pairs += [(mac, link_local(mac)) for mac in macs]
    return list(dict.fromkeys(pairs))


def port_flows(port: Port, group_numbers: tuple[int, ...], stateful: bool,
               placement: P.Placement = P.STANDALONE) -> list[Flow]:
    c = ids.cookie(ids.KIND_PORT, port.id)
    o, zone = port.ofport, port_zone(port, placement)
    if o is None:
        raise ValueError(f"port {port.id} has no ofport")
    network = _load(P.NETWORK, port.network)
    hooks = neutron_hooks(port, placement) if placement.neutron else []
    if not port.port_security_enabled:
        return hooks + [_flow("classify", 100, _m(in_port=o),
                              [network, Goto("forward")], c)]
    flags = 0 if stateful else P.FLAG_STATELESS
    bindings = source_bindings(port)
    macs = list(dict.fromkeys(mac for mac, _ in bindings))
    flows = []
    src = {P.SRC_PORT.field: o}
    for mac in macs:
        m_mac = _mac_int(mac)
        flows.append(_flow("classify", 100, _m(in_port=o, eth_src=m_mac, vlan_vid=0),
                           [_load(P.SRC_PORT, o), _load(P.SRC_ZONE, zone), network,
                            _load(P.FLAGS, flags), Goto("egress_spoof")], c))
        # ARP probe (RFC 5227): sender IP 0.0.0.0, but its own sender MAC.
        flows.append(_flow("egress_spoof", 90, _m(**src, eth_src=m_mac, eth_type=ETH_ARP,
                                                  arp_spa=0, arp_sha=m_mac),
                           [Goto("forward")], c))
    for mac, address in bindings:
        value, mask, version = ip_value(address)
        m_mac = _mac_int(mac)
        if version == 4:
            flows.append(_flow("egress_spoof", 100, _m(**src, eth_src=m_mac, eth_type=ETH_IP,
                                                       ipv4_src=(value, mask)),
                               [Goto("egress_guard")], c))
            flows.append(_flow("egress_spoof", 100, _m(**src, eth_src=m_mac, eth_type=ETH_ARP,
                                                       arp_spa=(value, mask), arp_sha=m_mac),
                               [Goto("forward")], c))
        else:
            flows.append(_flow("egress_spoof", 100, _m(**src, eth_src=m_mac, eth_type=ETH_IPV6,
                                                       ipv6_src=(value, mask)),
                               [Goto("egress_guard")], c))
            flows.append(_flow("egress_nd", 100, _m(**src, eth_type=ETH_IPV6, ip_proto=ICMPV6,
                                                    icmpv6_type=NA,
                                                    ipv6_nd_target=(value, mask)),
                               [Goto("forward")], c))
    for direction, reg in (("egress", P.SRC_PORT), ("ingress", P.DST_PORT)):
        actions: list[Action] = [] if direction == "egress" else [_load(P.VERDICT, 0)]
        for number in group_numbers:
            actions += [_load(P.GROUP, number), Resubmit(f"{direction}_rules")]
        actions.append(Goto(f"{direction}_verdict"))
        flows.append(_flow(f"{direction}_dispatch", 100, _m(**{reg.field: o}), actions, c))
    for mac in macs:  # the port's own MAC and its allowed pairs' MACs
        flows.append(_flow("forward", 100, _m(**{P.NETWORK.field: port.network},
                                              eth_dst=_mac_int(mac)),
                           [_load(P.DST_PORT, o), _load(P.DST_ZONE, zone),
                            _load(P.FLAGS, flags, 0, P.FLAGS_PER_SIDE.bit_length()),
                            Goto("ingress_guard")],
                           c))
    output: list[Action] = [Output(o)]
    if placement.neutron:
        exit_regs = neutron_registers(port)
        output = exit_regs + [Resubmit("neutron_accepted_ingress"), Output(o)]
    flows.append(_flow("ingress_output", 100, _m(**{P.DST_PORT.field: o}), output, c))
    # One IPv6 address may be bound to two MACs: its NA flow is the same for both.
    return list({f.key: f for f in hooks + flows}.values())


def neutron_registers(port: Port) -> list[Action]:
    """reg5 = ofport, reg6 = local VLAN: what Neutron's accepted-traffic consumers read."""
    assert port.ofport is not None
    return [Load(P.NEUTRON_PORT_REG, port.ofport), Load(P.NEUTRON_NET_REG, port.network)]


def neutron_hooks(port: Port, placement: P.Placement) -> list[Flow]:
    """Neutron's transient table: the port's own packets (by in_port) to `classify`;
    a filtered port's incoming packets (its MACs on its local VLAN) to `forward`,
    which takes them to the ingress stages."""
    c = ids.cookie(ids.KIND_PORT, port.id)
    flows = [_flow("neutron_transient", 100, _m(in_port=port.ofport), [Goto("classify")], c)]
    if port.port_security_enabled:
        macs = dict.fromkeys([port.mac] + [p.mac_address for p in port.allowed_address_pairs
                                           if p.mac_address])
        for mac in macs:
            flows.append(_flow("neutron_transient", 90,
                               _m(eth_dst=_mac_int(mac), vlan_vid=VLAN_PRESENT | port.network),
                               [_load(P.NETWORK, port.network), Goto("forward")], c))
    return flows


# ---- rules ----------------------------------------------------------------------

def rule_l4_matches(rule: Rule) -> list[dict]:
    """The protocol/port/ICMP part of a rule, one dict per value/mask."""
    base: dict[str, object] = {"eth_type": ETH_OF[rule.ethertype]}
    if rule.ip_proto is None:
        return [base]
    base["ip_proto"] = rule.ip_proto
    if rule.ip_proto in PORT_PROTOCOLS and (rule.port_range or rule.source_port_range):
        out: list[dict[str, object]] = [base]
        for fields, rng in ((PORT_FIELD, rule.port_range),
                            (SOURCE_PORT_FIELD, rule.source_port_range)):
            if rng:
                field = fields[rule.ip_proto]
                out = [{**m, field: vm} for m in out for vm in range_to_masks(*rng)]
        return out
    if rule.ip_proto in ICMP_NUMBERS:
        icmp_type, icmp_code = rule.icmp_type_code
        prefix = "icmpv4" if rule.ip_proto == 1 else "icmpv6"
        if icmp_type is not None:
            base[f"{prefix}_type"] = icmp_type
        if icmp_code is not None:
            base[f"{prefix}_code"] = icmp_code
    return [base]


def remote_field(direction: str, ethertype: str) -> str:
    family = "ipv4" if ethertype == "IPv4" else "ipv6"
    return f"{family}_src" if direction == "ingress" else f"{family}_dst"


def group_rule_flows(group: SecurityGroup, number: int,
                     conj_ids: Iterable[tuple[str, int]]) -> list[Flow]:
    """A group's rules, once for every local port of the group; `conj_ids` are
    the (remote ref key, conjunction id) pairs its rules use.  Two rules may
    share a flow (overlapping port masks, or clause 1 of two remote groups):
    it is emitted once, with the conjunction actions of both."""
    merged: dict[tuple, Flow] = {}
    for flow in _rule_flows(group, number, dict(conj_ids)):
        seen = merged.get(flow.key)
        if seen is None:
            merged[flow.key] = flow
        elif seen.actions != flow.actions:
            actions = tuple(sorted(set(seen.actions) | set(flow.actions)))
            merged[flow.key] = Flow(seen.table, seen.priority, seen.match, actions,
                                    ids.cookie(ids.KIND_RULE, group.id))
    return list(merged.values())


def _rule_flows(group: SecurityGroup, number: int, conj_ids: dict[str, int]):
    flows = []
    for rule in group.rules:
        table = f"{rule.direction}_rules"
        c = ids.cookie(ids.KIND_RULE, group.id, rule.id)
        l4 = rule_l4_matches(rule)
        if rule.remote_group_id is not None:
            ref = RemoteRef(rule.remote_group_id, rule.direction, rule.ethertype, rule.action)
            action = Conjunction(conj_ids[ref.key], 1, 2)
            for fields in l4:
                flows.append(_flow(table, CONJ_PRIORITY[rule.action],
                                   _m(**{P.GROUP.field: number}, **fields), [action], c))
            continue
        remote = {}
        if rule.remote_net is not None:
            value, mask, _ = ip_value(str(rule.remote_net))
            remote = {remote_field(rule.direction, rule.ethertype): (value, mask)}
        verdict = set_bits(P.VERDICT.field, VERDICT_BITS[rule.action])
        for fields in l4:
            flows.append(_flow(table, PLAIN_PRIORITY[rule.action],
                               _m(**{P.GROUP.field: number}, **fields, **remote), [verdict], c))
    return flows


def conj_flows(ref: RemoteRef, conj_id: int) -> list[Flow]:
    """The flow a completed remote-group conjunction lands on."""
    c = ids.cookie(ids.KIND_CONJ, ref.remote_group_id, ref.key)
    return [_flow(f"{ref.direction}_rules", CONJ_PRIORITY[ref.action], _m(conj_id=conj_id),
                  [set_bits(P.VERDICT.field, VERDICT_BITS[ref.action])], c)]


def member_flows(address: str, refs: Iterable[tuple[RemoteRef, int]]) -> list[Flow]:
    """One flow per (table, priority) for a member address of remote groups, with a
    conjunction clause for each remote-group reference that contains it."""
    value, mask, version = ip_value(address)
    ethertype = "IPv4" if version == 4 else "IPv6"
    by_slot: dict[tuple, list] = {}
    for ref, conj_id in refs:
        if ref.ethertype != ethertype:
            continue
        slot = (ref.direction, CONJ_PRIORITY[ref.action])
        by_slot.setdefault(slot, []).append(Conjunction(conj_id, 2, 2))
    c = ids.cookie(ids.KIND_MEMBER, address)
    flows = []
    for (direction, prio), actions in sorted(by_slot.items()):
        match = _m(eth_type=ETH_OF[ethertype],
                   **{remote_field(direction, ethertype): (value, mask)})
        flows.append(_flow(f"{direction}_rules", prio, match, sorted(set(actions)), c))
    return flows
