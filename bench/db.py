#!/usr/bin/env python3
"""Benchmark of the security-group database and the sg-ofctl command line.

Prints JSON lines: `sg-ofctl apply` of a scenario (default the compiler's
`large`: 1,000 ports, 100 groups, 2,000 rules) into a fresh private database,
a no-op re-apply, `sg-ofctl export`, and the median latency of single
`sg-ofctl rule create` commands (a subprocess each, process start included) on
that database.  Targets: apply <= 10 s, no-op re-apply <= 3 s, rule create
<= 300 ms median.

    .venv/bin/python bench/db.py [--scenario-file FILE] [--rule-creates N] [--tls]

With --tls the commands reach the database over TLS (`sg-ofctl pki` certificates,
an `ssl:127.0.0.1:PORT` admin listener) instead of its unix socket.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import os
import resource
import shutil
import socket
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
CLI_ENV: dict = {}   # extra environment of the commands (--tls: the admin's key material)


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
                            input=stdin, env={**os.environ, **CLI_ENV})
    elapsed = time.perf_counter() - start
    LAST_CPU[0] = _children_cpu() - cpu_before
    if result.returncode != 0:
        raise SystemExit(f"sg-ofctl {' '.join(argv)} failed: {result.stderr.strip()}")
    return elapsed, result.stdout


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the ovsdb-server (TLS costs on both sides)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def _tls_database(tmp: Path, member) -> str:
    """Certificates, and the member started with an ssl: admin listener; the
    commands get the admin's key material.  Returns the ssl: remote."""
    from sg_ofctl.ovsdb import tls
    pki = str(tmp / "pki")

    def issue(*argv):
        out = subprocess.run([sys.executable, "-m", "sg_ofctl.cli", "pki", "--dir", pki,
                              *argv, "-f", "json"], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    issue("init")
    keys, admin = issue("member", "bench-db"), issue("admin", "bench-admin")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = f"ssl:127.0.0.1:{port}"
    server.start(member, listen=[remote], keys=tls.KeyMaterial(
        keys["private_key"], keys["certificate"], keys["ca_cert"]))
    CLI_ENV.update({"SG_OFCTL_PRIVATE_KEY": admin["private_key"],
                    "SG_OFCTL_CERTIFICATE": admin["certificate"],
                    "SG_OFCTL_CA_CERT": admin["ca_cert"]})
    return remote


def run(scenario_file: str, rule_creates: int, remote_ports: bool,
        use_tls: bool = False) -> None:
    with open(scenario_file) as f:
        data = json.load(f)
    name = data.get("scenario", Path(scenario_file).stem)
    tmp = Path(tempfile.mkdtemp(prefix="sgbench"))
    member = server.Member(tmp)
    try:
        if use_tls:
            db = _tls_database(tmp, member)
        else:
            server.start(member)
            db = member.local_remote
        path = tmp / "desired.yaml"
        path.write_text(scenario_to_yaml(data, remote_ports))
        n_ports = len(data["ports"]) + (len(data.get("remote_ports", ()))
                                         if remote_ports else 0)
        n_rules = sum(len(g["rules"]) for g in data["security_groups"])
        pid = member.pid()

        def timed(*argv):
            before = _server_cpu(pid)
            elapsed, out = cli(db, *argv)
            return elapsed, out, {"client_cpu_s": round(LAST_CPU[0], 3),
                                  "server_cpu_s": round(_server_cpu(pid) - before, 3)}
        elapsed, out, cpu_used = timed("apply", str(path))
        emit(bench="db.apply", scenario=name, tls=use_tls, ports=n_ports,
             groups=len(data["security_groups"]), rules=n_rules, seconds=round(elapsed, 3),
             **cpu_used, changes=out.strip().splitlines()[-1], target_seconds=10)
        elapsed, out, cpu_used = timed("apply", str(path))
        emit(bench="db.reapply_noop", scenario=name, tls=use_tls, seconds=round(elapsed, 3),
             **cpu_used, result=out.strip().splitlines()[-1], target_seconds=3)
        elapsed, out, cpu_used = timed("export")
        emit(bench="db.export", scenario=name, tls=use_tls, seconds=round(elapsed, 3),
             **cpu_used, bytes=len(out))
        group = data["security_groups"][0]["id"]
        times, cpu, server_cpu = [], [], []
        for i in range(rule_creates):
            elapsed, _, cpu_used = timed("rule", "create", group, "--protocol", "tcp",
                                         "--dst-port", str(40000 + i), "-f", "value", "-c",
                                         "id")
            times.append(elapsed)
            cpu.append(cpu_used["client_cpu_s"])
            server_cpu.append(cpu_used["server_cpu_s"])
        # Wall time includes waiting for a CPU on a busy machine; CPU time does not.
        emit(bench="db.rule_create", scenario=name, tls=use_tls, runs=rule_creates,
             median_ms=round(statistics.median(times) * 1000, 1),
             min_ms=round(min(times) * 1000, 1), max_ms=round(max(times) * 1000, 1),
             median_cpu_ms=round(statistics.median(cpu) * 1000, 1),
             median_server_cpu_ms=round(statistics.median(server_cpu) * 1000, 1),
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
    parser.add_argument("--tls", action="store_true",
                        help="over TLS (ssl: listener, pki certificates), not the unix socket")
    args = parser.parse_args()
    run(args.scenario_file, args.rule_creates, args.remote_ports, args.tls)


if __name__ == "__main__":
    main()
