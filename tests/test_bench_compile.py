"""bench/compile.py runs and prints the keys the issue names (no timing asserted)."""
import json
import pathlib
import subprocess
import sys

from sg_ofctl import scenario

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "compile.py"
KEYS = {"scenario", "ports", "groups", "rules", "members", "flows", "compile_seconds",
        "member_change_flow_mods", "member_change_seconds", "rule_add_flow_mods"}


def test_compile_bench_prints_json_lines():
    out = subprocess.run([sys.executable, str(BENCH), "--scenario-file", scenario.path("small"),
                          "--scenario-file", scenario.path("medium"), "--repeat", "1"],
                         capture_output=True, text=True, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["scenario"] for line in lines] == ["small", "medium"]
    for line in lines:
        assert KEYS <= set(line)
        assert 1 <= line["member_change_flow_mods"] <= 2
    medium = lines[1]
    assert (medium["ports"], medium["groups"], medium["rules"]) == (100, 10, 29)
    assert medium["flows"] <= 1300
