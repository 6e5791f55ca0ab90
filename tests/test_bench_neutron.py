"""bench/neutron.py runs and reports both drivers (on `small`: seconds)."""
import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEYS = {"driver", "scenario", "completed", "flows", "first_batch_seconds", "rule_add_seconds",
        "rule_add_flow_mods", "member_add_seconds", "member_add_flow_mods",
        "port_add_seconds", "rss_mb"}


def test_bench_neutron_reports_both_drivers_side_by_side():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "neutron.py"),
                           "--scenarios", "small", "--budget-seconds", "300"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["driver"], r["scenario"]) for r in lines] == [("neutron", "small"),
                                                             ("sg_ofctl", "small")], lines
    for result in lines:
        assert result["completed"] and KEYS <= set(result), result
    neutron, ours = lines
    assert 0 < ours["flows"] < neutron["flows"]
    assert ours["rule_add_flow_mods"] == 1 and ours["member_add_flow_mods"] == 1
