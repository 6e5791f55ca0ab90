#!/usr/bin/env python3
"""The fleet benchmark: one JSON line per configuration.

    .venv/bin/python bench/fleet.py [--only agent|fanout|failover]...
        [--sizes 10000,50000,100000,200000] [--before REF] [--before-sizes 10000]
        [--hosts 100,500,1000] [--relays 0,1,2] [--commits N] [--processes N]

Parts (each in its own module, run in this order unless --only names some):
- agent (bench/fleet_agent.py): one real agent with 1,000 local ports against
  a database of 10k..200k ports: RSS, first sync (wall, CPU), CPU per
  unrelated change, local rule change -> flows updated.  `--before REF`
  also runs the agent of git REF (e.g. main) at --before-sizes.
- fanout, failover (bench/fleet_fanout.py): N simulated hosts (the agent's
  database client, no OVS) behind 0, 1, 2 relays of a 3-member cluster: rule
  commit -> last affected host's view (p50/p99), leader CPU and bytes per
  commit; after a leader kill: first write, full downloads, reconnect
  seconds and bytes.  One run of a configuration gives both rows.

Targets (issue 8): RSS <= 150 MB and first sync <= 10 s at every size; CPU
per unrelated change <= 1 ms; with 2 relays and 500 hosts p99 <= 100 ms,
leader CPU <= 2 ms per commit, no host downloading its view again.  The
default run fits in 30 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"agent": "fleet_agent", "fanout": "fleet_fanout", "failover": "fleet_fanout"}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--sizes={text!r}: expected numbers separated by commas") from None
    if not sizes or any(s < 4000 or s > 1_000_000 for s in sizes):
        raise SystemExit(f"--sizes={text!r}: each size must be 4000..1000000 ports")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PARTS), action="append")
    parser.add_argument("--sizes", default="10000,50000,100000,200000")
    parser.add_argument("--before", help="also run the agent of this git ref (e.g. main)")
    parser.add_argument("--before-sizes", default="10000")
    sys.path.insert(0, str(HERE))
    fanout = _module("fleet_fanout")
    fanout.add_arguments(parser)
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    if "agent" in parts:
        _module("fleet_agent").run(_sizes(args.sizes), args.before, _sizes(args.before_sizes),
                                   emit)
    rows = {f"fleet.{p}" for p in parts if p in ("fanout", "failover")}
    if rows:
        fanout.run_all(args, lambda row: emit(row) if row["bench"] in rows else None)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
