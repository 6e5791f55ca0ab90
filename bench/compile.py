"""Compiler benchmark: flows and compile time per scenario, and the cost of a
live change (one member added to a remote group; one rule added).

    python bench/compile.py [--scenario-file F ...] [--repeat N]

Prints one JSON object per line per scenario.  Times are medians of --repeat
runs; flow mods are what the incremental compiler sends for the change."""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import random
import statistics
import sys
import time

from sg_ofctl import scenario
from sg_ofctl.compiler import Compiler
from sg_ofctl.model import Rule

# Neutron's OVS firewall on the same inputs (shared/scenarios/README.md).
NEUTRON_FLOWS = {"small": 171, "medium": 7696, "large": None}


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def measure(data: dict, repeat: int) -> dict:
    view = scenario.host_view(data)
    compile_times, member_times, flows = [], [], 0
    member_mods = rule_mods = 0
    for _ in range(repeat):
        compiler = Compiler()
        first, seconds = _timed(compiler.update, view)
        compile_times.append(seconds)
        flows = len(compiler.flows)
        grown = scenario.with_member_added(view, data["updates"]["member_add"])
        change, seconds = _timed(compiler.update, grown)
        member_times.append(seconds)
        member_mods = len(change)
        with_rule = scenario.with_rule_added(grown, data["updates"]["rule_add"])
        rule_mods = len(compiler.update(with_rule))
    summary = data.get("summary", {})
    return {
        "scenario": data.get("scenario"),
        "ports": len(view.ports),
        "groups": len(view.groups),
        "rules": sum(len(g.rules) for g in view.groups.values()),
        "members": sum(len(m) for m in view.members.values()),
        "flows": flows,
        "compile_seconds": round(statistics.median(compile_times), 4),
        "member_change_flow_mods": member_mods,
        "member_change_seconds": round(statistics.median(member_times), 6),
        "member_change_group_size": summary.get("member_add_group_size"),
        "rule_add_flow_mods": rule_mods,
        "neutron_flows": NEUTRON_FLOWS.get(data.get("scenario")),
        "repeat": repeat,
    }


def measure_big_group(data: dict, size: int, repeat: int) -> dict:
    """One member added to a remote group of `size` addresses (random, in a /12)."""
    rng = random.Random(7)
    base = int(ipaddress.ip_address("10.32.0.0"))
    addresses = {str(ipaddress.ip_address(base + rng.randrange(1 << 20))) for _ in range(size)}
    while len(addresses) < size:
        addresses.add(str(ipaddress.ip_address(base + rng.randrange(1 << 20))))
    view = scenario.host_view(data)
    gid = sorted(view.groups)[0]
    group = view.groups[gid]
    rule = Rule(id="big-ssh", security_group_id=gid, protocol="tcp", port_range_min=22,
                port_range_max=22, remote_group_id="big")
    view = dataclasses.replace(
        view, groups={**view.groups, gid: dataclasses.replace(group, rules=group.rules + (rule,))},
        members={**view.members, "big": addresses})
    times, mods = [], 0
    for i in range(repeat):
        compiler = Compiler()
        compiler.update(view)
        grown = dataclasses.replace(view, members={**view.members,
                                                   "big": addresses | {f"10.47.255.{i + 1}"}})
        change, seconds = _timed(compiler.update, grown)
        times.append(seconds)
        mods = len(change)
    return {"scenario": f"{data.get('scenario')}+group-of-{size}", "members_in_group": size,
            "flows": len(compiler.flows), "member_change_flow_mods": mods,
            "member_change_seconds": round(statistics.median(times), 6), "repeat": repeat}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario-file", action="append",
                        help="scenario JSON (default: small, medium, large)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    files = args.scenario_file or [scenario.path(n) for n in ("small", "medium", "large")]
    for path in files:
        data = scenario.load(path)
        print(json.dumps(measure(data, args.repeat)), flush=True)
        if data.get("scenario") == "large":
            print(json.dumps(measure_big_group(data, 10_000, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
