"""Packet logging in the agent: which local ports are logged (from the logs in
the SG database), the host's packet-log meter, and the events the switch sends.

The worker calls `plan()` each round (it returns what the compiler adds:
port id -> LogFlags), `before_flows()` / `after_flows()` around the bundle
(the meter exists before a flow uses it and goes after the last one), and
`poll()` when idle (the meter's dropped count: events over the rate are
counted, not logged).  os-ken hands every packet-in to `packet_in()`, which
only queues it (bounded; overflow counted); a thread of its own names the rule
(the reference semantics on the round's host view: the same rules the switch
compiled) and writes one line per event: JSON lines, a readable line, and/or
syslog (RFC 5424)."""
from __future__ import annotations

import datetime
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field

from sg_ofctl.compiler.logflows import EVENTS, LOG_METER_ID, LogFlags, event_cookie
from sg_ofctl.observe.frames import PROTO_NAMES, parse_frame
from sg_ofctl.observe.syslog import SyslogSender
from sg_ofctl.reference import Packet, Reference

LOG = logging.getLogger(__name__)
QUEUE_SIZE = 10_000


@dataclass
class _Round:
    """What the writer thread needs of the worker's last round."""
    view: object = None
    reference: Reference | None = None
    ports: dict = field(default_factory=dict)      # port id -> model.Port
    logs: dict = field(default_factory=dict)       # port id -> [PacketLog]
    cookies: dict = field(default_factory=dict)    # cookie -> (port id, event)


