"""`sg-ofctl trace`: the real switch's verdict on a packet, in the rules' words.

`ofproto/trace` runs the packet through the bridge's installed flows, through
every conntrack recirculation (each `ct(table=...)` resumes with the state
given by --ct-next); each flow it hits is mapped back to its group, rule, port
or guard through its cookie (observe/cookies.py), and the decision is compared
with the model's (the reference semantics, as `explain` uses, on the same host
view): a difference means a stale switch or a bug, and is reported loudly."""
from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field

from sg_ofctl import pipeline
from sg_ofctl.compiler import build
from sg_ofctl.compiler.conntrack import StatePriority, VerdictPriority
from sg_ofctl.model import HostView
from sg_ofctl.observe.cookies import CookieMap, Owner
from sg_ofctl.observe.probe import Probe, TraceRequest, build_probe
from sg_ofctl.reference import Reference

MAX_CT_PASSES = 2    # egress conntrack, then ingress conntrack
_STEP = re.compile(r"^(\s*)(\d+)\. (.*)$")
_HIT = re.compile(r"^(?:(.*), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$")
# The group register, as ovs-ofctl-installed (load) or os-ken-installed (set_field) flows read.
_REG3 = re.compile(r"(?:load|set_field):(0x[0-9a-f]+|\d+)->(?:NXM_NX_REG3\[\]|reg3)$")
_OUTPUT = re.compile(r"^output:(\d+)$")
_STATE_TEXT = {
    StatePriority.INVALID: "conntrack: invalid packet (+inv)",
    StatePriority.RELATED: "related to an allowed connection",
    StatePriority.RELATED_REVOKED: "related to a revoked connection",
    StatePriority.REPLY: "reply of an allowed connection",
    StatePriority.REPLY_REVOKED: "reply of a revoked connection",
    StatePriority.ESTABLISHED_REVOKED: "established, revoked earlier: checked again",
    StatePriority.ESTABLISHED: "established: checked against the current rules",
    StatePriority.NEW: "new connection: checked against the rules",
}
_GUARDS = (("udp_src=67", "guard: VMs may not act as DHCP servers"),
           ("udp_src=547", "guard: VMs may not act as DHCPv6 servers"),
           ("icmpv6_type=134", "guard: VMs may not send router advertisements"),
           ("icmpv6_type=137", "guard: VMs may not send redirects"),
           ("nw_src=0.0.0.0", "guard: unspecified source address"),
           ("ipv6_src=::", "guard: unspecified source address"))


class TraceError(RuntimeError):
    """ofproto/trace could not run (no such bridge, no ovs-vswitchd)."""


@dataclass
class Hop:
    """One flow (or table miss) the packet met."""
    recirculation: int       # 0: the first pass; n: after the n-th conntrack
    table: str
    priority: int | None     # None: no flow matched (table miss)
    match: str
    cookie: int | None
    owner: str
    actions: list[str] = field(default_factory=list)
    nested: bool = False     # met through a resubmit (a group's rules)
    group: str | None = None  # the group being evaluated (rules tables)
    group_id: str | None = None
    kind: str = ""
    rule: str | None = None
    description: str = ""


@dataclass
class Verdict:
    action: str              # drop, normal (layer-2 delivery: `deliver`), output
    port: int | None
    why: str

    @property
    def allowed(self) -> bool:
        return self.action != "drop"


@dataclass
class TraceResult:
    probe: Probe
    hops: list[Hop]
    switch: Verdict
    model: Verdict
    sides: list[dict]
    raw: str

    @property
    def agree(self) -> bool:
        return (self.switch.action, self.switch.port) == (self.model.action, self.model.port)

    def disagreement(self) -> str | None:
        if self.agree:
            return None
        return (f"the switch {_says(self.switch)} but the model {_says(self.model)}: "
                f"the switch is stale or sg-ofctl has a bug. Check `sg-ofctl status` "
                f"(errors, last sync); restarting the agent reads back every flow and "
                f"repairs the difference.")

    def to_dict(self) -> dict:
        return {"from": self.probe.src, "to": self.probe.dst, "flow": self.probe.flow,
                "ct_state": self.probe.ct_state,
                "verdict": "allowed" if self.switch.allowed else "dropped",
                "switch": asdict(self.switch), "model": asdict(self.model),
                "agree": self.agree, "disagreement": self.disagreement(),
                "sides": self.sides, "path": [asdict(h) for h in self.hops]}


def _says(v: Verdict) -> str:
    where = {"drop": "drops it", "normal": "forwards it (layer-2 delivery)",
             "output": f"delivers it to ofport {v.port}"}[v.action]
    return f"{where} ({v.why})"


# ---- running ofproto/trace ----------------------------------------------------------

