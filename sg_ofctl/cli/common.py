"""What the command modules share: the database connection, output formats
(-f table|json|yaml|value, -c COLUMN, like the openstack CLI) and error text."""
from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

FORMATS = ("table", "json", "yaml", "value")


def output_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output formatters")
    group.add_argument("-f", "--format", dest="format", choices=FORMATS, default="table",
                       help="output format (default table)")
    group.add_argument("-c", "--column", dest="columns", action="append", default=[],
                       metavar="COLUMN", help="show only this column (repeat for more)")
    return parent


def error_message(exc: BaseException) -> str | None:
    """The one-line message for an error a user can cause, or None (a bug)."""
    from sg_ofctl import errors, model
    if isinstance(exc, (errors.UserError, model.ValidationError)):
        return str(exc)
    from sg_ofctl.ovsdb.server import ServerError
    if isinstance(exc, ServerError):
        return str(exc)
    name = type(exc).__name__
    if name == "TimeoutException" or (isinstance(exc, RuntimeError)
                                      and "timed out" in str(exc)):
        timeout = getattr(exc, "timeout", None)
        return ("the security-group database did not complete the request in time"
                + (f" ({timeout:g} s)" if isinstance(timeout, (int, float)) else ""))
    if isinstance(exc, RuntimeError) and str(exc).startswith("OVSDB Error"):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return None


def member(args):
    from sg_ofctl.ovsdb import server
    return server.Member(Path(args.state_dir) if args.state_dir
                         else server.default_state_dir())


def key_material(args):
    """--private-key/--certificate/--ca-cert, else their environment variables."""
    from sg_ofctl.ovsdb import tls
    return tls.KeyMaterial.from_options(getattr(args, "private_key", None),
                                        getattr(args, "certificate", None),
                                        getattr(args, "ca_cert", None))


def remotes(args) -> str:
    """--db / $SG_OFCTL_DB, else the private database (started if needed)."""
    from sg_ofctl.ovsdb import tls
    tls.configure(key_material(args))
    if args.db:
        return args.db
    from sg_ofctl.ovsdb import server
    local = member(args)
    server.ensure_running(local)
    return local.local_remote


@contextlib.contextmanager
def connect(args, tables, conditions=None, read_only=False):
    """Writes go to the cluster leader (several remotes); reads (`read_only`)
    take any member or relay (docs/DATABASE.md, "Relays and failover")."""
    from sg_ofctl.ovsdb import api
    handle = api.connect(remotes(args), tables=tables, timeout=args.timeout,
                         txn_timeout=max(api.DEFAULT_TXN_TIMEOUT, args.timeout),
                         conditions=conditions, leader_only=False if read_only else None)
    try:
        yield handle
    finally:
        handle.close()


# ---- output ----------------------------------------------------------------
def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value) if any(
            isinstance(v, dict) for v in value) else ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}='{_text(v)}'" for k, v in sorted(value.items()))
    text = str(value)
    # Whatever another writer stored, never send control characters to a terminal.
    return text if text.isprintable() else repr(text)[1:-1]


def _select(columns, wanted):
    if not wanted:
        return list(columns)
    lowered = {c.lower().replace(" ", "_"): c for c in columns}
    out = []
    for w in wanted:
        key = w.lower().replace(" ", "_")
        if key not in lowered:
            from sg_ofctl import errors
            raise errors.UserError(f"column={w!r}: no such column (known: "
                                   f"{', '.join(columns)})")
        out.append(lowered[key])
    return out


def _table(headers, rows) -> str:
    cells = [[_text(v).split("\n") for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, lines in enumerate(row):
            widths[i] = max([widths[i]] + [len(line) for line in lines])
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [rule, "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |", rule]
    for row in cells:
        height = max(len(lines) for lines in row) if row else 1
        for n in range(height):
            out.append("| " + " | ".join((lines[n] if n < len(lines) else "").ljust(w)
                                         for lines, w in zip(row, widths)) + " |")
    out.append(rule)
    return "\n".join(out)


def _dump(args, data) -> None:
    if args.format == "json":
        print(json.dumps(data, indent=4))
    else:
        import yaml
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")


def emit_list(args, columns, rows) -> None:
    """A list: one row per object, `columns` the headers."""
    chosen = _select(columns, args.columns)
    index = [columns.index(c) for c in chosen]
    picked = [[row[i] for i in index] for row in rows]
    if args.format in ("json", "yaml"):
        _dump(args, [dict(zip(chosen, row)) for row in picked])
    elif args.format == "value":
        for row in picked:
            print(" ".join(_text(v).replace("\n", ",") for v in row))
    else:
        print(_table(chosen, picked))


def emit_one(args, fields: dict) -> None:
    """One object: field -> value."""
    chosen = _select(list(fields), args.columns)
    data = {k: fields[k] for k in chosen}
    if args.format in ("json", "yaml"):
        _dump(args, data)
    elif args.format == "value":
        for value in data.values():
            print(_text(value).replace("\n", ","))
    else:
        print(_table(["Field", "Value"], [[k, v] for k, v in data.items()]))


def ascii_number(text: str) -> int:
    """argparse type: ASCII digits only (int() also takes '６' and '١')."""
    from sg_ofctl import safetext
    value = safetext.ascii_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{safetext.quote(text)}: not a number "
                                         "(ASCII digits 0-9)")
    return value


def parse_key_values(field: str, values) -> dict:
    from sg_ofctl import model
    out = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise model.ValidationError(field, item, "expected KEY=VALUE")
        out[key] = value
    return out
