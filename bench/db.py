#!/usr/bin/env python3
"""Benchmark of the security-group database and the sg-ofctl command line.

Prints JSON lines: `sg-ofctl apply` of a scenario (default the compiler's
`large`: 1,000 ports, 100 groups, 2,000 rules) into a fresh private database,
a no-op re-apply, `sg-ofctl export`, and the median latency of single
`sg-ofctl rule create` commands (a subprocess each, process start included) on
that database.  Targets: apply <= 10 s, no-op re-apply <= 3 s, rule create
<= 300 ms median.

    .venv/bin/python bench/db.py [--scenario-file FILE] [--rule-creates N]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sg_ofctl import model, vocabulary  # noqa: E402
from sg_ofctl.ovsdb import server  # noqa: E402

DEFAULT_SCENARIO = str(pathlib.Path(__file__).resolve().parent / "scenarios" / "large.json")
RULE_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
               "remote_ip_prefix", "remote_group_id")


def scenario_to_yaml(data: dict, remote_ports: bool = False) -> str:
    """A scenario (Neutron field names) -> the apply format: groups named by id."""
    vlan = int(data.get("network", {}).get("local_vlan", 0))
    groups = {}
    for g in data["security_groups"]:
        rules = [vocabulary.rule_to_fields(model.Rule(id=r["id"], **{
            k: r.get(k) for k in RULE_FIELDS})) for r in g["rules"]]
        groups[g["id"]] = {"stateful": g.get("stateful", True), "rules": rules}
    ports = {}
    for p in data["ports"]:
        ips = [p["ip"]] if isinstance(p["ip"], str) else list(p["ip"])
        ports[p["name"] or p["id"]] = {"mac": p["mac"], "ips": ips,
                                        "groups": list(p["security_groups"]),
                                        "network": vlan}
    if remote_ports:
        for i, p in enumerate(data.get("remote_ports", ())):
            ports[f"remote-{i:05d}"] = {"mac": p["mac"], "ips": [p["ip"]],
                                        "groups": list(p["security_groups"]),
                                        "network": vlan}
    import yaml
    return yaml.safe_dump({"version": 1, "groups": groups, "ports": ports}, sort_keys=False)


LAST_CPU = [0.0]     # CPU seconds (user + system) of the last command


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(db: str, *argv: str, stdin=None) -> tuple[float, str]:
    """The installed `sg-ofctl` of this Python (its console script), timed."""
    script = Path(sys.executable).with_name("sg-ofctl")
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "sg_ofctl.cli"]
    start = time.perf_counter()
    cpu_before = _children_cpu()
    result = subprocess.run([*exe, "--db", db, *argv], capture_output=True, text=True,
                            input=stdin)
    elapsed = time.perf_counter() - start
    LAST_CPU[0] = _children_cpu() - cpu_before
    if result.returncode != 0:
        raise SystemExit(f"sg-ofctl {' '.join(argv)} failed: {result.stderr.strip()}")
    return elapsed, result.stdout


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def run(scenario_file: str, rule_creates: int, remote_ports: bool) -> None:
    with open(scenario_file) as f:
        data = json.load(f)
    name = data.get("scenario", Path(scenario_file).stem)
    tmp = Path(tempfile.mkdtemp(prefix="sgbench"))
    member = server.Member(tmp)
    try:
        server.start(member)
        db = member.local_remote
        path = tmp / "desired.yaml"
        path.write_text(scenario_to_yaml(data, remote_ports))
        n_ports = len(data["ports"]) + (len(data.get("remote_ports", ()))
                                         if remote_ports else 0)
        n_rules = sum(len(g["rules"]) for g in data["security_groups"])
        elapsed, out = cli(db, "apply", str(path))
        emit(bench="db.apply", scenario=name, ports=n_ports,
             groups=len(data["security_groups"]), rules=n_rules, seconds=round(elapsed, 3),
             changes=out.strip().splitlines()[-1], target_seconds=10)
        elapsed, out = cli(db, "apply", str(path))
        emit(bench="db.reapply_noop", scenario=name, seconds=round(elapsed, 3),
             result=out.strip().splitlines()[-1], target_seconds=3)
        elapsed, out = cli(db, "export")
        emit(bench="db.export", scenario=name, seconds=round(elapsed, 3),
             bytes=len(out))
        group = data["security_groups"][0]["id"]
        times, cpu = [], []
        for i in range(rule_creates):
            elapsed, _ = cli(db, "rule", "create", group, "--protocol", "tcp",
                             "--dst-port", str(40000 + i), "-f", "value", "-c", "id")
            times.append(elapsed)
            cpu.append(LAST_CPU[0])
        # Wall time includes waiting for a CPU on a busy machine; CPU time does not.
        emit(bench="db.rule_create", scenario=name, runs=rule_creates,
             median_ms=round(statistics.median(times) * 1000, 1),
             min_ms=round(min(times) * 1000, 1), max_ms=round(max(times) * 1000, 1),
             median_cpu_ms=round(statistics.median(cpu) * 1000, 1),
             load_average_1min=round(os.getloadavg()[0], 2), target_ms=300)
    finally:
        server.stop(member)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario-file", default=DEFAULT_SCENARIO)
    parser.add_argument("--rule-creates", type=int, default=21)
    parser.add_argument("--remote-ports", action="store_true",
                        help="also apply the scenario's remote_ports as ports")
    args = parser.parse_args()
    run(args.scenario_file, args.rule_creates, args.remote_ports)


if __name__ == "__main__":
    main()
