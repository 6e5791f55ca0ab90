#!/usr/bin/env python3
"""Fleet benchmark (issue 8): one JSON line per configuration.

    .venv/bin/python bench/fleet.py [--only fanout|failover] [--hosts 100,500,...]
                                    [--relays 0,1,2] [--commits N] [--processes N]

fleet.fanout / fleet.failover rows: bench/fleet_fanout.py (N simulated hosts,
the agent's real database client, behind 0, 1 or 2 relays of a 3-member
cluster).  Both rows come from the same run of a configuration (the failover
follows the fan-out), so `--only` picks which rows are printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import fleet_fanout  # noqa: E402


def _numbers(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers, comma-separated") \
            from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers >= 0")
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("fanout", "failover"))
    parser.add_argument("--hosts", type=_numbers, default=[100, 500, 1000],
                        help="simulated hosts per configuration (default 100,500,1000)")
    parser.add_argument("--relays", type=_numbers, default=[0, 1, 2])
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--ports-per-host", type=int, default=4)
    parser.add_argument("--hosts-per-group", type=int, default=10)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args(argv)
    wanted = {"fanout": {"fleet.fanout"}, "failover": {"fleet.failover"}}.get(
        args.only, {"fleet.fanout", "fleet.failover"})

    def emit(row: dict) -> None:
        if row["bench"] in wanted:
            print(json.dumps(row), flush=True)
    for hosts in args.hosts:
        for relays in args.relays:
            fleet_fanout.run(hosts, relays, commits=args.commits,
                             ports_per_host=args.ports_per_host,
                             hosts_per_group=args.hosts_per_group,
                             processes=args.processes, emit=emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
