"""python -m sg_ofctl.sandbox [start|stop|status|matrix] [--dir DIR] [--prefix P]"""
from __future__ import annotations

import argparse
import sys

from sg_ofctl.sandbox import core


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="sg-ofctl-sandbox",
        description="A private Open vSwitch, security-group database, agent and VMs: "
                    "watch security groups work on real traffic (docs/SANDBOX.md).")
    parser.add_argument("action", nargs="?", default="start",
                        choices=("start", "stop", "status", "matrix"),
                        help="start (default; replaces a running sandbox), stop (removes "
                             "everything it created), status, matrix (probe again)")
    parser.add_argument("--dir", default=str(core.DEFAULT_DIR),
                        help="where its files live (default $SG_SANDBOX_DIR or %(default)s)")
    parser.add_argument("--prefix", default=core.DEFAULT_PREFIX,
                        help="name prefix of its namespaces (default $SG_SANDBOX_PREFIX or "
                             "%(default)s)")
    parser.add_argument("--no-change", action="store_true",
                        help="start: skip the live change and the second matrix")
    args = parser.parse_args(argv)
    sandbox = core.Sandbox(args.dir, args.prefix)
    try:
        if args.action == "start":
            return sandbox.start(change=not args.no_change)
        return getattr(sandbox, args.action)()
    except core.SandboxError as e:
        print(f"sg-ofctl-sandbox: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; `{sandbox.stop_command()}` removes what was started",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
