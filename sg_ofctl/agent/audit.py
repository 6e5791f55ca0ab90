"""Continuous reconciliation: read back every flow of the pipeline's tables and
make them exactly the compiled ones, in one bundle.

Runs on every (re)connection of the switch and every `interval` seconds
(default 60).  It finds what a flow-by-flow diff of our own cookies cannot:
flows that someone else added to our tables (any cookie), flows of ours that
were altered or deleted, and a switch that missed changes.  Each repair is
logged with its table and cookie and counted; a repair is never silent."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sg_ofctl import pipeline
from sg_ofctl.compiler import diff
from sg_ofctl.compiler.ids import COOKIE_SIGNATURE, COOKIE_SIGNATURE_MASK
from sg_ofctl.dataplane import render

LOG = logging.getLogger(__name__)
LOGGED_REPAIRS = 50   # lines per audit; the count is always complete


@dataclass
class AuditResult:
    repairs: int            # flow mods sent (adds + modifies + deletes)
    missing: int            # desired flows that were not installed
    altered: int            # desired flows installed differently
    unexpected: int         # installed flows that should not be there (ours or not)
    read_seconds: float     # the flow-stats read
    seconds: float          # all of it, bundle included
    cpu_seconds: float      # this process's CPU time for it


def read_pipeline(conn):
    """(our flows as Flow values, foreign entries as (table, priority, OFPMatch,
    cookie)) of the pipeline's tables; flows of other tables are not ours."""
    names = render.table_names(conn.first_table)
    req = parser.OFPFlowStatsRequest(conn.datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                     ofp.OFPG_ANY, 0, 0, parser.OFPMatch())
    ours: list = []
    foreign: list = []

    def each(reply) -> None:      # one multipart reply (~300 flows) at a time
        for stats in reply.body:
            if stats.table_id not in names:
                continue
            flow = _parse(stats, conn.first_table) \
                if stats.cookie & COOKIE_SIGNATURE_MASK == COOKIE_SIGNATURE else None
            if flow is not None:
                ours.append(flow)
                continue
            foreign.append((names[stats.table_id], stats.priority, stats.match, stats.cookie))
    conn.request(req, "flow stats", each=each)
    return ours, foreign


def _parse(stats, first_table: int):
    """A Flow, or None for one altered beyond what we render (it is replaced)."""
    try:
        return render.parse_flow_stats(stats, first_table)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _foreign_delete(conn, table_id: int, priority: int, match):
    return parser.OFPFlowMod(conn.datapath, table_id=table_id, command=ofp.OFPFC_DELETE_STRICT,
                             priority=priority, match=match, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY)


class BackgroundRead:
    """A read-back in its own thread, so that the worker keeps sending changes
    meanwhile (at 1,000 ports it takes seconds); `on_done()` wakes the worker,
    which repairs from it only if no bundle went out since it started."""

    def __init__(self, conn, generation: int, on_done):
        self.conn, self.generation, self.on_done = conn, generation, on_done
        self.read = self.error = None
        self.done = threading.Event()
        self.start = time.monotonic()
        self.cpu0 = time.process_time()
        threading.Thread(target=self._run, name="sg-ofctl-audit", daemon=True).start()

    def _run(self) -> None:
        try:
            self.read = read_pipeline(self.conn)
        except Exception as e:   # the worker reads again soon
            LOG.warning("audit read-back failed", exc_info=True)
            self.error = e
        finally:
            self.read_seconds = time.monotonic() - self.start
            self.done.set()
            try:
                self.on_done()
            except Exception:
                LOG.exception("waking the worker after an audit read")


def reconcile(conn, desired, why: str, log_repairs: bool = True, background=None):
    """Make the pipeline's tables exactly `desired` (an iterable of Flow), from
    a fresh read-back or from a finished BackgroundRead.  Returns (FlowDiff of
    our flows, AuditResult)."""
    if background is not None:
        cpu0, start = background.cpu0, background.start
        ours, foreign = background.read
        read_seconds = background.read_seconds
    else:
        cpu0, start = time.process_time(), time.monotonic()
        ours, foreign = read_pipeline(conn)
        read_seconds = time.monotonic() - start
    change = diff(ours, desired)
    first = conn.first_table
    extra = [(f"table={table} priority={priority} cookie={cookie:#x} {match}",
              _foreign_delete(conn, pipeline.table_number(table, first), priority, match))
             for table, priority, match, cookie in foreign]
    conn.apply(change, extra)
    result = AuditResult(len(change) + len(extra), len(change.add), len(change.modify),
                         len(change.delete) + len(extra), round(read_seconds, 4),
                         round(time.monotonic() - start, 4),
                         round(time.process_time() - cpu0, 4))
    if log_repairs and result.repairs:
        _log(why, change, foreign, result)
    return change, result


