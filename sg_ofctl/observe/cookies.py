"""Cookie -> what a flow belongs to (a group's rule, a port, a remote-group
conjunction, a member address, a guard), rebuilt from a host view: cookies are
stable hashes of those names (compiler/ids.py), so compiling the names again
gives the same numbers.  Also the group numbers the dispatch tables load."""
from __future__ import annotations

from dataclasses import dataclass

from sg_ofctl.compiler import build, ids
from sg_ofctl.model import HostView


@dataclass(frozen=True)
class Owner:
    kind: str                 # static, port, rule, group, remote-group, member, uplink, unknown
    text: str                 # e.g. "rule web-http of group web"
    group: str | None = None  # group id
    rule: str | None = None   # rule id
    port: str | None = None   # port id
    description: str = ""


class CookieMap:
    def __init__(self, view: HostView):
        self.view = view
        self._owners: dict[int, Owner] = {}
        static = ids.cookie(ids.KIND_STATIC, "static")
        self._owners[static] = Owner("static", "shared pipeline flow")
        for port in view.ports:
            self._owners[ids.cookie(ids.KIND_PORT, port.id)] = Owner(
                "port", f"port {port.name or port.id}", port=port.id)
        for ofport in view.uplinks:
            self._owners[ids.cookie(ids.KIND_UPLINK, f"uplink:{ofport}")] = Owner(
                "uplink", f"uplink ofport {ofport}")
        remote_groups = set()
        for gid, group in view.groups.items():
            name = group.display_name
            self._owners[ids.cookie(ids.KIND_RULE, gid)] = Owner(
                "group", f"rules of group {name} (a flow shared by several rules)", group=gid)
            for rule in group.rules:
                self._owners[ids.cookie(ids.KIND_RULE, gid, rule.id)] = Owner(
                    "rule", f"rule {rule.id} of group {name}", group=gid, rule=rule.id,
                    description=rule.description or "")
                if rule.remote_group_id is not None:
                    ref = build.RemoteRef(rule.remote_group_id, rule.direction,
                                          rule.ethertype, rule.action)
                    rg = view.groups.get(rule.remote_group_id)
                    rg_name = rg.display_name if rg else rule.remote_group_id
                    self._owners[ids.cookie(ids.KIND_CONJ, ref.remote_group_id, ref.key)] = \
                        Owner("remote-group", f"{rule.action} {rule.direction} "
                              f"{rule.ethertype} from members of remote group {rg_name}",
                              group=rule.remote_group_id)
                    remote_groups.add(rule.remote_group_id)
        self._remote_groups = remote_groups
        self._members_done = False
        compiled = sorted({g for p in view.ports if p.port_security_enabled
                           for g in p.effective_groups})
        self.group_by_number = {n: g for g, n in ids.stable_numbers(compiled).items()}

    def owner(self, cookie: int) -> Owner:
        found = self._owners.get(cookie)
        if found is None and ids.cookie_kind(cookie) == "member" and not self._members_done:
            self._members_done = True
            for rg in self._remote_groups:
                for address in self.view.member_addresses(rg):
                    self._owners.setdefault(ids.cookie(ids.KIND_MEMBER, address), Owner(
                        "member", f"member address {address} of remote groups"))
            found = self._owners.get(cookie)
        if found is None:
            if cookie & ids.COOKIE_SIGNATURE_MASK != ids.COOKIE_SIGNATURE:
                return Owner("foreign", f"not an sg-ofctl flow (cookie {cookie:#x})")
            return Owner("unknown", f"a {ids.cookie_kind(cookie)} flow of nothing in the "
                         f"current view (cookie {cookie:#x}): stale?")
        return found

    def group_name(self, number: int) -> str:
        gid = self.group_by_number.get(number)
        if gid is None:
            return f"group number {number:#x} (unknown)"
        group = self.view.groups.get(gid)
        return group.display_name if group else gid
