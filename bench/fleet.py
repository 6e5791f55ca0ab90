#!/usr/bin/env python3
"""The fleet benchmark: one JSON line per configuration.

    .venv/bin/python bench/fleet.py [--only fanout|failover]...
        [--hosts 100,500,1000] [--relays 0,1,2] [--commits N] [--processes N]

Parts (run in this order unless --only names some):
- fanout, failover (bench/fleet_fanout.py): N simulated hosts (the agent's
  database client, no OVS) behind 0, 1, 2 relays of a 3-member cluster: rule
  commit -> last affected host's view (p50/p99), leader CPU and bytes per
  commit; after a leader kill: first write, full downloads, reconnect
  seconds and bytes.  One run of a configuration gives both rows.

Targets (issue 8): with 2 relays and 500 hosts p99 <= 100 ms, leader CPU
<= 2 ms per commit, no host downloading its view again.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"fanout": "fleet_fanout", "failover": "fleet_fanout"}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PARTS), action="append")
    sys.path.insert(0, str(HERE))
    fanout = _module("fleet_fanout")
    fanout.add_arguments(parser)
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    rows = {f"fleet.{p}" for p in parts if p in ("fanout", "failover")}
    if rows:
        fanout.run_all(args, lambda row: emit(row) if row["bench"] in rows else None)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
