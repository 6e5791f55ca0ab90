"""Reference semantics: does this packet pass?  Written straight from the
security-group rules, sharing no code with the compiler, so that tests can
check the compiled flows against it (and `explain` can name the deciding rule).

The connection state is given, as conntrack would report it: "new", "est"
(original direction), "rpl" (reply direction), "rel" (related) or "inv";
`mark` is the connection's ct_mark: bit 0 revoked by the sender's egress rules,
bit 1 by the receiver's ingress rules."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from sg_ofctl.model import HostView, Port, Rule

DHCP_CLIENT = {4: (68, 67), 6: (546, 547)}
DHCP_SERVER = {4: (67, 68), 6: (547, 546)}
ND_ALWAYS_OUT = {133, 135, 130, 131, 132, 143}  # RS, NS, MLD
ND_ALWAYS_IN = {133, 134, 135, 136, 130, 131, 132, 143}
NEVER_OUT = {134, 137}  # router advertisement, redirect
NA = 136


@dataclass(frozen=True)
class Packet:
    in_port: int
    eth_src: str
    eth_dst: str
    eth_type: str = "ipv4"  # ipv4, ipv6, arp, or another name
    vlan: int | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    proto: int | None = None
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    arp_spa: str | None = None
    arp_sha: str | None = None
    nd_target: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happens to a packet: 'drop', 'normal' (handed to layer-2 delivery, the
    `deliver` table) or 'output' to a port,
    the conntrack commits on the way ("commit-egress": in the sending port's
    zone, "commit-ingress": in the receiving port's; revoke/unrevoke marks),
    and why."""

    action: str
    port: int | None = None
    commits: tuple[str, ...] = ()
    reason: str = field(default="", compare=False)


def _in(address: str | None, prefix: str) -> bool:
    if address is None:
        return False
    a = ipaddress.ip_address(address)
    n = ipaddress.ip_network(prefix, strict=False)
    return a.version == n.version and a in n


def _eui64(mac: str) -> str:
    b = bytes(int(x, 16) for x in mac.split(":"))
    iid = bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


def port_macs(port: Port) -> list[str]:
    return [port.mac] + [p.mac_address for p in port.allowed_address_pairs if p.mac_address]


def may_send_from(port: Port, mac: str, ip: str) -> bool:
    """The port's own (MAC, IP) bindings: fixed IPs, allowed pairs, link-local."""
    if mac == port.mac and any(_in(ip, f) for f in port.fixed_ips):
        return True
    for pair in port.allowed_address_pairs:
        if (pair.mac_address or port.mac) == mac and _in(ip, pair.ip_address):
            return True
    return mac in port_macs(port) and _in(ip, _eui64(mac))


def own_ipv6(port: Port, ip: str) -> bool:
    addrs = [a for a in port.addresses() if ":" in a] + [_eui64(m) for m in port_macs(port)]
    return any(_in(ip, a) for a in addrs)


def _unspecified(ip: str | None) -> bool:
    return ip is not None and ipaddress.ip_address(ip).is_unspecified


