"""`sg-ofctl log create|list|show|set|delete`: packet logging of a security
group's ports or of one port (like `openstack network log`).  The agents log
the events to their packet log (see `sg-ofctl agent --packet-log`)."""
from __future__ import annotations

from sg_ofctl.cli import common

LOG, GROUP, PORT = "Log", "Security_Group", "Port"


def register(sub) -> None:
    log = sub.add_parser("log", help="packet logging (accepted connections, drops)")
    actions = log.add_subparsers(dest="log_command", metavar="ACTION")
    actions.required = True
    out = common.output_parent()

    create = actions.add_parser("create", parents=[out], help="log a group's or a port's "
                                "packets")
    create.add_argument("name", metavar="NAME")
    target = create.add_mutually_exclusive_group(required=True)
    target.add_argument("--group", metavar="NAME|ID", help="every port of this group")
    target.add_argument("--port", metavar="NAME|ID", help="this port")
    create.add_argument("--event", default="all", choices=("accept", "drop", "all"),
                        help="accept: the first packet of each new connection; drop: every "
                             "dropped packet; all (default)")
    create.add_argument("--rate", default="100/s", metavar="N/s",
                        help="at most N events per second per host (default 100/s); the "
                             "rest is counted, not logged")
    create.add_argument("--description", default="")
    create.set_defaults(func=_create)

    lister = actions.add_parser("list", parents=[out], help="list logs")
    lister.set_defaults(func=_list)

    show = actions.add_parser("show", parents=[out], help="show a log")
    show.add_argument("log", metavar="NAME|ID")
    show.set_defaults(func=_show)

    setter = actions.add_parser("set", help="change a log")
    setter.add_argument("log", metavar="NAME|ID")
    state = setter.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_true", default=None)
    state.add_argument("--disable", dest="enabled", action="store_false")
    setter.add_argument("--event", choices=("accept", "drop", "all"))
    setter.add_argument("--rate", metavar="N/s")
    setter.add_argument("--description")
    setter.set_defaults(func=_set)

    delete = actions.add_parser("delete", help="delete logs")
    delete.add_argument("logs", nargs="+", metavar="NAME|ID")
    delete.set_defaults(func=_delete)


def _show_one(args, api, ref) -> None:
    from sg_ofctl.ovsdb import logs
    common.emit_one(args, api.read(lambda t: logs.log_fields(logs.find_log(api, ref))))


def _create(args):
    from sg_ofctl.model.logs import parse_rate
    fields = {"name": args.name, "group": args.group, "port": args.port,
              "event": args.event, "rate": parse_rate(args.rate),
              "description": args.description}
    with common.connect(args, (LOG, GROUP, PORT)) as api:
        log_id = api.run(api.log_create(fields))
        _show_one(args, api, log_id)


def _list(args):
    from sg_ofctl.ovsdb import logs
    with common.connect(args, (LOG, GROUP, PORT), read_only=True) as api:
        rows = api.read(lambda t: [logs.log_fields(r) for r in t[LOG].rows.values()])
    common.emit_list(args, ["ID", "Name", "Target", "Event", "Rate", "Enabled"],
                     sorted(([r["id"], r["name"], r["target"], r["event"], r["rate"],
                              r["enabled"]] for r in rows), key=lambda r: r[1]))


def _show(args):
    with common.connect(args, (LOG, GROUP, PORT), read_only=True) as api:
        _show_one(args, api, args.log)


def _set(args):
    from sg_ofctl.model.logs import parse_rate
    changes = {"enabled": args.enabled, "event": args.event, "description": args.description,
               "rate": parse_rate(args.rate) if args.rate is not None else None}
    with common.connect(args, (LOG, GROUP, PORT)) as api:
        api.run(api.log_set(args.log, **changes))


def _delete(args):
    with common.connect(args, (LOG,)) as api:
        api.run(api.log_delete(args.logs))
