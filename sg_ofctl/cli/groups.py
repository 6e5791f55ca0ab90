"""`sg-ofctl group create|list|show|set|delete` (like `openstack security group`)."""
from __future__ import annotations

from sg_ofctl.cli import common

GROUP, RULE, PORT = "Security_Group", "Security_Group_Rule", "Port"


def register(sub) -> None:
    group = sub.add_parser("group", help="security groups")
    actions = group.add_subparsers(dest="group_command", metavar="ACTION")
    actions.required = True
    out = common.output_parent()

    create = actions.add_parser("create", parents=[out], help="create a group")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--description", default="")
    state = create.add_mutually_exclusive_group()
    state.add_argument("--stateful", dest="stateful", action="store_true", default=True)
    state.add_argument("--stateless", dest="stateful", action="store_false")
    create.add_argument("--external-id", action="append", metavar="KEY=VALUE")
    create.set_defaults(func=_create)

    lister = actions.add_parser("list", parents=[out], help="list groups")
    lister.set_defaults(func=_list)

    show = actions.add_parser("show", parents=[out], help="show a group and its rules")
    show.add_argument("group", metavar="NAME|ID")
    show.set_defaults(func=_show)

    setter = actions.add_parser("set", help="change a group")
    setter.add_argument("group", metavar="NAME|ID")
    setter.add_argument("--name")
    setter.add_argument("--description")
    state = setter.add_mutually_exclusive_group()
    state.add_argument("--stateful", dest="stateful", action="store_true", default=None,
                       help="(only while no port uses the group)")
    state.add_argument("--stateless", dest="stateful", action="store_false")
    setter.add_argument("--external-id", action="append", metavar="KEY=VALUE")
    setter.set_defaults(func=_set)

    delete = actions.add_parser("delete", help="delete groups (not while used)")
    delete.add_argument("groups", nargs="+", metavar="NAME|ID")
    delete.set_defaults(func=_delete)


def show_group(args, api, ref) -> None:
    from sg_ofctl.cli import views
    from sg_ofctl.ovsdb import commands
    if RULE not in api.monitored:
        # Replicate this group's rules only, not every rule.
        uuid = api.read(lambda t: commands.find_group(api, ref).uuid)
        api.watch(RULE, [["security_group", "==", ["uuid", str(uuid)]]])

    def view(tables):
        row = commands.find_group(api, ref)
        rules = [r for r in tables[RULE].rows.values() if r.security_group.uuid == row.uuid]
        return views.group_fields(row, rules)
    common.emit_one(args, api.read(view))


def _create(args):
    external_ids = common.parse_key_values("external_id", args.external_id)
    with common.connect(args, (GROUP,)) as api:
        gid = api.run(api.group_create(args.name, args.description, args.stateful,
                                       external_ids))
        show_group(args, api, gid)


def _list(args):
    with common.connect(args, (GROUP,), read_only=True) as api:
        rows = api.read(lambda t: [[r.id, r.name, r.description, r.stateful]
                                   for r in t[GROUP].rows.values()])
    common.emit_list(args, ["ID", "Name", "Description", "Stateful"],
                     sorted(rows, key=lambda r: (r[1] != "default", r[1])))


def _show(args):
    with common.connect(args, (GROUP,), read_only=True) as api:
        show_group(args, api, args.group)


def _set(args):
    changes = {"name": args.name, "description": args.description,
               "stateful": args.stateful,
               "external_ids": common.parse_key_values("external_id", args.external_id)}
    with common.connect(args, (GROUP, PORT)) as api:
        api.run(api.group_set(args.group, **changes))


def _delete(args):
    with common.connect(args, (GROUP, RULE, PORT)) as api:
        api.run(api.group_delete(args.groups))
