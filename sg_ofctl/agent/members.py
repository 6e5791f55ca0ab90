"""Group membership, maintained per changed Port row: group id -> member
addresses (fixed IPs + allowed address pairs of its ports, counted, so two
ports sharing an address keep it until both left).  A change of one port
costs its own groups' work, never a scan of every port."""
from __future__ import annotations

from sg_ofctl import model


class MemberIndex:
    def __init__(self):
        self._counts: dict = {}          # group id -> {address: ports using it}
        self._of_port: dict = {}         # port key -> (group ids, addresses)
        self._cache: dict = {}           # group id -> model.MemberAddresses

    def set_port(self, key, groups, addresses) -> set:
        """Port `key` is now a member of `groups` with `addresses` (empty to
        remove it); returns the group ids whose members may have changed."""
        new = (tuple(groups), tuple(addresses)) if groups and addresses else None
        old = self._of_port.get(key)
        if old == new:
            return set()
        touched: set = set()
        if old is not None:
            for gid in old[0]:
                counts = self._counts[gid]
                for address in old[1]:
                    left = counts[address] - 1
                    if left:
                        counts[address] = left
                    else:
                        del counts[address]
                if not counts:
                    del self._counts[gid]
                touched.add(gid)
            del self._of_port[key]
        if new is not None:
            for gid in new[0]:
                counts = self._counts.setdefault(gid, {})
                for address in new[1]:
                    counts[address] = counts.get(address, 0) + 1
                touched.add(gid)
            self._of_port[key] = new
        for gid in touched:
            self._cache.pop(gid, None)
        return touched

    def members(self, gid: str) -> model.MemberAddresses:
        """The group's addresses (already validated: they come from model.Port)."""
        out = self._cache.get(gid)
        if out is None:
            out = self._cache[gid] = model.MemberAddresses(self._counts.get(gid, ()))
        return out
