"""The agent's one worker thread: the only thread that sends to the switch.

Every change (a row in either database, a switch (re)connecting, a port status)
only sets an event; the worker wakes, reads a snapshot of both databases,
builds the HostView, lets the incremental compiler compute the flow mods, and
sends them as one atomic bundle.  Changes that arrive while it works coalesce
into the next round.  Nothing polls: the worker sleeps until kicked (after a
failure it retries on a timer, backing off to 5 s).

Round, in order:
 1. interfaces that are not (or not yet) enforced get OFPPC_NO_FWD, so NORMAL
    sends them nothing (classify already drops what they send);
 2. flows: on a new switch connection (agent start, ovs-vswitchd restart) read
    back what is installed and send only the difference; otherwise the
    compiler's incremental diff; either way one bundle, all or nothing;
 3. conntrack: departed ports' entries flushed, zone limits per port (ctbudget.py);
 4. enforced ports get OFPPC_NO_FWD cleared;
 5. the database writes this round calls for (bindings.plan_writes: bind,
    unbind, tag-declared rows, VLAN tags) go to the writer thread
    (writer.py), which writes them off this path: a burst of tag-declared
    ports never delays the enforcement of a rule change.
"""
from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from collections import deque

from sg_ofctl.agent import audit, claims, ctbudget, status as status_mod, switchcheck
from sg_ofctl.agent.bindings import plan_writes
from sg_ofctl.agent.view import ViewBuilder
from sg_ofctl.agent.writer import DatabaseWriter
from sg_ofctl.compiler import Compiler
from sg_ofctl.observe import health
from sg_ofctl.observe.metrics import AgentMetrics

LOG = logging.getLogger(__name__)
# New ports enforced per round: a round stays short (tens of ms), so a rule
# change made during a burst of new ports waits for at most one such round.
NEW_PORTS_PER_ROUND = 25
IDLE_POLL = 2.0   # seconds: while packet logging is on, read its meter this often when idle


