"""`sg-ofctl agent`: the process.  Starts os-ken (native hub threads) with the
agent's app listening on --listen, connects both databases, configures the
bridge (controller, fail_mode=secure, OpenFlow 1.3+, table names), starts the
worker, and waits for SIGTERM/SIGINT.  Stopping leaves every flow in place
(fail_mode=secure keeps them while no controller is connected)."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from sg_ofctl import errors, pipeline

LOG = logging.getLogger("sg_ofctl.agent")
DEFAULT_OVS_DB = "unix:/var/run/openvswitch/db.sock"


@dataclass
class AgentConfig:
    bridge: str
    db: str                      # SG database remotes
    ovs_db: str = DEFAULT_OVS_DB
    listen: str = "127.0.0.1:6653"
    first_table: int = pipeline.DEFAULT_FIRST_TABLE
    host: str = ""
    run_dir: Path | None = None
    datapath_type: str | None = None
    timeout: float = 10.0
    metrics_listen: str | None = None      # ADDR:PORT of the Prometheus endpoint
    metrics_tls: dict | None = None        # certfile, keyfile, client_cafile
    db_rtt_threshold: float = 0.15         # seconds: a slower database link is degraded
    health_interval: float = 2.0           # seconds between database echoes / status writes
    packet_log: Path | None = None         # JSON lines (default: RUN_DIR/packets-BRIDGE.json)
    packet_log_text: Path | None = None    # readable lines (default: ...packets-BRIDGE.log)
    packet_log_syslog: str | None = None   # unix:/dev/log or udp:HOST:PORT (RFC 5424)
    switch_pki_dir: Path | None = None    # TLS files of the switch channel (made if missing)
    insecure_plain_tcp: bool = False      # no TLS: any local process may connect
    switch_timeout: float = 30.0          # the bridge must connect within this at start
    audit_interval: float = 60.0
    conntrack_limit_per_port: int = 65536  # entries per port's zone (ctbudget.py); 0: none


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise errors.UserError(f"listen={listen!r}: expected ADDRESS:PORT")
    return host.strip("[]"), int(port)


def default_switch_pki_dir() -> Path:
    return Path(os.environ.get("SG_OFCTL_SWITCH_PKI_DIR") or "/etc/sg-ofctl/switch-pki")


def start_os_ken(host: str, port: int, first_table: int, listener=None, guard=None):
    from sg_ofctl.agent.ofapp import AgentApp
    from sg_ofctl.dataplane.app import start_os_ken as start
    return start("sg_ofctl.agent.ofapp", AgentApp, host, port, first_table, listener, guard)


def channel_security(config: AgentConfig):
    """TLS with the agent's own CA, unless plain TCP was asked for by name."""
    from sg_ofctl.dataplane import pki
    from sg_ofctl.dataplane.channel import ChannelSecurity
    if config.insecure_plain_tcp:
        LOG.warning("INSECURE: plain TCP OpenFlow listener on %s (--insecure-plain-tcp): any "
                    "process that can reach it may connect; only the datapath check keeps "
                    "an impostor out", config.listen)
        return ChannelSecurity("plain")
    files = pki.ensure(config.switch_pki_dir or default_switch_pki_dir())
    return ChannelSecurity("tls", ca_cert=str(files.ca_cert),
                           cert=str(files.cert("controller")), key=str(files.key("controller")))


