"""The one polling helper of the tests."""
from __future__ import annotations

import time


def eventually(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "",
               ignore: tuple = ()):
    """Wait until predicate() is truthy; return its value or fail naming `what`.
    Exceptions of the `ignore` types count as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
