#!/usr/bin/env python3
"""Benchmark of `sg-ofctl agent` against a real ovs-vswitchd (userspace datapath).

Prints JSON lines, all from one run:
- convergence latency, database write -> flows installed AND a packet's verdict
  changed, measured with a UDP probe every 2 ms between two VM namespaces, on a
  host with the scenario's local ports (default `medium`: 100 ports, as OVS
  internal ports tagged with iface-id): rule add, rule delete (an established
  flow cut: revocation), remote member add and delete, port add; p50/p99;
- flow mods sent by an agent restart with nothing changed;
- TCP throughput (iperf3) and new TCP connections per second through the full
  pipeline with the scenario's flows, against the same bridge with only NORMAL
  (alternating rounds, medians, ratio);
- TCP throughput to the receiver with its group logged (event all) over the
  same without, rounds in ABBA order in one run (geometric mean of the ratios);
- agent RSS with the `large` scenario's 1,000 local ports;
- the cost of one periodic audit there (read back every flow, compare,
  nothing to repair): wall time, agent CPU time, and the flow-stats read.

Targets: rule add p50 <= 50 ms, p99 <= 200 ms; restart flow mods = 0;
throughput ratio >= 0.90; connection rate ratio >= 0.85; logging throughput
ratio >= 0.95; RSS <= 150 MB.

    .venv/bin/python bench/agent.py [--scenario-file FILE] [--trials N] [--quick]
                                    [--only logging]
                                    [--audit-cost-only]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sg_ofctl import scenario  # noqa: E402
from sg_ofctl.ovsdb import api as sg_api, server  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_db", ROOT / "bench" / "db.py")
bench_db = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_db)

from agent_testbed import Hypervisor, eventually  # noqa: E402
from ovs_testbed import OvsTestbed, stop_pid  # noqa: E402

SRC = {"name": "probe-src", "mac": "fa:16:3e:99:00:01", "ip": "10.99.0.1"}
DST = {"name": "probe-dst", "mac": "fa:16:3e:99:00:02", "ip": "10.99.0.2"}
RULE_PORT, MEMBER_PORT, PORTADD_PORT, CONN_PORT = 7001, 7002, 7003, 7100

PROBER = r"""
import socket, sys, time, select
host, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
nxt = time.time()
while True:
    now = time.time()
    if now >= nxt:
        try:
            s.sendto(b"%.6f" % now, (host, port))
        except OSError:
            pass
        nxt = now + interval
    r, _, _ = select.select([s], [], [], max(0.0, nxt - time.time()))
    if r:
        try:
            data = s.recv(64)
        except OSError:
            continue
        sys.stdout.write(data.decode() + "\n"); sys.stdout.flush()
"""

UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(64); s.sendto(d, a)
"""

TCP_ACCEPT = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1024)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""

CONNECT_LOOP = r"""
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n, fail, end = 0, 0, time.monotonic() + seconds
while time.monotonic() < end:
    c = socket.socket(); c.settimeout(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    try:
        c.connect((host, port)); n += 1
    except OSError:
        fail += 1
    c.close()
print(n / seconds, fail)
"""


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def pct(values, q) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summary(name, values, **extra) -> None:
    ms = [v * 1000 for v in values]
    emit(bench=f"agent.{name}", trials=len(ms), p50_ms=round(statistics.median(ms), 1),
         p99_ms=round(pct(ms, 0.99), 1), max_ms=round(max(ms), 1), **extra)


