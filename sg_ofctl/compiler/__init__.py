"""The pure compiler: HostView -> flows, and the difference between two flow sets.

Imports neither os_ken nor ovsdbapp (a test checks).  `Compiler` keeps the flows
of each part of the view (shared tables, each port, each group's rules, each
remote-group reference, each member address) and recomputes only the parts
whose inputs changed, so adding one member address costs one or two flows and
microseconds, whatever the group's size."""
from __future__ import annotations

from typing import Iterable, Mapping

from sg_ofctl import pipeline
from sg_ofctl.compiler import build, logflows
from sg_ofctl.compiler.flows import Flow, format_flow
from sg_ofctl.compiler.ids import stable_numbers
from sg_ofctl.compiler.parts import CompilerError, FlowDiff, FlowParts
from sg_ofctl.model import HostView

__all__ = ["Compiler", "CompilerError", "FlowDiff", "compile_host", "diff", "format_flow",
           "sort_flows"]


def diff(old: Iterable[Flow], new: Iterable[Flow]) -> FlowDiff:
    """Minimal flow mods turning `old` into `new` (flows are keyed by table,
    priority and match, as OpenFlow does)."""
    old_by_key = {f.key: f for f in old}
    new_by_key = {f.key: f for f in new}
    out = FlowDiff()
    for key, flow in new_by_key.items():
        before = old_by_key.get(key)
        if before is None:
            out.add.append(flow)
        elif before != flow:
            out.modify.append(flow)
    out.delete = [f for k, f in old_by_key.items() if k not in new_by_key]
    return out


def sort_flows(flows: Iterable[Flow]) -> list[Flow]:
    tables = pipeline.NEUTRON_TABLES[:1] + pipeline.TABLES + pipeline.NEUTRON_TABLES[1:]
    order = {t.name: i for i, t in enumerate(tables)}
    def key(flow):
        match = tuple((n, v, -1 if m is None else m) for n, v, m in flow.match)
        return order[flow.table], -flow.priority, match
    return sorted(flows, key=key)


def compile_host(view: HostView,
                 placement: pipeline.Placement = pipeline.STANDALONE) -> tuple[Flow, ...]:
    """Every flow for one host's view, in a stable order."""
    compiler = Compiler(placement)
    compiler.update(view)
    return tuple(sort_flows(compiler.flows.values()))


