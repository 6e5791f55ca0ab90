"""A client's connection thread may be woken without a transaction (to send a
monitor condition change) and then sleeps again: it does not spin."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from ovsdb_fixtures import sgdb  # noqa: F401
from sg_ofctl.ovsdb import api

pytestmark = pytest.mark.root   # a real ovsdb-server


def thread_cpu_seconds(native_id: int) -> float:
    return int(Path(f"/proc/self/task/{native_id}/schedstat").read_text().split()[0]) / 1e9


def test_a_bare_wake_up_does_not_leave_the_connection_thread_spinning(sgdb):
    with api.connect(sgdb.remote) as handle:
        thread = handle.ovsdb_connection.thread
        with handle.ovsdb_connection.lock:
            handle.idl.cond_change("Port", [["name", "==", "p1"]])
        handle.ovsdb_connection.txns.alert_notify()          # wake it to send the change
        time.sleep(0.5)
        before = thread_cpu_seconds(thread.native_id)
        time.sleep(2)
        spent = thread_cpu_seconds(thread.native_id) - before
        assert spent < 0.05, f"the connection thread used {spent:.2f} s of CPU in 2 idle s"
        # ... and it still serves transactions and changes afterwards.
        handle.run(handle.group_create("after-wake"))
        assert handle.idl.tables["Port"].condition_state.acked == [["name", "==", "p1"]]