class Prober:
    """A UDP probe every `interval` s from src to dst:port; echoes come back with
    their send time, so the time the verdict changed is known to ~interval."""

    def __init__(self, vm, ip, port, interval=0.002):
        self.proc = subprocess.Popen(["ip", "netns", "exec", vm.ns, sys.executable, "-c",
                                      PROBER, ip, str(port), str(interval)],
                                     stdout=subprocess.PIPE, text=True)
        self.echoes: list[tuple[float, float]] = []   # (received, sent)
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                sent = float(line)
            except ValueError:
                continue
            with self.cond:
                self.echoes.append((time.time(), sent))
                self.cond.notify_all()

    def first_echo_after(self, t0: float, timeout: float = 5.0) -> float:
        """Seconds from t0 to the send time of the first probe that came back."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                hit = next((s for _, s in reversed(self.echoes) if s > t0), None)
                if hit is not None:
                    first = min(s for _, s in self.echoes if s > t0)
                    return first - t0
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("the verdict did not change to pass")
                self.cond.wait(left)

    def last_echo_after(self, t0: float, quiet: float = 0.3, timeout: float = 5.0) -> float:
        """Seconds from t0 to the send time of the last probe that came back,
        once none has come back for `quiet` s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            time.sleep(quiet / 3)
            with self.cond:
                last_recv = self.echoes[-1][0] if self.echoes else 0
                if time.time() - last_recv >= quiet:
                    after = [s for _, s in self.echoes if s > t0]
                    return (max(after) - t0) if after else 0.0
        raise TimeoutError("the verdict did not change to drop")

    def stop(self):
        stop_pid(self.proc.pid)
        self.proc.wait()


def start_in(vm, script, *args) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", vm.ns, sys.executable, "-c", script,
                             *map(str, args)], stdout=subprocess.PIPE, text=True)
    vm.testbed._undo.append(lambda: (stop_pid(proc.pid), proc.wait()))
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("helper did not start")
    return proc


class Bed:
    """A database with the scenario, an OVS with its local ports as internal
    ports, the two probe VMs, and the agent."""

    def __init__(self, data: dict, with_probes: bool = True):
        self.data = data
        self.state = Path(tempfile.mkdtemp(prefix="sgb", dir="/tmp"))
        self.member = server.Member(self.state)
        server.start(self.member)
        self.db = self.member.local_remote
        self.vlan = int(data.get("network", {}).get("local_vlan", 0))
        import yaml
        desired = yaml.safe_load(bench_db.scenario_to_yaml(data, remote_ports=True))
        if with_probes:
            desired["groups"]["probe-dst"] = {"rules": [
                {"direction": "egress"},
                {"direction": "ingress", "protocol": "tcp", "dst_port": 5201},
                {"direction": "ingress", "protocol": "tcp", "dst_port": CONN_PORT},
                {"direction": "ingress", "protocol": "udp", "dst_port": PORTADD_PORT},
                {"direction": "ingress", "protocol": "udp", "dst_port": MEMBER_PORT,
                 "remote_group": "probe-rg"}]}
            desired["groups"]["probe-rg"] = {"rules": [{"direction": "egress"}]}
            # SRC: no `groups` key, so `default` (`groups: []` would be none at all)
            for p, groups in ((SRC, None), (DST, ["probe-dst"])):
                desired["ports"][p["name"]] = {"mac": p["mac"], "ips": [p["ip"]],
                                               "network": self.vlan,
                                               **({"groups": groups} if groups else {})}
        path = self.state / "scenario.yaml"
        path.write_text(yaml.safe_dump(desired, sort_keys=False))
        elapsed, _ = bench_db.cli(self.db, "apply", str(path))
        self.tb = OvsTestbed().start()
        names = [p["name"] or p["id"] for p in data["ports"]]
        for i in range(0, len(names), 100):
            args = []
            for name in names[i:i + 100]:
                dev = f"i{name[-11:]}"
                args += ["--", "add-port", self.tb.bridge, dev, "--", "set", "Interface", dev,
                         "type=internal", f"external_ids:iface-id={name}"]
            self.tb.vsctl(*args[1:])
        self.host = Hypervisor(self.tb, self.db, "bench-host")
        self.vms = {}
        if with_probes:
            for key, p in (("src", SRC), ("dst", DST)):
                self.vms[key] = self.tb.add_vm(key, p["mac"], [p["ip"]],
                                               external_ids={"iface-id": p["name"]})
        self.api = sg_api.connect(self.db)

    def start_agent(self, *extra):
        self.host.start_agent(True, *extra)
        eventually(lambda: all(p["state"] == "enforced"
                               for p in self.host.status().get("ports", [])) and
                   len(self.host.status().get("ports", [])) >= len(self.data["ports"]), 60,
                   what="every port enforced")

    def close(self):
        try:
            self.api.close()
        finally:
            self.tb.close()
            server.stop(self.member)
            import shutil
            shutil.rmtree(self.state, ignore_errors=True)


