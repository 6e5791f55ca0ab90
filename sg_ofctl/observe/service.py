"""What the agent process runs for observability, beside the worker: the
database link's probe (its results go to the metrics and, every few seconds,
into the status file, so `sg-ofctl status` sees a slow link even while nothing
changes) and, when asked for, the Prometheus endpoint."""
from __future__ import annotations

import logging

from sg_ofctl.observe import metrics as metrics_mod
from sg_ofctl.observe.dbprobe import DbProbe

LOG = logging.getLogger(__name__)


def current_remote(sgdb, remotes: str) -> str:
    """The remote the agent's monitor is connected to (else the first one)."""
    try:
        name = sgdb.api.idl._session.get_name()
        if name:
            return name
    except Exception:
        pass
    return remotes.split(",")[0].strip()


class Observability:
    def __init__(self, worker, sgdb, remotes: str, listen: str | None = None,
                 tls: dict | None = None, interval: float = 2.0):
        self.worker, self.metrics = worker, worker.metrics
        self.probe = DbProbe(lambda: current_remote(sgdb, remotes), interval=interval,
                             timeout=max(1.0, interval))
        self.probe.on_result = self._probed
        worker.db_probe = self.probe
        self.server = None
        if listen:
            self.server = metrics_mod.serve(self.metrics, listen, tls)
            LOG.info("metrics on http%s://%s/metrics", "s" if tls else "", listen)

    def start(self) -> None:
        self.probe.start()

    def stop(self) -> None:
        self.probe.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _probed(self, rtt) -> None:
        if rtt is None:
            self.metrics.db_probes_lost.inc()
        else:
            self.metrics.db_rtt.set(rtt)
        self.worker.refresh_status()
