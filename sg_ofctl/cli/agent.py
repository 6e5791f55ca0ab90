"""`sg-ofctl agent --bridge BR` (the per-hypervisor agent) and `sg-ofctl status`
(what a running agent last reported)."""
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
    agent.add_argument("--switch-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="exit non-zero if the bridge has not connected by then (default 30)")
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
    config = agent_main.AgentConfig(
        bridge=args.bridge, db=common.remotes(args), ovs_db=args.ovs_db,
        listen=args.listen, first_table=args.first_table, host=host_name(args),
        run_dir=Path(args.run_dir) if args.run_dir else None,
        datapath_type=args.datapath_type, timeout=args.timeout,
        switch_pki_dir=Path(args.switch_pki_dir) if args.switch_pki_dir else None,
        insecure_plain_tcp=args.insecure_plain_tcp, switch_timeout=args.switch_timeout,
        audit_interval=args.audit_interval)
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
    data = status_mod.read(path)
    if args.ports:
        common.emit_list(args, ["Interface", "Port", "Ofport", "State", "Groups", "IPs",
                                "Reason"],
                         [[p["interface"], p["port"], p["ofport"], p["state"], p["groups"],
                           p["ips"], p["reason"] or ""] for p in data["ports"]])
        return 0 if data["running"] else 3
    if args.format in ("json", "yaml"):
        common.emit_one(args, data)
    else:
        enforced = sum(p["state"] == "enforced" for p in data["ports"])
        channel, audit = data.get("channel") or {}, data.get("audit") or {}
        last_audit = audit.get("last") or {}
        common.emit_one(args, {
            "agent": ("degraded: " + data["degraded_reason"] if data.get("degraded_reason")
                      else "running") if data["running"] else "not running",
            "pid": data["pid"], "host": data["host"], "bridge": data["bridge"],
            "switch": "connected" if data["switch"]["connected"] else "disconnected",
            "channel": channel.get("description", "unknown"),
            "switch check": _switch_check(channel),
            "refused connections": channel.get("refused_total", 0),
            "last audit": f"{last_audit['time']} ({last_audit['why']}, "
                          f"{last_audit['repairs']} repairs, {last_audit['seconds']} s)"
            if last_audit else "none yet",
            "audit repairs": audit.get("repairs_total", 0),
            "local ovsdb": "connected" if data["local_ovsdb"]["connected"] else "disconnected",
            "sg database": "connected" if data["sg_database"]["connected"]
            else "disconnected",
            "ports": f"{enforced} enforced, {len(data['ports']) - enforced} fail-closed",
            "port groups": [f"{p['port']}: {','.join(p['groups']) or '-'}"
                            for p in data["ports"]],
            "uplinks": data["uplinks"], "flows": data["flows"],
            "last sync": data["last_sync"], "syncs": data["syncs"],
            "flow mods sent": data["flow_mods_total"],
            "errors": [e["error"] for e in data["errors"]] +
                      [f"{p['interface']}: {p['reason']}" for p in data["ports"]
                       if p["reason"]],
        })
    return 0 if data["running"] else 3


def _switch_check(channel: dict) -> str:
    """The connected switch against the local Open_vSwitch database."""
    ovsdb = channel.get("ovsdb") or {}
    if not channel.get("datapath_id"):
        return "no switch"
    return (f"datapath {channel['datapath_id']} (bridge's: {ovsdb.get('bridge_datapath_id')}), "
            f"Controller is_connected={ovsdb.get('controller_is_connected')}")
