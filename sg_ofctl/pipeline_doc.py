"""Generates flows/PIPELINE.md from the pipeline declaration.

    python -m sg_ofctl.pipeline_doc            # rewrite flows/PIPELINE.md
    python -m sg_ofctl.pipeline_doc --check    # exit 1 if it is stale
"""
from __future__ import annotations

import pathlib
import sys

from sg_ofctl import pipeline as P
from sg_ofctl.compiler import build, ids
from sg_ofctl.compiler.portranges import range_to_masks

TARGET = pathlib.Path(__file__).resolve().parent.parent / "flows" / "PIPELINE.md"

def _example_masks() -> str:
    masks = range_to_masks(8000, 8080)
    return ", ".join(str(v) if m is None else f"{v}/{m:#06x}" for v, m in masks)


DESIGN = f"""\
## How the flows are organised

**Rules once per group.** A port's `*_dispatch` flow loads each of its groups'
numbers into `group` and resubmits to `*_rules`; the rules of a group are
compiled once, matching `group`, and only set bits in `verdict`. The flow count
is ports + rules + member addresses, never a product: adding a rule adds its own
flows only; attaching a group to a port rewrites that port's two dispatch flows.

**Deny wins.** In `*_rules` a deny flow outranks every allow flow (priorities
{build.PRIO_DENY_CONJ}/{build.PRIO_DENY} for deny, {build.PRIO_ALLOW_CONJ}/{build.PRIO_ALLOW} for allow;
conjunctions above plain flows of the same action, because OVS only tries a
conjunction that outranks the best ordinary match). Each group sets its own bits,
so a deny in any group drops the packet, whatever the other groups allow.

**Remote groups by conjunction.** All rules that name the same remote group, in
the same direction, ethertype and action, share one conjunction: clause 1 is each
rule's own match (`group` + protocol + port masks), clause 2 is one flow per member
address (`nw_src` for ingress, `nw_dst` for egress). An address that is a member
of several groups has one flow with a `conjunction()` for each. Adding or removing
a member therefore changes one flow per table it appears in (at most two), and
a rule referencing a remote group adds only its own clause-1 flows.
Conjunction ids and group numbers are 32-bit hashes of stable identifiers
(group id; remote group, direction, ethertype, action), collisions resolved by
probing in sorted order — never a counter, so a restart compiles the same ids.

**Port ranges** become the minimal set of value/mask matches
(e.g. 8000-8080 is {_example_masks()}).
DCCP and UDP-Lite port ranges are refused by the model: OVS cannot match them,
and widening them to "all ports" (Neutron's bug) would open access.

**Anti-spoofing.** `classify` admits only the port's own MACs (its MAC and its
allowed pairs' MACs) on untagged frames; `egress_spoof` binds each source IP (fixed
IPs, allowed pairs with their MAC, the EUI-64 link-local address of each MAC) to its
MAC, and ARP to its sender MAC and IP (ARP probes from 0.0.0.0 allowed). The shared
`egress_guard` drops DHCP server replies, router advertisements and redirects,
lets DHCP/DHCPv6 client traffic, router and neighbour solicitations and MLD pass
without rules, checks neighbour advertisements' targets in `egress_nd`, and only
lets the unspecified addresses (0.0.0.0, ::) be used for those. Other ethertypes
are dropped. A port with port security disabled gets one `classify` flow and no
filtering; traffic to it is delivered by `deliver` (to its MACs).

**Forwarding.** After the egress stages a packet goes to `forward`: for a filtered
local port (network + destination MAC, including its allowed pairs' MACs) it runs
the ingress stages and is output to that port; anything else goes to `deliver`.
Traffic between two local ports thus passes the sender's egress rules and the
receiver's ingress rules. Uplink ports (trunks, tunnels: given to the compiler)
enter at `forward` with the network of their VLAN tag (untagged = network 0);
frames from any other port without flows — such as a new port whose flows are
not in yet — are dropped by `classify`. IP broadcast and multicast are not
addressed to a port's MAC: they are delivered after the sender's egress rules
(as in Neutron) to the network's local ports and the uplinks.

**Delivery to known ports only.** `deliver` is the layer-2 switch, in flows,
instead of OVS NORMAL: NORMAL floods broadcasts and unknown unicast to every
port, so a port that no agent has enforced (a VM plugged while the agent is
down, a crash mid-sync) would receive traffic. `deliver` outputs only to ports
the compiler was given: an unfiltered local port by its MACs; broadcast and
multicast to every local port of the network and every uplink; any other
unicast to the uplinks (no MAC learning: with several uplinks, unknown unicast
goes to all of them, as NORMAL does before it has learned). Uplinks carry
network 0 untagged and other networks tagged: the tag is pushed for an uplink
and popped for a local port. OVS never outputs a packet to its own in_port.

**Conntrack zones: one per port.** Each filtered local port has its own zone,
its ofport (unique on the bridge, never 0, below 0xff00, kept across agent and
ovs-vswitchd restarts; OVN likewise gives each logical port its own zone):
`classify` loads the sender's zone into `src_zone` and `forward` the receiver's
into `dst_zone`; the egress stages run in the sender's zone, the ingress stages
(after `ct_clear`) in the receiver's. A port's zone thus holds every connection
it takes part in, and nothing else, so a limit on the zone (the agent sets one,
`--conntrack-limit-per-port`, docs/AGENT.md) is that port's conntrack budget:
a VM's flood fills its own zone, not the host's table. The packet's network
(VLAN) has its own register, `network`, for `forward` and `deliver`; overlapping
address spaces never share a zone. (In Neutron's br-int the zone is the
network's local VLAN, below.)

**Conntrack and revocation.** In `*_state`: `+inv` is dropped; replies (`+est+rpl`) and related
traffic pass at once unless the connection is marked revoked; new connections and
established ones in their original direction are checked against the current
rules. An allowed new connection is committed only after both verdicts: the
sender's egress verdict only sets the `flags` bit "commit pending"; the
receiver's ingress verdict commits it in the receiver's zone, and
`ingress_output` then commits it in the sender's zone (also after a stateless
receiver's verdict, which commits nothing itself); `forward` commits it in the
sender's zone before `deliver` for any other destination (an uplink, an
unfiltered port). So a connection the receiver refuses leaves no conntrack entry
in any zone (a flood of refused SYNs cannot fill the table), and both sides of an
allowed one recognise its replies (`+est+rpl`) in their own zones. An established connection that the
rules no longer allow is committed with a "revoked" ct_mark bit and dropped; from
then on its replies are dropped too. The sender's egress check (in its zone) and
the receiver's ingress check (in its own) each
set and clear only their own bit ({P.CT_MARK_REVOKED_EGRESS:#x} and {P.CT_MARK_REVOKED_INGRESS:#x}), so one side allowing
a packet never undoes the other side's verdict: a reply meets the revoking side's
entry on that side's stage and is dropped there. If the rules allow the connection
again, that side's bit is cleared. So removing a rule, a group from a port or a member from a
remote group cuts the connections it allowed at their next original-direction
packet (a TCP ACK), while connections still allowed keep going. The agent
flushes conntrack (NXT_CT_FLUSH) only for local ports that left the host (their
whole zone, and their addresses in their network peers' zones): a
blind flush is no revocation, because userspace conntrack picks up a mid-stream
TCP segment as a new connection, so the side allowed to open connections would
re-create the entry in reverse and the other side's packets would pass as replies.

**Stateless groups** (`stateful: false`) skip conntrack: every packet, in each
direction, must be allowed by a rule. A port may not mix stateful and stateless
groups: the model refuses it, naming the port and its groups (as Neutron does).

**Cookies** (64 bits): `0x5` signature (4 bits) | kind (4 bits: {", ".join(
    f"{k} {v}" for k, v in ids.KIND_NAMES.items())}) | owner (32 bits: hash of the
port, group, remote group or address) | item (24 bits: hash of the rule). The
agent reads back its flows by the signature; stale flows are simply those not in
the desired set.
"""


