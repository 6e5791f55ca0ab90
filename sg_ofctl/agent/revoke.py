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
its row gone, its addresses changed): from or to its old addresses in its zone,
unless another local port on that network now uses the address.  Nothing on
this host can re-create those (the port's frames are dropped at classify), so
this only frees conntrack entries early.
"""
from __future__ import annotations

from dataclasses import dataclass

from sg_ofctl.compiler.build import zone_of
from sg_ofctl.model import HostView

MAX_FLUSHES = 512


@dataclass(frozen=True)
class Flush:
    zone: int
    src: str | None = None
    dst: str | None = None


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
    return out[:MAX_FLUSHES]
