"""Which conntrack entries the agent flushes after a change.

Revocation is the pipeline's job: an established connection's packets in its
original direction are re-checked against the current rules, and one that is
no longer allowed gets a ct_mark "revoked" bit, which drops its replies too.
The entry stays in conntrack with that mark, and that is what keeps it dead.

A flush would undo that.  Measured here (OVS 3.1 userspace datapath): after a
flush, the next mid-stream TCP segment (a plain ACK: only SYN+ACK is refused)
creates a fresh entry, +new.  If the side that sends next is allowed to start
connections (a local port with the usual egress-anything rule), the connection
comes back in reverse (orig = the local port) and the other side's packets are
then "replies" that pass unchecked: the removed permission is bypassed.  So the
agent never flushes a connection whose local endpoint is still there.

It flushes only the connections of a local port that left the view (deleted,
its row gone, its addresses changed, its interface gone): its whole zone, when
no port of the new view has that zone (zones are per port: its ofport), else
its old addresses there; and its old addresses in the zones of the network's
other local ports (their halves of its connections), unless another local port
on that network now uses the address.  Nothing on this host can re-create those
(the port's frames are dropped at classify), so this only frees conntrack
entries early, and gives the peers' budgets (zone limits) back.
"""
from __future__ import annotations

from dataclasses import dataclass

from sg_ofctl import pipeline as P
from sg_ofctl.compiler.build import port_zone
from sg_ofctl.model import HostView

# Address flushes per round (a whole zone's flush is one each); each one walks the
# datapath's whole conntrack table, so a round's cost is bounded.
MAX_FLUSHES = 512


@dataclass(frozen=True)
class Flush:
    """A whole zone (no address), or the connections from `src` / to `dst` in it."""
    zone: int
    src: str | None = None
    dst: str | None = None


def flushes(old: HostView | None, new: HostView,
            placement: P.Placement = P.STANDALONE) -> list[Flush]:
    if old is None:
        return []
    new_ids = {p.id: p for p in new.ports}
    new_local = {(p.network, a) for p in new.ports for a in p.addresses()}
    live_zones = {port_zone(p, placement) for p in new.ports}
    peers: dict[int, list[int]] = {}
    for p in new.ports:
        if p.port_security_enabled:
            peers.setdefault(p.network, []).append(port_zone(p, placement))
    zones: list[Flush] = []
    out: list[Flush] = []
    for port in old.ports:
        if not port.port_security_enabled:
            continue
        zone = port_zone(port, placement)
        kept = new_ids.get(port.id)
        kept_addrs = set(kept.addresses()) if kept is not None and \
            kept.network == port.network else set()
        gone = [a for a in port.addresses()
                if "/" not in a and a not in kept_addrs and (port.network, a) not in new_local]
        whole = placement.zone_per_port and zone not in live_zones
        if whole:
            zones.append(Flush(zone))
        for addr in gone:
            for z in ([] if whole else [zone]) + [z for z in peers.get(port.network, ())
                                                  if z != zone]:
                out += [Flush(z, src=addr), Flush(z, dst=addr)]
    return zones + out[:MAX_FLUSHES]