class Reference:
    def __init__(self, view: HostView):
        self.view = view
        self.by_ofport = {p.ofport: p for p in view.ports}
        self.networks = {p.network for p in view.ports}

    def evaluate(self, pkt: Packet, conn: str = "new", mark: int = 0) -> Outcome:
        port = self.by_ofport.get(pkt.in_port)
        if port is None:
            if pkt.in_port not in self.view.uplinks:
                return Outcome("drop", reason="unknown in_port")
            network = pkt.vlan or 0
            if pkt.vlan is not None and (pkt.vlan == 0 or pkt.vlan not in self.networks):
                return Outcome("drop", reason="VLAN of no local network")
            return self._deliver(pkt, network, conn, mark, ())
        if not port.port_security_enabled:
            return self._deliver(pkt, port.network, conn, mark, ())
        if pkt.vlan is not None or pkt.eth_src not in port_macs(port):
            return Outcome("drop", reason="source MAC is not the port's")
        return self._egress(port, pkt, conn, mark)

    # -- egress ---------------------------------------------------------------------
    def _egress(self, port, pkt, conn, mark) -> Outcome:
        if pkt.eth_type == "arp":
            ok = pkt.arp_sha == pkt.eth_src and (
                pkt.arp_spa == "0.0.0.0" or may_send_from(port, pkt.eth_src, pkt.arp_spa))
            if not ok:
                return Outcome("drop", reason="ARP for an address that is not the port's")
            return self._deliver(pkt, port.network, conn, mark, ())
        if pkt.eth_type not in ("ipv4", "ipv6"):
            return Outcome("drop", reason="not IP or ARP")
        unspecified = _unspecified(pkt.src_ip)
        if not unspecified and not may_send_from(port, pkt.eth_src, pkt.src_ip):
            return Outcome("drop", reason="source IP is not the port's")
        version = 4 if pkt.eth_type == "ipv4" else 6
        ports = (pkt.sport, pkt.dport)
        icmp6 = pkt.proto == 58 and version == 6
        if pkt.proto == 17 and ports == DHCP_SERVER[version]:
            return Outcome("drop", reason="VMs may not act as DHCP servers")
        if icmp6 and pkt.icmp_type in NEVER_OUT:
            return Outcome("drop", reason="VMs may not send router advertisements or redirects")
        if (pkt.proto == 17 and ports == DHCP_CLIENT[version]) or \
                (icmp6 and pkt.icmp_type in ND_ALWAYS_OUT):
            return self._deliver(pkt, port.network, conn, mark, ())
        if icmp6 and pkt.icmp_type == NA:
            if pkt.nd_target is None or not own_ipv6(port, pkt.nd_target):
                return Outcome("drop", reason="neighbour advertisement for another address")
            return self._deliver(pkt, port.network, conn, mark, ())
        if unspecified:
            return Outcome("drop", reason="unspecified source address")
        passed, commits, why = self._filter(port, "egress", pkt, conn, mark)
        if not passed:
            return Outcome("drop", commits=commits, reason=why)
        return self._deliver(pkt, port.network, conn, mark, commits, why)

    # -- forwarding and ingress -----------------------------------------------------
    def _deliver(self, pkt, network, conn, mark, commits, why="") -> Outcome:
        dst = self._filtered_port(network, pkt.eth_dst)
        if dst is None:
            return Outcome("normal", commits=commits,
                           reason=why or "not for a filtered local port")
        if pkt.eth_type == "arp":
            return Outcome("output", dst.ofport, commits, "ARP always reaches a port")
        version = 4 if pkt.eth_type == "ipv4" else 6 if pkt.eth_type == "ipv6" else None
        if version is None:
            return Outcome("drop", commits=commits, reason="not IP or ARP")
        if version == 6 and pkt.proto == 58 and pkt.icmp_type in ND_ALWAYS_IN:
            return Outcome("output", dst.ofport, commits, "neighbour discovery")
        if pkt.proto == 17 and (pkt.sport, pkt.dport) == DHCP_SERVER[version]:
            return Outcome("output", dst.ofport, commits, "DHCP reply")
        # The sender's commit of a new connection (in its own zone) waits for the
        # receiver's verdict: a connection the receiver refuses leaves no
        # conntrack entry.  The receiver commits in its own zone first.
        pending = "commit-egress" in commits
        commits = tuple(c for c in commits if c != "commit-egress")
        passed, more, why = self._filter(dst, "ingress", pkt, conn, mark)
        if not passed:
            return Outcome("drop", commits=commits + more, reason=why)
        if pending:
            more = more + ("commit-egress",)
        return Outcome("output", dst.ofport, commits + more, why)

    def _filtered_port(self, network, mac) -> Port | None:
        for port in self.view.ports:
            if port.port_security_enabled and port.network == network and mac in port_macs(port):
                return port
        return None

    # -- the security-group decision ------------------------------------------------
    def _filter(self, port, direction, pkt, conn, mark):
        """(passes, conntrack commits, reason) for one port and direction."""
        allowed, why = self.rules_verdict(port, direction, pkt)
        if not self.view.is_stateful(port):
            return allowed, (), f"stateless: {why}"
        if conn == "inv":
            return False, (), "invalid connection state"
        if conn in ("rpl", "rel"):
            return (not mark), (), "revoked connection" if mark else f"{conn} traffic"
        if conn == "new":
            return allowed, (f"commit-{direction}",) if allowed else (), why
        # An established connection, original direction: re-checked against the rules;
        # each side keeps its own revoked bit.
        side = 1 if direction == "egress" else 2
        if allowed:
            return True, (f"unrevoke-{direction}",) if mark & side else (), why
        return False, (f"revoke-{direction}",), f"established but {why}"

    def rules_verdict(self, port, direction, pkt) -> tuple[bool, str]:
        allow = deny = None
        for group in self.view.groups_of(port):
            for rule in group.rules:
                if rule.direction == direction and self.rule_matches(rule, direction, pkt):
                    named = f"rule {rule.id}" + (f" ({rule.description})"
                                                 if rule.description else "")
                    if rule.action == "deny" and deny is None:
                        deny = f"denied by {named} of group {group.display_name}"
                    elif rule.action == "allow" and allow is None:
                        allow = f"allowed by {named} of group {group.display_name}"
        if deny:
            return False, deny
        if allow:
            return True, allow
        return False, f"no {direction} rule of the port's groups allows it"

    def rule_matches(self, rule: Rule, direction: str, pkt: Packet) -> bool:
        if pkt.eth_type != rule.ethertype.lower():
            return False
        if rule.ip_proto is not None and pkt.proto != rule.ip_proto:
            return False
        if rule.port_range is not None:
            low, high = rule.port_range
            if pkt.dport is None or not low <= pkt.dport <= high:
                return False
        if rule.source_port_range is not None:
            low, high = rule.source_port_range
            if pkt.sport is None or not low <= pkt.sport <= high:
                return False
        icmp_type, icmp_code = rule.icmp_type_code
        if icmp_type is not None and pkt.icmp_type != icmp_type:
            return False
        if icmp_code is not None and pkt.icmp_code != icmp_code:
            return False
        remote = pkt.src_ip if direction == "ingress" else pkt.dst_ip
        if rule.remote_net is not None and not _in(remote, str(rule.remote_net)):
            return False
        if rule.remote_group_id is not None:
            members = self.view.member_addresses(rule.remote_group_id)
            return any(_in(remote, m) for m in members)
        return True
