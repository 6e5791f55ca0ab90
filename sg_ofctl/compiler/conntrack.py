"""The conntrack stages, the same for egress and ingress: `*_ct` sends IP through
conntrack, `*_state` sorts packets by their connection's state, `*_verdict`
turns the rules' verdict into commit, revoke or drop.  Shared by every port."""
from __future__ import annotations

from collections.abc import Sequence

from sg_ofctl import pipeline as P
from sg_ofctl.compiler.flows import (Action, Ct, CtClear, Flow, Goto, intern, make_match,
                                     set_bits)

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
    STATELESS_COMMIT = 92      # allowed, stateless receiver, the sender's new connection: commit
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

    add(ct_table, CtPriority.STATELESS, [Goto(dispatch)], **stateless)
    for eth in (ETH_IP, ETH_IPV6):
        add(ct_table, CtPriority.TRACK, clear + [Ct(table=state)], eth_type=eth)

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
    revoke = Ct(commit=True, mark=(side, side))
    add(verdict, VerdictPriority.DENY, [], **deny)
    add(verdict, VerdictPriority.STATELESS_ALLOW, [Goto(accept)], **allow, **stateless)
    add(verdict, VerdictPriority.ESTABLISHED_ALLOW, [Goto(accept)], **allow, **established)
    for eth in (ETH_IP, ETH_IPV6):  # OVS accepts ct() only on a flow that matches IP
        add(verdict, VerdictPriority.REVOKE_DENIED, [revoke], eth_type=eth, **deny,
            **established)
        add(verdict, VerdictPriority.UNREVOKE, [Ct(commit=True, mark=(0, side)), Goto(accept)],
            eth_type=eth, **allow, **_flag(P.FLAGS, P.FLAG_WAS_REVOKED))
        # The sender's side does not commit: a refused connection must leave no
        # entry.  The receiver's verdict commits (or `forward`, for anything else).
        commit = [set_bits(P.FLAGS.field, P.FLAG_COMMIT_PENDING)] if direction == "egress" \
            else [Ct(commit=True)]
        add(verdict, VerdictPriority.COMMIT, commit + [Goto(accept)], eth_type=eth, **allow)
        if direction == "ingress":
            add(verdict, VerdictPriority.STATELESS_COMMIT, [Ct(commit=True), Goto(accept)],
                eth_type=eth, **allow,
                **_flag(P.FLAGS, P.FLAG_STATELESS | P.FLAG_COMMIT_PENDING))
        add(verdict, VerdictPriority.REVOKE_UNMATCHED, [revoke], eth_type=eth, **established)
    return flows
