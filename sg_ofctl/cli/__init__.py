"""`sg-ofctl`: the command line.

main() parses global options, then hands over to a subcommand.  Subcommands
live in their own modules, named in COMMAND_MODULES (command word -> module);
each has `register(subparsers)` that adds its parsers with
`set_defaults(func=...)`, where func(args) returns an exit status (or None for
0).  Add an entry to add a command family (agent, status, explain...).

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

# command word -> the module that registers it.  Add yours here.
COMMAND_MODULES = {
    "db": "sg_ofctl.cli.db",
    "group": "sg_ofctl.cli.groups",
    "rule": "sg_ofctl.cli.rules",
    "port": "sg_ofctl.cli.ports",
    "apply": "sg_ofctl.cli.declarative",
    "export": "sg_ofctl.cli.declarative",
    "agent": "sg_ofctl.cli.agent",
    "status": "sg_ofctl.cli.agent",
    "explain": "sg_ofctl.cli.explain",
    "pki": "sg_ofctl.cli.pki",
    "trace": "sg_ofctl.cli.trace",
    "log": "sg_ofctl.cli.log",
}
_GLOBAL_WITH_VALUE = ("--db", "--state-dir", "--timeout", "--private-key", "--certificate",
                      "--ca-cert")

PROG = "sg-ofctl"


def _command_word(argv) -> str | None:
    """The subcommand in argv (skipping global options and their values)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def _seconds(text: str) -> float:
    """--timeout / $SG_OFCTL_TIMEOUT: ASCII digits (float() also takes '１０')."""
    value = text.strip()
    if not value.isascii() or not value.replace(".", "", 1).isdigit() or \
            not 0 < float(value) <= 3600:
        raise argparse.ArgumentTypeError(f"{text[:100]!r}: seconds, more than 0, at most "
                                         "3600")
    return float(value)


def build_parser(argv=()) -> argparse.ArgumentParser:
    """The parser; with argv naming a known command, only that command's
    module is imported and registered (a command starts faster)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Security groups for Open vSwitch hosts.")
    parser.add_argument("--db", default=os.environ.get("SG_OFCTL_DB"),
                        help="comma-separated database remotes (ssl:ADDR:PORT, unix:PATH, "
                             "tcp:ADDR:PORT); "
                             "default $SG_OFCTL_DB, else the private database in the "
                             "state directory (started if needed)")
    parser.add_argument("--state-dir", default=None,
                        help="state directory of the private database (default "
                             "$SG_OFCTL_STATE_DIR, /var/lib/sg-ofctl for root, else "
                             "$XDG_STATE_HOME/sg-ofctl)")
    parser.add_argument("--timeout", type=_seconds,
                        default=os.environ.get("SG_OFCTL_TIMEOUT", "10"),
                        help="seconds to wait for the database to answer (default 10)")
    tls = parser.add_argument_group(
        "TLS (ssl: remotes, db start's ssl: listeners and Raft; docs/DATABASE.md)")
    tls.add_argument("--private-key", metavar="FILE",
                     help="this client's or member's private key ($SG_OFCTL_PRIVATE_KEY)")
    tls.add_argument("--certificate", metavar="FILE",
                     help="its certificate ($SG_OFCTL_CERTIFICATE)")
    tls.add_argument("--ca-cert", metavar="FILE",
                     help="the CA certificate that peers must be signed by "
                          "($SG_OFCTL_CA_CERT)")
    parser.add_argument("--debug", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    word = _command_word(argv)
    if word in COMMAND_MODULES:
        modules = [COMMAND_MODULES[word]]
    else:
        modules = list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    log = logging.getLogger()
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    elif not log.handlers:
        # Errors reach the user as one line; library warnings (python-ovs
        # reconnecting...) would otherwise go to stderr through logging's
        # last-resort handler.
        log.addHandler(logging.NullHandler())
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
