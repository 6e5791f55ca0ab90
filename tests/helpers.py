"""Small builders for compiler tests: a view, packets, and both verdicts."""
from __future__ import annotations

from ofsim import Simulator
from sg_ofctl.compiler import compile_host
from sg_ofctl.model import HostView, Port, Rule, SecurityGroup, host_view
from sg_ofctl.reference import Packet, Reference

MAC = "fa:16:3e:00:00:{:02x}".format
UPLINK = 100


def vm(n: int, *groups: str, ips=None, **kw) -> Port:
    return Port(id=f"p{n}", mac=MAC(n), fixed_ips=tuple(ips or (f"10.0.0.{n}",)),
                security_groups=tuple(groups), ofport=n, **kw)


def group(gid: str, *rules: Rule, stateful: bool = True) -> SecurityGroup:
    return SecurityGroup(id=gid, name=gid, stateful=stateful, rules=rules)


def rule(rid: str, direction: str = "ingress", **kw) -> Rule:
    return Rule(id=rid, direction=direction, **kw)


def view(ports, groups, members=None, uplinks=(UPLINK,)) -> HostView:
    """Members: the ports' own addresses, or exactly `members` when given."""
    if members is None:
        return host_view(ports, groups, uplinks=uplinks)
    return HostView(ports=tuple(ports), groups={g.id: g for g in groups}, members=members,
                    uplinks=uplinks)


def tcp(src: int, dst: int, dport: int, sport: int = 40000, **kw) -> Packet:
    return Packet(in_port=src, eth_src=MAC(src), eth_dst=MAC(dst), src_ip=f"10.0.0.{src}",
                  dst_ip=f"10.0.0.{dst}", proto=6, sport=sport, dport=dport, **kw)


def icmp(src: int, dst: int, icmp_type: int = 8, icmp_code: int = 0, **kw) -> Packet:
    return Packet(in_port=src, eth_src=MAC(src), eth_dst=MAC(dst), src_ip=f"10.0.0.{src}",
                  dst_ip=f"10.0.0.{dst}", proto=1, icmp_type=icmp_type, icmp_code=icmp_code,
                  **kw)


class Both:
    """Evaluates packets with the compiled flows and with the reference, and
    insists they agree before returning the outcome."""

    def __init__(self, v: HostView):
        self.view = v
        self.flows = compile_host(v)
        self.sim = Simulator(self.flows)
        self.ref = Reference(v)

    def __call__(self, pkt: Packet, conn: str = "new", mark: int = 0):
        expected = self.ref.evaluate(pkt, conn, mark)
        got = self.sim.run(pkt, conn, mark)
        assert got == expected, (f"flows say {got}, reference says {expected} "
                                 f"({expected.reason}) for {pkt} conn={conn} mark={mark}")
        return got

    def action(self, pkt, conn="new", mark=0) -> str:
        out = self(pkt, conn, mark)
        return out.action if out.action != "output" else f"output:{out.port}"
