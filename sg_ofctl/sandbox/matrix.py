"""The reachability matrix: who can reach whom on which service, as the
reference evaluator expects (`sg_ofctl.reference`, naming the deciding group and
rule) and as real packets between the VMs show.

Expected and observed are independent: the expectation comes from the security
groups alone, the observation from echo servers and probes in the VMs."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from typing import Callable, Sequence

from sg_ofctl.model import HostView, Port, Rule
from sg_ofctl.reference import Packet, Reference
from sg_ofctl.sandbox import nethelper


@dataclasses.dataclass(frozen=True)
class Service:
    label: str
    proto: str            # "icmp" or "tcp"
    port: int | None = None


SERVICES = (Service("ping", "icmp"), Service("ssh/22", "tcp", 22),
            Service("smtp/25", "tcp", 25), Service("http/80", "tcp", 80),
            Service("pg/5432", "tcp", 5432))
TCP_PORTS = tuple(s.port for s in SERVICES if s.proto == "tcp")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A VM: its name, its port (with ofport) and the argv prefix that runs a
    command inside it (e.g. ip netns exec NS)."""

    name: str
    port: Port
    exec_prefix: tuple[str, ...]

    @property
    def ip(self) -> str:
        return next(a for a in self.port.fixed_ips if ":" not in a)


@dataclasses.dataclass(frozen=True)
class Verdict:
    passes: bool
    why: str


Key = tuple[str, str, str]     # (from, to, service label)


def _packet(src: Endpoint, dst: Endpoint, service: Service) -> Packet:
    common = dict(in_port=src.port.ofport, eth_src=src.port.mac, eth_dst=dst.port.mac,
                  src_ip=src.ip, dst_ip=dst.ip)
    if service.proto == "icmp":
        return Packet(**common, proto=1, icmp_type=8, icmp_code=0)
    return Packet(**common, proto=6, sport=40000, dport=service.port)


def describe_rule(rule: Rule, group_name: str) -> str:
    """'web: ingress tcp/22 from group ssh-bastion' in the words of the rule file."""
    words = [f"{group_name}:", rule.action if rule.action == "deny" else "", rule.direction]
    if rule.ethertype != "IPv4":
        words.append(rule.ethertype)
    proto = str(rule.protocol) if rule.protocol is not None else "any"
    if rule.port_range_min is not None and rule.icmp_type_code == (None, None):
        low, high = rule.port_range_min, rule.port_range_max
        proto += f"/{low}" if low == high else f"/{low}-{high}"
    icmp_type, icmp_code = rule.icmp_type_code
    if icmp_type is not None:
        proto += f" type {icmp_type}" + (f" code {icmp_code}" if icmp_code is not None else "")
    words.append(proto)
    side = "from" if rule.direction == "ingress" else "to"
    if rule.remote_group_id:
        words.append(f"{side} group {rule.remote_group_id}")
    elif rule.remote_ip_prefix:
        words.append(f"{side} {rule.remote_ip_prefix}")
    if rule.description:
        words.append(f"({rule.description})")
    return " ".join(w for w in words if w)


def _specificity(rule: Rule) -> tuple:
    """Narrower rules sort first: a remote, a protocol, fewer ports."""
    ports = (rule.port_range[1] - rule.port_range[0]) if rule.port_range else 65536
    remote = 0 if rule.remote_group_id else 1 if rule.remote_net is not None else 2
    return (remote, rule.ip_proto is None, ports, rule.id)


class Expectation:
    """Expected verdicts from the reference evaluator, with readable reasons."""

    def __init__(self, view: HostView):
        # Allow and deny do not depend on the order of rules, but the reason names
        # the first rule that matches: most specific first, so it names the rule
        # that was written for this traffic (and the same one every time).
        groups = {gid: dataclasses.replace(g, rules=tuple(sorted(g.rules, key=_specificity)))
                  for gid, g in view.groups.items()}
        self.view = view = dataclasses.replace(view, groups=groups)
        self.ref = Reference(view)
        self.rules = {r.id: (r, g) for g in view.groups.values() for r in g.rules}

    def _names(self, text: str) -> str:
        """'allowed by rule <uuid> ... of group web' -> 'allowed by web: ingress tcp/80'."""
        m = re.search(r"\brule (\S+)", text)
        if not m or m.group(1) not in self.rules:
            return text
        rule, group = self.rules[m.group(1)]
        remote = rule.remote_group_id
        if remote in self.view.groups:     # group ids -> names
            rule = dataclasses.replace(rule, remote_group_id=self.view.groups[remote].display_name)
        return f"{text[:m.start()]}{describe_rule(rule, group.display_name)}"

    def _groups(self, port: Port) -> str:
        return ",".join(g.display_name for g in self.view.groups_of(port))

    def verdict(self, src: Endpoint, dst: Endpoint, service: Service) -> Verdict:
        pkt = _packet(src, dst, service)
        outcome = self.ref.evaluate(pkt, "new")
        passes = outcome.action == "output" and outcome.port == dst.port.ofport
        reason = outcome.reason
        if passes:
            _, out_why = self.ref.rules_verdict(src.port, "egress", pkt)
            why = (f"in: {self._names(reason).removeprefix('allowed by ')}; "
                   f"out: {self._names(out_why).removeprefix('allowed by ')}")
        elif reason.startswith("no egress rule"):
            why = f"no egress rule of {src.name}'s groups ({self._groups(src.port)}) allows it"
        elif reason.startswith("no ingress rule"):
            why = f"no ingress rule of {dst.name}'s groups ({self._groups(dst.port)}) allows it"
        else:
            why = self._names(reason)
        return Verdict(passes, why)

    def matrix(self, endpoints: Sequence[Endpoint],
               services: Sequence[Service] = SERVICES) -> dict[Key, Verdict]:
        return {(s.name, d.name, svc.label): self.verdict(s, d, svc)
                for s in endpoints for d in endpoints if s is not d for svc in services}


