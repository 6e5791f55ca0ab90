"""Packet-logging flows of one logged port: copies of its events to the
controller, through the host's packet-log meter.  Pure.  A port that no log
covers has none of these flows (logging off costs nothing), and a logged port
has a few, whatever the number of its groups' rules:

- accept: the first packet of each new connection the rules allow (stateful:
  beside the commit in `*_verdict`; stateless: every allowed packet);
- drop: packets a deny rule or no rule drops (`*_verdict`), and what
  anti-spoofing drops (`classify`: source MAC; `egress_spoof`: source IP/ARP).

Each flow's cookie names the port and the event (`ids.KIND_LOG`), so the agent
knows from a packet-in's cookie which port, direction and verdict it is."""
from __future__ import annotations

from dataclasses import dataclass

from sg_ofctl import pipeline as P
from sg_ofctl.compiler import ids
from sg_ofctl.compiler.conntrack import VerdictPriority
from sg_ofctl.compiler.flows import (Controller, Ct, Flow, Goto, intern, make_match,
                                     set_bits)

ETH_IP, ETH_IPV6 = 0x0800, 0x86DD
LOG_METER_ID = 0x5347      # the host's packet-log meter (one per bridge)
ACCEPT_PRIORITY = VerdictPriority.COMMIT + 1        # new, allowed: log and commit
STATELESS_ACCEPT_PRIORITY = VerdictPriority.STATELESS_ALLOW + 1
DENY_PRIORITY = VerdictPriority.DENY + 1            # denied by a deny rule
NO_RULE_PRIORITY = 1                                # no rule allowed it
SPOOF_PRIORITY = 1                                  # classify / egress_spoof misses
# The events a log flow reports (the cookie's item).
EVENTS = ("accept-egress", "accept-ingress", "deny-egress", "deny-ingress",
          "norule-egress", "norule-ingress", "spoof-mac", "spoof-ip")


@dataclass(frozen=True)
class LogFlags:
    """What is logged on one port (the union of the logs that cover it)."""
    accept: bool
    drop: bool


def event_cookie(port_id: str, event: str) -> int:
    return ids.cookie(ids.KIND_LOG, port_id, event)


def port_log_flows(port, flags: LogFlags, stateful: bool,
                   meter_id: int = LOG_METER_ID) -> list[Flow]:
    o = port.ofport
    send = Controller(meter_id)
    flows: list[Flow] = []

    def add(table, priority, actions, event, **match):
        flows.append(Flow(table, priority, make_match(**match), intern(tuple(actions)),
                          event_cookie(port.id, event)))

    for direction, reg, accept in (("egress", P.SRC_PORT, "forward"),
                                   ("ingress", P.DST_PORT, "ingress_output")):
        verdict, here = f"{direction}_verdict", {reg.field: o}
        if flags.accept and stateful:
            for eth in (ETH_IP, ETH_IPV6):   # ct() only on a flow that matches IP
                # As in `*_verdict`: the sender only marks the commit pending.
                commit = set_bits(P.FLAGS.field, P.FLAG_COMMIT_PENDING) \
                    if direction == "egress" else Ct(commit=True, zone=P.DST_ZONE.field)
                add(verdict, ACCEPT_PRIORITY, [commit, send, Goto(accept)],
                    f"accept-{direction}", eth_type=eth, **here,
                    **{P.VERDICT.field: (P.VERDICT_ALLOW, P.VERDICT_ALLOW)})
        elif flags.accept:
            add(verdict, STATELESS_ACCEPT_PRIORITY, [send, Goto(accept)],
                f"accept-{direction}", **here,
                **{P.VERDICT.field: (P.VERDICT_ALLOW, P.VERDICT_ALLOW),
                   P.FLAGS.field: (P.FLAG_STATELESS, P.FLAG_STATELESS)})
        if flags.drop:
            add(verdict, DENY_PRIORITY, [send], f"deny-{direction}", **here,
                **{P.VERDICT.field: (P.VERDICT_DENY, P.VERDICT_DENY)})
            add(verdict, NO_RULE_PRIORITY, [send], f"norule-{direction}", **here)
    if flags.drop:
        add("classify", SPOOF_PRIORITY, [send], "spoof-mac", in_port=o)
        add("egress_spoof", SPOOF_PRIORITY, [send], "spoof-ip",
            **{P.SRC_PORT.field: o})
    return flows
