"""The JSON-RPC parser that replaces python-ovs's pure-Python one: every message
comes out whole and in order, however the stream is cut into chunks."""
from __future__ import annotations

import json
import random

from hypothesis import given, settings, strategies as st

from sg_ofctl.ovsdb.fastjson import StdlibParser

MESSAGES = [{"id": i, "method": "update", "params": [None, {"T": {"u": {
    "name": "}" * (i % 4) + "]", "ports": list(range(i % 7)), "n": i * 1.5}}}]}
    for i in range(60)]


def read_all(stream: str, cuts: list[int]) -> list:
    """What ovs.jsonrpc.Connection.recv does."""
    out, pending, parser, pos = [], "", None, 0
    chunks = iter(cuts)
    while pos < len(stream) or pending:
        if not pending:
            size = next(chunks, 4096)
            pending, pos = stream[pos:pos + size], pos + size
        if parser is None:
            parser = StdlibParser()
        pending = pending[parser.feed(pending):]
        if parser.is_done():
            out.append(parser.finish())
            parser = None
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=400))
def test_any_chunking_yields_every_message_in_order(cuts):
    stream = "".join(json.dumps(m) for m in MESSAGES)
    assert read_all(stream, cuts) == MESSAGES


def test_one_big_message_in_small_chunks():
    big = {"id": 1, "result": {"rows": [{"k": "v" * 50, "i": i} for i in range(3000)]}}
    stream = json.dumps(big) + json.dumps({"id": 2})
    cuts = [random.Random(7).randint(1000, 5000) for _ in range(1000)]
    assert read_all(stream, cuts) == [big, {"id": 2}]


def test_unfinished_message_is_not_done():
    parser = StdlibParser()
    assert parser.feed('{"id": 1, "x": [1, 2') == len('{"id": 1, "x": [1, 2')
    assert not parser.is_done()
    assert parser.finish() == "unexpected end of input"


def test_strings_with_brackets_quotes_and_escapes_split_anywhere():
    tricky = {"id": 3, "s": 'a"}]{[\\"\\\\', "t": ["\\", "\"", "}"], "u": "\u00e9{"}
    stream = json.dumps(tricky) + json.dumps({"id": 4})
    for cut in range(1, len(stream)):
        assert read_all(stream, [cut] * len(stream)) == [tricky, {"id": 4}], cut


def test_a_big_message_is_decoded_once(monkeypatch):
    """Linear: each chunk is scanned once and the message decoded once (the first
    version decoded the message so far at every chunk ending in a bracket)."""
    big = {"id": 1, "result": {"rows": [{"k": "}" * 20, "i": i} for i in range(100_000)]}}
    stream = json.dumps(big)
    decoded, real = [], json.loads
    monkeypatch.setattr(json, "loads", lambda text: decoded.append(len(text)) or real(text))
    parser, pos = StdlibParser(), 0
    while not parser.is_done():
        pos += parser.feed(stream[pos:pos + 1024])
    assert parser.finish() == big and decoded == [len(stream)]
