"""A small OpenFlow table simulator for compiled flows: priorities, masked
matches with OVS's prerequisites (a field a packet lacks never matches),
registers, resubmit/goto, conjunctive matches as OVS evaluates them, and
conntrack whose state the test gives."""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from sg_ofctl import pipeline as P
from sg_ofctl.compiler.flows import (Conjunction, Ct, CtClear, Goto, Load, Normal, Output,
                                     PopVlan, PushVlan, Resubmit, SetVlan)
from sg_ofctl.reference import Outcome, Packet

CT_STATES = {"new": P.CT_NEW, "est": P.CT_EST, "rpl": P.CT_EST | P.CT_RPL,
             "rel": P.CT_REL, "inv": P.CT_INV}
ETH_TYPES = {"ipv4": 0x0800, "ipv6": 0x86DD, "arp": 0x0806, "lldp": 0x88CC}
TABLE_ORDER = {t.name: i for i, t in enumerate(P.TABLES)}


class SimulationError(AssertionError):
    pass


def _mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def _ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def packet_fields(pkt: Packet) -> dict:
    f = {"in_port": pkt.in_port, "eth_src": _mac(pkt.eth_src), "eth_dst": _mac(pkt.eth_dst),
         "eth_type": ETH_TYPES[pkt.eth_type],
         "vlan_vid": 0 if pkt.vlan is None else 0x1000 | pkt.vlan,
         "ct_state": 0, "ct_mark": 0, "conj_id": 0}
    f.update({f"reg{i}": 0 for i in range(16)})
    if pkt.eth_type == "arp":
        f["arp_spa"] = _ip(pkt.arp_spa)
        f["arp_sha"] = _mac(pkt.arp_sha)
        return f
    if pkt.eth_type not in ("ipv4", "ipv6"):
        return f
    family = pkt.eth_type
    f[f"{family}_src"] = _ip(pkt.src_ip)
    f[f"{family}_dst"] = _ip(pkt.dst_ip)
    if pkt.proto is None:
        return f
    f["ip_proto"] = pkt.proto
    if pkt.proto in (6, 17, 132):
        name = {6: "tcp", 17: "udp", 132: "sctp"}[pkt.proto]
        f[f"{name}_src"] = pkt.sport
        f[f"{name}_dst"] = pkt.dport
    elif pkt.proto == 1 and family == "ipv4" or pkt.proto == 58 and family == "ipv6":
        prefix = "icmpv4" if family == "ipv4" else "icmpv6"
        f[f"{prefix}_type"] = pkt.icmp_type
        f[f"{prefix}_code"] = pkt.icmp_code
        if prefix == "icmpv6" and pkt.icmp_type in (135, 136) and pkt.nd_target:
            f["ipv6_nd_target"] = _ip(pkt.nd_target)
    return f


def _matches(flow, fields) -> bool:
    for name, value, mask in flow.match:
        have = fields.get(name)
        if have is None:
            return False
        if (have & mask if mask is not None else have) != value:
            return False
    return True


