"""Stable numbers derived from identifiers: group numbers, conjunction ids and
cookies.  Never from a counter, so a restart compiles the same numbers."""
from __future__ import annotations

import hashlib
from typing import Iterable

# Cookie layout (64 bits): 4-bit signature 0x5 | 4-bit kind | 32-bit owner | 24-bit item.
COOKIE_SIGNATURE = 0x5 << 60
COOKIE_SIGNATURE_MASK = 0xF << 60
KIND_STATIC, KIND_PORT, KIND_RULE, KIND_CONJ, KIND_MEMBER, KIND_UPLINK = 1, 2, 3, 4, 5, 6
KIND_LOG = 7    # packet logging of one port (owner: port id; item: which event)
KIND_NAMES = {KIND_STATIC: "static", KIND_PORT: "port", KIND_RULE: "rule",
              KIND_CONJ: "remote-group", KIND_MEMBER: "member", KIND_UPLINK: "uplink",
              KIND_LOG: "log"}


def stable_hash(text: str, bits: int) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << bits) - 1)


def cookie(kind: int, owner: str = "", item: str = "") -> int:
    return (COOKIE_SIGNATURE | kind << 56 | stable_hash(owner, 32) << 24 |
            (stable_hash(item, 24) if item else 0))


def cookie_kind(value: int) -> str:
    return KIND_NAMES.get(value >> 56 & 0xF, "unknown")


def stable_numbers(keys: Iterable[str], bits: int = 32) -> dict[str, int]:
    """Distinct non-zero numbers from a hash of each key.  A collision (about one
    in 4 billion per pair) is resolved by probing, keys taken in sorted order, so
    the same set of keys always gets the same numbers."""
    limit = (1 << bits) - 1
    out: dict[str, int] = {}
    taken: set[int] = set()
    for key in sorted(set(keys)):
        number = stable_hash(key, bits) or 1
        while number in taken:
            number = number % limit + 1
        taken.add(number)
        out[key] = number
    return out
