"""`sg-ofctl trace --bridge BR --from A --to B ...`: the switch's own verdict
(ofproto/trace through every conntrack recirculation), flow by flow in the
rules' words, and whether the model agrees.  Exit status 4 when the switch and
the model disagree (a stale switch or a bug)."""
from __future__ import annotations

import os

from sg_ofctl.cli import common

DISAGREE = 4


def register(sub) -> None:
    parser = sub.add_parser(
        "trace", parents=[common.output_parent()],
        help="trace a packet through the switch's installed flows",
        description="Build the packet from the ports' real addresses, run ovs-appctl "
                    "ofproto/trace on the bridge through every conntrack recirculation, "
                    "name the group, rule, port or guard of each flow it meets, and compare "
                    "the switch's verdict with the model's (exit 4 if they differ).")
    parser.add_argument("--bridge", required=True, help="the agent's integration bridge")
    parser.add_argument("--from", dest="src", required=True, metavar="PORT|IP")
    parser.add_argument("--to", dest="dst", required=True, metavar="PORT|IP")
    parser.add_argument("--protocol", default="tcp", choices=("tcp", "udp", "sctp", "icmp"))
    parser.add_argument("--dst-port", type=int, metavar="N")
    parser.add_argument("--src-port", type=int, default=40000, metavar="N")
    parser.add_argument("--icmp-type", type=int, default=8, metavar="T")
    parser.add_argument("--icmp-code", type=int, default=0, metavar="C")
    parser.add_argument("--state", default="new", choices=("new", "established", "reply"),
                        help="conntrack state the packet meets (default new)")
    parser.add_argument("--ovs-db", default=os.environ.get(
        "SG_OFCTL_OVS_DB", "unix:/var/run/openvswitch/db.sock"),
        help="the local Open_vSwitch database")
    parser.add_argument("--vswitchd", metavar="CTL",
                        default=os.environ.get("SG_OFCTL_VSWITCHD"),
                        help="ovs-vswitchd's control socket (ovs-appctl -t; default "
                             "$SG_OFCTL_VSWITCHD, else the one ovs-appctl finds)")
    parser.add_argument("--first-table", type=int, default=None, metavar="N",
                        help="the agent's --first-table (default: read from the bridge's "
                             "table names)")
    parser.add_argument("--raw", action="store_true", help="also print ofproto/trace's text")
    parser.set_defaults(func=_trace)


def _trace(args):
    from sg_ofctl import errors
    from sg_ofctl.observe import hostsnap
    from sg_ofctl.observe.trace import TraceError, TraceRequest, run_ofproto_trace, trace
    snap = hostsnap.snapshot(args.ovs_db, args.bridge, common.remotes(args),
                             timeout=args.timeout, first_table=args.first_table)
    for field, value in (("from", args.src), ("to", args.dst)):
        if value in snap.closed:
            raise errors.UserError(f"{field}={value!r}: its interface on {args.bridge} is "
                                   f"fail-closed ({snap.closed[value]}): the switch drops "
                                   "everything it sends and sends it nothing")
    request = TraceRequest(args.src, args.dst, protocol=args.protocol, dst_port=args.dst_port,
                           src_port=args.src_port, icmp_type=args.icmp_type,
                           icmp_code=args.icmp_code, state=args.state)
    try:
        result = trace(snap.view, request,
                       lambda probe: run_ofproto_trace(args.bridge, probe, args.vswitchd),
                       others=snap.others, table_names=snap.table_names)
    except TraceError as e:
        raise errors.UserError(str(e)) from None
    data = result.to_dict()
    if args.raw:
        data["ofproto_trace"] = result.raw
    if args.format == "table":
        _print_table(result, args.raw)
    else:
        common.emit_one(args, data)
    return 0 if result.agree else DISAGREE


def _print_table(result, raw: bool) -> None:
    rows = []
    for hop in result.hops:
        table = ("  " if hop.nested else "") + hop.table
        rows.append([hop.recirculation, table, "miss" if hop.priority is None
                     else hop.priority, hop.owner, ",".join(hop.actions) or "drop"])
    print(f"packet: {result.probe.src} -> {result.probe.dst} ({result.probe.flow}; "
          f"conntrack: {result.probe.ct_state})")
    print(common._table(["Pass", "Table", "Prio", "Flow of", "Actions"], rows))
    for side in result.sides:
        print(f"{side['side']}: {side['result']}: {side['why']}")
    verdict = "allowed" if result.switch.allowed else "dropped"
    print(f"switch: {verdict} ({result.switch.action}"
          f"{'' if result.switch.port is None else ' ' + str(result.switch.port)})")
    print(f"model:  {'allowed' if result.model.allowed else 'dropped'} ({result.model.why})")
    if result.agree:
        print("switch and model agree")
    else:
        print("!" * 78)
        print(f"!! DISAGREEMENT: {result.disagreement()}")
        print("!" * 78)
    if raw:
        print(result.raw)
