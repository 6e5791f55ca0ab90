"""Bytes received from the database, per thread: an ovsdbapp connection reads
in a thread of its own, so this counts what one client downloads (its first
snapshot, each update, and everything again after a reconnect that the server
could not answer from its history).  For benchmarks and tests of reconnects
(bench/fleet.py); `install()` wraps python-ovs's Stream.recv once.
"""
from __future__ import annotations

import threading

_counts: dict[int, int] = {}
_lock = threading.Lock()


def install() -> None:
    import ovs.stream
    original = ovs.stream.Stream.recv
    if getattr(original, "_sg_ofctl_counted", False):
        return

    def recv(self, n):
        error, data = original(self, n)
        if not error and data:
            ident = threading.get_ident()
            with _lock:
                _counts[ident] = _counts.get(ident, 0) + len(data)
        return error, data
    recv._sg_ofctl_counted = True
    ovs.stream.Stream.recv = recv


def received(thread_ident: int | None) -> int:
    """Bytes received so far by the thread `thread_ident`."""
    with _lock:
        return _counts.get(thread_ident or 0, 0)
