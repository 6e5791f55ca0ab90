"""Text from a hostile neighbour, checked cheaply: how much of a value an error
message quotes, which characters a name or description may hold, and what
counts as a number.  Pure, standard library only (model.py builds on it).

- `quote(value)`: a repr of at most QUOTE_LIMIT characters, however large or
  deeply nested the value is (an error must never print hundreds of MB).
- `shown(text)`: text to print inside a message (a path of names): cut, escaped.
- `text_problem(value, limit)`: why a name/description is refused, or None:
  C0/C1 control characters (terminal escapes), line/paragraph separators,
  bidirectional overrides (text that displays differently from what it is),
  lone surrogates (undecodable bytes), longer than `limit` characters.
- `ascii_int(text)`: the integer of a string of ASCII digits (at most 18), or
  None: `²`, `١`, `６` are digits to str.isdigit() but not numbers here.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

QUOTE_LIMIT = 100
MAX_NAME = 255            # Neutron's limits for name and description
MAX_DESCRIPTION = 255
_MAX_DIGITS = 18

_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069"
                        "\ud800-\udfff]")


def quote(value) -> str:
    """repr(value), cut to QUOTE_LIMIT characters (the cut is marked with ...)."""
    parts: list[str] = []
    _bounded_repr(value, parts, QUOTE_LIMIT + 1, depth=0)
    text = "".join(parts)
    if len(text) > QUOTE_LIMIT:
        return text[:QUOTE_LIMIT - 3] + "..."
    return text


def _bounded_repr(value, out: list, budget: int, depth: int) -> int:
    """Append to `out` at most ~budget characters of repr(value); return what is left."""
    if budget <= 0:
        return 0
    if isinstance(value, str):
        piece = repr(value[:budget])
    elif isinstance(value, (bytes, bytearray)):
        piece = repr(bytes(value[:budget]))
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        piece = "<an integer of %d bits>" % value.bit_length()
    elif isinstance(value, (dict, list, tuple, set, frozenset)):
        if depth > 8:
            piece = "..."
        else:
            return _container(value, out, budget, depth)
    else:
        try:
            piece = repr(value)
        except Exception:       # noqa: BLE001 - an error message must not fail
            piece = f"<{type(value).__name__}>"
    out.append(piece[:budget])
    return budget - min(len(piece), budget)


def _container(value, out: list, budget: int, depth: int) -> int:
    items: Iterable
    if isinstance(value, dict):
        opening, closing, items = "{", "}", value.items()
    elif isinstance(value, list):
        opening, closing, items = "[", "]", value
    elif isinstance(value, tuple):
        opening, closing, items = "(", ")", value
    else:
        opening, closing, items = "{", "}", value
    out.append(opening)
    budget -= 1
    for n, item in enumerate(items):
        if budget <= 0:
            return 0
        if n:
            out.append(", ")
            budget -= 2
        if isinstance(value, dict):
            budget = _bounded_repr(item[0], out, budget, depth + 1)
            out.append(": ")
            budget = _bounded_repr(item[1], out, budget - 2, depth + 1)
        else:
            budget = _bounded_repr(item, out, budget, depth + 1)
    if isinstance(value, tuple) and len(value) == 1:
        out.append(",")
    out.append(closing)
    return budget - 1


def shown(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Text for a message, unquoted: escapes for anything unprintable, cut to `limit`."""
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    if text.isprintable():
        return text
    return repr(text)[1:-1]


def text_problem(value: str, limit: int) -> str | None:
    """Why this name/description text is refused, or None if it is fine."""
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        return (f"contains the control character U+{ord(bad.group()):04X} at position "
                f"{bad.start()} (control, separator and bidirectional characters are "
                "refused)")
    if len(value) > limit:
        return f"is {len(value)} characters long (at most {limit})"
    return None


def ascii_int(text: str) -> int | None:
    """int(text) for ASCII digits only (surrounding blanks allowed), else None."""
    text = text.strip()
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