def _release_memory() -> None:
    """After a full sync (read-back + a bundle of every flow), hand the freed
    heap back to the system: at 1,000 ports it is ~50 MB of RSS."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Worker(threading.Thread):
    def __init__(self, *, app, local, sgdb, host: str, bridge: str, status_path,
                 db_remotes: str = "", metrics: AgentMetrics | None = None,
                 rtt_threshold: float = health.DEFAULT_RTT_THRESHOLD,
                 audit_interval: float = 60.0):
        super().__init__(name="sg-ofctl-worker", daemon=True)
        self.app, self.local, self.sgdb = app, local, sgdb
        self.host, self.bridge, self.status_path = host, bridge, status_path
        self.db_remotes = db_remotes
        self._kick = threading.Event()
        self._stopping = threading.Event()
        self.stopped = threading.Event()
        self.compiler = Compiler()
        self.builder = ViewBuilder(owners=claims.previous_owners(status_path))
        self.audit = audit.WorkerAudit(audit_interval, self.kick)
        self.conntrack = ctbudget.ConntrackBudget(on_error=self._error)  # limits: by main
        self._local = None
        self.conn = None
        self.need_full = True
        self.installed_view = None
        self.port_config: dict | None = None   # ofport -> (hw_addr, config)
        self._ifaces_seen = None
        self._ports_changed = False
        self._groups_seen = None
        self._logged: set = set()
        self.errors: deque = deque(maxlen=20)
        self.stats = {"syncs": 0, "flow_mods_total": 0, "bundles": 0, "ct_flushes": 0,
                      "last_sync": None, "last_sync_seconds": None, "last_flow_mods": 0,
                      "first_sync_flow_mods": None, "full_syncs": 0}
        self._last = {"problems": {}, "ports": [], "uplinks": []}
        # Observability (observe/): metrics, and the database link's probe (set by main).
        self.metrics = metrics or AgentMetrics()
        self.audit.auditor.on_repairs = self.metrics.audit_repairs.inc
        self.db_probe = None
        self.packet_log = None      # observe.packetlog.PacketLogger (set by main)
        self._logging = None        # this round's logged ports (port id -> LogFlags)
        self.rtt_threshold = rtt_threshold
        self._status_lock = threading.Lock()
        self._status_final = False
        self.writer = DatabaseWriter(sgdb=sgdb, local=local, on_error=self._error,
                                     on_failures_changed=lambda: self.kick("write failed"))

    # -- control --------------------------------------------------------------------------
    def kick(self, why: str = "") -> None:
        """Wake the worker (any thread)."""
        if why == "port-status":
            self._ports_changed = True
        self._kick.set()

    def start(self) -> None:
        self.writer.start()
        super().start()

    def stop(self) -> None:
        self.writer.stop()
        self._stopping.set()
        self._kick.set()

    def run(self) -> None:
        delay = None
        try:
            while not self._stopping.is_set():
                kicked = self._kick.wait(audit.earliest(delay, self._idle_wait(),
                                                        self.audit.wait(self.conn)))
                if self._stopping.is_set():
                    break
                if not kicked and delay is None and not self.audit.due(self.conn):
                    self._idle()
                    continue
                self._kick.clear()
                change = self.metrics.take_change()
                try:
                    self.sync()
                    delay = None
                    self.metrics.converged(change)
                    self.metrics.syncs.labels("ok").inc()
                except Exception as e:  # log, keep going, retry later
                    self.metrics.give_back(change)
                    self.metrics.syncs.labels("failed").inc()
                    LOG.exception("sync failed")
                    self._error(f"sync failed: {type(e).__name__}: {e}")
                    delay = min(5.0, (delay or 0.1) * 2)
                    self.audit.auditor.defer(delay)
                self._write_status()
        except Exception:
            LOG.exception("the worker loop itself failed")
        finally:
            self._write_status("stopped")
            self.stopped.set()

    def _idle_wait(self) -> float | None:
        return IDLE_POLL if self.packet_log is not None and self.packet_log.active else None

    def _idle(self) -> None:
        """Nothing changed for a while: read the packet-log meter's counters."""
        try:
            if self.conn is not None and not self.conn.closed:
                self.packet_log.poll(self.conn)
        except Exception as e:
            LOG.warning("reading the packet-log meter: %s", e)

    def _error(self, text: str) -> None:
        self.errors.append({"time": _now(), "error": text})

    def _log_once(self, key, level, msg, *args) -> None:
        if key not in self._logged:
            self._logged.add(key)
            LOG.log(level, msg, *args)

    # -- one round ------------------------------------------------------------------------
    def sync(self) -> None:
        start = time.monotonic()
        local = self.local.snapshot()
        if not local.bridge_found:
            self._log_once(("no-bridge",), logging.ERROR, "bridge %s not found", self.bridge)
            return
        self._local = switchcheck.note_bridge(self.app, local)
        conn = self._connection(local.datapath_id)
        audit_ready = conn is not None and not self.need_full and \
            self.audit.start_if_due(conn)
        sg = self.sgdb.snapshot(local)
        read = time.monotonic()
        built = self.builder.build(local, sg, self._new_ports_this_round(conn, sg))
        if self.packet_log is not None:
            self._logging = self.packet_log.plan(built.view, sg.logs)
        writes = plan_writes(local, sg, built, self.host)
        self.writer.submit(writes)     # written meanwhile, off this path
        self._explain_problems(local, built, writes)
        flow_mods = 0
        viewed = time.monotonic()
        if conn is not None:
            ifaces = tuple((i.name, i.ofport) for i in local.interfaces)
            ports_changed, self._ports_changed = self._ports_changed, False
            if self.port_config is None or ifaces != self._ifaces_seen or ports_changed:
                self.port_config = conn.port_descs()
                self._ifaces_seen = ifaces
            closed = [i for i in local.interfaces
                      if i.iface_id and i.name not in built.ports_by_iface]
            self._set_forwarding(conn, [i.ofport for i in closed], False)
            if self.packet_log is not None:    # its meter before the flows using it
                self._logging = self.packet_log.before_flows(conn, self._logging)
            flow_mods = self._flows(conn, built.view)
            if audit_ready:
                self._audit(conn)
            if self.packet_log is not None:
                self.packet_log.after_flows(conn)
            self.stats["ct_flushes"] += self.conntrack.after_flows(
                conn, self.installed_view, built.view, local.interfaces)
            self.installed_view = built.view
            self._set_forwarding(conn, [i.ofport for i in local.interfaces
                                        if i.name in built.ports_by_iface], True)
        if built.deferred:
            self._kick.set()           # the next step of the burst: at once
        LOG.debug("round: read %.0f ms, view and plan %.0f ms, switch %.0f ms; %d port(s) "
                  "deferred", (read - start) * 1000, (viewed - read) * 1000,
                  (time.monotonic() - viewed) * 1000, len(built.deferred))
        self.stats["syncs"] += 1
        self.stats["last_sync"] = _now()
        self.stats["last_sync_seconds"] = round(time.monotonic() - start, 4)
        self._last = {"problems": built.problems, "uplinks": list(built.uplinks),
                      "ports": self._port_rows(local, sg, built)}
        self.metrics.ports_by_state(self._last["ports"])
        if conn is not None:
            self.stats["last_flow_mods"] = flow_mods
            if self.stats["first_sync_flow_mods"] is None:
                self.stats["first_sync_flow_mods"] = flow_mods

    def _new_ports_this_round(self, conn, sg) -> int | None:
        """How many new ports this round may enforce: a burst goes
        NEW_PORTS_PER_ROUND at a time, and none in a round that carries a
        change of groups or rules (enforced alone, at once).  No limit on a
        full sync (that would delete the flows of ports already in)."""
        groups_changed, self._groups_seen = sg.groups is not self._groups_seen, sg.groups
        if self.need_full or conn is None:
            return None
        return 0 if groups_changed else NEW_PORTS_PER_ROUND

    def _connection(self, dpid):
        conns = self.app.connections
        conn = conns.get(dpid) if dpid is not None else None
        if conn is None and dpid is None and len(conns) == 1:
            conn = next(iter(conns.values()))
        if conn is not None and conn.closed:
            conn = None
        if conn is not self.conn:
            self.conn, self.need_full, self.port_config = conn, True, None
            self.installed_view = None
            if conn is not None:
                LOG.info("switch connected: reading back its flows")
        return conn

    def _flows(self, conn, view) -> int:
        if self.need_full:
            self.compiler = Compiler()
            try:
                self._compile(view)
                change, error = self.audit.on_connect(conn, self.compiler.flows.values(),
                                                      self.stats["full_syncs"] == 0, _now())
                if error:
                    self._error(error)
            except Exception:
                self.compiler = Compiler()
                self.metrics.bundles.labels("failed").inc()
                raise
            self.metrics.bundle(True, change, self.compiler.flows.values())
            self.need_full = False
            self.stats["full_syncs"] += 1
            _release_memory()
            LOG.info("full sync: %d flows wanted; sent %d adds, %d modifies, %d deletes",
                     len(self.compiler.flows), len(change.add), len(change.modify),
                     len(change.delete))
        else:
            change = None
            try:
                change = self._compile(view)
                result = conn.apply(change)
            except Exception:
                self.need_full = True   # compiler and switch may differ: read back next time
                if change is not None:
                    self.metrics.bundle(False, change)
                raise
            if change:
                self.metrics.bundle(True, change)
                LOG.info("bundle: %d adds, %d modifies, %d deletes in %.1f ms",
                         len(change.add), len(change.modify), len(change.delete),
                         result.seconds * 1000)
        if change:
            self.stats["bundles"] += 1
            self.audit.generation += 1
        self.stats["flow_mods_total"] += len(change)
        return len(change)

    def _audit(self, conn) -> None:
        try:
            self.stats["flow_mods_total"] += self.audit.periodic(
                conn, self.compiler.flows.values(), _now(), self._error, _release_memory)
        except Exception:
            self.need_full = True
            raise
        self.port_config = None   # read again next round (the audit kicks one at once)

    def _compile(self, view):
        start = time.monotonic()
        try:
            return self.compiler.update(view, self._logging)
        finally:
            self.metrics.compile.observe(time.monotonic() - start)

    def _set_forwarding(self, conn, ofports, forward: bool) -> None:
        """OFPPC_NO_FWD off (forward) or on for these ports, where it is not
        already so; all port mods at once, proven by one barrier."""
        from os_ken.ofproto import ofproto_v1_3 as ofp
        if any(o not in self.port_config for o in ofports):
            self.port_config = conn.port_descs()
        mods = []
        for ofport in ofports:
            desc = self.port_config.get(ofport)
            if desc is None:
                continue   # not on the switch (yet): a port status will wake us
            hw_addr, config = desc
            if bool(config & ofp.OFPPC_NO_FWD) != forward:
                continue
            mods.append((ofport, hw_addr, not forward))
        if not mods:
            return
        conn.set_ports_no_forward(mods)
        for ofport, hw_addr, _ in mods:
            self.port_config[ofport] = (hw_addr, self.port_config[ofport][1] ^ ofp.OFPPC_NO_FWD)
        shown = ", ".join(str(m[0]) for m in mods[:10]) + (", ..." if len(mods) > 10 else "")
        LOG.info("forwarding %s on %d port(s): %s", "opened" if forward else "blocked",
                 len(mods), shown)

    # -- problems: the reason each fail-closed port gives --------------------------------
    def _explain_problems(self, local, built, writes) -> None:
        """An interface whose row its tags are creating is no problem (logged
        at INFO, once); a bad tag or a row that cannot be written is an error;
        anything else that keeps a port closed is a warning, once."""
        problems = built.problems
        for iface, name in writes.creating.items():
            failed = self.writer.failed.get(name)
            problems[iface] = f"its row cannot be created from its tags: {failed}" \
                if failed else "its row is being created from its tags"
            if not failed:
                self._log_once(("creating", iface, name), logging.INFO,
                               "creating port %s from the tags of interface %s", name, iface)
        for iface, error in writes.tag_errors.items():
            problems[iface] = error
            self._log_once(("tag", error), logging.ERROR, "%s; the port stays fail-closed",
                           error)
        for error in writes.tag_errors_kept.values():
            self._log_once(("tag", error), logging.ERROR, "%s; the port keeps its previous "
                           "tags", error)
        for iface, reason in problems.items():
            if iface not in writes.creating and iface not in writes.tag_errors and \
                    iface not in built.quiet:
                self._log_once(("problem", iface, reason), logging.WARNING,
                               "interface %s stays fail-closed: %s", iface, reason)

    # -- status ---------------------------------------------------------------------------
    def _port_rows(self, local, sg, built) -> list:
        names = {g.id: g.name or g.id for g in sg.groups.values()}
        rows = []
        for iface in local.interfaces:
            if iface.iface_id is None:
                continue
            port = built.ports_by_iface.get(iface.name)
            rows.append({
                "interface": iface.name, "port": iface.iface_id, "ofport": iface.ofport,
                "state": "enforced" if port is not None else "fail-closed",
                "groups": [names.get(g, g) for g in port.effective_groups] if port else [],
                "ips": list(port.addresses()) if port else [],
                "reason": built.problems.get(iface.name)})
        return rows

    def _errors(self) -> tuple[list, list]:
        """(active, past): an error older than the last good round is resolved."""
        active, past = health.split_errors(list(self.errors), self.stats["last_sync"])
        active += [{"error": e} for e in self.sgdb.errors.values()]
        return active, past

    def _links(self) -> dict:
        conn = self.conn
        up = {"switch": conn is not None and not conn.closed,
              "local_ovsdb": self.local.connected(), "sg_database": self.sgdb.connected()}
        changed = self.metrics.links(**up)
        return {link: {"connected": up[link], "last_change": changed[link]} for link in up}

    def status(self, state: str = "running") -> dict:
        conn = self.conn
        links = self._links()
        errors, past_errors = self._errors()
        probe = self.db_probe.summary() if self.db_probe is not None else {}
        data = {
            "state": state, "pid": os.getpid(), "host": self.host, "bridge": self.bridge,
            "written": time.time(),
            "switch": {**links["switch"],
                       "datapath_id": f"{conn.datapath.id:016x}" if conn is not None else None},
            "channel": switchcheck.channel_section(self.app, conn, self._local),
            "audit": self.audit.auditor.status(),
            "local_ovsdb": {**links["local_ovsdb"], "remote": self.local.remote},
            "sg_database": {**links["sg_database"], "remotes": self.db_remotes, **probe,
                            "rtt_threshold_seconds": self.rtt_threshold,
                            "newest_change_age_seconds": self.metrics.newest_change_age()},
            "flows": len(self.compiler.flows), "conntrack": self.conntrack.describe(),
            "ports": self._last["ports"], "uplinks": self._last["uplinks"],
            "errors": errors, "past_errors": past_errors,
            "db_writer": {**self.writer.stats, "pending": self.writer.busy()},
            "packet_log": None if self.packet_log is None else
            {**self.packet_log.stats, "rate": self.packet_log.rate},
            **self.stats,
        }
        data["health"] = health.assess({**data, "running": state == "running"})
        self.metrics.healthy.set(1 if data["health"]["state"] == "healthy" else 0)
        return data

    def refresh_status(self) -> None:
        """Rewrite the status (the health thread, between rounds)."""
        self._write_status()

    def _write_status(self, state: str = "running") -> None:
        try:
            with self._status_lock:     # the worker and the health thread both write it
                if self._status_final:
                    return
                status_mod.write(self.status_path, self.status(state))
                self._status_final = state == "stopped"
        except Exception:
            LOG.exception("writing the status file")