def run_ofproto_trace(bridge: str, probe: Probe, target: str | None = None,
                      env=None, timeout: float = 30.0) -> str:
    cmd = ["ovs-appctl", *(["-t", target] if target else []), "ofproto/trace", bridge,
           probe.flow]
    for _ in range(MAX_CT_PASSES):
        cmd += ["--ct-next", probe.ct_state]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TraceError(f"ovs-appctl ofproto/trace: {e}") from None
    if done.returncode != 0:
        raise TraceError(f"ovs-appctl ofproto/trace {bridge}: "
                         f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


# ---- parsing ------------------------------------------------------------------------

def parse_hops(text: str, table_names: dict[int, str], cookies: CookieMap) -> list[Hop]:
    hops: list[Hop] = []
    stack: list[tuple[int, Hop]] = []     # (column of the step's dot, hop)
    recirc, group, group_id = 0, None, None
    for line in text.splitlines():
        if line.startswith("recirc("):
            recirc, stack = recirc + 1, []
            continue
        stripped = line.strip()
        step = _STEP.match(line)
        if step is not None:
            dot = len(step.group(1)) + len(step.group(2))
            while stack and stack[-1][0] >= dot:
                stack.pop()
            number, rest = int(step.group(2)), step.group(3).strip()
            name = table_names.get(number, f"table {number}")
            if rest.startswith("No match"):
                hop = Hop(recirc, name, None, "", None, "no flow matched (table miss)")
            else:
                hit = _HIT.match(rest)
                if hit is None:
                    continue
                cookie = int(hit.group(3), 16) if hit.group(3) else 0
                owner = cookies.owner(cookie)
                hop = Hop(recirc, name, int(hit.group(2)), hit.group(1) or "", cookie,
                          owner.text, kind=owner.kind, rule=owner.rule,
                          description=owner.description)
            hop.nested = bool(stack)
            if name.endswith("_rules"):
                hop.group, hop.group_id = group, group_id
            hops.append(hop)
            stack.append((dot, hop))
            continue
        if not stripped or stripped.startswith(("->", "thaw", "Resuming", "Flow:",
                                                "Final flow", "Megaflow", "Datapath",
                                                "bridge(", "---", "===")):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack:
            stack[-1][1].actions.append(stripped)
            reg3 = _REG3.search(stripped)
            if reg3:
                number = int(reg3.group(1), 0)
                group, group_id = cookies.group_name(number), cookies.group_by_number.get(number)
    return hops


def _outcome(hops: list[Hop]) -> tuple[str, int | None]:
    for hop in hops:
        if hop.table == "deliver":   # the security verdict let it through to layer-2
            return "normal", None    # delivery (known ports only): the model's "normal"
        for action in hop.actions:
            out = _OUTPUT.match(action)
            if out:
                return "output", int(out.group(1))
            if action == "NORMAL":
                return "normal", None
    return "drop", None


# ---- the switch's reasons -----------------------------------------------------------

def _rule_names(hops: list[Hop], direction: str, action: str) -> list[str]:
    table = f"{direction}_rules"
    deny = (build.PRIO_DENY, build.PRIO_DENY_CONJ)
    out = []
    for hop in hops:
        if hop.table != table or hop.priority is None or hop.kind == "member":
            continue
        if (hop.priority in deny) != (action == "deny"):
            continue
        if hop.kind == "remote-group" and hop.rule is None:
            text = f"a rule of group {hop.group} ({hop.owner})"
        elif hop.kind == "remote-group":
            text = f"rule {hop.rule}" + (f" ({hop.description})" if hop.description else "")
            text += f" of group {hop.group} (a remote-group rule: by conjunction)"
        else:
            text = hop.owner + (f" ({hop.description})" if hop.description else "")
        if hop.kind == "rule" and any(a.startswith("conjunction(") for a in hop.actions):
            continue    # clause 1 of a remote-group rule: the conjunction flow decides
        if text not in out:
            out.append(text)
    return out


def _groups_evaluated(hops: list[Hop], direction: str) -> list[str]:
    return list(dict.fromkeys(h.group for h in hops
                              if h.table == f"{direction}_rules" and h.group))


def _side_reason(hops: list[Hop], direction: str) -> tuple[bool, str] | None:
    """(allowed, why) of one direction's stages, or None if the packet never
    reached them."""
    mine = [h for h in hops if h.table.startswith(direction + "_")]
    if not mine:
        return None
    verdict = next((h for h in mine if h.table == f"{direction}_verdict"), None)
    groups = ", ".join(_groups_evaluated(hops, direction)) or "-"
    if verdict is not None:
        denies = _rule_names(hops, direction, "deny")
        allows = _rule_names(hops, direction, "allow")
        if verdict.priority is None:
            return False, f"no {direction} rule of group(s) {groups} allows it"
        if verdict.priority in (VerdictPriority.DENY, VerdictPriority.REVOKE_DENIED):
            extra = "; the established connection is revoked" \
                if verdict.priority == VerdictPriority.REVOKE_DENIED else ""
            return False, f"denied by {' and '.join(denies) or 'a deny rule'}{extra}"
        if verdict.priority == VerdictPriority.REVOKE_UNMATCHED:
            return False, (f"no {direction} rule of group(s) {groups} allows it any more; "
                           "the established connection is revoked")
        return True, f"allowed by {' and '.join(allows) or 'an allow rule'}"
    state = next((h for h in mine if h.table == f"{direction}_state"), None)
    if state is not None and state.priority in _STATE_TEXT:
        allowed = state.priority in (StatePriority.RELATED, StatePriority.REPLY)
        return allowed, _STATE_TEXT[state.priority]
    last = mine[-1]
    if last.table == "egress_guard" and last.priority is not None and not last.actions:
        return False, _guard(last)
    if last.table in ("egress_guard", "ingress_guard") and last.priority:
        return True, "always allowed (DHCP client, neighbour discovery or ARP)"
    if last.table == "egress_spoof" and last.priority is None:
        return False, "anti-spoofing: source IP (or ARP claim) is not the port's"
    if last.table == "egress_nd" and last.priority is None:
        return False, "anti-spoofing: neighbour advertisement for an address not the port's"
    if last.table == "ingress_guard" and last.priority is None:
        return False, "ingress guard: neither IP nor ARP/ND"
    return None


def _guard(hop: Hop) -> str:
    for needle, text in _GUARDS:
        if needle in hop.match:
            return text
    return f"guard: dropped by a shared flow ({hop.match})"


def explain_switch(hops: list[Hop]) -> tuple[Verdict, list[dict]]:
    action, port = _outcome(hops)
    sides = []
    for direction in ("egress", "ingress"):
        reason = _side_reason(hops, direction)
        if reason is not None:
            sides.append({"side": direction, "result": "allowed" if reason[0] else "dropped",
                          "why": reason[1]})
    if action != "drop":
        why = "; ".join(f"{s['side']}: {s['why']}" for s in sides) or \
            "not filtered (port security off, or not for a filtered port)"
        return Verdict(action, port, why), sides
    dropped = [s for s in sides if s["result"] == "dropped"]
    if dropped:
        return Verdict("drop", None, f"{dropped[-1]['side']}: {dropped[-1]['why']}"), sides
    first = hops[0] if hops else None
    if first is not None and first.table == "classify" and first.priority is None:
        why = "anti-spoofing: the sending interface is not an enforced port or the " \
              "source MAC is not its own (or the VLAN is of no local network)"
        sides.insert(0, {"side": "egress", "result": "dropped", "why": why})
        return Verdict("drop", None, why), sides
    last = hops[-1] if hops else None
    where = f"in table {last.table} ({last.owner})" if last else "before any table"
    return Verdict("drop", None, f"dropped {where}"), sides


def _name_conjunction_rules(view: HostView, probe: Probe, hops: list[Hop]) -> None:
    """A remote-group conjunction flow is shared by the rules naming that
    group: name the rule of the evaluated group that this packet matches."""
    reference = Reference(view)
    for hop in hops:
        if hop.kind != "remote-group" or hop.group_id not in view.groups:
            continue
        direction = hop.table.split("_")[0]
        action = "deny" if hop.priority == build.PRIO_DENY_CONJ else "allow"
        for rule in view.groups[hop.group_id].rules:
            if rule.remote_group_id is not None and rule.direction == direction and \
                    rule.action == action and \
                    reference.rule_matches(rule, direction, probe.packet):
                hop.rule, hop.description = rule.id, rule.description or ""
                break


# ---- the whole trace ---------------------------------------------------------------

def model_verdict(view: HostView, probe: Probe) -> Verdict:
    outcome = Reference(view).evaluate(probe.packet, probe.conn)
    return Verdict(outcome.action, outcome.port, outcome.reason)


def trace(view: HostView, request: TraceRequest, run, first_table: int = 0,
          others=(), table_names: dict[int, str] | None = None) -> TraceResult:
    """Trace `request` on the switch: `run(probe)` returns ofproto/trace's text."""
    probe = build_probe(view, request, others)
    names = table_names or {pipeline.table_number(t.name, first_table): t.name
                            for t in pipeline.TABLES}
    raw = run(probe)
    hops = parse_hops(raw, names, CookieMap(view))
    _name_conjunction_rules(view, probe, hops)
    switch, sides = explain_switch(hops)
    return TraceResult(probe, hops, switch, model_verdict(view, probe), sides, raw)


__all__ = ["Hop", "Owner", "TraceError", "TraceRequest", "TraceResult", "Verdict",
           "run_ofproto_trace", "trace"]
