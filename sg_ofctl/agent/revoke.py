"""Which conntrack entries a change lets the agent flush without cutting a
connection that is still allowed.

Revocation is first the pipeline's job: an established connection's packets in
its original direction are re-checked against the current rules, and one that
is no longer allowed gets ct_mark "revoked", which drops its replies too.
Userspace conntrack does not pick up a TCP connection mid-stream, so a flush
that hits a still-allowed connection kills it for good: the agent flushes only
entries that no rule on this host can allow any more:

- a local port left the view (deleted, unbound, its row gone): connections
  from or to its addresses in its zone, unless another local port on that
  network now uses the address;
- a remote member address left a remote group: connections it started towards
  this host's ports (orig src = the address) when no ingress rule of any local
  port on that network can still match it as a source, and connections to it
  (orig dst) when no egress rule can still match it as a destination.
Prefix member addresses (allowed pairs with a CIDR) and local addresses are
left to the ct_mark scheme."""
from __future__ import annotations

from dataclasses import dataclass

import netaddr

from sg_ofctl.compiler.build import zone_of
from sg_ofctl.model import HostView

MAX_FLUSHES = 512


@dataclass(frozen=True)
class Flush:
    zone: int
    src: str | None = None
    dst: str | None = None


def _version(addr: str) -> int:
    return 6 if ":" in addr else 4


def _could_match(view: HostView, network: int, direction: str, addr: str) -> bool:
    """Could any `direction` rule of a stateful local port on `network` match
    `addr` as its remote side?"""
    ip = netaddr.IPAddress(addr)
    ethertype = "IPv4" if ip.version == 4 else "IPv6"
    gids = {g for p in view.ports if p.network == network and p.port_security_enabled
            for g in p.effective_groups}
    for gid in gids:
        group = view.groups.get(gid)
        if group is None:
            continue
        for rule in group.rules:
            if rule.direction != direction or rule.ethertype != ethertype:
                continue
            if rule.remote_group_id is not None:
                if addr in view.member_addresses(rule.remote_group_id):
                    return True
            elif rule.remote_net is None or ip in rule.remote_net:
                return True
    return False


def flushes(old: HostView | None, new: HostView) -> list[Flush]:
    if old is None:
        return []
    out: list[Flush] = []
    new_local = {(p.network, a) for p in new.ports for a in p.addresses()}
    new_ids = {p.id: p for p in new.ports}
    for port in old.ports:
        if not port.port_security_enabled:
            continue
        kept = new_ids.get(port.id)
        kept_addrs = set(kept.addresses()) if kept is not None and \
            kept.network == port.network else set()
        for addr in port.addresses():
            if "/" in addr or addr in kept_addrs or (port.network, addr) in new_local:
                continue
            out += [Flush(zone_of(port.network), src=addr), Flush(zone_of(port.network),
                                                                  dst=addr)]
    removed: set = set()
    for gid, old_members in old.members.items():
        if new.members.get(gid) is old_members:
            continue
        removed |= old_members - new.member_addresses(gid)
    if removed:
        local = {a for p in new.ports for a in p.addresses()}
        networks = sorted({p.network for p in new.ports if p.port_security_enabled})
        for addr in sorted(removed):
            if "/" in addr or addr in local:
                continue
            for network in networks:
                if not _could_match(new, network, "ingress", addr):
                    out.append(Flush(zone_of(network), src=addr))
                if not _could_match(new, network, "egress", addr):
                    out.append(Flush(zone_of(network), dst=addr))
    return out[:MAX_FLUSHES]