def render() -> str:
    out = ["# The sg-ofctl pipeline", "",
           "Generated from `sg_ofctl/pipeline.py` by `python -m sg_ofctl.pipeline_doc`;"
           " a test fails when this file is stale.", "",
           f"Tables are contiguous from a configurable first table (default "
           f"{P.DEFAULT_FIRST_TABLE}; agent option `--first-table`), named in OVS so that "
           "dumps read `table=egress_rules`.", "",
           "## Tables", "",
           "| # | name | stage | what it does | matches | next | on miss |",
           "|---|---|---|---|---|---|---|"]
    for i, t in enumerate(P.TABLES):
        matches = ", ".join(P.FIELDS[m].ofctl for m in t.matches) or "-"
        nxt = ", ".join(f"`{n}`" for n in t.next_tables) or "-"
        out.append(f"| +{i} | `{t.name}` | {t.stage} | {t.purpose} | {matches} | {nxt} | "
                   f"{t.miss} |")
    out += neutron_map()
    out += ["", "## Registers", "", "| register | field | purpose |", "|---|---|---|"]
    out += [f"| `{r.name}` | {r.field} | {r.purpose} |" for r in P.REGISTERS]
    out += ["", "## Conntrack marks", "", "| ct_mark bit | name | meaning |", "|---|---|---|"]
    out += [f"| {bit:#x} | {name} | {meaning} |" for bit, name, meaning in P.CT_MARKS]
    out += ["", DESIGN]
    return "\n".join(out)


