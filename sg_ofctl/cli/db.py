"""`sg-ofctl db start|stop|status`: the ovsdb-server of the state directory."""
from __future__ import annotations

from sg_ofctl.cli import common


def register(sub) -> None:
    db = sub.add_parser("db", help="start, stop or inspect the security-group database")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION")
    actions.required = True
    out = common.output_parent()
    start = actions.add_parser(
        "start", parents=[out], help="create (if needed) and start the database",
        description="Start the database of the state directory: a private standalone "
                    "database, or with --cluster-address a Raft cluster member (the first "
                    "creates the cluster; others give --join), or with --relay-of a "
                    "relay of a cluster.")
    start.add_argument("--listen", action="append", default=[], metavar="ssl:ADDR:PORT",
                       help="also serve admin clients (full access) on this address, TLS "
                            "with --private-key/--certificate/--ca-cert (repeatable)")
    start.add_argument("--agent-listen", action="append", default=[],
                       metavar="ssl:ADDR:PORT",
                       help="serve agents on this address through a relay with the "
                            "sg-agent role (needs --agent-ca-cert; repeatable)")
    start.add_argument("--agent-ca-cert", metavar="FILE",
                       help="the CA that signed the hypervisors' certificates")
    start.add_argument("--cluster-address", "--cluster", dest="cluster_address",
                       metavar="ssl:ADDR:PORT",
                       help="this member's Raft address: create a cluster (or join one "
                            "with --join)")
    start.add_argument("--join", metavar="ssl:ADDR:PORT[,...]",
                       help="Raft addresses of existing members to join")
    start.add_argument("--relay-of", metavar="ssl:ADDR:PORT[,...]",
                       help="start an OVSDB relay of the cluster at these remotes (its "
                            "members' --listen) instead of a member: agents and readers "
                            "connect to relays, writes are forwarded to the leader")
    start.add_argument("--insecure-plain-tcp", action="store_true",
                       help="allow tcp: listeners and Raft addresses: anyone who reaches "
                            "them can read and rewrite every group, rule and port, and "
                            "join the cluster")
    start.set_defaults(func=_start)
    stop = actions.add_parser("stop", parents=[out], help="stop the database (by its pid)")
    stop.set_defaults(func=_stop)
    status = actions.add_parser("status", parents=[out], help="is it running; cluster role")
    status.set_defaults(func=_status)


def _start(args):
    from sg_ofctl.ovsdb import server
    join = [j.strip() for j in args.join.split(",") if j.strip()] if args.join else None
    common.emit_one(args, server.start(
        common.member(args), listen=args.listen, cluster_address=args.cluster_address,
        join=join, keys=common.key_material(args), allow_plain_tcp=args.insecure_plain_tcp,
        agent_listen=args.agent_listen, agent_ca_cert=args.agent_ca_cert,
        relay_of=args.relay_of))


def _stop(args):
    from sg_ofctl.ovsdb import server
    common.emit_one(args, server.stop(common.member(args)))


def _status(args):
    from sg_ofctl.ovsdb import server
    info = server.status(common.member(args))
    common.emit_one(args, info)
    return 0 if info["state"] == "running" else 3