class Compiler:
    """Keeps the flows of the last view and returns the flow mods to the next.

    Caches (each keyed so that a changed input misses it):
    - `_numbers_cache`: stable numbers of a set of names (groups, conjunction
      refs), keyed by the frozenset of names; a few recent sets are kept, since
      the same set recurs view after view and hashing it all again costs.
    - `_refs_cache`: group id -> (group, its remote-group refs); valid while the
      group is the same object (model values are immutable).
    - `_ids_cache`: group id -> (refs, conj ids, the (ref key, conj id) pairs the
      group's rule flows use); valid while both inputs are the same objects.
    - `_rg_refs_cache`: (all refs, remote group -> its refs with conj ids); valid
      while the set of refs is equal.
    Member bookkeeping: `_rg_refs`/`_rg_members` are what the member parts were
    last built from, per remote group; `_addr_rgs` maps an address to the remote
    groups it is a member of (tuples: 10,000 small sets cost megabytes).
    """

    def __init__(self, placement: pipeline.Placement = pipeline.STANDALONE):
        self.placement = placement
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next update compiles the view from scratch."""
        self._parts = FlowParts()
        self._view: HostView | None = None
        self._numbers: dict[str, int] = {}
        self._rg_refs: dict[str, frozenset] = {}
        self._rg_members: dict[str, frozenset] = {}
        self._addr_rgs: dict[str, tuple] = {}
        self._numbers_cache: dict[frozenset, dict] = {}
        self._refs_cache: dict[str, tuple] = {}
        self._ids_cache: dict[str, tuple] = {}
        self._rg_refs_cache: tuple = (None, {})

    @property
    def flows(self) -> dict[tuple, Flow]:
        """Flow key -> flow: everything the last view needs."""
        return self._parts.flows

    def update(self, view: HostView,
               logging: Mapping[str, logflows.LogFlags] | None = None) -> FlowDiff:
        """Make the flows those of `view`; return the flow mods that this takes.
        `logging`: port id -> what is logged on it (packet logging; none: no
        logging flows at all)."""
        try:
            self._update(view)
            self._update_logging(view, logging or {})
        except Exception:
            # Leave no half-applied state: the next update recompiles from scratch.
            self.reset()
            raise
        self._view = view
        return self._parts.take_changes()

    def _update(self, view: HostView) -> None:
        parts = self._parts
        placement = self.placement
        parts.put(("static",), (), _checked_static_flows, placement)
        networks = tuple(sorted({p.network for p in view.ports}))
        parts.put(("uplinks",), (view.uplinks, networks),
                  build.uplink_flows, view.uplinks, networks, placement)
        delivery = tuple((p.ofport, p.network, () if p.port_security_enabled else
                          build.port_macs(p)) for p in view.ports)
        # In Neutron's br-int the agent's NORMAL delivers (after its table 91).
        parts.put(("deliver",), None if placement.neutron else (delivery, view.uplinks),
                  build.deliver_flows, delivery, view.uplinks)

        filtered = [p for p in view.ports if p.port_security_enabled]
        compiled = sorted({g for p in filtered for g in p.effective_groups})
        numbers = self._stable_numbers(compiled)
        refs_by_group = {gid: self._refs_of(view.groups[gid]) for gid in compiled}
        all_refs = frozenset().union(*refs_by_group.values())
        conj_ids = self._stable_numbers(ref.key for ref in all_refs)

        unchanged = (self._view is not None and view.ports is self._view.ports and
                     numbers == self._numbers and view.groups == self._view.groups)
        if not unchanged:
            for port in view.ports:
                nums = tuple(numbers[g] for g in port.effective_groups)
                stateful = view.is_stateful(port)
                parts.put(("port", port.id), (port, nums, stateful),
                          build.port_flows, port, nums, stateful, placement)
        self._numbers = numbers
        parts.keep_only("port", {p.id for p in view.ports})

        for gid in compiled:
            group = view.groups[gid]
            ids_used = self._ids_used(gid, refs_by_group[gid], conj_ids)
            parts.put(("group", gid), (group, numbers[gid], ids_used),
                      build.group_rule_flows, group, numbers[gid], ids_used)
        parts.keep_only("group", set(compiled))

        for ref in all_refs:
            parts.put(("conj", ref.key), (ref, conj_ids[ref.key]),
                      build.conj_flows, ref, conj_ids[ref.key])
        parts.keep_only("conj", {r.key for r in all_refs})
        self._update_members(view, all_refs, conj_ids)

    def _update_logging(self, view: HostView, logging) -> None:
        """One part per logged port (its own flows; the others are untouched)."""
        kept = set()
        if logging:
            by_id = {p.id: p for p in view.ports if p.id in logging}
            for pid, flags in logging.items():
                port = by_id.get(pid)
                if port is None or not port.port_security_enabled or \
                        not (flags.accept or flags.drop):
                    continue
                stateful = view.is_stateful(port)
                self._parts.put(("log", pid), (port.ofport, flags, stateful),
                                logflows.port_log_flows, port, flags, stateful)
                kept.add(pid)
        self._parts.keep_only("log", kept)

    def _ids_used(self, gid, refs, conj_ids) -> tuple:
        cached = self._ids_cache.get(gid)
        if cached is None or cached[0] is not refs or cached[1] is not conj_ids:
            used = tuple(sorted((r.key, conj_ids[r.key]) for r in refs))
            cached = self._ids_cache[gid] = (refs, conj_ids, used)
        return cached[2]

    def _stable_numbers(self, keys) -> dict[str, int]:
        keys = frozenset(keys)
        if keys not in self._numbers_cache:
            if len(self._numbers_cache) > 4:
                self._numbers_cache.clear()
            self._numbers_cache[keys] = stable_numbers(keys)
        return self._numbers_cache[keys]

    def _refs_of(self, group) -> frozenset:
        cached = self._refs_cache.get(group.id)
        if cached is None or cached[0] is not group:
            refs = frozenset(build.RemoteRef(r.remote_group_id, r.direction, r.ethertype,
                                             r.action)
                             for r in group.rules if r.remote_group_id is not None)
            cached = self._refs_cache[group.id] = (group, refs)
        return cached[1]

    def _update_members(self, view: HostView, all_refs, conj_ids) -> None:
        """Member-address flows: only addresses whose groups or references changed."""
        if self._rg_refs_cache[0] != all_refs:
            by_rg: dict[str, set] = {}
            for ref in all_refs:
                by_rg.setdefault(ref.remote_group_id, set()).add((ref, conj_ids[ref.key]))
            self._rg_refs_cache = (all_refs,
                                   {rg: frozenset(v) for rg, v in by_rg.items()})
        rg_refs = self._rg_refs_cache[1]
        dirty: set[str] = set()
        for rg in set(rg_refs) | set(self._rg_refs):
            refs = rg_refs.get(rg, frozenset())
            members = view.member_addresses(rg) if refs else frozenset()
            old_members = self._rg_members.get(rg, frozenset())
            if refs != self._rg_refs.get(rg, frozenset()):
                dirty |= members | old_members
            elif members is not old_members and members != old_members:
                dirty |= members ^ old_members
            if members is not old_members:
                for addr in old_members - members:
                    self._addr_rgs[addr] = tuple(g for g in self._addr_rgs[addr] if g != rg)
                for addr in members - old_members:
                    self._addr_rgs[addr] = self._addr_rgs.get(addr, ()) + (rg,)
            if refs:
                self._rg_refs[rg], self._rg_members[rg] = refs, members
            else:
                self._rg_refs.pop(rg, None)
                self._rg_members.pop(rg, None)
        for addr in dirty:
            rgs = self._addr_rgs.get(addr, ())
            if len(rgs) == 1:  # the common case: share the group's set, don't copy it
                refs = self._rg_refs[rgs[0]]
            else:
                refs = frozenset().union(*(self._rg_refs[rg] for rg in rgs)) if rgs else None
            if not rgs:
                self._addr_rgs.pop(addr, None)
            self._parts.put(("member", addr), refs, build.member_flows, addr, refs)


def _checked_static_flows(placement: pipeline.Placement) -> list[Flow]:
    flows = build.static_flows(placement)
    try:
        pipeline.check_misses(flows)
    except ValueError as e:
        raise CompilerError(str(e)) from None
    return flows
