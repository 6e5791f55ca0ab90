"""Conntrack upkeep after each round's flows: a budget per port.

Each local port has its own conntrack zone (its ofport: compiler/build.py
`port_zone`), which holds every connection the port takes part in.  With
`--conntrack-limit-per-port N` (default DEFAULT_LIMIT; 0: none) the zone of
every instance interface on the bridge (an `iface-id`, an ofport) gets a limit
of N entries in ovs-vswitchd (`dpctl/ct-set-limits`), from the round that first
sees the interface (before or with its port's flows) until it leaves the
bridge: so one VM's flood fills its own zone, not the host's table, and a port
re-created on the same interface costs no call.  OVS 3.1 keeps zone limits only
in the running ovs-vswitchd, so they are set again whenever the switch
(re)connects (after an ovs-vswitchd restart).  The conntrack entries of departed ports are flushed
(revoke.py).  A failure to reach ovs-vswitchd's control socket is logged,
recorded, and retried RETRY seconds later; it never holds up the flows."""
from __future__ import annotations

import logging
import threading

from sg_ofctl import pipeline as P
from sg_ofctl.agent import revoke
from sg_ofctl.dataplane.ctlimits import Vswitchd, VswitchdError
from sg_ofctl.model import HostView

LOG = logging.getLogger(__name__)
# 65,536 entries per port: a busy server or client (2,000 new connections/s, each
# kept ~30 s after it closes) fits; one port holds at most ~2 % of the userspace
# datapath's default table (3,000,000), so ~45 ports must flood at once to fill it.
DEFAULT_LIMIT = 65536
MAX_LIMIT = 3_000_000
RETRY = 5.0


def check_limit(value) -> int:
    """--conntrack-limit-per-port: 0 (no limit) or 1..MAX_LIMIT."""
    from sg_ofctl.model import ValidationError
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
        raise ValidationError("conntrack_limit_per_port", value,
                              f"must be an integer from 0 (no limit) to {MAX_LIMIT}")
    return value


def wanted_limits(interfaces, limit: int) -> dict[int, int]:
    """zone -> limit: the zone (ofport) of every local interface that carries an
    `iface-id` (uplinks have none and no zone); no limit: none."""
    if not limit:
        return {}
    return {P.STANDALONE.port_zone(i.ofport, 0): limit for i in interfaces if i.iface_id}


class ConntrackBudget:
    def __init__(self, limit: int = 0, vswitchd: Vswitchd | None = None,
                 on_error=None, kick=None):
        self.limit = check_limit(limit)
        self.vswitchd = vswitchd
        self.on_error = on_error or (lambda text: None)
        self.kick = kick or (lambda why="": None)
        self.applied: dict[int, int] = {}   # zone -> limit, as set in ovs-vswitchd
        self.failing: str | None = None
        self._retry: threading.Timer | None = None

    def after_flows(self, conn, old: HostView | None, new: HostView, interfaces=()) -> int:
        """Flush what departed ports left, then make the zone limits those of the
        local `interfaces`.  `old` None: a new switch connection, so set every
        limit again."""
        flushes = revoke.flushes(old, new, P.STANDALONE)
        if flushes:
            conn.flush_conntrack_many([(f.zone, f.src, f.dst) for f in flushes])
        if old is None:
            self.applied = {}
        self._limits(interfaces)
        return len(flushes)

    def _limits(self, interfaces) -> None:
        if self.vswitchd is None:
            return
        wanted = wanted_limits(interfaces, self.limit)
        to_set = {z: n for z, n in wanted.items() if self.applied.get(z) != n}
        to_delete = [z for z in self.applied if z not in wanted]
        if not to_set and not to_delete:
            return
        try:
            if to_delete:
                self.vswitchd.delete_zone_limits(to_delete)
                for zone in to_delete:
                    del self.applied[zone]
            if to_set:
                self.vswitchd.set_zone_limits(to_set)
                self.applied.update(to_set)
        except VswitchdError as e:
            text = f"conntrack zone limits not applied (retry in {RETRY:.0f} s): {e}"
            if text != self.failing:
                LOG.error("%s", text)
            self.failing = text
            self.on_error(text)
            self._schedule_retry()
            return
        if self.failing:
            LOG.info("conntrack zone limits applied again")
            self.failing = None
        LOG.info("conntrack zone limits: %d set (%d entries each), %d removed",
                 len(to_set), self.limit, len(to_delete))

    def _schedule_retry(self) -> None:
        if self._retry is not None and self._retry.is_alive():
            return
        self._retry = threading.Timer(RETRY, self.kick, ("conntrack limits",))
        self._retry.daemon = True
        self._retry.start()

    def describe(self) -> dict:
        return {"limit_per_port": self.limit, "zones_limited": len(self.applied),
                "error": self.failing}
