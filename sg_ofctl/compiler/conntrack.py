"""The conntrack stages, the same for egress and ingress: `*_ct` sends IP through
conntrack, `*_state` sorts packets by their connection's state, `*_verdict`
turns the rules' verdict into commit, revoke or drop.  Shared by every port.

Egress runs in the sending port's zone (`src_zone`), ingress in the receiving
port's (`dst_zone`): each port's zone holds every connection it takes part in,
so its budget is a zone limit.  A new connection is committed in both zones
only after both verdicts (`pending_commit_flows`)."""
from __future__ import annotations

from collections.abc import Sequence

from sg_ofctl import pipeline as P
from sg_ofctl.compiler.flows import (Action, Ct, CtClear, Flow, Goto, Load, Resubmit, intern,
                                     make_match, set_bits)

ETH_IP, ETH_IPV6 = 0x0800, 0x86DD


class CtPriority:
    """`*_ct`: stateless ports skip conntrack; everything IP is tracked."""
    STATELESS = 100
    TRACK = 90


class StatePriority:
    """`*_state`, highest first.  Replies and related packets pass only while
    neither side has revoked their connection; established packets in the
    original direction are checked against the rules again."""
    INVALID = 100              # +inv: drop
    RELATED = 85               # +rel, not revoked: accept
    RELATED_REVOKED = 80       # +rel, revoked: drop
    REPLY = 75                 # +est+rpl, not revoked: accept
    REPLY_REVOKED = 72         # +est+rpl, revoked: drop
    ESTABLISHED_REVOKED = 70   # +est-rpl revoked by this side: re-check, may un-revoke
    ESTABLISHED = 65           # +est-rpl: re-check against the current rules
    NEW = 60                   # +new: check against the rules


class VerdictPriority:
    """`*_verdict`, highest first: deny wins over allow."""
    REVOKE_DENIED = 100        # denied, established: mark revoked (ct commit)
    DENY = 95                  # denied: drop
    STATELESS_ALLOW = 90       # allowed, stateless port: accept
    UNREVOKE = 85              # allowed again after a revocation: clear this side's mark
    ESTABLISHED_ALLOW = 80     # allowed, established: accept
    COMMIT = 75                # allowed, new: commit (egress: mark it pending) and accept
    REVOKE_UNMATCHED = 70      # no rule allows an established connection: mark revoked


def _flag(reg: P.Register, bit: int) -> dict[str, tuple[int, int]]:
    return {reg.field: (bit, bit)}


def conntrack_flows(direction: str, cookie: int) -> list[Flow]:
    ct_table, state, dispatch = f"{direction}_ct", f"{direction}_state", f"{direction}_dispatch"
    verdict = f"{direction}_verdict"
    accept = "forward" if direction == "egress" else "ingress_output"
    flows: list[Flow] = []

    def add(table: str, priority: int, actions: Sequence[Action],
            **match: int | tuple[int, int]) -> None:
        flows.append(Flow(table, priority, make_match(**match), intern(tuple(actions)), cookie))

    stateless = _flag(P.FLAGS, P.FLAG_STATELESS)
    established = _flag(P.FLAGS, P.FLAG_ESTABLISHED)
    side = P.CT_MARK_REVOKED_EGRESS if direction == "egress" else P.CT_MARK_REVOKED_INGRESS
    revoked_here = {"ct_mark": (side, side)}
    not_revoked = {"ct_mark": (0, P.CT_MARK_REVOKED)}
    clear = [CtClear()] if direction == "ingress" else []
    zone = (P.SRC_ZONE if direction == "egress" else P.DST_ZONE).field

    add(ct_table, CtPriority.STATELESS, [Goto(dispatch)], **stateless)
    for eth in (ETH_IP, ETH_IPV6):
        add(ct_table, CtPriority.TRACK, clear + [Ct(table=state, zone=zone)], eth_type=eth)

    def st(on: int, off: int = 0) -> dict[str, tuple[int, int]]:
        return {"ct_state": (on | P.CT_TRK, on | off | P.CT_TRK)}
    add(state, StatePriority.INVALID, [], **st(P.CT_INV))
    add(state, StatePriority.RELATED, [Goto(accept)], **st(P.CT_REL), **not_revoked)
    add(state, StatePriority.RELATED_REVOKED, [], **st(P.CT_REL))
    add(state, StatePriority.REPLY, [Goto(accept)], **st(P.CT_EST | P.CT_RPL), **not_revoked)
    add(state, StatePriority.REPLY_REVOKED, [], **st(P.CT_EST | P.CT_RPL))
    add(state, StatePriority.ESTABLISHED_REVOKED,
        [set_bits(P.FLAGS.field, P.FLAG_ESTABLISHED | P.FLAG_WAS_REVOKED), Goto(dispatch)],
        **st(P.CT_EST, P.CT_RPL), **revoked_here)
    add(state, StatePriority.ESTABLISHED, [set_bits(P.FLAGS.field, P.FLAG_ESTABLISHED),
                                           Goto(dispatch)], **st(P.CT_EST, P.CT_RPL))
    add(state, StatePriority.NEW, [Goto(dispatch)], **st(P.CT_NEW))

    deny = {P.VERDICT.field: (P.VERDICT_DENY, P.VERDICT_DENY)}
    allow = {P.VERDICT.field: (P.VERDICT_ALLOW, P.VERDICT_ALLOW)}
    revoke = Ct(commit=True, mark=(side, side), zone=zone)
    add(verdict, VerdictPriority.DENY, [], **deny)
    add(verdict, VerdictPriority.STATELESS_ALLOW, [Goto(accept)], **allow, **stateless)
    add(verdict, VerdictPriority.ESTABLISHED_ALLOW, [Goto(accept)], **allow, **established)
    for eth in (ETH_IP, ETH_IPV6):  # OVS accepts ct() only on a flow that matches IP
        add(verdict, VerdictPriority.REVOKE_DENIED, [revoke], eth_type=eth, **deny,
            **established)
        add(verdict, VerdictPriority.UNREVOKE, [Ct(commit=True, mark=(0, side), zone=zone),
                                                   Goto(accept)],
            eth_type=eth, **allow, **_flag(P.FLAGS, P.FLAG_WAS_REVOKED))
        # The sender's side does not commit: a refused connection must leave no
        # entry.  The receiver's verdict commits in its zone; the sender's zone gets
        # the connection in `ingress_output` (or in `forward`, for anything else).
        commit = [set_bits(P.FLAGS.field, P.FLAG_COMMIT_PENDING)] if direction == "egress" \
            else [Ct(commit=True, zone=zone)]
        add(verdict, VerdictPriority.COMMIT, commit + [Goto(accept)], eth_type=eth, **allow)
        add(verdict, VerdictPriority.REVOKE_UNMATCHED, [revoke], eth_type=eth, **established)
    return flows


def pending_commit_flows(cookie: int) -> list[Flow]:
    """`ingress_output`: a new connection that the sender allowed (and the receiver
    has just allowed too: nothing else reaches this table) is committed in the
    sender's zone, then the packet goes on to the receiving port's output flow.
    Also for a stateless receiver, whose verdict commits nothing."""
    pending = _flag(P.FLAGS, P.FLAG_COMMIT_PENDING)
    clear = Load(P.FLAGS.field, 0, P.FLAG_COMMIT_PENDING.bit_length() - 1, 1)
    return [Flow("ingress_output", 200, make_match(eth_type=eth, **pending),
                 intern((Ct(commit=True, zone=P.SRC_ZONE.field), clear,
                         Resubmit("ingress_output"))), cookie)
            for eth in (ETH_IP, ETH_IPV6)]