class PacketLogger:
    def __init__(self, host: str, bridge: str, json_path=None, text_path=None,
                 syslog: str | None = None, metrics=None):
        self.host, self.bridge, self.metrics = host, bridge, metrics
        self.json_path, self.text_path = json_path, text_path
        self.syslog = SyslogSender(syslog) if syslog else None
        self.rate: int | None = None          # the meter rate this round wants
        self._round = _Round()
        self._queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self._conn = None
        self._installed: int | None = None    # the meter's rate on this connection
        self._band_dropped = 0
        self.stats = {"events": 0, "accept": 0, "drop": 0, "rate_limited": 0,
                      "overflow": 0, "unknown": 0, "error": None}
        self._files: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sg-ofctl-packet-log",
                                        daemon=True)

    @property
    def active(self) -> bool:
        return self.rate is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for f in self._files.values():
            f.close()

    # -- the worker's round ---------------------------------------------------------------
    def plan(self, view, logs) -> dict[str, LogFlags]:
        ports = {p.id: p for p in view.ports if p.port_security_enabled}
        covering: dict[str, list] = {}
        for log in logs:
            if log.port_id is not None:
                targets = [log.port_id] if log.port_id in ports else []
            else:
                targets = [pid for pid, p in ports.items() if log.group_id in p.effective_groups]
            for pid in targets:
                covering.setdefault(pid, []).append(log)
        flags = {pid: LogFlags(any(g.logs_accept for g in found), any(g.logs_drop for g in found))
                 for pid, found in covering.items()}
        self.rate = max((g.rate for found in covering.values() for g in found), default=None)
        cookies = {event_cookie(pid, ev): (pid, ev) for pid in flags for ev in EVENTS}
        previous = self._round
        reference = previous.reference if previous.view is view else Reference(view)
        self._round = _Round(view, reference, {pid: ports[pid] for pid in flags}, covering,
                             cookies)
        return flags

    def before_flows(self, conn, flags: dict | None) -> dict | None:
        """Make the meter the logging flows use; returns the flags to compile:
        none if the switch refuses the meter (logging must never stop the
        enforcement: the error is in the status instead)."""
        from sg_ofctl.dataplane.switch import SwitchError
        if conn is not self._conn:
            self._conn, self._installed, self._band_dropped = conn, None, 0
            if self.rate is None:
                self._delete_meter(conn)     # one a previous run may have left
        if self.rate is not None and self._installed != self.rate:
            try:
                conn.set_meter(LOG_METER_ID, self.rate)
            except SwitchError as e:
                if self.stats.get("error") is None:
                    LOG.error("packet logging is off: the switch refused its meter: %s", e)
                self.stats["error"] = f"the switch refused the packet-log meter: {e}"
                return {}
            self._installed = self.rate
        self.stats["error"] = None
        return flags

    def after_flows(self, conn) -> None:
        if self.rate is None and self._installed is not None:
            self._delete_meter(conn)         # no flow uses it any more
            self._installed = None

    def _delete_meter(self, conn) -> None:
        from sg_ofctl.dataplane.switch import SwitchError
        try:
            conn.delete_meter(LOG_METER_ID)
        except SwitchError as e:
            LOG.debug("deleting the packet-log meter: %s", e)

    def poll(self, conn) -> None:
        """Count what the meter dropped since the last poll."""
        if self._installed is None or conn is not self._conn:
            return
        stats = conn.meter_stats(LOG_METER_ID)
        if stats is None:
            return
        dropped = stats[1]
        delta = dropped - self._band_dropped if dropped >= self._band_dropped else dropped
        self._band_dropped = dropped
        if delta:
            self.stats["rate_limited"] += delta
            if self.metrics is not None:
                self.metrics.log_rate_limited.inc(delta)

    # -- os-ken's thread ----------------------------------------------------------------
    def packet_in(self, msg) -> None:
        try:
            self._queue.put_nowait((time.time(), msg.cookie, bytes(msg.data)))
        except queue.Full:
            self.stats["overflow"] += 1
            if self.metrics is not None:
                self.metrics.log_events.labels("overflow").inc()

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                event = self.describe(*item)
                if event is None:
                    self.stats["unknown"] += 1
                    continue
                self._write(event)
            except Exception:       # never let the thread die
                LOG.exception("writing a packet-log event")

    def describe(self, when: float, cookie: int, data: bytes) -> dict | None:
        rnd = self._round
        found = rnd.cookies.get(cookie)
        if found is None:
            return None
        pid, ev = found
        port = rnd.ports[pid]
        verdict = "accept" if ev.startswith("accept") else "drop"
        direction = ev.split("-")[1] if ev.count("-") and not ev.startswith("spoof") \
            else "egress"
        frame = parse_frame(data)
        group = rule = None
        if ev.startswith(("accept", "deny")):
            group, rule = self._deciding_rule(rnd, port, direction, frame,
                                              "allow" if verdict == "accept" else "deny")
        reason = self._reason(rnd, port, ev, direction, frame, group, rule)
        logs = sorted(g.name for g in rnd.logs.get(pid, ())
                      if (g.logs_accept if verdict == "accept" else g.logs_drop))
        return {
            "time": _iso(when), "host": self.host, "bridge": self.bridge, "event": verdict,
            "direction": direction, "port": port.name or port.id, "port_id": port.id,
            "network": port.network, "logs": logs,
            "group": None if group is None else {"id": group.id, "name": group.display_name},
            "rule": None if rule is None else {"id": rule.id, "action": rule.action,
                                               "description": rule.description or ""},
            "guard": reason if ev.startswith("spoof") else None, "reason": reason,
            "protocol": PROTO_NAMES.get(frame.get("proto"), frame.get("proto")),
            "src": frame.get("src_ip") or frame.get("arp_spa"), "src_port": frame.get("sport"),
            "dst": frame.get("dst_ip") or frame.get("arp_tpa"), "dst_port": frame.get("dport"),
            "icmp_type": frame.get("icmp_type"), "icmp_code": frame.get("icmp_code"),
            "eth_src": frame.get("eth_src"), "eth_dst": frame.get("eth_dst"),
            "eth_type": frame.get("eth_type")}

    @staticmethod
    def _deciding_rule(rnd: _Round, port, direction, frame, action):
        if frame.get("eth_type") not in ("ipv4", "ipv6"):
            return None, None
        pkt = Packet(in_port=0, eth_src=frame.get("eth_src", ""),
                     eth_dst=frame.get("eth_dst", ""), eth_type=frame["eth_type"],
                     src_ip=frame.get("src_ip"), dst_ip=frame.get("dst_ip"),
                     proto=frame.get("proto"), sport=frame.get("sport"),
                     dport=frame.get("dport"), icmp_type=frame.get("icmp_type"),
                     icmp_code=frame.get("icmp_code"))
        for group in rnd.view.groups_of(port):
            for rule in group.rules:
                if rule.direction == direction and rule.action == action and \
                        rnd.reference.rule_matches(rule, direction, pkt):
                    return group, rule
        return None, None

    @staticmethod
    def _reason(rnd, port, ev, direction, frame, group, rule) -> str:
        if ev == "spoof-mac":
            return f"anti-spoofing: source MAC {frame.get('eth_src')} is not the port's" + \
                (" (or the frame is VLAN-tagged)" if "vlan" in frame else "")
        if ev == "spoof-ip":
            what = "ARP claim" if frame.get("eth_type") == "arp" else "source IP"
            address = frame.get("arp_spa") or frame.get("src_ip")
            return f"anti-spoofing: {what} {address} is not the port's"
        if rule is not None:
            text = f"rule {rule.id}" + (f" ({rule.description})" if rule.description else "")
            verb = "allowed" if ev.startswith("accept") else "denied"
            return f"{verb} by {text} of group {group.display_name}"
        names = ", ".join(g.display_name for g in rnd.view.groups_of(port))
        return f"no {direction} rule of group(s) {names} allows it"

    def _write(self, event: dict) -> None:
        self.stats["events"] += 1
        self.stats[event["event"]] += 1
        if self.metrics is not None:
            self.metrics.log_events.labels(event["event"]).inc()
        text = readable(event)
        if self.json_path:
            self._file(self.json_path).write(json.dumps(event, sort_keys=True) + "\n")
        if self.text_path:
            self._file(self.text_path).write(text + "\n")
        if self.syslog is not None:
            self.syslog.send(event, text)

    def _file(self, path):
        f = self._files.get(path)
        if f is None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            f = self._files[path] = os.fdopen(fd, "a", buffering=1)   # a line at a time
        return f


def _iso(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def readable(e: dict) -> str:
    """One line a person reads: time host ACCEPT|DROP direction port proto a -> b: why."""
    def end(ip, port):
        if ip is None:
            return "?"
        shown = f"[{ip}]" if ":" in ip and port is not None else ip
        return f"{shown}:{port}" if port is not None else shown
    proto = e["protocol"] or e["eth_type"]
    icmp = f" type {e['icmp_type']}/{e['icmp_code']}" if e["icmp_type"] is not None else ""
    logs = f" [log {','.join(e['logs'])}]" if e["logs"] else ""
    return (f"{e['time']} {e['host']} {e['event'].upper()} {e['direction']} port {e['port']} "
            f"net {e['network']} {proto}{icmp} {end(e['src'], e['src_port'])} -> "
            f"{end(e['dst'], e['dst_port'])}: {e['reason']}{logs}")
