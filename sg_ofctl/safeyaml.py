"""YAML that may have been written to hurt, refused before it costs anything.

- A file (or stdin) over MAX_BYTES is refused after reading MAX_BYTES + 1 bytes.
- Bytes that are not UTF-8: refused with the line and column of the first bad byte.
- Aliases may repeat at most ALIAS_BUDGET nodes in all (a 600-byte "billion
  laughs" file repeats 387 million); an alias inside its own anchor (a cycle) is
  refused.  The check walks each distinct node once, before anything is built.
- Mapping keys must be strings (`[a, b]: x`, `80: x`, `yes: x` name their line
  and column: quote the key); a duplicate key is refused.
- Integers of more than 18 digits are refused (a 5,000-digit one would crash
  Python's int()).
Errors are errors.UserError "SOURCE:LINE:COL: what", quoting at most ~100
characters of a value (safetext.quote).  libyaml's parser is used when PyYAML
has it; it also refuses nesting deeper than 1,000 levels.
"""
from __future__ import annotations

import functools
import sys

from sg_ofctl import errors, safetext

MAX_BYTES = 16 * 1024 * 1024
ALIAS_BUDGET = 10_000
_MAX_INT_DIGITS = 18


class Map(dict):
    """A mapping of the loaded document; `line` is where it starts (1-based)."""

    line = 0


def read(path: str) -> tuple[str, str]:
    """The text of a YAML file (`-` = stdin) and its name for messages."""
    if path == "-":
        stream, source = sys.stdin, "<stdin>"
        if hasattr(stream, "buffer"):
            raw = stream.buffer.read(MAX_BYTES + 1)
        else:       # a text stream (tests): what bytes it stands for
            raw = stream.read(MAX_BYTES + 1).encode("utf-8", "surrogatepass")
    else:
        with open(path, "rb") as f:
            raw, source = f.read(MAX_BYTES + 1), path
    return decode(raw, source), source


def decode(raw: bytes, source: str) -> str:
    """UTF-8 bytes -> text, refusing oversized input and bad bytes with their place."""
    if len(raw) > MAX_BYTES:
        raise errors.UserError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB "
                               "(the limit of a YAML file); split it or raise "
                               "sg_ofctl.safeyaml.MAX_BYTES")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise errors.UserError(f"{source}:{line}:{column}: not valid UTF-8 (byte "
                               f"0x{raw[e.start]:02x})") from None


def load(text: str, source: str = "<input>"):
    """Parse one YAML document under the limits above; mappings are `Map`s."""
    import yaml
    if len(text) > MAX_BYTES:
        raise errors.UserError(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MiB "
                               "(the limit of a YAML file)")
    try:
        return yaml.load(text, Loader=_loader())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise errors.UserError(f"{where}: malformed YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise errors.UserError(f"{source}: malformed YAML: {safetext.quote(str(e))}") \
            from None
    except RecursionError:      # PyYAML's pure-Python parser (libyaml stops at 1,000)
        raise errors.UserError(f"{source}: malformed YAML: nested too deeply") from None


def _children(node):
    value = node.value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, tuple):
                yield from item
            else:
                yield item


def check_expansion(root, budget: int = ALIAS_BUDGET):
    """None if aliases repeat at most `budget` nodes, else (node, reason).
    Each distinct node is visited once (iterative: no recursion limit)."""
    size: dict = {}             # id(node) -> nodes in its expansion
    open_nodes: set = set()     # ids of the nodes being expanded (ancestors)
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            size[key] = total
            if total - len(size) > budget:
                return node, (f"aliases repeat more than {budget:,} nodes (an alias "
                              "bomb?); write the values out or use fewer aliases")
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                return node, "an alias refers to its own anchor (a cycle)"
            if id(child) not in size:
                stack.append((child, False))
    return None


@functools.cache
def _loader():
    """The loader class (built on first use: yaml is imported only when needed)."""
    import yaml
    constructor = yaml.constructor.ConstructorError

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        """Bounded aliases, string keys, no duplicate keys, bounded integers;
        remembers each mapping's line."""

        def construct_document(self, node):
            found = check_expansion(node)
            if found is not None:
                bad, reason = found
                raise constructor(None, None, reason, bad.start_mark)
            return super().construct_document(node)

        def construct_mapping(self, node, deep=False):
            if not isinstance(node, yaml.MappingNode):
                raise constructor(None, None, "expected a mapping", node.start_mark)
            out = Map()
            out.line = node.start_mark.line + 1
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    kind = (type(key).__name__ if isinstance(key_node, yaml.ScalarNode)
                            else "a " + ("list" if isinstance(key_node, yaml.SequenceNode)
                                         else "mapping"))
                    raise constructor(None, None, f"a key must be a string, not {kind} "
                                      f"{safetext.quote(key)} (quote it)",
                                      key_node.start_mark)
                if key in out:
                    raise constructor(None, None, f"duplicate key {safetext.quote(key)}",
                                      key_node.start_mark)
                out[key] = self.construct_object(value_node, deep=deep)
            return out

        def construct_yaml_int(self, node):
            digits = str(node.value).lstrip("+-").replace("_", "")
            if len(digits) > _MAX_INT_DIGITS:
                raise constructor(None, None, f"an integer of {len(digits)} digits (at most "
                                  f"{_MAX_INT_DIGITS})", node.start_mark)
            return super().construct_yaml_int(node)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                           Loader.construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    return Loader