def convergence(bed: Bed, trials: int) -> None:
    src, dst = bed.vms["src"], bed.vms["dst"]
    api = bed.api
    for port in (RULE_PORT, MEMBER_PORT, PORTADD_PORT):
        start_in(dst, UDP_ECHO, port)

    # rule add / rule delete (delete cuts the probe's established UDP flow)
    prober = Prober(src, DST["ip"], RULE_PORT)
    adds, deletes = [], []
    try:
        time.sleep(0.3)
        for _ in range(trials):
            t0 = time.time()
            rid = api.run(api.rule_create("probe-dst", {
                "direction": "ingress", "protocol": "udp", "dst_port": RULE_PORT,
                "remote_ip": f"{SRC['ip']}/32"}))
            adds.append(prober.first_echo_after(t0))
            time.sleep(0.05)
            t0 = time.time()
            api.run(api.rule_delete([rid]))
            deletes.append(prober.last_echo_after(t0))
    finally:
        prober.stop()
    summary("rule_add", adds, target_p50_ms=50, target_p99_ms=200)
    summary("rule_delete_cut", deletes, target_max_ms=1000)

    # remote member add / delete: src joins the remote group of dst's rule
    prober = Prober(src, DST["ip"], MEMBER_PORT)
    adds, deletes = [], []
    try:
        time.sleep(0.3)
        for _ in range(trials):
            t0 = time.time()
            api.run(api.port_set(SRC["name"], {"groups": ["probe-rg"]}))
            adds.append(prober.first_echo_after(t0))
            time.sleep(0.05)
            t0 = time.time()
            api.run(api.port_set(SRC["name"], {"no_groups": True}))
            deletes.append(prober.last_echo_after(t0))
    finally:
        prober.stop()
    summary("remote_member_add", adds)
    summary("remote_member_delete_cut", deletes, target_max_ms=1000)

    # port add: dst's row deleted (fail-closed), then created again
    prober = Prober(src, DST["ip"], PORTADD_PORT)
    adds = []
    fields = {"name": DST["name"], "mac": DST["mac"], "ips": [DST["ip"]],
              "groups": ["probe-dst"], "network": bed.vlan}
    try:
        time.sleep(0.3)
        for _ in range(trials):
            t0 = time.time()
            api.run(api.port_delete([DST["name"]]))
            prober.last_echo_after(t0)
            t0 = time.time()
            api.run(api.port_create(fields))
            adds.append(prober.first_echo_after(t0))
    finally:
        prober.stop()
    summary("port_add", adds)


def restart_flow_mods(bed: Bed) -> None:
    bed.host.stop_agent()
    start = time.monotonic()
    bed.host.start_agent()
    status = bed.host.wait_synced()
    emit(bench="agent.restart", flow_mods=status["first_sync_flow_mods"], target=0,
         flows=status["flows"], seconds_to_first_sync=round(time.monotonic() - start, 2))


def _iperf(src, dst_ip, seconds) -> float:
    out = src.exec("iperf3", "-c", dst_ip, "-t", str(seconds), "-J", timeout=seconds + 20)
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]


def _conn_rate(src, dst_ip, seconds) -> float:
    out = src.exec(sys.executable, "-c", CONNECT_LOOP, dst_ip, str(CONN_PORT), str(seconds),
                   timeout=seconds + 20)
    return float(out.stdout.split()[0])


