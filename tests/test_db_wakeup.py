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



def test_a_transaction_put_while_the_thread_wakes_for_the_server_is_never_stranded():
    """The connection thread's loop (poll the alert and the server's socket,
    then take one item) while producers put transactions and the server
    sends messages: no item ever waits in the queue with the alert silent
    (a deadlock: the thread sleeps, the bounded queue blocks the next put,
    and close() never returns)."""
    import os
    import select
    import threading

    wq = api.WakeableQueue(1)
    server_r, server_w = os.pipe()           # stands for the server's socket
    taken, stop = [], threading.Event()

    def connection_thread():
        while not stop.is_set() or wq.qsize():
            ready = select.select([wq.alert_fileno, server_r], [], [], 0.5)[0]
            if not ready and wq.qsize():
                taken.append("STRANDED")
                return
            if server_r in ready:
                os.read(server_r, 4096)
            item = wq.get_nowait()
            if item is not None:
                taken.append(item)

    def server():
        while not stop.is_set():
            os.write(server_w, b"m")
            time.sleep(0)

    threads = [threading.Thread(target=connection_thread), threading.Thread(target=server)]
    for t in threads:
        t.start()
    try:
        for n in range(3000):
            wq.put(n, timeout=5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        os.close(server_r)
        os.close(server_w)
    assert "STRANDED" not in taken and taken == list(range(3000))