def _log(why, change, foreign, result) -> None:
    LOG.warning("audit (%s): %d repair(s): %d missing, %d altered, %d unexpected "
                "(%d not ours) flow(s) fixed in one bundle", why, result.repairs,
                result.missing, result.altered, result.unexpected, len(foreign))
    lines = [("restored missing", f) for f in change.add] + \
        [("restored altered", f) for f in change.modify] + \
        [("removed stale", f) for f in change.delete]
    for what, flow in lines[:LOGGED_REPAIRS]:
        LOG.warning("audit repair: %s flow table=%s priority=%d cookie=%#x", what,
                    flow.table, flow.priority, flow.cookie)
    for table, priority, _match, cookie in foreign[:max(0, LOGGED_REPAIRS - len(lines))]:
        LOG.warning("audit repair: removed foreign flow table=%s priority=%d cookie=%#x",
                    table, priority, cookie)
    if len(lines) + len(foreign) > LOGGED_REPAIRS:
        LOG.warning("audit repair: ... %d more", len(lines) + len(foreign) - LOGGED_REPAIRS)


class Auditor:
    """When the next audit is due, and what the audits found (for the status)."""

    def __init__(self, interval: float = 60.0):
        self.interval = interval
        self._due = time.monotonic() + interval
        self.audits = 0
        self.repairs_total = 0
        self.last: dict | None = None
        self.on_repairs = lambda count: None   # e.g. the metrics counter's inc

    def seconds_until_due(self) -> float:
        return max(0.0, self._due - time.monotonic())

    def defer(self, seconds: float) -> None:
        self._due = max(self._due, time.monotonic() + seconds)

    def due_in(self, seconds: float) -> None:
        self._due = time.monotonic() + seconds

    def due(self) -> bool:
        return self.interval > 0 and time.monotonic() >= self._due

    def record(self, why: str, result: AuditResult, when: str, count: bool = True) -> None:
        """`count`: False for the catch-up at agent start (not a repair)."""
        self._due = time.monotonic() + self.interval
        self.audits += 1
        if count and result.repairs:
            self.repairs_total += result.repairs
            self.on_repairs(result.repairs)
        self.last = {"time": when, "why": why, "repairs": result.repairs,
                     "missing": result.missing, "altered": result.altered,
                     "unexpected": result.unexpected, "read_seconds": result.read_seconds,
                     "seconds": result.seconds, "cpu_seconds": result.cpu_seconds}

    def status(self) -> dict:
        return {"interval": self.interval, "audits": self.audits,
                "repairs_total": self.repairs_total, "last": self.last}


def earliest(*waits):
    """The shortest of these waits (None: no limit)."""
    given = [w for w in waits if w is not None]
    return min(given) if given else None


class WorkerAudit:
    """The worker's side of the audit: when to read, and repairing from a read.
    `generation` counts the bundles the worker sent: a read that began before
    one is stale (it would "repair" the change back); it is read again soon,
    and the third time in the worker itself, so an audit always happens."""

    def __init__(self, interval: float, kick):
        self.auditor = Auditor(interval)
        self.kick = kick
        self.reading: BackgroundRead | None = None
        self.stale_reads = 0
        self.generation = 0

    def wait(self, conn) -> float | None:
        """Seconds until the next audit is due (None: not while disconnected)."""
        if conn is None or conn.closed or self.auditor.interval <= 0:
            return None
        return self.auditor.seconds_until_due()

    def due(self, conn) -> bool:
        return conn is not None and not conn.closed and self.auditor.due()

    def start_if_due(self, conn) -> bool:
        """Start a background read if one is due; True if a read is ready."""
        if self.reading is None and self.auditor.due():
            self.reading = BackgroundRead(conn, self.generation, lambda: self.kick("audit"))
            self.auditor.defer(self.auditor.interval)
        return self.reading is not None and self.reading.done.is_set()

    def on_connect(self, conn, desired, first: bool, when: str):
        """The audit of a (re)connection: (FlowDiff, error text or None).  The
        catch-up at agent start is not counted as repairs."""
        why = "start" if first else "switch connected"
        change, result = reconcile(conn, desired, "switch connected", log_repairs=not first)
        return change, self.record(why, result, when)

    def repair(self, conn, desired, why: str, when: str):
        """Repair from the finished read: (AuditResult, error text or None), or
        None if the read was stale or failed (read again in a second)."""
        reading, self.reading = self.reading, None
        if reading is None or reading.error is not None or reading.conn is not conn:
            self.auditor.due_in(1.0)
            return None
        stale = reading.generation != self.generation
        if stale and self.stale_reads < 2:
            self.stale_reads += 1
            self.auditor.due_in(1.0)
            return None
        self.stale_reads = 0
        _change, result = reconcile(conn, desired, why,
                                    background=None if stale else reading)
        reading.read = _change = None   # ~25,000 entries at 1,000 ports: free them
        return result, self.record(why, result, when)

    def periodic(self, conn, desired, when: str, on_error, release) -> int:
        """Repair from the finished read; the flow mods it sent (0: the read was
        stale or failed, read again in a second).  A repair goes to on_error."""
        done = self.repair(conn, desired, "periodic", when)
        if done is None:
            return 0
        result, error = done
        if error:
            on_error(error)
        release()                 # the read-back's memory
        self.kick("audit")        # a round at once: it re-reads the ports' config
        return result.repairs

    def record(self, why: str, result: AuditResult, when: str) -> str | None:
        """Count it; the error text to report if it repaired anything."""
        self.auditor.record(why, result, when, count=why != "start")
        if result.repairs and why != "start":
            return (f"audit ({why}) repaired {result.repairs} flow(s): {result.missing} "
                    f"missing, {result.altered} altered, {result.unexpected} unexpected")
        return None
