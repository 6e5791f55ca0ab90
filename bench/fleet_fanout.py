"""The fleet side of bench/fleet.py: `fleet.fanout` and `fleet.failover` rows.

A 3-member Raft cluster (plain TCP on 127.0.0.1, private state directories)
with 0, 1 or 2 relays (`db start --relay-of`) in front; N simulated hosts
(bench/fleet_hosts.py: the agent's real database client with its real monitor
conditions, no OVS) spread over a few processes, each host with its own ports,
bound to it.  Host h's ports belong to group `g{h // hosts_per_group}`, whose
rule admits its own members (a remote group), so every host needs the
addresses of the other ports of its group and nothing else.  Hosts connect to
the relays (round robin), or to the members without relays.

fleet.fanout: rules are committed one at a time to groups in turn; for each
commit, the time from just before the commit is sent until the last host
holding that group has the rule in its snapshot (p50, p99 over the commits);
the leader's CPU (/proc/PID/task/*/schedstat) and the bytes all hosts received,
per commit (and the relays' CPU, all of them together).

fleet.failover: the leader is SIGKILLed; first_write_seconds = from the new
leader's election (its log) until a leader-only client's write succeeds;
then a rule is committed; reconnect_seconds = from the kill until every host
is monitoring again and every host of that group has the rule;
reconnect_bytes = what all hosts received meanwhile; full_downloads = hosts
that downloaded their whole view again (python-ovs emptied its replica).
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parent), str(HERE)) if p not in sys.path]

import fleet_hosts  # noqa: E402

from sg_ofctl import model  # noqa: E402
from sg_ofctl.ovsdb import api, convert, server  # noqa: E402

ELECTED = re.compile(r"^(\S+)\|\d+\|raft\|INFO\|term (\d+): elected leader")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """Three members and `relays` relays, each in its own directory, stopped by pid."""

    def __init__(self, relays: int):
        self.base = Path(tempfile.mkdtemp(prefix="sgfleet8b", dir="/tmp"))
        self.members = [server.Member(self.base / f"m{i}") for i in range(3)]
        self.relays = [server.Member(self.base / f"r{i}") for i in range(relays)]
        self.ports = [free_port() for _ in range(3)]
        self.relay_ports = [free_port() for _ in range(relays)]

    @property
    def remotes(self) -> str:
        return ",".join(f"tcp:127.0.0.1:{p}" for p in self.ports)

    def relay_remote(self, i: int) -> str:
        return f"tcp:127.0.0.1:{self.relay_ports[i]}"

    def start(self) -> None:
        raft = [f"tcp:127.0.0.1:{free_port()}" for _ in range(3)]
        for i, member in enumerate(self.members):
            server.start(member, listen=[f"tcp:127.0.0.1:{self.ports[i]}"],
                         cluster_address=raft[i], join=[raft[0]] if i else None,
                         allow_plain_tcp=True)
        self.wait(lambda: all(server.status(m).get("cluster_status") == "cluster member"
                              for m in self.members), "members joined")
        with api.connect(self.remotes, timeout=30):
            pass                                  # the first client initialises it
        for i, relay in enumerate(self.relays):
            server.start(relay, listen=[f"tcp:127.0.0.1:{self.relay_ports[i]}"],
                         relay_of=self.remotes, allow_plain_tcp=True)

    def leader(self) -> int | None:
        for i, member in enumerate(self.members):
            if member.pid() and server.status(member).get("cluster_role") == "leader":
                return i
        return None

    @staticmethod
    def wait(predicate, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def stop(self) -> None:
        for member in self.relays + self.members:
            server.stop(member)
        shutil.rmtree(self.base, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` (schedstat: nanoseconds, not 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def populate(sock: Path, hosts: int, ports_per_host: int, hosts_per_group: int) -> dict:
    """Groups, rules, ports and bindings, written in large transactions."""
    groups = (hosts + hosts_per_group - 1) // hosts_per_group
    ops: list = []
    for g in range(groups):
        ops.append({"op": "insert", "table": "Security_Group", "uuid-name": f"g{g}",
                    "row": {"id": f"g{g}", "name": f"g{g}", "stateful": True}})
        rule = model.Rule(id=f"g{g}-members", protocol="tcp", port_range_min=1,
                          port_range_max=1, remote_group_id=f"g{g}")
        row = convert.rule_columns(rule)
        ops.append({"op": "insert", "table": "Security_Group_Rule", "row": {
            **{k: v if not isinstance(v, list) else ["set", v] for k, v in row.items()},
            "security_group": ["named-uuid", f"g{g}"],
            "remote_group": ["named-uuid", f"g{g}"]}})
    layout: dict = {"ports": {}, "groups": {}}
    n = 0
    for h in range(hosts):
        name, group = f"host{h:05d}", f"g{h // hosts_per_group}"
        layout["ports"][name], layout["groups"][name] = [], [group]
        for p in range(ports_per_host):
            port = f"h{h:05d}p{p:03d}"
            layout["ports"][name].append(port)
            ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            mac = f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
            ops.append({"op": "insert", "table": "Port", "row": {
                "id": port, "name": port, "mac": mac, "fixed_ips": ip,
                "port_security_enabled": True, "network": 1,
                "security_groups": ["set", [["named-uuid", group]]]}})
            ops.append({"op": "insert", "table": "Port_Binding",
                        "row": {"port": port, "host": name}})
            n += 1
    raw_transact(sock, ops)
    return layout


def raw_transact(sock_path: Path, ops: list, timeout: float = 300) -> None:
    """One JSON-RPC transact over a member's unix socket (groups are referenced
    by named-uuid, so the population is one transaction)."""
    request = json.dumps({"method": "transact", "params": ["SG_ofctl", *ops], "id": 1})
    decoder, text = json.JSONDecoder(), ""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(request.encode())
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise RuntimeError("the database closed the connection")
            text += chunk.decode()
            try:
                reply, _ = decoder.raw_decode(text)
            except ValueError:
                continue
            if reply.get("id") == 1:
                break
            text = ""                       # an echo or notification: skip it
    errors = [r for r in reply.get("result") or () if isinstance(r, dict) and "error" in r]
    if reply.get("error") or errors:
        raise RuntimeError(f"population failed: {reply.get('error') or errors[:2]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def election_time(member, after_term: int) -> float | None:
    for line in reversed(member.log.read_text().splitlines()):
        match = ELECTED.match(line)
        if match and int(match.group(2)) > after_term:
            stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


class Hosts:
    """The simulated hosts, in `processes` child processes."""

    def __init__(self, fleet: Fleet, layout: dict, processes: int):
        names = sorted(layout["ports"])
        remotes = [fleet.relay_remote(i) for i in range(len(fleet.relays))] or [fleet.remotes]
        ctx = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for w in range(processes):
            mine = names[w::processes]
            if not mine:
                continue
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=fleet_hosts.serve, daemon=True, args=(
                child, {n: remotes[names.index(n) % len(remotes)] for n in mine},
                {n: layout["ports"][n] for n in mine}, {n: layout["groups"][n] for n in mine}))
            proc.start()
            child.close()                 # a dead child then reads as EOFError here
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            status = pipe.recv()
            if status[0] != "ready":
                raise RuntimeError(f"a host process failed: {status[1]}")

    def ask(self, *message) -> list:
        for pipe in self.pipes:
            pipe.send(message)
        return [pipe.recv() for pipe in self.pipes]

    def stats(self) -> dict:
        out: dict = {}
        for part in self.ask("stats"):
            for key, value in part.items():
                out[key] = out.get(key, 0) + value
        return out

    def seen(self, key) -> list[float]:
        return [t for part in self.ask("seen") for t in part.get(key, ())]

    def stop(self) -> None:
        try:
            self.ask("stop")
        finally:
            for proc in self.procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()


def _numbers(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers, comma-separated") \
            from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers >= 0")
    return values


def add_arguments(parser) -> None:
    """bench/fleet.py's options for the fanout and failover rows."""
    group = parser.add_argument_group("fanout and failover")
    group.add_argument("--hosts", type=_numbers, default=[100, 500, 1000],
                       help="simulated hosts per configuration (default 100,500,1000)")
    group.add_argument("--relays", type=_numbers, default=[0, 1, 2],
                       help="relays in front of the cluster (default 0,1,2)")
    group.add_argument("--commits", type=int, default=20, help="rule commits measured")
    group.add_argument("--ports-per-host", type=int, default=4)
    group.add_argument("--hosts-per-group", type=int, default=10)
    group.add_argument("--processes", type=int, default=4,
                       help="processes holding the simulated hosts")