def neutron_map() -> list[str]:
    """The table map inside the Neutron OVS agent's br-int (pipeline.neutron_placement)."""
    first = P.NEUTRON_FIRST_TABLE
    out = ["", "## Inside Neutron's br-int (the firewall driver)", "",
           f"As the neutron-openvswitch-agent's firewall driver (docs/NEUTRON.md) the 17 "
           f"tables above are {first}-{first + len(P.TABLES) - 1} (outside neutron-lib's "
           "`INT_BR_ALL_TABLES`, where the agent's stale-flow clean-up never looks), the "
           "conntrack zone is the port's local VLAN (as Neutron's own driver and conntrack "
           "clean-ups use; not a zone per port, so there is no per-port limit: "
           "docs/NEUTRON.md), and the pipeline meets "
           "Neutron's own tables:", "",
           "| # | name | what sg-ofctl does there |", "|---|---|---|"]
    for t in P.NEUTRON_TABLES:
        out.append(f"| {P.NEUTRON_TABLE_NUMBERS[t.name]} | `{t.name}` | {t.purpose} |")
    out += ["", "Flows sg-ofctl adds for the Neutron placement, per port:", "",
            "- `neutron_transient` priority 100 `in_port=<ofport>` -> `classify` (every "
            "port, filtered or not: `classify` drops what is not the port's own MAC);",
            "- `neutron_transient` priority 90 `dl_dst=<MAC>,dl_vlan=<local VLAN>` -> "
            "`network` = VLAN, `forward` (a filtered port's MACs: its own and its allowed "
            "pairs'), the ingress hook for traffic from tunnels, physnets and NORMAL;",
            "- `ingress_output` -> reg5 = ofport, reg6 = local VLAN, resubmit to "
            "`neutron_accepted_ingress` (92), then `output:<ofport>`.",
            "", f"`forward`'s miss (accepted egress not for a local filtered port) copies "
            f"`src_port` to {P.NEUTRON_PORT_REG} ({P.NEUTRON_NET_REG} is the `network` "
            "register: the local VLAN already), then resubmits to "
            "`neutron_accepted_egress` (91), which "
            "goes to 94, NORMAL; both are set up as Neutron's driver does. "
            "Port-security-disabled and trusted (`network:*`) ports get the in_port hook "
            "and one `classify` flow: no filtering, as with Neutron's driver (their "
            "traffic reaches 91 with reg5 = 0)."]
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python -m sg_ofctl.pipeline_doc", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