class Simulator:
    """`l2=False` (the security verdict): reaching `deliver` is the outcome
    "normal" (handed to layer-2 delivery, as the reference says).  `l2=True`:
    `deliver` runs too, and `deliveries()` tells which ports got the packet."""

    def __init__(self, flows, l2: bool = False):
        self.l2 = l2
        self.tables = defaultdict(list)
        for flow in flows:
            self.tables[flow.table].append(flow)
        for table in self.tables.values():
            table.sort(key=lambda f: -f.priority)

    def run(self, pkt: Packet, conn: str = "new", mark: int = 0) -> Outcome:
        self._fields = packet_fields(pkt)
        self._ct = (CT_STATES[conn], mark)
        self._outputs, self._commits, self.trace = [], [], []
        self._execute_table("classify", depth=0)
        if self.l2:
            return Outcome("deliver", commits=tuple(self._commits))
        if len(self._outputs) > 1:
            raise SimulationError(f"packet output more than once: {self._outputs}")
        if not self._outputs:
            return Outcome("drop", commits=tuple(self._commits))
        kind, port = self._outputs[0][:2]
        return Outcome(kind, port, tuple(self._commits))

    # -- lookup ---------------------------------------------------------------------
    def lookup(self, table: str):
        flows = self.tables.get(table, [])
        hard = next((f for f in flows if not _is_soft(f) and _matches(f, self._fields)), None)
        floor = hard.priority if hard else -1
        soft = [f for f in flows if _is_soft(f) and f.priority > floor
                and _matches(f, self._fields)]
        for priority in sorted({f.priority for f in soft}, reverse=True):
            for conj_id in self._complete(f for f in soft if f.priority == priority):
                self._fields["conj_id"] = conj_id
                found = next((f for f in flows if not _is_soft(f)
                              and _matches(f, self._fields)), None)
                self._fields["conj_id"] = 0
                if found is not None:
                    return found
        return hard

    @staticmethod
    def _complete(soft_flows) -> list[int]:
        clauses = defaultdict(set)
        sizes = {}
        for flow in soft_flows:
            for act in flow.actions:
                clauses[act.conj_id].add(act.clause)
                if sizes.setdefault(act.conj_id, act.n_clauses) != act.n_clauses:
                    raise SimulationError(f"conjunction {act.conj_id} has inconsistent sizes")
        return sorted(cid for cid, seen in clauses.items()
                      if seen == set(range(1, sizes[cid] + 1)))

    # -- execution ------------------------------------------------------------------
    def _execute_table(self, table: str, depth: int) -> None:
        if depth > 64:
            raise SimulationError("resubmit depth exceeded")
        flow = self.lookup(table)
        self.trace.append((table, flow))
        if flow is None:
            return  # table miss: drop
        for action in flow.actions:
            if isinstance(action, Load):
                mask = ((1 << action.nbits) - 1) << action.ofs
                old = self._fields[action.field]
                self._fields[action.field] = (old & ~mask) | (action.value << action.ofs & mask)
            elif isinstance(action, Resubmit):
                self._execute_table(action.table, depth + 1)
            elif isinstance(action, Goto) and action.table == "deliver" and not self.l2:
                self._outputs.append(("normal", None))
            elif isinstance(action, Goto):
                if TABLE_ORDER[action.table] <= TABLE_ORDER[table]:
                    raise SimulationError(f"goto_table backwards: {table} -> {action.table}")
                self._execute_table(action.table, depth + 1)
            elif isinstance(action, Ct):
                self._conntrack(action, depth)
            elif isinstance(action, CtClear):
                self._fields["ct_state"] = self._fields["ct_mark"] = 0
            elif isinstance(action, Output):
                if not self.l2 or action.port != self._fields["in_port"]:  # OVS never
                    # outputs to the in_port; the verdict mode keeps the reference's view
                    self._outputs.append(("output", action.port, self._fields["vlan_vid"]))
            elif isinstance(action, Normal):
                self._outputs.append(("normal", None))
            elif isinstance(action, PushVlan):
                if self._fields["vlan_vid"]:
                    raise SimulationError("push_vlan on a tagged packet (no QinQ here)")
                self._fields["vlan_vid"] = 0x1000
            elif isinstance(action, SetVlan):
                if not self._fields["vlan_vid"]:
                    raise SimulationError("set vlan_vid on an untagged packet")
                self._fields["vlan_vid"] = 0x1000 | action.vid
            elif isinstance(action, PopVlan):
                if not self._fields["vlan_vid"]:
                    raise SimulationError("pop_vlan on an untagged packet")
                self._fields["vlan_vid"] = 0
            elif isinstance(action, Conjunction):
                raise SimulationError("conjunction action executed")
            else:
                raise SimulationError(f"unknown action {action!r}")

    def _conntrack(self, action: Ct, depth: int) -> None:
        state, mark = self._ct
        if action.commit:
            if not self._fields["ct_state"] & P.CT_TRK:
                raise SimulationError("ct(commit) on an untracked packet")
            if action.mark is None:
                # in the sender's zone (egress side) or the receiver's (ingress)
                self._commits.append("commit-egress" if action.zone == P.SRC_ZONE.field
                                     else "commit-ingress")
            else:
                value, mask = action.mark
                side = {P.CT_MARK_REVOKED_EGRESS: "egress",
                        P.CT_MARK_REVOKED_INGRESS: "ingress"}[mask]
                self._commits.append(f"{'revoke' if value else 'unrevoke'}-{side}")
        if action.table is not None:
            self._fields["ct_state"] = state | P.CT_TRK
            self._fields["ct_mark"] = mark
            self._execute_table(action.table, depth + 1)


def _is_soft(flow) -> bool:
    return bool(flow.actions) and all(isinstance(a, Conjunction) for a in flow.actions)


def deliveries(flows, pkt: Packet) -> dict:
    """{port: VLAN tag or None} that the packet is output to, `deliver` included
    (a new connection; the security stages must let it through)."""
    sim = Simulator(flows, l2=True)
    sim.run(pkt)
    out = {}
    for _kind, port, vid in sim._outputs:
        if port in out:
            raise SimulationError(f"port {port} got the packet twice")
        out[port] = vid & 0xfff if vid else None
    return out