def run(config: AgentConfig) -> int:
    from sg_ofctl.agent import ctbudget, status as status_mod
    from sg_ofctl.agent.local_ovs import LocalOvs
    from sg_ofctl.agent.ofapp import AgentApp
    from sg_ofctl.agent.sgdb import SgDatabase
    from sg_ofctl.agent.worker import Worker
    from sg_ofctl.observe.metrics import AgentMetrics
    from sg_ofctl.observe.packetlog import PacketLogger
    from sg_ofctl.observe.service import Observability
    from sg_ofctl.dataplane import pki
    from sg_ofctl.dataplane.ctlimits import Vswitchd, ovs_rundir
    from sg_ofctl.dataplane.channel import ChannelGuard, Listener, new_secret

    pipeline.check_first_table(config.first_table)
    ctbudget.check_limit(config.conntrack_limit_per_port)
    host = config.host or socket.gethostname()
    listen_host, listen_port = _split_listen(config.listen)
    controller_host = "127.0.0.1" if listen_host in ("0.0.0.0", "") else listen_host
    security = channel_security(config)
    scheme = "ssl" if security.mode == "tls" else "tcp"
    controller = f"{scheme}:{controller_host}:{listen_port}" if ":" not in controller_host \
        else f"{scheme}:[{controller_host}]:{listen_port}"
    run_dir = Path(config.run_dir) if config.run_dir else status_mod.default_run_dir()
    status_path = status_mod.status_path(run_dir, config.bridge)

    stop = threading.Event()

    def on_signal(signum, _frame):
        LOG.info("signal %d: stopping (flows stay in place)", signum)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    kick_target: list = []

    def kick(why=""):
        if kick_target:
            kick_target[0].kick(why)

    AgentApp.listener = staticmethod(kick)
    metrics = AgentMetrics()
    packet_log = PacketLogger(
        host, config.bridge,
        config.packet_log or run_dir / f"packets-{config.bridge}.json",
        config.packet_log_text or run_dir / f"packets-{config.bridge}.log",
        config.packet_log_syslog, metrics)
    AgentApp.packet_in = staticmethod(packet_log.packet_in)
    LOG.info("agent for bridge %s on host %s; OpenFlow on %s (%s)", config.bridge, host,
             config.listen, security.describe())
    # Bind first: a second agent fails here, before it touches anything.
    guard = None
    listener = Listener(listen_host, listen_port, security,
                        on_refused=lambda *a: guard.refuse(*a) if guard else None)
    def db_changed():
        metrics.change_seen()      # convergence is measured from here
        kick()
    sgdb = SgDatabase(config.db, db_changed, timeout=config.timeout, host=host)
    local = worker = observability = None
    status = 0
    try:
        local = LocalOvs(config.ovs_db, config.bridge, kick, timeout=config.timeout)
        sgdb.prefetch(local.snapshot())    # this host's rows, while the rest starts
        guard = ChannelGuard(local.channel_secret(new_secret), security)
        app = start_os_ken(listen_host, listen_port, config.first_table, listener, guard)
        worker = Worker(app=app, local=local, sgdb=sgdb, host=host, bridge=config.bridge,
                        status_path=status_path, db_remotes=config.db, metrics=metrics,
                        rtt_threshold=config.db_rtt_threshold,
                        audit_interval=config.audit_interval)
        worker.packet_log = packet_log
        worker.conntrack = ctbudget.ConntrackBudget(
            config.conntrack_limit_per_port, Vswitchd(ovs_rundir(config.ovs_db)),
            on_error=worker.conntrack.on_error, kick=worker.kick)
        kick_target.append(worker)
        observability = Observability(worker, sgdb, config.db, config.metrics_listen,
                                      config.metrics_tls, config.health_interval)
        if security.mode == "tls":
            files = pki.Pki(Path(security.ca_cert).parent)
            local.configure_ssl(str(files.key("switch")), str(files.cert("switch")),
                                security.ca_cert)
        local.configure_bridge(controller, config.first_table, config.datapath_type,
                               guard.secret)
        run_dir.mkdir(parents=True, exist_ok=True)
        packet_log.start()
        worker.start()
        observability.start()
        worker.kick("start")
        try:
            app.wait_for_switch(config.switch_timeout)
        except TimeoutError:
            raise errors.UserError(
                f"bridge={config.bridge!r}: its ovs-vswitchd did not connect to {controller} "
                f"within {config.switch_timeout:g} s (is ovs-vswitchd running? see its log)") \
                from None
        LOG.info("running; status in %s", status_path)
        while not stop.wait(3600):
            pass
    except errors.UserError as e:
        LOG.error("the agent cannot run: %s", e)
        status = 1
    except Exception:
        LOG.exception("the agent failed")
        status = 1
    finally:
        if observability is not None:
            observability.stop()
        packet_log.stop()
        if worker is not None and worker.is_alive():
            worker.stop()
            worker.stopped.wait(30)
        for closer in (local.close if local else None, sgdb.close):
            try:
                if closer:
                    closer()
            except Exception:
                LOG.exception("closing a database connection")
        LOG.info("stopped")
        logging.shutdown()
    os._exit(status)   # os-ken's hub threads do not stop on their own