def run_all(args, emit) -> None:
    for hosts in args.hosts:
        for relays in args.relays:
            run(hosts, relays, commits=args.commits, ports_per_host=args.ports_per_host,
                hosts_per_group=args.hosts_per_group, processes=args.processes, emit=emit)


def run(hosts: int, relays: int, commits: int = 20, ports_per_host: int = 4,
        hosts_per_group: int = 10, processes: int = 4, emit=print) -> None:
    """One configuration: emits a fleet.fanout and a fleet.failover row."""
    fleet = Fleet(relays)
    swarm = None
    try:
        fleet.start()
        layout = populate(fleet.members[0].sock, hosts, ports_per_host, hosts_per_group)
        groups_of = {}
        for groups in layout["groups"].values():
            for g in groups:
                groups_of[g] = groups_of.get(g, 0) + 1
        started = time.monotonic()
        swarm = Hosts(fleet, layout, processes)
        connect_seconds = time.monotonic() - started
        with api.connect(fleet.remotes, tables=(), timeout=60) as admin:
            latencies = _fanout(fleet, swarm, admin, groups_of, commits, emit, hosts, relays,
                                connect_seconds)
            _failover(fleet, swarm, admin, groups_of, hosts, relays, emit, latencies)
    finally:
        if swarm is not None:
            swarm.stop()
        fleet.stop()


