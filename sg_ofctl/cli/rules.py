"""`sg-ofctl rule create|list|show|delete` (like `openstack security group rule`)."""
from __future__ import annotations

from sg_ofctl.cli import common

GROUP, RULE = "Security_Group", "Security_Group_Rule"


def register(sub) -> None:
    rule = sub.add_parser("rule", help="security group rules")
    actions = rule.add_subparsers(dest="rule_command", metavar="ACTION")
    actions.required = True
    out = common.output_parent()

    create = actions.add_parser("create", parents=[out], help="add a rule to a group")
    create.add_argument("group", metavar="GROUP")
    direction = create.add_mutually_exclusive_group()
    direction.add_argument("--ingress", dest="direction", action="store_const",
                           const="ingress", help="(default)")
    direction.add_argument("--egress", dest="direction", action="store_const",
                           const="egress")
    create.add_argument("--ethertype", metavar="IPv4|IPv6")
    create.add_argument("--protocol", metavar="P",
                        help="name (tcp, udp, icmp, ...) or number 0-255; default any")
    create.add_argument("--dst-port", metavar="MIN[:MAX]")
    create.add_argument("--icmp-type", metavar="T")
    create.add_argument("--icmp-code", metavar="C")
    remote = create.add_mutually_exclusive_group()
    remote.add_argument("--remote-ip", metavar="CIDR")
    remote.add_argument("--remote-group", metavar="GROUP")
    create.add_argument("--action", metavar="allow|deny")
    create.add_argument("--description")
    create.set_defaults(func=_create)

    lister = actions.add_parser("list", parents=[out], help="list rules")
    lister.add_argument("group", nargs="?", metavar="GROUP")
    lister.add_argument("--long", action="store_true", help="also the description")
    lister.set_defaults(func=_list)

    show = actions.add_parser("show", parents=[out], help="show a rule")
    show.add_argument("rule", metavar="ID")
    show.set_defaults(func=_show)

    delete = actions.add_parser("delete", help="delete rules")
    delete.add_argument("rules", nargs="+", metavar="ID")
    delete.set_defaults(func=_delete)


def _number(field, value):
    if value is None:
        return None
    from sg_ofctl import model, safetext
    if safetext.ascii_int(value) is not None:
        return safetext.ascii_int(value)
    raise model.ValidationError(field, value, "must be an integer")


def _create(args):
    fields = {"direction": args.direction, "ethertype": args.ethertype,
              "protocol": args.protocol, "dst_port": args.dst_port,
              "icmp_type": _number("icmp_type", args.icmp_type),
              "icmp_code": _number("icmp_code", args.icmp_code),
              "remote_ip": args.remote_ip, "remote_group": args.remote_group,
              "action": args.action, "description": args.description}
    from sg_ofctl.ovsdb import commands
    rule_id = commands.new_id()
    # Replicate only the groups it names and the new rule: a command stays fast
    # however large the database.
    names = [args.group] + ([args.remote_group] if args.remote_group else [])
    groups = [[column, "==", ref] for ref in names for column in ("name", "id")]
    groups.append(["name", "==", "default"])
    with common.connect(args, (), {GROUP: groups, RULE: [["id", "==", rule_id]]}) as api:
        api.run(api.rule_create(args.group, {k: v for k, v in fields.items()
                                             if v is not None}, rule_id))
        show_rule(args, api, rule_id)


def show_rule(args, api, rule_id) -> None:
    from sg_ofctl.cli import views
    from sg_ofctl.ovsdb import commands
    common.emit_one(args, api.read(lambda t: views.rule_fields(
        commands.find_rule(api, rule_id))))


def _list(args):
    from sg_ofctl.cli import views
    from sg_ofctl.ovsdb import commands
    with common.connect(args, (GROUP,) if args.group else (GROUP, RULE), read_only=True) as api:
        if args.group:
            uuid = api.read(lambda t: commands.find_group(api, args.group).uuid)
            api.watch(RULE, [["security_group", "==", ["uuid", str(uuid)]]])

        def rows(tables):
            wanted = commands.find_group(api, args.group) if args.group else None
            return [views.rule_list_row(r, args.long) for r in tables[RULE].rows.values()
                    if wanted is None or r.security_group.uuid == wanted.uuid]
        listed = api.read(rows)
    columns = list(views.RULE_COLUMNS) + (["Description"] if args.long else [])
    if args.group:
        columns.remove("Security Group")
        listed = [row[:8] + row[9:] for row in listed]
    common.emit_list(args, columns, sorted(listed, key=lambda r: (r[5], r[2], str(r[1]),
                                                                  r[0])))


def _by_ids(ids) -> dict:
    """Replicate only these rules."""
    return {RULE: [["id", "==", rule_id] for rule_id in ids]}


def _show(args):
    with common.connect(args, (GROUP,), _by_ids([args.rule]), read_only=True) as api:
        show_rule(args, api, args.rule)


def _delete(args):
    with common.connect(args, (GROUP,), _by_ids(args.rules)) as api:
        api.run(api.rule_delete(args.rules))
