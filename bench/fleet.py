#!/usr/bin/env python3
"""The fleet benchmark: one JSON line per configuration.

    .venv/bin/python bench/fleet.py [--only agent] [--sizes 10000,50000,100000,200000]
                                    [--before REF] [--before-sizes 10000]

Parts (each in its own module, run in this order unless --only names one):
- agent (bench/fleet_agent.py): one real agent with 1,000 local ports against
  a database of 10k..200k ports: RSS, first sync (wall, CPU), CPU per
  unrelated change, local rule change -> flows updated.  `--before REF`
  also runs the agent of git REF (e.g. main) at --before-sizes.

Targets (issue 8): RSS <= 150 MB and first sync <= 10 s at every size; CPU
per unrelated change <= 1 ms.  The default run fits in 30 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"agent": "fleet_agent"}     # part -> module in bench/


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
    args = parser.parse_args()
    for part in args.only or list(PARTS):
        module = _module(PARTS[part])
        if part == "agent":
            module.run(_sizes(args.sizes), args.before, _sizes(args.before_sizes), emit)
        else:
            module.run(args, emit)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
