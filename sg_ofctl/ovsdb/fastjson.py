"""Speed-ups for python-ovs: a faster JSON parser when its C extension is
missing, and importing it without eventlet.

python-ovs parses JSON-RPC messages character by character in pure Python when
`ovs._json` is not built (the PyPI wheel here has none): reading 2,000 rules
took ~2 s.  `StdlibParser` has the same interface (feed/is_done/finish) and uses
the standard library's C decoder on whole messages; `install()` makes
python-ovs use it.  Messages are tried only when a chunk ends like a JSON value
(`}` or `]`), so a large message is decoded a handful of times, not per chunk.
"""
from __future__ import annotations

import importlib
import json
import sys

_DECODER = json.JSONDecoder()


class StdlibParser:
    def __init__(self, check_trailer=False):
        self.leftover = ""
        self._text = ""
        self._done = False
        self._value = None

    def feed(self, s: str) -> int:
        if self._done:
            return 0
        start = len(self._text)
        self._text += s
        if not s.rstrip().endswith(("}", "]")):
            return len(s)
        text = self._text
        begin = len(text) - len(text.lstrip())
        if begin == len(text):
            return len(s)
        try:
            value, end = _DECODER.raw_decode(text, begin)
        except json.JSONDecodeError:
            return len(s)        # incomplete: wait for more
        self._done, self._value = True, value
        if end < start:
            # The message ended inside text consumed by an earlier feed (which
            # could not tell): hand that tail back (see recv() in install()).
            self.leftover = text[end:start]
            self._text = text[:end]
            return 0
        self._text = text[:end]
        return end - start

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
        parser = self.parser
        try:
            return original(self)
        finally:
            if getattr(parser, "leftover", ""):
                self.input = parser.leftover + self.input
                parser.leftover = ""
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
