"""Speed-ups for python-ovs: a faster JSON parser when its C extension is
missing, and importing it without eventlet.

python-ovs parses JSON-RPC messages character by character in pure Python when
`ovs._json` is not built (the PyPI wheel here has none): reading 2,000 rules
took ~2 s.  `StdlibParser` has the same interface (feed/is_done/finish) and uses
the standard library's C decoder on whole messages (each chunk is scanned once
and each message decoded once); `install()` makes python-ovs use it.
"""
from __future__ import annotations

import importlib
import json
import re
import sys

_SPECIAL = re.compile(r'["\\{}\[\]]')


class StdlibParser:
    """Finds where a message ends by scanning each chunk once for quotes,
    backslashes and brackets (outside strings), then decodes the whole message
    once with the standard library's C decoder: linear in the message's size,
    however many chunks it arrives in."""

    def __init__(self, check_trailer=False):
        self._chunks: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escaped_first = False     # the next chunk's first character is escaped
        self._done = False
        self._value = None

    def feed(self, s: str) -> int:
        if self._done:
            return 0
        depth, in_string = self._depth, self._in_string
        skip = 0 if self._escaped_first else -1
        end = None
        for match in _SPECIAL.finditer(s):
            i = match.start()
            if i == skip:
                continue
            c = s[i]
            if in_string:
                if c == "\\":
                    skip = i + 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        if end is None:
            self._chunks.append(s)
            self._depth, self._in_string = depth, in_string
            self._escaped_first = skip == len(s)
            return len(s)
        self._chunks.append(s[:end])
        self._done = True
        try:
            self._value = json.loads("".join(self._chunks))
        except ValueError as e:
            self._value = f"syntax error: {e}"     # python-ovs: a str is an error
        self._chunks = []
        return end

    def is_done(self) -> bool:
        return self._done

    def finish(self):
        if not self._done:
            return "unexpected end of input"
        return self._value


def install() -> None:
    """Make python-ovs JSON-RPC connections use StdlibParser (idempotent)."""
    import ovs.json
    import ovs.jsonrpc
    if ovs.json.PARSER == ovs.json.PARSER_C:
        return
    original = ovs.jsonrpc.Connection.recv
    if getattr(original, "_sg_ofctl_fast", False):
        return

    def recv(self):
        if self.parser is None:
            self.parser = StdlibParser()
        return original(self)
    recv._sg_ofctl_fast = True
    ovs.jsonrpc.Connection.recv = recv


def import_ovs_without_eventlet() -> None:
    """python-ovs imports eventlet when it is installed (200 ms, and a
    deprecation warning) only to ask whether it is monkey-patched.  When nothing
    has imported eventlet yet, nothing has patched anything: import ovs.poller
    with eventlet hidden, then unhide it for anyone else."""
    if "eventlet" in sys.modules or "ovs.poller" in sys.modules:
        return
    hidden = [name for name in ("eventlet", "gevent") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None          # the import fails; ovs then skips it
    try:
        importlib.import_module("ovs.poller")
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
