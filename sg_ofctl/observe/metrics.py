"""The agent's Prometheus metrics (prometheus_client, one private registry).

The worker reports what it does (compile time, bundles, flows per table,
ports by state, connections); the SG database's monitor reports every change
it sees (`change_seen`, any thread), so convergence is measured from the
change's arrival to the end of the round that enforced it (its bundle
acknowledged by the switch).  `serve()` exposes them over HTTP: off by
default, bound to the address given; anything but loopback needs mutual TLS."""
from __future__ import annotations

import ipaddress
import threading
import time

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               ProcessCollector, disable_created_metrics, generate_latest)

from sg_ofctl.observe.health import port_state

# No `*_created` series (a timestamp per counter: noise on a dashboard).  A
# process-wide switch of prometheus_client; the agent has no other registry.
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LINKS = ("switch", "local_ovsdb", "sg_database")
PORT_STATES = ("enforced", "fail-closed", "error")


class AgentMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)       # process_resident_memory_bytes, cpu, fds
        self.convergence = Histogram(
            "sg_ofctl_convergence_seconds", "security-group database change seen -> its "
            "flows acknowledged by the switch (end of the round that enforced it)",
            buckets=LATENCY_BUCKETS, registry=r)
        self.compile = Histogram("sg_ofctl_compile_seconds", "compiling a host view into "
                                 "flow mods", buckets=LATENCY_BUCKETS, registry=r)
        self.bundles = Counter("sg_ofctl_bundles", "bundles sent to the switch",
                               ["outcome"], registry=r)
        self.flow_mods = Counter("sg_ofctl_flow_mods", "flow mods sent to the switch",
                                 ["outcome"], registry=r)
        self.syncs = Counter("sg_ofctl_syncs", "worker rounds", ["outcome"], registry=r)
        self.flows = Gauge("sg_ofctl_flows", "flows installed, per table", ["table"],
                           registry=r)
        self.ports = Gauge("sg_ofctl_ports", "local ports by state", ["state"], registry=r)
        self.link_up = Gauge("sg_ofctl_connection_up", "1 if the connection is up",
                             ["link"], registry=r)
        self.link_changed = Gauge("sg_ofctl_connection_last_change_timestamp_seconds",
                                  "when the connection last went up or down", ["link"],
                                  registry=r)
        self.db_rtt = Gauge("sg_ofctl_sg_database_rtt_seconds", "round trip of the last "
                            "echo to the security-group database", registry=r)
        self.db_probes_lost = Counter("sg_ofctl_sg_database_probes_lost", "echoes to the "
                                      "security-group database with no reply in time",
                                      registry=r)
        self.db_change_age = Gauge("sg_ofctl_sg_database_newest_change_age_seconds",
                                   "seconds since the newest change seen from the "
                                   "security-group database", registry=r)
        self.audit_repairs = Counter("sg_ofctl_audit_repairs", "flows repaired by the "
                                     "audit", registry=r)
        self.log_events = Counter("sg_ofctl_log_events", "packet-log events written",
                                  ["event"], registry=r)
        self.log_rate_limited = Counter("sg_ofctl_log_rate_limited_packets", "packets the "
                                        "logging meter dropped (counted, not logged)",
                                        registry=r)
        self.healthy = Gauge("sg_ofctl_healthy", "1 healthy, 0 degraded", registry=r)
        for outcome in ("ok", "failed"):
            self.bundles.labels(outcome)
            self.flow_mods.labels(outcome)
            self.syncs.labels(outcome)
        for state in PORT_STATES:
            self.ports.labels(state).set(0)
        self._lock = threading.Lock()
        self._pending: float | None = None      # monotonic time of the oldest unenforced change
        self.last_change_wall: float | None = None
        self._links: dict[str, bool] = {}
        self._link_changed_at: dict[str, float] = {}
        self._flow_counts: dict[str, int] = {}

    # -- convergence (change_seen: any thread) ------------------------------------------
    def change_seen(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._pending is None:
                self._pending = now
            self.last_change_wall = time.time()

    def take_change(self) -> float | None:
        """The oldest change not yet enforced (the round about to start enforces it)."""
        with self._lock:
            pending, self._pending = self._pending, None
            return pending

    def give_back(self, pending: float | None) -> None:
        """The round failed: its change is still waiting."""
        if pending is None:
            return
        with self._lock:
            if self._pending is None or pending < self._pending:
                self._pending = pending

    def converged(self, pending: float | None) -> None:
        if pending is not None:
            self.convergence.observe(time.monotonic() - pending)

    # -- the worker's round ---------------------------------------------------------------
    def bundle(self, ok: bool, change, all_flows=None) -> None:
        """A bundle went out (ok) or was refused; `all_flows` after a full sync."""
        outcome = "ok" if ok else "failed"
        self.bundles.labels(outcome).inc()
        self.flow_mods.labels(outcome).inc(len(change))
        if not ok:
            return
        if all_flows is not None:
            counts: dict[str, int] = {}
            for flow in all_flows:
                counts[flow.table] = counts.get(flow.table, 0) + 1
        else:
            counts = dict(self._flow_counts)
            for flow in change.add:
                counts[flow.table] = counts.get(flow.table, 0) + 1
            for flow in change.delete:
                counts[flow.table] = counts.get(flow.table, 0) - 1
        for table in set(self._flow_counts) | set(counts):
            self.flows.labels(table).set(counts.get(table, 0))
        self._flow_counts = counts

    def ports_by_state(self, rows) -> None:
        counts = dict.fromkeys(PORT_STATES, 0)
        for row in rows:
            counts[port_state(row)] += 1
        for state, n in counts.items():
            self.ports.labels(state).set(n)

    def links(self, **up: bool) -> dict:
        """Record each link's state; returns link -> wall time of its last change."""
        now = time.time()
        with self._lock:
            for link, state in up.items():
                if self._links.get(link) != state:
                    self._links[link] = state
                    self._link_changed_at[link] = now
                    self.link_changed.labels(link).set(now)
                self.link_up.labels(link).set(1 if state else 0)
            return {link: self._link_changed_at[link] for link in up}

    def newest_change_age(self) -> float | None:
        with self._lock:
            seen = self.last_change_wall
        age = None if seen is None else max(0.0, time.time() - seen)
        if age is not None:
            self.db_change_age.set(age)
        return age

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# ---- the HTTP endpoint --------------------------------------------------------------

def parse_listen(listen: str, tls: dict | None = None) -> tuple[str, int]:
    """ADDR:PORT -> (addr, port); a non-loopback address needs mutual TLS
    (`tls` with certfile, keyfile and client_cafile)."""
    from sg_ofctl import errors
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
        if not 1 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise errors.UserError(f"metrics_listen={listen!r}: expected IP:PORT (a port from "
                               "1 to 65535)") from None
    if not address.is_loopback and not (tls and all(tls.get(k) for k in
                                                    ("certfile", "keyfile", "client_cafile"))):
        raise errors.UserError(f"metrics_listen={listen!r}: an address other than loopback "
                               "needs mutual TLS (--metrics-tls-cert, --metrics-tls-key, "
                               "--metrics-client-ca)")
    return str(address), number


def serve(metrics: AgentMetrics, listen: str, tls: dict | None = None):
    """Start the HTTP endpoint (its own thread); returns the server (shutdown())."""
    from prometheus_client import start_http_server
    host, port = parse_listen(listen, tls)
    kwargs = {}
    if tls and tls.get("certfile"):
        kwargs = dict(certfile=tls["certfile"], keyfile=tls["keyfile"],
                      client_cafile=tls.get("client_cafile"),
                      client_auth_required=bool(tls.get("client_cafile")))
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry, **kwargs)
    return server
