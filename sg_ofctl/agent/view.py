"""Local interfaces + the security-group database -> the compiler's HostView.

A local port gets flows only when everything about it is valid: its row
exists (by `iface-id`), the model accepts it, and the model's rules across
ports hold (model.port_problems: its groups exist, it does not mix stateful
and stateless groups, its MACs and fixed IPs are no other local port's).
Any other interface with an `iface-id` stays fail-closed (no flows: classify
drops what it sends; the agent also sets OFPPC_NO_FWD so NORMAL sends it
nothing), with the reason in `problems`.  Interfaces without `iface-id` are
uplinks (trunks, tunnels, patch ports)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sg_ofctl import model
from sg_ofctl.agent import claims
from sg_ofctl.agent.local_ovs import LocalState
from sg_ofctl.agent.sgreplica import SgState

WAITING = "waiting for its rows from the security-group database"


@dataclass
class Built:
    view: model.HostView
    problems: dict = field(default_factory=dict)     # interface name -> reason
    ports_by_iface: dict = field(default_factory=dict)  # interface name -> model.Port
    uplinks: tuple = ()
    deferred: frozenset = frozenset()   # valid new ports left for the next round

    @property
    def quiet(self) -> frozenset:
        """Interfaces closed for a moment only (no warning): deferred or waiting."""
        return self.deferred | {n for n, why in self.problems.items() if why == WAITING}


class ViewBuilder:
    """Keeps the previous result so unchanged ports are the same objects."""

    def __init__(self, owners: dict | None = None):
        self._port_cache: dict = {}
        self._last_ports: tuple = ()
        self._last_ifaces: frozenset = frozenset()
        self.owners = dict(owners or {})   # iface-id -> interface enforcing it (claims.py)

    def build(self, local: LocalState, sg: SgState, max_new: int | None = None) -> Built:
        """`max_new`: admit at most this many ports that the previous view did
        not have; the others are `deferred` (fail-closed one more round), so a
        burst of new ports is enforced in short rounds, between which any other
        change is enforced with its usual latency."""
        _winners, problems = claims.arbitrate(local.interfaces, self.owners)
        candidates = []
        uplinks = []
        cache = {}
        for iface in local.interfaces:
            name = iface.iface_id
            if name is None:
                uplinks.append(iface.ofport)
                continue
            if iface.name in problems:
                continue
            rec = sg.ports.get(name)
            if name in sg.pending or (rec is not None and rec.waiting):
                problems[iface.name] = WAITING
                continue
            if rec is None:
                problems[iface.name] = f"no port named {name!r} in the security-group " \
                    "database (create it, or tag the interface with sg-ofctl-groups/-ips)"
                continue
            if rec.port is None:
                problems[iface.name] = rec.error
                continue
            key = (id(rec.port), iface.ofport)
            cached = self._port_cache.get(key)
            port = cached[1] if cached is not None and cached[0] is rec.port else \
                dataclasses.replace(rec.port, ofport=iface.ofport)
            cache[key] = (rec.port, port)
            candidates.append((iface.name, port))
        self._port_cache = cache

        # The rules across ports (groups exist, no stateful/stateless mix, MAC
        # and fixed IPs unique per network): model.port_problems decides; a
        # clash closes both ports, every other port goes on.
        stateful = {gid: g.stateful for gid, g in sg.groups.items()}
        stateful.setdefault(model.DEFAULT_GROUP, True)   # HostView adds it if missing
        iface_of = {id(port): iface_name for iface_name, port in candidates}
        for port, error in model.port_problems(
                [p for _, p in candidates], stateful,
                {gid: g.name for gid, g in sg.groups.items() if g.name}):
            problems.setdefault(iface_of[id(port)], str(error))
        chosen = [(n, p) for n, p in candidates if n not in problems]
        deferred: frozenset = frozenset()
        if max_new is not None:
            new = [n for n, _ in chosen if n not in self._last_ifaces]
            if len(new) > max_new:
                deferred = frozenset(new[max_new:])
                chosen = [(n, p) for n, p in chosen if n not in deferred]
                for n in deferred:
                    problems[n] = "waiting for the next round (a burst of new ports is " \
                        "enforced in steps)"

        ports = tuple(p for _, p in chosen)
        if len(ports) == len(self._last_ports) and \
                all(a is b for a, b in zip(ports, self._last_ports)):
            ports = self._last_ports
        try:
            view = model.HostView(ports=ports, groups=sg.groups, members=sg.members,
                                  uplinks=tuple(uplinks))
        except model.ValidationError:
            view, chosen = self._one_by_one(chosen, sg, uplinks, problems)
            ports = view.ports
        self._last_ports = ports
        self._last_ifaces = frozenset(n for n, _ in chosen)
        ids = {i.name: i.iface_id for i in local.interfaces}
        self.owners = claims.next_owners(local.interfaces, self.owners,
                                         {n: ids[n] for n, _ in chosen})
        return Built(view, problems, dict(chosen), tuple(uplinks), deferred)

    @staticmethod
    def _one_by_one(chosen, sg, uplinks, problems):
        """A problem the checks above missed: keep each port that still leaves a
        valid view, so one bad port never closes the others."""
        kept = []
        for iface_name, port in chosen:
            try:
                model.HostView(ports=tuple(p for _, p in kept) + (port,), groups=sg.groups,
                               members=sg.members, uplinks=tuple(uplinks))
                kept.append((iface_name, port))
            except model.ValidationError as e:
                problems[iface_name] = str(e)
        view = model.HostView(ports=tuple(p for _, p in kept), groups=sg.groups,
                              members=sg.members, uplinks=tuple(uplinks))
        return view, kept