def start_iperf_server(bed: Bed) -> None:
    dst, tb = bed.vms["dst"], bed.tb
    iperf = subprocess.Popen(["ip", "netns", "exec", dst.ns, "iperf3", "-s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tb._undo.append(lambda: (stop_pid(iperf.pid), iperf.wait()))
    time.sleep(0.5)


def throughput(bed: Bed, rounds: int, seconds: float) -> None:
    src, dst, tb = bed.vms["src"], bed.vms["dst"], bed.tb
    start_iperf_server(bed)
    start_in(dst, TCP_ACCEPT, CONN_PORT)
    results = {"pipeline": {"bps": [], "cps": []}, "normal": {"bps": [], "cps": []}}
    flows = len(tb.dump_flows())
    for _ in range(rounds):
        for mode in ("pipeline", "normal"):
            if mode == "normal":
                bed.host.stop_agent()
                tb.ofctl("del-flows", tb.bridge)
                tb.ofctl("add-flow", tb.bridge, "priority=0,actions=NORMAL")
            else:
                assert src.send("tcp", DST["ip"], CONN_PORT) or True
            tb.appctl("dpctl/flush-conntrack")
            results[mode]["bps"].append(_iperf(src, DST["ip"], seconds))
            results[mode]["cps"].append(_conn_rate(src, DST["ip"], seconds))
            if mode == "normal":
                tb.ofctl("del-flows", tb.bridge)
                bed.host.start_agent()
                bed.host.wait_enforced(dst)
    med = {m: {k: statistics.median(v) for k, v in r.items()} for m, r in results.items()}
    emit(bench="agent.tcp_throughput", pipeline_gbps=round(med["pipeline"]["bps"] / 1e9, 3),
         normal_gbps=round(med["normal"]["bps"] / 1e9, 3),
         ratio=round(med["pipeline"]["bps"] / med["normal"]["bps"], 3), target=0.90,
         rounds=rounds, seconds=seconds, pipeline_flows=flows,
         all_pipeline=[round(b / 1e9, 3) for b in results["pipeline"]["bps"]],
         all_normal=[round(b / 1e9, 3) for b in results["normal"]["bps"]])
    emit(bench="agent.tcp_connections_per_s", pipeline=round(med["pipeline"]["cps"]),
         normal=round(med["normal"]["cps"]),
         ratio=round(med["pipeline"]["cps"] / med["normal"]["cps"], 3), target=0.85,
         rounds=rounds, seconds=seconds)


def logging_throughput(bed: Bed, rounds: int, seconds: float) -> None:
    """iperf3 to the probe's receiver with its group logged (event all) and
    without, one after the other, in ABBA order (a drift of the shared machine
    cancels); the ratio is the geometric mean of the rounds' logged/unlogged.
    (Both at once, to two receivers, was tried: one TCP stream through a busy
    userspace switch can starve the other, single rounds ranged 0.05-5.7.)"""
    src, api = bed.vms["src"], bed.api
    base = bed.host.wait_synced()["flows"]
    bps: dict[str, list] = {"logged": [], "unlogged": []}
    events = 0

    def measure(mode):
        nonlocal events
        if mode == "logged":
            api.run(api.log_create({"name": "bench-log", "group": "probe-dst",
                                    "event": "all", "rate": 100}))
            eventually(lambda: bed.host.status()["flows"] > base, 10,
                       what="the logging flows")
            before = bed.host.status()["packet_log"]["events"]
        bed.tb.appctl("revalidator/wait")
        bps[mode].append(_iperf(src, DST["ip"], seconds))
        if mode == "logged":
            time.sleep(0.3)
            events += bed.host.status()["packet_log"]["events"] - before
            api.run(api.log_delete(["bench-log"]))
            eventually(lambda: bed.host.status()["flows"] == base, 10,
                       what="the flows of logging off")

    for i in range(rounds):
        for mode in (("unlogged", "logged") if i % 2 == 0 else ("logged", "unlogged")):
            measure(mode)
    ratios = [a / b for a, b in zip(bps["logged"], bps["unlogged"])]
    emit(bench="agent.logging", throughput_ratio=round(statistics.geometric_mean(ratios), 3),
         target=0.95, round_ratios=[round(r, 3) for r in ratios],
         logged_gbps=round(statistics.median(bps["logged"]) / 1e9, 3),
         unlogged_gbps=round(statistics.median(bps["unlogged"]) / 1e9, 3), rounds=rounds,
         seconds=seconds, accept_events=events)


def agent_rss(data: dict, audits: int = 5) -> None:
    bed = Bed(data, with_probes=False)
    try:
        start = time.monotonic()
        bed.start_agent("--audit-interval", "4")
        status = bed.host.status()
        pid = bed.host.proc.pid
        rss = int(next(line.split()[1] for line in open(f"/proc/{pid}/status")
                       if line.startswith("VmRSS:")))
        emit(bench="agent.rss", ports=len(data["ports"]), rss_mb=round(rss / 1024, 1),
             target_mb=150, flows=status["flows"],
             seconds_to_enforce_all=round(time.monotonic() - start, 2))
        seen: dict = {}

        rss_series: list = []

        def collect():
            last = bed.host.status()["audit"]["last"] or {}
            if last.get("why") == "periodic" and last["time"] not in seen:
                seen[last["time"]] = last
                with open(f"/proc/{pid}/status") as f:
                    rss_series.append(round(int(next(line.split()[1] for line in f
                                                     if line.startswith("VmRSS:"))) / 1024))
            return len(seen) >= audits
        eventually(collect, audits * 4 * 3 + 60, interval=0.5, what=f"{audits} audits")
        runs = list(seen.values())
        with open(f"/proc/{pid}/status") as f:
            rss_after = int(next(line.split()[1] for line in f if line.startswith("VmRSS:")))
        emit(bench="agent.audit", ports=len(data["ports"]), flows=status["flows"],
             audits=len(runs), repairs=sum(r["repairs"] for r in runs),
             rss_after_audits_mb=round(rss_after / 1024, 1), rss_after_each_mb=rss_series,
             **{f"{k}_p50": round(statistics.median(r[k] for r in runs), 3)
                for k in ("seconds", "cpu_seconds", "read_seconds")})
    finally:
        bed.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario-file", default=scenario.path("medium"))
    ap.add_argument("--large-scenario-file", default=scenario.path("large"),
                    help="for the RSS measurement (1,000 local ports)")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="few trials, short transfers, "
                    "no RSS run")
    ap.add_argument("--only", choices=("logging",), help="only this part (the others "
                    "are skipped)")
    ap.add_argument("--audit-cost-only", action="store_true",
                    help="only the 1,000-port run: RSS and the audit's cost")
    args = ap.parse_args()
    if args.audit_cost_only:
        agent_rss(scenario.load(args.large_scenario_file))
        return
    trials = 5 if args.quick else args.trials
    data = scenario.load(args.scenario_file)
    emit(bench="agent.setup", scenario=data.get("scenario", Path(args.scenario_file).stem),
         local_ports=len(data["ports"]), trials=trials)
    bed = Bed(data)
    try:
        bed.start_agent()
        if args.only is None:
            convergence(bed, trials)
            restart_flow_mods(bed)
            throughput(bed, 1 if args.quick else 5, 2 if args.quick else 3)
        else:
            start_iperf_server(bed)
        logging_throughput(bed, 6 if args.quick else 16, 2 if args.quick else 3)
    finally:
        bed.close()
    if not args.quick and args.only is None:
        agent_rss(scenario.load(args.large_scenario_file))


if __name__ == "__main__":
    main()
