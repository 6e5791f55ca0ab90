"""The round trip to the security-group database, measured: an OVSDB `echo`
every few seconds on a connection of its own to the remote the agent's
monitor is using.  A reply that does not come within the timeout is a lost
probe.  A link with 200 ms of delay or with loss (TCP retransmits) shows up
here long before the monitor's inactivity probe would call it down."""
from __future__ import annotations

import errno
import logging
import statistics
import threading
import time
from collections import deque

import sg_ofctl.ovsdb  # noqa: F401  (before python-ovs: no eventlet)
import ovs.jsonrpc
import ovs.poller
import ovs.stream

LOG = logging.getLogger(__name__)
WINDOW = 10       # probes kept


class DbProbe(threading.Thread):
    def __init__(self, remote_of, interval: float = 2.0, timeout: float = 2.0):
        """`remote_of()`: the remote to probe (the monitor's current one)."""
        super().__init__(name="sg-ofctl-db-probe", daemon=True)
        self.remote_of, self.interval, self.timeout = remote_of, interval, timeout
        self.results: deque = deque(maxlen=WINDOW)   # (wall time, rtt seconds or None)
        self._stop = threading.Event()
        self._conn = None
        self._remote = None
        self._id = 0
        self.on_result = None                        # callback(rtt or None)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                rtt = self.probe_once()
            except Exception:   # never let the thread die
                LOG.exception("database probe")
                rtt = None
            self.results.append((time.time(), rtt))
            if self.on_result is not None:
                try:
                    self.on_result(rtt)
                except Exception:
                    LOG.exception("database probe result")
            self._stop.wait(self.interval)
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def probe_once(self) -> float | None:
        remote = self.remote_of()
        if remote != self._remote:
            self._close()
            self._remote = remote
        start = time.monotonic()
        deadline = start + self.timeout
        if self._conn is None:
            error, stream = ovs.stream.Stream.open(remote)
            if error:
                return None
            while True:
                error = stream.connect()
                if error != errno.EAGAIN:
                    break
                if not self._block(deadline, stream=stream):
                    stream.close()
                    return None
            if error:
                stream.close()
                return None
            self._conn = ovs.jsonrpc.Connection(stream)
        self._id += 1
        request = ovs.jsonrpc.Message.create_request("echo", [f"sg-ofctl-probe-{self._id}"])
        if self._conn.send(request):
            self._close()
            return None
        while True:
            self._conn.run()
            error, msg = self._conn.recv()
            if msg is not None and msg.type == ovs.jsonrpc.Message.T_REPLY and \
                    msg.id == request.id:
                return time.monotonic() - start
            if msg is not None:
                continue
            if error and error != errno.EAGAIN:
                self._close()
                return None
            if not self._block(deadline):
                self._close()   # a late reply would confuse the next probe
                return None

    def _block(self, deadline: float, stream=None) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        poller = ovs.poller.Poller()
        if stream is not None:
            stream.run_wait(poller)
            stream.connect_wait(poller)
        else:
            self._conn.wait(poller)
            self._conn.recv_wait(poller)
        poller.timer_wait(int(left * 1000) + 1)
        poller.block()
        return True

    def summary(self) -> dict:
        recent = list(self.results)[-5:]
        rtts = [r for _, r in recent if r is not None]
        return {"rtt_seconds": recent[-1][1] if recent else None,
                "rtt_median_seconds": round(statistics.median(rtts), 4) if rtts else None,
                "probes": len(recent), "probes_lost": sum(r is None for _, r in recent),
                "last_probe": recent[-1][0] if recent else None}
