"""`sg-ofctl port create|list|show|set|delete`.  A port's name is what the
hypervisor puts in the instance NIC's `external_ids:iface-id`."""
from __future__ import annotations

from sg_ofctl.cli import common

GROUP, PORT = "Security_Group", "Port"


def register(sub) -> None:
    port = sub.add_parser("port", help="ports (instance NICs)")
    actions = port.add_subparsers(dest="port_command", metavar="ACTION")
    actions.required = True
    out = common.output_parent()

    create = actions.add_parser("create", parents=[out], help="create a port")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--mac", required=True)
    create.add_argument("--ip", action="append", required=True, metavar="ADDR")
    create_groups = create.add_mutually_exclusive_group()
    create_groups.add_argument("--group", action="append", metavar="G",
                               help="security group (repeatable; none given: default)")
    create_groups.add_argument("--no-security-group", action="store_true",
                               help="no security group at all (not default): only what "
                                    "a VM needs to boot passes")
    create.add_argument("--allowed-address", action="append", metavar="IP[,MAC]")
    create.add_argument("--no-port-security", dest="port_security", action="store_false",
                        default=True)
    create.add_argument("--network", metavar="N", help="VLAN tag 0-4094 (0 untagged)")
    create.add_argument("--external-id", action="append", metavar="KEY=VALUE")
    create.set_defaults(func=_create)

    lister = actions.add_parser("list", parents=[out], help="list ports")
    lister.add_argument("--host", help="only ports bound to this host")
    lister.set_defaults(func=_list)

    show = actions.add_parser("show", parents=[out], help="show a port")
    show.add_argument("port", metavar="NAME|ID")
    show.set_defaults(func=_show)

    setter = actions.add_parser("set", help="change a port")
    setter.add_argument("port", metavar="NAME|ID")
    setter.add_argument("--name")
    setter.add_argument("--mac")
    setter.add_argument("--ip", action="append", metavar="ADDR", help="add a fixed IP")
    setter.add_argument("--no-ip", action="store_true", help="clear fixed IPs first")
    setter.add_argument("--group", action="append", metavar="G", help="add a group")
    setter.add_argument("--no-group", action="store_true",
                        help="clear groups first (an empty list means default)")
    setter.add_argument("--no-security-group", action="store_true",
                        help="no security group at all (not default); "
                             "not with --group")
    setter.add_argument("--allowed-address", action="append", metavar="IP[,MAC]")
    setter.add_argument("--no-allowed-address", action="store_true",
                        help="clear allowed address pairs first")
    security = setter.add_mutually_exclusive_group()
    security.add_argument("--port-security", dest="port_security", action="store_true",
                          default=None)
    security.add_argument("--no-port-security", dest="port_security", action="store_false")
    setter.add_argument("--network", metavar="N")
    setter.add_argument("--external-id", action="append", metavar="KEY=VALUE")
    setter.set_defaults(func=_set)

    delete = actions.add_parser("delete", help="delete ports")
    delete.add_argument("ports", nargs="+", metavar="NAME|ID")
    delete.set_defaults(func=_delete)


def _create(args):
    fields = {"name": args.name, "mac": args.mac, "ips": args.ip, "groups": args.group,
              "no_security_groups": args.no_security_group,
              "allowed_addresses": args.allowed_address,
              "port_security": args.port_security, "network": args.network,
              "external_ids": common.parse_key_values("external_id", args.external_id)}
    with common.connect(args, (GROUP, PORT)) as api:
        pid = api.run(api.port_create(fields))
        show_port(args, api, pid)


def show_port(args, api, ref) -> None:
    from sg_ofctl.cli import views
    from sg_ofctl.ovsdb import bindings, commands

    def fields(t):
        row = commands.find_port(api, ref)
        return views.port_fields(row, bindings.host_text(t, row.name))
    common.emit_one(args, api.read(fields))


def _list(args):
    from sg_ofctl.cli import views
    from sg_ofctl.ovsdb import bindings
    with common.connect(args, (GROUP, PORT)) as api:
        def listing(t):
            hosts = bindings.hosts_by_port(t)
            return [views.port_list_row(r, ",".join(sorted(hosts.get(r.name, ()))))
                    for r in t[PORT].rows.values()
                    if args.host is None or args.host in hosts.get(r.name, {""})]
        rows = api.read(listing)
    common.emit_list(args, views.PORT_COLUMNS, sorted(rows, key=lambda r: r[1]))


def _by_refs(refs) -> dict:
    """Replicate only these ports (by name or id)."""
    return {PORT: [[column, "==", ref] for ref in refs for column in ("name", "id")]}


def _show(args):
    with common.connect(args, (GROUP,), _by_refs([args.port])) as api:
        show_port(args, api, args.port)


def _set(args):
    changes = {"name": args.name, "mac": args.mac, "ips": args.ip, "no_ips": args.no_ip,
               "groups": args.group, "no_groups": args.no_group,
               "no_security_groups": args.no_security_group,
               "allowed_addresses": args.allowed_address,
               "no_allowed_addresses": args.no_allowed_address,
               "port_security": args.port_security, "network": args.network,
               "external_ids": common.parse_key_values("external_id", args.external_id)}
    with common.connect(args, (GROUP, PORT)) as api:
        api.run(api.port_set(args.port, changes))


def _delete(args):
    with common.connect(args, (GROUP,), _by_refs(args.ports)) as api:
        api.run(api.port_delete(args.ports))
