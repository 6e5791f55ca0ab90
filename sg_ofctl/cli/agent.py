"""`sg-ofctl agent --bridge BR` (the per-hypervisor agent) and `sg-ofctl status`
(what a running agent last reported, and its health: exit 0 healthy,
2 degraded, 3 not running)."""
from __future__ import annotations

import os

from sg_ofctl.cli import common


def register(sub) -> None:
    agent = sub.add_parser(
        "agent", help="run the agent of this hypervisor (OpenFlow controller)",
        description="Enforce the security groups of the bridge's ports: an os-ken "
                    "OpenFlow controller fed by the local Open_vSwitch database and the "
                    "security-group database (docs/AGENT.md).")
    agent.add_argument("--bridge", required=True, help="integration bridge")
    agent.add_argument("--ovs-db", default=os.environ.get("SG_OFCTL_OVS_DB",
                                                          "unix:/var/run/openvswitch/db.sock"),
                       help="the local Open_vSwitch database (default "
                            "unix:/var/run/openvswitch/db.sock)")
    agent.add_argument("--listen", default="127.0.0.1:6653", metavar="ADDR:PORT",
                       help="OpenFlow listen address; the bridge's controller is set to it")
    agent.add_argument("--first-table", type=common.ascii_number, default=0, metavar="N",
                       help="first OpenFlow table of the pipeline (default 0)")
    agent.add_argument("--host", default="", help="this host's name in port bindings "
                       "(default: the CN of --certificate, which the agent role requires; "
                       "else the hostname)")
    agent.add_argument("--run-dir", help="where the status file goes (default "
                       "$SG_OFCTL_RUN_DIR, /run/sg-ofctl for root)")
    agent.add_argument("--datapath-type", help="datapath_type if the agent creates the "
                       "bridge (e.g. netdev)")
    agent.add_argument("--switch-pki-dir",
                       help="TLS files of the switch channel (a CA, the agent's "
                       "and the bridge's certificates; made if missing; default "
                       "$SG_OFCTL_SWITCH_PKI_DIR, else /etc/sg-ofctl/switch-pki)")
    agent.add_argument("--insecure-plain-tcp", action="store_true",
                       help="INSECURE: listen for the switch with plain TCP instead of TLS; "
                            "any process that reaches the port can connect (only the "
                            "datapath check keeps an impostor out)")
    agent.add_argument("--audit-interval", type=float, default=60.0, metavar="SECONDS",
                       help="read back and repair the flows this often (default 60; 0: only "
                            "when the switch connects)")
    agent.add_argument("--conntrack-limit-per-port", type=common.ascii_number, default=65536,
                       metavar="N", help="conntrack entries each local port's zone may hold "
                       "(ovs-vswitchd zone limits; default 65536; 0: no limit)")
    agent.add_argument("--switch-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="exit non-zero if the bridge has not connected by then (default 30)")
    agent.add_argument("--metrics-listen", metavar="ADDR:PORT", default=None,
                       help="serve Prometheus metrics at http://ADDR:PORT/metrics (off by "
                            "default; an address other than loopback needs mutual TLS)")
    agent.add_argument("--metrics-tls-cert", metavar="PEM", help="the endpoint's certificate")
    agent.add_argument("--metrics-tls-key", metavar="PEM", help="its private key")
    agent.add_argument("--metrics-client-ca", metavar="PEM",
                       help="CA that signs the scrapers' client certificates (required)")
    agent.add_argument("--db-rtt-threshold", type=float, default=0.15, metavar="SECONDS",
                       help="a database link whose median echo round trip is above this is "
                            "reported degraded (default 0.15)")
    agent.add_argument("--health-interval", type=float, default=2.0, metavar="SECONDS",
                       help="seconds between database echoes and status rewrites (default 2)")
    agent.add_argument("--packet-log", metavar="PATH",
                       help="packet-log events as JSON lines (default RUN_DIR/"
                            "packets-BRIDGE.json; see `sg-ofctl log create`)")
    agent.add_argument("--packet-log-text", metavar="PATH",
                       help="the same events, one readable line each (default RUN_DIR/"
                            "packets-BRIDGE.log)")
    agent.add_argument("--packet-log-syslog", metavar="unix:PATH|udp:HOST:PORT",
                       help="also send them to syslog (RFC 5424), e.g. unix:/dev/log")
    agent.add_argument("--log-file", help="log here instead of stderr")
    agent.add_argument("--log-level", default="INFO")
    agent.set_defaults(func=_agent)

    status = sub.add_parser("status", parents=[common.output_parent()],
                            help="what the agent of a bridge last reported")
    status.add_argument("--bridge", default=None,
                        help="the agent's bridge (default: the only status file)")
    status.add_argument("--run-dir", help="the agent's --run-dir")
    status.add_argument("--ports", action="store_true", help="list the local ports")
    status.set_defaults(func=_status)


def _agent(args):
    import logging
    import sys
    from pathlib import Path
    from sg_ofctl.agent import main as agent_main
    handler = logging.FileHandler(args.log_file) if args.log_file \
        else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(args.log_level.upper())
    from sg_ofctl import errors
    for name in ("audit_interval", "switch_timeout"):
        value = getattr(args, name)
        if not 0 <= value <= 86400 or (name == "switch_timeout" and value == 0):
            raise errors.UserError(f"{name.replace('_', '-')}={value!r}: must be a number of "
                                   "seconds between " + ("0" if name == "audit_interval"
                                                         else "more than 0") + " and 86400")
    from sg_ofctl.observe import metrics
    metrics_tls = {"certfile": args.metrics_tls_cert, "keyfile": args.metrics_tls_key,
                   "client_cafile": args.metrics_client_ca} if args.metrics_tls_cert else None
    if args.metrics_listen:
        metrics.parse_listen(args.metrics_listen, metrics_tls)    # refuse before starting anything
    if args.packet_log_syslog:
        from sg_ofctl.observe.syslog import SyslogSender
        SyslogSender(args.packet_log_syslog).sock.close()    # refuse a bad target now
    if not 0.1 <= args.health_interval <= 60:
        raise errors.UserError(f"health_interval={args.health_interval!r}: expected seconds "
                               "from 0.1 to 60")
    if not 0 < args.db_rtt_threshold <= 60:
        raise errors.UserError(f"db_rtt_threshold={args.db_rtt_threshold!r}: expected "
                               "seconds, more than 0 and at most 60")
    config = agent_main.AgentConfig(
        bridge=args.bridge, db=common.remotes(args), ovs_db=args.ovs_db,
        listen=args.listen, first_table=args.first_table, host=host_name(args),
        run_dir=Path(args.run_dir) if args.run_dir else None,
        datapath_type=args.datapath_type, timeout=args.timeout,
        metrics_listen=args.metrics_listen, metrics_tls=metrics_tls,
        db_rtt_threshold=args.db_rtt_threshold, health_interval=args.health_interval,
        packet_log=Path(args.packet_log) if args.packet_log else None,
        packet_log_text=Path(args.packet_log_text) if args.packet_log_text else None,
        packet_log_syslog=args.packet_log_syslog,
        switch_pki_dir=Path(args.switch_pki_dir) if args.switch_pki_dir else None,
        insecure_plain_tcp=args.insecure_plain_tcp, switch_timeout=args.switch_timeout,
        audit_interval=args.audit_interval,
        conntrack_limit_per_port=args.conntrack_limit_per_port)
    return agent_main.run(config)


def host_name(args) -> str:
    """--host, else the CN of the agent's certificate (what its role lets it bind),
    else "" (the agent then takes the hostname)."""
    if args.host:
        return args.host
    from sg_ofctl.ovsdb import tls
    keys = common.key_material(args)
    return (tls.certificate_cn(keys.certificate) if keys.certificate else None) or ""


def _status(args):
    from pathlib import Path
    from sg_ofctl import errors
    from sg_ofctl.agent import status as status_mod
    run_dir = Path(args.run_dir) if args.run_dir else status_mod.default_run_dir()
    if args.bridge:
        path = status_mod.status_path(run_dir, args.bridge)
    else:
        found = sorted(run_dir.glob("agent-*.json"))
        if len(found) != 1:
            raise errors.UserError(f"run_dir={str(run_dir)!r}: {len(found)} agent status "
                                   "files; name the agent with --bridge")
        path = found[0]
    if not path.exists():
        raise errors.NotFound(f"bridge={args.bridge!r}: no agent status in {run_dir}")
    from sg_ofctl.observe import health
    data = status_mod.read(path)
    data["health"] = health.assess(data)
    code = {"healthy": 0, "degraded": 2}.get(data["health"]["state"], 3)
    if args.ports:
        common.emit_list(args, ["Interface", "Port", "Ofport", "State", "Groups", "IPs",
                                "Reason"],
                         [[p["interface"], p["port"], p["ofport"], p["state"], p["groups"],
                           p["ips"], p["reason"] or ""] for p in data["ports"]])
        return code
    if args.format in ("json", "yaml"):
        common.emit_one(args, data)
    else:
        enforced = sum(p["state"] == "enforced" for p in data["ports"])
        db = data["sg_database"]
        channel, audit = data.get("channel") or {}, data.get("audit") or {}
        last_audit = audit.get("last") or {}
        common.emit_one(args, {
            "health": data["health"]["state"],
            "problems": data["health"]["problems"],
            "agent": "running" if data["running"] else "not running",
            "pid": data["pid"], "host": data["host"], "bridge": data["bridge"],
            "switch": ("connected" if data["switch"]["connected"] else "disconnected") +
            _since(data["switch"].get("last_change")),
            "channel": channel.get("description", "unknown"),
            "switch check": _switch_check(channel),
            "refused connections": channel.get("refused_total", 0),
            "last audit": f"{last_audit['time']} ({last_audit['why']}, "
                          f"{last_audit['repairs']} repairs, {last_audit['seconds']} s)"
            if last_audit else "none yet",
            "audit repairs": audit.get("repairs_total", 0),
            "local ovsdb": "connected" if data["local_ovsdb"]["connected"] else "disconnected",
            "sg database": ("connected" if db["connected"] else "disconnected") +
            _since(db.get("last_change")),
            "db round trip": _ms(db.get("rtt_median_seconds"), db.get("probes_lost"),
                                 db.get("probes")),
            "newest db change": "none seen" if db.get("newest_change_age_seconds") is None
            else f"{db['newest_change_age_seconds']:.1f} s ago",
            "ports": f"{enforced} enforced, {len(data['ports']) - enforced} fail-closed",
            "port groups": [f"{p['port']}: {','.join(p['groups']) or '-'}"
                            for p in data["ports"]],
            "uplinks": data["uplinks"], "flows": data["flows"],
            "conntrack limit": _ct_limit(data.get("conntrack")),
            "last sync": data["last_sync"], "syncs": data["syncs"],
            "flow mods sent": data["flow_mods_total"],
            "packet log": _packet_log(data.get("packet_log")),
            "errors": [e["error"] for e in data["errors"]] +
                      [f"{p['interface']}: {p['reason']}" for p in data["ports"]
                       if p["reason"]],
            "resolved errors": [f"{e.get('time', '')} {e['error']}"
                                for e in data.get("past_errors", [])][-5:],
        })
    return code


def _ct_limit(ct) -> str:
    if not ct:
        return "unknown"
    if not ct["limit_per_port"]:
        return "none (--conntrack-limit-per-port 0)"
    text = f"{ct['limit_per_port']} entries per port's zone, {ct['zones_limited']} zone(s) set"
    return text + (f"; {ct['error']}" if ct.get("error") else "")


def _packet_log(stats) -> str:
    if not stats or stats.get("rate") is None:
        return "off (no log covers a local port)"
    return (f"{stats['events']} events ({stats['accept']} accept, {stats['drop']} drop), "
            f"{stats['rate_limited']} over the {stats['rate']}/s meter (counted, not logged)")


def _since(when) -> str:
    import datetime
    if not when:
        return ""
    stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return f" since {stamp.isoformat(timespec='seconds')}"


def _ms(median, lost, probes) -> str:
    if median is None:
        return "not measured yet" if not lost else f"no reply to {lost} of {probes} echoes"
    text = f"{median * 1000:.1f} ms (median of the last {probes} echoes)"
    return text + (f", {lost} lost" if lost else "")


def _switch_check(channel: dict) -> str:
    """The connected switch against the local Open_vSwitch database."""
    ovsdb = channel.get("ovsdb") or {}
    if not channel.get("datapath_id"):
        return "no switch"
    return (f"datapath {channel['datapath_id']} (bridge's: {ovsdb.get('bridge_datapath_id')}), "
            f"Controller is_connected={ovsdb.get('controller_is_connected')}")