def _commit_and_wait(fleet, swarm, admin, group: str, dst_port: int, count: int) -> float:
    swarm.ask("expect", group, dst_port)
    sent = time.time()
    admin.run(admin.rule_create(group, {"protocol": "tcp", "dst_port": dst_port}))
    Fleet.wait(lambda: len(swarm.seen((group, dst_port))) >= count,
               f"{count} hosts to see rule {dst_port} of {group}", timeout=120)
    return max(swarm.seen((group, dst_port))) - sent


def _fanout(fleet, swarm, admin, groups_of, commits, emit, hosts, relays, connect_seconds):
    leader = fleet.leader()
    pid = fleet.members[leader].pid()
    groups = sorted(groups_of)
    relay_pids = [r.pid() for r in fleet.relays]
    bytes_before, cpu_before = swarm.stats()["bytes"], cpu_seconds(pid)
    relay_before = sum(cpu_seconds(p) for p in relay_pids)
    latencies = []
    for i in range(commits):
        group = groups[i % len(groups)]
        latencies.append(_commit_and_wait(fleet, swarm, admin, group, 1000 + i,
                                          groups_of[group]))
    cpu = cpu_seconds(pid) - cpu_before
    relay_cpu = sum(cpu_seconds(p) for p in relay_pids) - relay_before
    received = swarm.stats()["bytes"] - bytes_before
    emit({"bench": "fleet.fanout", "hosts": hosts, "relays": relays,
          "p50_ms": round(statistics.median(latencies) * 1000, 1),
          "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
          "leader_cpu_ms_per_commit": round(cpu * 1000 / commits, 2),
          "bytes_per_commit": round(received / commits),
          "relay_cpu_ms_per_commit": round(relay_cpu * 1000 / commits, 2),
          "commits": commits, "hosts_per_commit": groups_of[groups[0]],
          "connect_seconds": round(connect_seconds, 1),
          "conditional_monitoring": fleet_hosts.CONDITIONAL})
    return latencies


def _failover(fleet, swarm, admin, groups_of, hosts, relays, emit, latencies) -> None:
    leader = fleet.leader()
    old_term = int(server.status(fleet.members[leader])["cluster_term"])
    group = sorted(groups_of)[0]
    bytes_before = swarm.stats()["bytes"]
    swarm.ask("expect", group, 2000)
    killed = time.time()
    os.kill(fleet.members[leader].pid(), signal.SIGKILL)
    admin.run(admin.rule_create(group, {"protocol": "tcp", "dst_port": 2000}))
    written = time.time()
    survivors = [m for i, m in enumerate(fleet.members) if i != leader]
    Fleet.wait(lambda: any(election_time(m, old_term) for m in survivors), "the election")
    elected = min(t for t in (election_time(m, old_term) for m in survivors) if t)

    def caught_up():
        stats = swarm.stats()
        return stats["monitoring"] == hosts and \
            len(swarm.seen((group, 2000))) >= groups_of[group]
    Fleet.wait(caught_up, "every host monitoring again with the write", timeout=300)
    done = time.time()
    stats = swarm.stats()
    emit({"bench": "fleet.failover", "hosts": hosts, "relays": relays,
          "first_write_seconds": round(written - elected, 2),
          "full_downloads": stats["hosts_downloading_again"],
          "reconnect_seconds": round(done - killed, 2),
          "reconnect_bytes": stats["bytes"] - bytes_before,
          "election_seconds": round(elected - killed, 2)})
