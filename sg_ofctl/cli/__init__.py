"""`sg-ofctl`: the command line.

main() parses global options, then hands over to a subcommand.  Subcommands
live in their own modules, listed in COMMAND_MODULES; each has
`register(subparsers)` that adds its parsers with `set_defaults(func=...)`,
where func(args) returns an exit status (or None for 0).  Add a module to the
list to add a command family (agent, status, explain...).

Imports stay lazy: building the parser imports only argparse, and the database
commands never import os_ken (nor eventlet: see sg_ofctl.ovsdb.fastjson), so a
command starts fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMAND_MODULES = [
    "sg_ofctl.cli.db",
    "sg_ofctl.cli.groups",
    "sg_ofctl.cli.rules",
    "sg_ofctl.cli.ports",
    "sg_ofctl.cli.declarative",
]

PROG = "sg-ofctl"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Security groups for Open vSwitch hosts.")
    parser.add_argument("--db", default=os.environ.get("SG_OFCTL_DB"),
                        help="comma-separated database remotes (unix:PATH, tcp:ADDR:PORT); "
                             "default $SG_OFCTL_DB, else the private database in the "
                             "state directory (started if needed)")
    parser.add_argument("--state-dir", default=None,
                        help="state directory of the private database (default "
                             "$SG_OFCTL_STATE_DIR, /var/lib/sg-ofctl for root, else "
                             "$XDG_STATE_HOME/sg-ofctl)")
    parser.add_argument("--timeout", type=float,
                        default=float(os.environ.get("SG_OFCTL_TIMEOUT", "10")),
                        help="seconds to wait for the database to answer (default 10)")
    parser.add_argument("--debug", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    log = logging.getLogger()
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    elif not log.handlers:
        log.addHandler(logging.NullHandler())
        log.setLevel(logging.CRITICAL)
    from sg_ofctl.cli import common
    try:
        status = args.func(args)
    except BrokenPipeError:
        return 1
    except Exception as e:          # noqa: BLE001 - every error becomes one line
        message = common.error_message(e)
        if message is None:
            raise
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    return 0 if status is None else status


if __name__ == "__main__":
    sys.exit(main())
