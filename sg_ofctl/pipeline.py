"""The one declaration of sg-ofctl's OpenFlow pipeline: tables, registers,
conntrack marks and match fields.  flows/PIPELINE.md is generated from it
(`python -m sg_ofctl.pipeline_doc`), and the compiler checks every flow against it."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_FIRST_TABLE = 0


@dataclass(frozen=True)
class Field:
    """A match field: os-ken (OXM/NXM) name, kind for formatting, width, ovs-ofctl name."""

    name: str
    kind: str  # "int", "mac", "ipv4", "ipv6"
    bits: int
    ofctl: str


FIELDS = {f.name: f for f in (
    Field("in_port", "int", 32, "in_port"),
    Field("eth_src", "mac", 48, "dl_src"),
    Field("eth_dst", "mac", 48, "dl_dst"),
    Field("eth_type", "int", 16, "dl_type"),
    Field("vlan_vid", "int", 13, "vlan_vid"),
    Field("ip_proto", "int", 8, "nw_proto"),
    Field("ipv4_src", "ipv4", 32, "nw_src"),
    Field("ipv4_dst", "ipv4", 32, "nw_dst"),
    Field("ipv6_src", "ipv6", 128, "ipv6_src"),
    Field("ipv6_dst", "ipv6", 128, "ipv6_dst"),
    Field("tcp_src", "int", 16, "tcp_src"),
    Field("tcp_dst", "int", 16, "tcp_dst"),
    Field("udp_src", "int", 16, "udp_src"),
    Field("udp_dst", "int", 16, "udp_dst"),
    Field("sctp_src", "int", 16, "sctp_src"),
    Field("sctp_dst", "int", 16, "sctp_dst"),
    Field("icmpv4_type", "int", 8, "icmp_type"),
    Field("icmpv4_code", "int", 8, "icmp_code"),
    Field("icmpv6_type", "int", 8, "icmpv6_type"),
    Field("icmpv6_code", "int", 8, "icmpv6_code"),
    Field("arp_spa", "ipv4", 32, "arp_spa"),
    Field("arp_sha", "mac", 48, "arp_sha"),
    Field("ipv6_nd_target", "ipv6", 128, "nd_target"),
    Field("ct_state", "int", 32, "ct_state"),
    Field("ct_mark", "int", 32, "ct_mark"),
    Field("conj_id", "int", 32, "conj_id"),
    *(Field(f"reg{i}", "int", 32, f"reg{i}") for i in range(16)),
)}


@dataclass(frozen=True)
class Register:
    name: str
    field: str  # "regN"
    purpose: str


SRC_PORT = Register("src_port", "reg0", "ofport of the local port that sent the packet "
                    "(egress stages)")
DST_PORT = Register("dst_port", "reg1", "ofport of the local port the packet is for "
                    "(ingress stages)")
SRC_ZONE = Register("src_zone", "reg2", "conntrack zone of the sending local port (egress "
                    "stages; its new connections are committed there)")
NETWORK = Register("network", "reg6", "the packet's network (VLAN; 0: untagged), for "
                   "`forward` and `deliver`")
DST_ZONE = Register("dst_zone", "reg7", "conntrack zone of the receiving local port (ingress "
                    "stages)")
GROUP = Register("group", "reg3", "number of the security group being evaluated")
VERDICT = Register("verdict", "reg4", "bit 0: some allow rule matched; bit 1: some deny "
                   "rule matched")
FLAGS = Register("flags", "reg5", "bit 0: port is stateless; bit 1: re-checking an "
                 "established connection; bit 2: its connection was marked revoked; "
                 "bit 3: the sender allowed a new connection that is not committed yet")
REGISTERS = (SRC_PORT, DST_PORT, SRC_ZONE, GROUP, VERDICT, FLAGS, NETWORK, DST_ZONE)
ZONE_REGISTERS = (SRC_ZONE.field, DST_ZONE.field)   # what a ct() action takes its zone from

VERDICT_ALLOW = 0x1
VERDICT_DENY = 0x2
FLAG_STATELESS = 0x1
FLAG_ESTABLISHED = 0x2
FLAG_WAS_REVOKED = 0x4
FLAG_COMMIT_PENDING = 0x8   # kept by `forward`; committed after the receiver's verdict
#                             (in `ingress_output`), or by `forward` for anything else
FLAGS_PER_SIDE = 0x7        # the bits `forward` resets for the receiving side

CT_MARK_REVOKED_EGRESS = 0x1
CT_MARK_REVOKED_INGRESS = 0x2
CT_MARK_REVOKED = CT_MARK_REVOKED_EGRESS | CT_MARK_REVOKED_INGRESS
CT_MARKS = (
    (CT_MARK_REVOKED_EGRESS, "revoked by egress", "the sender's egress rules no longer allow "
     "the connection"),
    (CT_MARK_REVOKED_INGRESS, "revoked by ingress", "the receiver's ingress rules no longer "
     "allow the connection"),
)
# Either bit drops every reply and related packet; each side sets and clears only its
# own bit, so one side allowing a packet never clears the other side's verdict.

# ct_state bits (os-ken has no constants for them).
CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
CT_STATE_NAMES = (("new", CT_NEW), ("est", CT_EST), ("rel", CT_REL), ("rpl", CT_RPL),
                  ("inv", CT_INV), ("trk", CT_TRK))

_L3 = ("ip_proto", "ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst")
_L4 = ("tcp_src", "tcp_dst", "udp_src", "udp_dst", "sctp_src", "sctp_dst", "icmpv4_type",
       "icmpv4_code",
       "icmpv6_type", "icmpv6_code")


@dataclass(frozen=True)
class Table:
    name: str
    stage: str
    purpose: str
    matches: tuple[str, ...]
    next_tables: tuple[str, ...]
    miss: str = "drop"


TABLES = (
    Table("classify", "classify",
          "in_port and source MAC -> which local port sent the packet, its network, its "
          "conntrack zone and whether it is stateless; unfiltered ports and uplinks go straight to "
          "`forward`; anything else (a port with no flows yet, a forged MAC) is dropped",
          ("in_port", "eth_src", "vlan_vid"), ("egress_spoof", "forward")),
    Table("egress_spoof", "egress anti-spoofing",
          "the sending port's own MAC with its own IPs (fixed IPs, allowed address pairs, "
          "IPv6 link-local); ARP only with its own sender MAC and IP; unspecified sources "
          "(0.0.0.0, ::) on to `egress_guard`, which lets only DHCP and ND use them",
          ("reg0", "eth_src", "eth_type") + _L3 + ("arp_spa", "arp_sha"),
          ("egress_guard", "forward")),
    Table("egress_guard", "egress anti-spoofing",
          "shared protocol guard: DHCP/DHCPv6 client, RS, NS and MLD pass; DHCP servers, "
          "router advertisements and redirects are dropped; NA goes to `egress_nd`",
          ("eth_type", "ip_proto", "ipv4_src", "ipv6_src", "udp_src", "udp_dst",
           "icmpv6_type"), ("egress_nd", "egress_ct", "forward"), miss="goto egress_ct"),
    Table("egress_nd", "egress anti-spoofing",
          "neighbour advertisements only for the sending port's own IPv6 addresses",
          ("reg0", "eth_type", "ip_proto", "icmpv6_type", "ipv6_nd_target"), ("forward",)),
    Table("egress_ct", "egress conntrack",
          "stateful ports: send IP through conntrack in the sending port's zone",
          ("eth_type", "reg5"), ("egress_state", "egress_dispatch")),
    Table("egress_state", "egress state",
          "+inv dropped; replies and related traffic pass unless revoked; new and "
          "established original-direction packets are checked against the rules",
          ("ct_state", "ct_mark"), ("egress_dispatch", "forward")),
    Table("egress_dispatch", "egress rules",
          "per port: evaluate each of its security groups (load `group`, resubmit to "
          "`egress_rules`), then decide in `egress_verdict`",
          ("reg0",), ("egress_rules", "egress_verdict")),
    Table("egress_rules", "egress rules",
          "the egress rules of every security group used on this host, once per group; "
          "remote groups by conjunction with their member addresses",
          ("reg3", "conj_id", "eth_type") + _L3 + _L4, (), miss="no verdict"),
    Table("egress_verdict", "egress rules",
          "deny wins; allowed new connections are committed; a denied established "
          "connection is marked revoked; a logged port's events are copied to the "
          "controller (through the packet-log meter)",
          ("reg4", "reg5", "eth_type", "reg0"), ("forward",)),
    Table("forward", "commit and forward",
          "a packet for a filtered local port (its network and MAC) goes to the ingress "
          "stages (with that port's zone), after whose verdict a new connection is committed; "
          "anything else to `deliver`, "
          "committing first a new connection the sender allowed (in Neutron's br-int: "
          "to its accepted-egress table, which ends in NORMAL)",
          ("reg6", "eth_dst", "reg5", "eth_type"),
          ("ingress_guard", "deliver", "neutron_accepted_egress"), miss="goto deliver"),
    Table("ingress_guard", "ingress conntrack",
          "VLAN tag popped; ARP, neighbour discovery, router advertisements, MLD and "
          "DHCP replies always pass; other non-IP traffic is dropped",
          ("vlan_vid", "eth_type", "ip_proto", "udp_src", "udp_dst", "icmpv6_type"),
          ("ingress_guard", "ingress_ct", "ingress_output")),
    Table("ingress_ct", "ingress conntrack",
          "stateful ports: conntrack again, in the receiving port's zone (after ct_clear)",
          ("eth_type", "reg5"), ("ingress_state", "ingress_dispatch")),
    Table("ingress_state", "ingress state", "as `egress_state`, for the receiving port",
          ("ct_state", "ct_mark"), ("ingress_dispatch", "ingress_output")),
    Table("ingress_dispatch", "ingress rules",
          "per port: evaluate each of its groups' ingress rules, then `ingress_verdict`",
          ("reg1",), ("ingress_rules", "ingress_verdict")),
    Table("ingress_rules", "ingress rules", "as `egress_rules`, for ingress rules",
          ("reg3", "conj_id", "eth_type") + _L3 + _L4, (), miss="no verdict"),
    Table("ingress_verdict", "ingress rules", "as `egress_verdict`",
          ("reg4", "reg5", "eth_type", "reg1"), ("ingress_output",)),
    Table("ingress_output", "commit and forward",
          "a new connection that the sender allowed is committed in the sender's zone too "
          "(the receiver's verdict committed it in its own); then delivered to the receiving "
          "port (in Neutron's br-int: after its accepted-ingress table)",
          ("reg1", "reg5", "eth_type"), ("ingress_output", "neutron_accepted_ingress")),
    Table("deliver", "commit and forward",
          "layer-2 delivery to known ports only (instead of OVS NORMAL, which floods to "
          "any port, one no agent has seen included): an unfiltered local port by its MAC; "
          "broadcast and multicast to the network's local ports and uplinks; other "
          "unicast to the uplinks; a VLAN tag pushed or popped as the port needs "
          "(not used in Neutron's br-int, where the agent's NORMAL delivers)",
          ("reg6", "eth_dst", "vlan_vid"), ()),
)

# Neutron's br-int tables that the pipeline meets inside the OVS agent (numbers
# fixed by neutron-lib's ovs_constants).  sg-ofctl adds flows only to the first;
# the others belong to the agent and to its logging and FWaaS consumers.
NEUTRON_TABLES = (
    Table("neutron_transient", "entry (Neutron)",
          "Neutron's TRANSIENT table: a local port's packets by in_port to `classify`; "
          "packets for a filtered port by destination MAC and local VLAN to `forward`",
          ("in_port", "eth_dst", "vlan_vid"), ("classify", "forward"), miss="NORMAL"),
    Table("neutron_accepted_egress", "exit (Neutron)",
          "Neutron's ACCEPTED_EGRESS_TRAFFIC table (logging, FWaaS), then its egress-normal "
          "table; reg5 = ofport, reg6 = local VLAN, as its consumers read them", (),
          ("neutron_egress_normal",), miss="NORMAL"),
    Table("neutron_egress_normal", "exit (Neutron)",
          "Neutron's ACCEPTED_EGRESS_TRAFFIC_NORMAL table: NORMAL", (), (), miss="NORMAL"),
    Table("neutron_accepted_ingress", "exit (Neutron)",
          "Neutron's ACCEPTED_INGRESS_TRAFFIC table (logging); drops by default, so the "
          "packet is output after it", (), (), miss="drop"),
)
NEUTRON_TABLE_NUMBERS = {"neutron_transient": 60, "neutron_accepted_egress": 91,
                         "neutron_egress_normal": 94, "neutron_accepted_ingress": 92}
NEUTRON_PORT_REG, NEUTRON_NET_REG = "reg5", "reg6"
TABLE_BY_NAME = {t.name: t for t in TABLES + NEUTRON_TABLES}
_INDEX = {t.name: i for i, t in enumerate(TABLES)}


def table_number(name: str, first_table: int = DEFAULT_FIRST_TABLE) -> int:
    """The OpenFlow table number of a named table (Neutron's by their fixed numbers)."""
    index = _INDEX.get(name)
    if index is None:
        return NEUTRON_TABLE_NUMBERS[name]
    return first_table + index


@dataclass(frozen=True)
class Placement:
    """Where the pipeline sits on its bridge and how it meets the rest of it; the
    one parameter by which the compiler's output differs between standalone
    sg-ofctl and the Neutron OVS agent's br-int.

    - first_table: the number of `classify`; the 17 tables follow it.
    - zone_per_port: each local port's conntrack zone is its own: its ofport
      (standalone; unique on the bridge while the port lives, kept across agent
      and ovs-vswitchd restarts, never 0, at most 0xfeff: a 16-bit zone), so a
      per-port connection limit is a zone limit.  Otherwise (Neutron) the zone is
      the port's network, its local VLAN, as Neutron's own driver and conntrack
      clean-ups use.
    - neutron: hook into Neutron's transient table (egress by in_port, ingress by
      destination MAC + local VLAN) instead of owning the first table; hand
      accepted traffic to Neutron's accepted-egress/-ingress tables with reg5/reg6
      loaded; unfiltered ports' traffic to its egress-normal table."""

    first_table: int = DEFAULT_FIRST_TABLE
    zone_per_port: bool = True
    neutron: bool = False

    def port_zone(self, ofport: int, network: int) -> int:
        """The conntrack zone of a local port."""
        if not self.zone_per_port:
            return network
        if not 0 < ofport <= MAX_PORT_ZONE:
            raise ValueError(f"ofport {ofport} cannot be a conntrack zone (1-{MAX_PORT_ZONE})")
        return ofport


MAX_PORT_ZONE = 0xFEFF   # OFPP_MAX - 1: the highest ofport OVS gives a port

STANDALONE = Placement()
NEUTRON_FIRST_TABLE = 100  # outside neutron-lib's INT_BR_ALL_TABLES: no agent clean-up looks there


def neutron_placement(first_table: int = NEUTRON_FIRST_TABLE) -> Placement:
    """Inside Neutron's br-int; our tables after all of Neutron's (95 and up)."""
    check_first_table(first_table)
    if first_table <= max(NEUTRON_TABLE_NUMBERS.values()):
        from sg_ofctl.model import ValidationError
        raise ValidationError("first_table", first_table,
                              "must be above 94 in Neutron's br-int (its own tables end there)")
    return Placement(first_table=first_table, zone_per_port=False, neutron=True)


def check_first_table(first_table: int) -> int:
    from sg_ofctl.model import ValidationError
    if isinstance(first_table, bool) or not isinstance(first_table, int) or \
            not 0 <= first_table <= 254 - len(TABLES):
        raise ValidationError("first_table", first_table,
                              f"must be an integer between 0 and {254 - len(TABLES)}")
    return first_table


class Flow(Protocol):
    """What the checks read of a flow (the compiler's Flow has it)."""
    @property
    def table(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def match(self) -> tuple[Any, ...]: ...
    @property
    def actions(self) -> tuple[Any, ...]: ...


def _miss_of(actions: Sequence[Any]) -> str | None:
    """The declared miss text that a catch-all flow's actions stand for."""
    if not actions:
        return "drop"
    kind = type(actions[0]).__name__
    if len(actions) == 1 and kind == "Normal":
        return "NORMAL"
    if len(actions) == 1 and kind == "Goto":
        return f"goto {actions[0].table}"
    last = actions[-1]
    copies = all(type(a).__name__ == "Move" for a in actions[:-1])
    if copies and type(last).__name__ == "Resubmit" and last.table in NEUTRON_TABLE_NUMBERS:
        # A Neutron table (registers copied for its consumers): its miss.
        return TABLE_BY_NAME[last.table].miss
    return None


def _same_miss(miss: str | None, declared: str) -> bool:
    """In Neutron's br-int, its tables that end in NORMAL stand for L2 delivery
    (`goto deliver` or NORMAL standalone)."""
    return miss == declared or (miss == "NORMAL" and declared == "goto deliver")


def check_flow(flow: Flow) -> None:
    """Raise ValueError if a flow leaves the declaration: an undeclared table, a
    match field its table does not declare, a jump to an undeclared next table,
    or a catch-all (priority 0, empty match) that is not the table's miss."""
    table = TABLE_BY_NAME.get(flow.table)
    if table is None:
        raise ValueError(f"undeclared table {flow.table!r}")
    for name, _value, _mask in flow.match:
        if name not in table.matches:
            raise ValueError(f"table {table.name} does not declare match field {name}")
    for action in flow.actions:
        target = getattr(action, "table", None)
        if target is not None and target not in table.next_tables:
            raise ValueError(f"table {table.name} may not continue to {target}")
    if flow.priority == 0 and not flow.match and not _same_miss(_miss_of(flow.actions),
                                                                 table.miss):
        raise ValueError(f"table {table.name}: its priority-0 flow differs from its "
                         f"declared miss {table.miss!r}")


def check_misses(flows: Iterable[Flow]) -> None:
    """Every table whose miss is an action (not drop, not "no verdict") has the
    priority-0 flow that performs it among `flows`."""
    present = {f.table for f in flows if f.priority == 0 and not f.match}
    for table in TABLES:
        if table.miss not in ("drop", "no verdict") and table.name not in present:
            raise ValueError(f"table {table.name} has no priority-0 flow for its "
                             f"declared miss {table.miss!r}")
