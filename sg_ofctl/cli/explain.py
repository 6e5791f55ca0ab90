"""`sg-ofctl explain --from A --to B ...`: is this packet allowed, and by which
group and rule?  A and B are port names/ids or outside IP addresses."""
from __future__ import annotations

from sg_ofctl.cli import common

TABLES = ("Security_Group", "Security_Group_Rule", "Port", "Global")


def register(sub) -> None:
    parser = sub.add_parser("explain", parents=[common.output_parent()],
                            help="explain why a packet is allowed or dropped")
    parser.add_argument("--from", dest="src", required=True, metavar="PORT|IP")
    parser.add_argument("--to", dest="dst", required=True, metavar="PORT|IP")
    parser.add_argument("--protocol", default="tcp", choices=("tcp", "udp", "sctp", "icmp"))
    parser.add_argument("--dst-port", type=common.ascii_number, metavar="N")
    parser.add_argument("--src-port", type=common.ascii_number, default=40000, metavar="N")
    parser.add_argument("--icmp-type", type=common.ascii_number, default=8, metavar="T")
    parser.add_argument("--icmp-code", type=common.ascii_number, default=0, metavar="C")
    parser.add_argument("--state", default="new", choices=("new", "est", "rpl", "rel", "inv"),
                        help="conntrack state of the packet (default new)")
    parser.set_defaults(func=_explain)


def _explain(args):
    from sg_ofctl.explain import explain
    with common.connect(args, TABLES, read_only=True) as api:
        state = api.state()
    steps = explain(state.groups, state.ports, state.members(), args.src, args.dst,
                    protocol=args.protocol, dst_port=args.dst_port, src_port=args.src_port,
                    icmp_type=args.icmp_type, icmp_code=args.icmp_code, state=args.state)
    verdict = "allowed" if all(s.allowed for s in steps) else "dropped"
    rows = [[s.side, s.port, list(s.groups), "allowed" if s.allowed else "dropped", s.reason]
            for s in steps]
    if args.format == "table":
        print(common._table(["Side", "Port", "Groups", "Result", "Why"], rows))
        print(f"verdict: {verdict}")
    else:
        common.emit_one(args, {"verdict": verdict, "steps": [
            dict(zip(("side", "port", "groups", "result", "why"), r)) for r in rows]})
