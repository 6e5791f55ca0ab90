"""bench/fleet.py's fanout and failover rows: they run against a real cluster
and relay and carry the keys the issue names (no timing asserted)."""
import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root   # real ovsdb-server processes

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "fleet.py"
FANOUT = {"bench", "hosts", "relays", "p50_ms", "p99_ms", "leader_cpu_ms_per_commit",
          "bytes_per_commit"}
FAILOVER = {"bench", "hosts", "relays", "first_write_seconds", "full_downloads",
            "reconnect_seconds", "reconnect_bytes"}


def test_fleet_bench_prints_fanout_and_failover_rows():
    out = subprocess.run([sys.executable, str(BENCH), "--only", "fanout", "--only",
                          "failover", "--hosts", "6", "--relays", "1", "--commits", "2",
                          "--processes", "2", "--hosts-per-group", "3"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["bench"] for r in rows] == ["fleet.fanout", "fleet.failover"]
    fanout, failover = rows
    assert FANOUT <= set(fanout) and FAILOVER <= set(failover)
    assert (fanout["hosts"], fanout["relays"], fanout["hosts_per_commit"]) == (6, 1, 3)
    assert fanout["bytes_per_commit"] > 0 and fanout["p99_ms"] >= fanout["p50_ms"] > 0
    assert failover["full_downloads"] == 0 and failover["first_write_seconds"] < 30