# -- observation -----------------------------------------------------------------------
def server_argv(python: str = sys.executable) -> list[str]:
    """The echo servers every VM runs (one process, every TCP port of SERVICES)."""
    return [python, nethelper.__file__, "serve", "tcp", *map(str, TCP_PORTS)]


def _spec(dst: Endpoint, service: Service) -> str:
    return f"ping:{dst.ip}" if service.proto == "icmp" else f"tcp:{dst.ip}:{service.port}"


def observe(endpoints: Sequence[Endpoint], services: Sequence[Service] = SERVICES,
            timeout: float = 1.0, python: str = sys.executable,
            spawn: Callable[[Endpoint, list], subprocess.Popen] | None = None
            ) -> dict[Key, bool]:
    """Real probes: one process per source VM, all its probes at once."""
    spawn = spawn or (lambda ep, argv: subprocess.Popen(
        [*ep.exec_prefix, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    procs = {}
    for src in endpoints:
        specs = {(d.name, svc.label): _spec(d, svc)
                 for d in endpoints if d is not src for svc in services}
        argv = [python, nethelper.__file__, "probe", *specs.values(), "--timeout", str(timeout)]
        procs[src.name] = (spawn(src, argv), specs)
    result = {}
    for name, (proc, specs) in procs.items():
        out, err = proc.communicate(timeout=timeout + 30)
        if proc.returncode:
            raise RuntimeError(f"probe from {name} failed: {err.strip()}")
        answers = json.loads(out.strip().splitlines()[-1])
        for (dst, label), spec in specs.items():
            result[(name, dst, label)] = bool(answers[spec])
    return result


def mismatches(expected: dict[Key, Verdict], observed: dict[Key, bool]) -> list[Key]:
    return [k for k, v in expected.items() if observed.get(k) != v.passes]


def observe_until_agreed(endpoints, expected, deadline: float, services=SERVICES,
                         **kwargs) -> tuple[dict[Key, bool], float]:
    """Probe until observed == expected or `deadline` (time.monotonic()) passes;
    returns the last observation and the seconds it took.  (The agent enforces
    a change asynchronously: this measures how long it took.)"""
    start = time.monotonic()
    while True:
        observed = observe(endpoints, services, **kwargs)
        if not mismatches(expected, observed) or time.monotonic() >= deadline:
            return observed, time.monotonic() - start
        time.sleep(0.3)


# -- rendering -------------------------------------------------------------------------
def render(endpoints: Sequence[Endpoint], expected: dict[Key, Verdict],
           observed: dict[Key, bool] | None, services: Sequence[Service] = SERVICES,
           changed: set | frozenset = frozenset()) -> str:
    """Rows `from -> to`, a column per service.  A cell is the verdict ('pass' or
    '-') and a letter naming the reason, listed below.  'MISMATCH' marks a cell
    where real packets disagree with the expectation; '*' a cell that changed."""
    letters: dict[str, str] = {}

    def letter(why: str) -> str:
        if why not in letters:
            n = len(letters)
            letters[why] = chr(ord("a") + n) if n < 26 else f"a{n - 25}"
        return letters[why]

    name_w = max(len(e.name) for e in endpoints)
    col_w = max(11, *(len(s.label) + 2 for s in services))
    lines = [f"{'FROM':<{name_w}}    {'TO':<{name_w}}  "
             + "".join(f"{s.label:<{col_w}}" for s in services)]
    bad = []
    for src in endpoints:
        for dst in endpoints:
            if src is dst:
                continue
            cells = []
            for svc in services:
                key = (src.name, dst.name, svc.label)
                exp = expected[key]
                seen = exp.passes if observed is None else observed[key]
                text = ("pass" if seen else "-") + " " + letter(exp.why)
                if seen != exp.passes:
                    text = ("PASS" if seen else "DROP") + "!" + letter(exp.why)
                    bad.append(key)
                if key in changed:
                    text += " *"
                cells.append(f"{text:<{col_w}}")
            lines.append(f"{src.name:<{name_w}} -> {dst.name:<{name_w}}  " + "".join(cells))
    lines.append("")
    lines.append("pass = the connection or ping went through, - = dropped; why (the "
                 "deciding rules, from sg_ofctl.reference):")
    lines += [f"  {ch}  {why}" for why, ch in letters.items()]
    if changed:
        lines.append("  *  changed since the previous matrix")
    if observed is not None:
        if bad:
            lines.append(f"MISMATCH in {len(bad)} cell(s): real packets disagree with the "
                         "security groups:")
            lines += [f"  {s} -> {d} {svc}: expected "
                      f"{'pass' if expected[(s, d, svc)].passes else 'drop'}, observed "
                      f"{'pass' if observed[(s, d, svc)] else 'drop'}" for s, d, svc in bad]
        else:
            lines.append(f"All {len(expected)} probes agree with the expectation.")
    return "\n".join(lines)
