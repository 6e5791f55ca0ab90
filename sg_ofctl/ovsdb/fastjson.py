"""A faster JSON parser for python-ovs when its C extension is missing.

python-ovs parses JSON-RPC messages character by character in pure Python when
`ovs._json` is not built (the PyPI wheel here has none): reading 2,000 rules
took ~2 s.  `StdlibParser` has the same interface (feed/is_done/finish) and uses
the standard library's C decoder on whole messages; `install()` makes
python-ovs use it.  Messages are tried only when a chunk ends like a JSON value
(`}` or `]`), so a large message is decoded a handful of times, not per chunk.
"""
from __future__ import annotations

import json

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
