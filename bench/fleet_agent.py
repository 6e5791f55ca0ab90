"""bench/fleet.py's agent rows: ONE real agent (`sg-ofctl agent`, a real
ovs-vswitchd with its 1,000 local ports as internal ports tagged with their
iface-id) against a database that grows while the host's share stays fixed.

The fleet model (docs/SCALE.md, "One agent"): tenants of 40 ports, each in 4
groups of 10 ports; group g's rules: egress anywhere, ingress tcp/22 from its
own group, tcp/80 from group g+1 of the tenant, tcp/443 from the tenant's
/16.  A tenant's ports are spread over 4 hosts (10 per host), and 100
tenants share the same 4 hosts, so every host has 1,000 ports of 100 tenants;
the measured host `hv-0` needs 100 tenants: 400 groups, 1,600 rules, 4,000
member ports, whatever the database holds (10k ports: 250 tenants, 200k:
5,000 tenants on 200 hosts).

The database is written with a few large OVSDB transactions over the
server's unix socket (seconds for 200k ports), not one CLI call per row.

Each row: {"bench": "fleet.agent", "db_ports", "local_ports", "rss_mb",
"first_sync_seconds", "first_sync_cpu_seconds", "unrelated_change_cpu_ms",
"local_rule_change_ms", "agent"}; `agent` is "this" or "before" (the tree of
--before, e.g. main's, run by the same harness).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sg_ofctl import model  # noqa: E402
from sg_ofctl.ovsdb import convert, server  # noqa: E402

from ovs_testbed import OvsTestbed, stop_pid  # noqa: E402
from polling import eventually  # noqa: E402

TENANT_PORTS, TENANT_GROUPS, TENANT_HOSTS, HOST_TENANTS = 40, 4, 4, 100
HOST = "hv-0"
SCHEMA = "SG_ofctl"
STAMP = "2026-01-01T00:00:00Z"


# ---- the fleet as OVSDB operations ---------------------------------------------------
def _set(values) -> list:
    return ["set", list(values)]


def _opt(value) -> list:
    return ["set", [] if value is None else [value]]


def _address(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def _mac(n: int) -> str:
    return f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"


def group_name(t: int, g: int) -> str:
    return f"t{t}-g{g}"


def port_name(t: int, i: int) -> str:
    return f"t{t}-p{i}"


def host_of(t: int, i: int) -> str:
    return f"hv-{(t // HOST_TENANTS) * TENANT_HOSTS + i % TENANT_HOSTS}"


def local_ports() -> list[str]:
    return [port_name(t, i) for t in range(HOST_TENANTS) for i in range(TENANT_PORTS)
            if host_of(t, i) == HOST]


def _rule_op(rule: model.Rule, group_ref: str, remote_ref: str | None) -> dict:
    cols = convert.rule_columns(rule)
    row = {**{k: v for k, v in cols.items() if not isinstance(v, list)},
           **{k: _opt(v[0] if v else None) for k, v in cols.items() if isinstance(v, list)},
           "security_group": ["named-uuid", group_ref],
           "remote_group": ["set", [["named-uuid", remote_ref]]] if remote_ref else _set([]),
           "created_at": STAMP}
    return {"op": "insert", "table": convert.RULE, "row": row}


def _group_ops(gid: str, name: str, rules, ref: str) -> list:
    ops = [{"op": "insert", "table": convert.GROUP, "uuid-name": ref, "row": {
        "id": gid, "name": name, "description": "", "stateful": True,
        "revision_number": 1, "created_at": STAMP, "updated_at": STAMP}}]
    return ops + list(rules)


def tenant_ops(t: int) -> list:
    refs = [f"g{t}_{g}" for g in range(TENANT_GROUPS)]
    ops = []
    for g in range(TENANT_GROUPS):
        gid = str(uuid.uuid5(uuid.NAMESPACE_DNS, group_name(t, g)))
        other = (g + 1) % TENANT_GROUPS
        other_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, group_name(t, other)))
        rules = [
            (model.Rule(id=f"{gid}-e", security_group_id=gid, direction="egress"), None),
            (model.Rule(id=f"{gid}-22", security_group_id=gid, direction="ingress",
                        protocol="tcp", port_range_min=22, port_range_max=22,
                        remote_group_id=gid), refs[g]),
            (model.Rule(id=f"{gid}-80", security_group_id=gid, direction="ingress",
                        protocol="tcp", port_range_min=80, port_range_max=80,
                        remote_group_id=other_id), refs[other]),
            (model.Rule(id=f"{gid}-443", security_group_id=gid, direction="ingress",
                        protocol="tcp", port_range_min=443, port_range_max=443,
                        remote_ip_prefix=f"10.{t % 200}.0.0/16"), None)]
        ops += _group_ops(gid, group_name(t, g), [], refs[g])
        ops += [_rule_op(r, refs[g], remote) for r, remote in rules]
    for i in range(TENANT_PORTS):
        n = t * TENANT_PORTS + i + 1
        name = port_name(t, i)
        ops.append({"op": "insert", "table": convert.PORT, "row": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "name": name, "mac": _mac(n),
            "fixed_ips": _set([_address(n)]), "allowed_address_pairs": _set([]),
            "port_security_enabled": True,
            "security_groups": _set([["named-uuid", refs[i * TENANT_GROUPS // TENANT_PORTS]]]),
            "network": 0, "revision_number": 1, "created_at": STAMP, "updated_at": STAMP}})
        ops.append({"op": "insert", "table": "Port_Binding",
                    "row": {"port": name, "host": host_of(t, i)}})
    return ops


def base_ops() -> list:
    template = model.default_group()
    ops = [{"op": "insert", "table": convert.GLOBAL, "row": {"revision": 1}}]
    ops += _group_ops(template.id, template.name, [], "gdefault")
    ops += [_rule_op(model.Rule(**{**{f: getattr(r, f) for f in (
        "direction", "ethertype", "remote_group_id")}, "id": str(uuid.uuid4()),
        "security_group_id": template.id}), "gdefault",
        "gdefault" if r.remote_group_id else None) for r in template.rules]
    return ops


class Rpc:
    """Raw JSON-RPC over the server's unix socket (the standard library's
    JSON: python-ovs's encoder would take minutes for 200k rows)."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.buf, self.id = "", 0
        self.decoder = json.JSONDecoder()

    def transact(self, ops: list) -> list:
        self.id += 1
        self.sock.sendall(json.dumps({"method": "transact", "params": [SCHEMA, *ops],
                                      "id": self.id}).encode())
        while True:
            try:
                msg, end = self.decoder.raw_decode(self.buf)
            except ValueError:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("ovsdb-server closed the connection") from None
                self.buf += chunk.decode()
                continue
            self.buf = self.buf[end:].lstrip()
            if msg.get("method") == "echo":
                self.sock.sendall(json.dumps({"result": msg["params"], "error": None,
                                              "id": msg["id"]}).encode())
            elif msg.get("id") == self.id:
                errors = [r for r in msg["result"] or [] if r and "error" in r]
                if msg.get("error") or errors:
                    raise RuntimeError(f"transact: {msg.get('error') or errors[:2]}")
                return msg["result"]

    def write(self, ops: list) -> list:
        """A write as the real clients make it: with the bump of Global.revision."""
        return self.transact(ops + [{"op": "mutate", "table": convert.GLOBAL, "where": [],
                                     "mutations": [["revision", "+=", 1]]}])

    def close(self):
        self.sock.close()


def fill(member: server.Member, db_ports: int) -> float:
    """The fleet of `db_ports` ports into the running server; seconds taken."""
    start = time.monotonic()
    rpc = Rpc(member.sock)
    try:
        rpc.transact(base_ops())
        tenants = db_ports // TENANT_PORTS
        batch = 250
        for first in range(0, tenants, batch):
            rpc.transact([op for t in range(first, min(tenants, first + batch))
                          for op in tenant_ops(t)])
    finally:
        rpc.close()
    return time.monotonic() - start


# ---- the agent -----------------------------------------------------------------------
def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Host:
    """The measured hypervisor: one ovs-vswitchd with the local ports, kept
    across database sizes (its flows are deleted between runs)."""

    def __init__(self):
        self.tb = OvsTestbed().start()
        names = local_ports()
        for i in range(0, len(names), 100):
            args = []
            for n, name in enumerate(names[i:i + 100], start=i):
                dev = f"l{n}"
                args += ["--", "add-port", self.tb.bridge, dev, "--", "set", "Interface", dev,
                         "type=internal", f"external_ids:iface-id={name}"]
            self.tb.vsctl(*args[1:])
        self.proc = None
        self.status_file = self.tb.dir / f"agent-{self.tb.bridge}.json"

    def start_agent(self, db: str, tree: Path) -> float:
        self.tb.ofctl("del-flows", self.tb.bridge)
        if self.status_file.exists():
            self.status_file.unlink()
        log = open(self.tb.dir / "agent.log", "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.tb.ns, sys.executable, "-m", "sg_ofctl.cli",
             "--db", db, "--timeout", "120", "agent", "--bridge", self.tb.bridge,
             "--ovs-db", self.tb.db,
             "--listen", "127.0.0.1:6653", "--host", HOST, "--run-dir", str(self.tb.dir),
             "--switch-pki-dir", str(self.tb.dir / "pki"), "--audit-interval", "0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(tree),
            env={**self.tb.env, "PYTHONPATH": str(tree)})
        log.close()
        return started

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def stop_agent(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=20)
        self.proc = None

    def close(self) -> None:
        self.stop_agent()
        self.tb.close()


def _enforced(host: Host, count: int):
    if host.proc.poll() is not None:
        raise AssertionError("the agent exited:\n" + host.tb.log_tail("agent.log", 30))
    status = host.status()
    ports = status.get("ports") or []
    return status if len(ports) >= count and all(p["state"] == "enforced" for p in ports) \
        else None


def _round_after(host: Host, bundles: int, timeout: float = 30.0) -> float:
    """Wait for the status of a round that sent a bundle after `bundles`."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            mtime = host.status_file.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != seen:
            seen = mtime
            if host.status().get("bundles", 0) > bundles:
                return time.monotonic()
        time.sleep(0.001)
    raise AssertionError("no bundle after the rule change")


def _unrelated_ops(db_ports: int, k: int) -> list:
    """A change elsewhere in the fleet: a port of a tenant hv-0 does not host
    gets a new address, and another host binds a port of its own."""
    tenants = db_ports // TENANT_PORTS
    t = HOST_TENANTS + k % max(1, tenants - HOST_TENANTS)
    i = k % TENANT_PORTS
    n = 1 << 20 | k
    return [{"op": "update", "table": convert.PORT, "where": [["name", "==", port_name(t, i)]],
             "row": {"fixed_ips": _set([_address(n)])}},
            {"op": "insert", "table": "Port_Binding",
             "row": {"port": port_name(t, (i + 1) % TENANT_PORTS), "host": f"hv-x{k}"}}]


def measure(host: Host, db_ports: int, tree: Path, label: str, changes: int = 100,
            rule_changes: int = 5, sync_timeout: float = 900.0) -> dict:
    state = Path(tempfile.mkdtemp(prefix="sgf", dir="/tmp"))
    member = server.Member(state)
    try:
        server.start(member)
        fill_seconds = fill(member, db_ports)
        locals_ = local_ports()
        started = host.start_agent(member.local_remote, tree)
        pid = host.proc.pid
        eventually(lambda: _enforced(host, len(locals_)), sync_timeout, 0.05,
                   f"{len(locals_)} ports enforced ({label}, {db_ports} ports)")
        first_sync = time.monotonic() - started
        cpu_sync = _cpu(pid)
        time.sleep(2.0)
        rss = _rss_mb(pid)
        rpc = Rpc(member.sock)
        try:
            # Idle baseline (health probes, status rewrites), then the same
            # time with unrelated changes: the difference per change.
            window = 10.0
            cpu0 = _cpu(pid)
            time.sleep(window)
            idle = _cpu(pid) - cpu0
            cpu0, t0 = _cpu(pid), time.monotonic()
            for k in range(changes):
                rpc.write(_unrelated_ops(db_ports, k))
                time.sleep(max(0.0, t0 + window * (k + 1) / changes - time.monotonic()))
            busy = _cpu(pid) - cpu0
            unrelated_ms = max(0.0, busy - idle) / changes * 1000
            latencies = []
            for k in range(rule_changes):
                bundles = host.status().get("bundles", 0)
                gid = str(uuid.uuid5(uuid.NAMESPACE_DNS, group_name(k, 0)))
                rule = model.Rule(id=f"bench-{k}", security_group_id=gid, direction="ingress",
                                  protocol="tcp", port_range_min=9000 + k,
                                  port_range_max=9000 + k, remote_group_id=gid)
                op = _rule_op(rule, "", None)
                op["row"]["security_group"] = ["uuid", _group_uuid(rpc, group_name(k, 0))]
                op["row"]["remote_group"] = op["row"]["security_group"]
                t0 = time.monotonic()
                rpc.write([op])
                latencies.append((_round_after(host, bundles) - t0) * 1000)
                time.sleep(0.3)
        finally:
            rpc.close()
        return {"bench": "fleet.agent", "db_ports": db_ports, "local_ports": len(locals_),
                "rss_mb": rss, "first_sync_seconds": round(first_sync, 2),
                "first_sync_cpu_seconds": round(cpu_sync, 2),
                "unrelated_change_cpu_ms": round(unrelated_ms, 3),
                "local_rule_change_ms": round(statistics.median(latencies), 1),
                "agent": label, "fill_seconds": round(fill_seconds, 1)}
    except Exception:
        if member.log.exists():      # why the server went away, if it did
            print("".join(member.log.read_text().splitlines(True)[-15:]), file=sys.stderr)
        raise
    finally:
        host.stop_agent()
        server.stop(member)
        shutil.rmtree(state, ignore_errors=True)


def _group_uuid(rpc: Rpc, name: str) -> str:
    rows = rpc.transact([{"op": "select", "table": convert.GROUP,
                          "where": [["name", "==", name]], "columns": ["_uuid"]}])[0]["rows"]
    return rows[0]["_uuid"][1]


def export_tree(ref: str) -> Path:
    """`git archive` of ref's sg_ofctl into a temporary directory."""
    out = Path(tempfile.mkdtemp(prefix="sgf-before-", dir="/tmp"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "sg_ofctl"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def run(sizes, before: str | None, before_sizes, emit) -> None:
    host = Host()
    try:
        # A hypervisor's one-time set-up (the agent's switch CA, the bridge's
        # first TLS session, ovs-vswitchd's first flows) is paid by a warm-up
        # run, not by the first measured size: every row is an agent restart.
        measure(host, min(sizes), ROOT, "warm-up")
        for size in sizes:
            emit(measure(host, size, ROOT, "this"))
        if before:
            tree = export_tree(before)
            try:
                for size in before_sizes:
                    emit(measure(host, size, tree, f"before ({before})"))
            finally:
                shutil.rmtree(tree, ignore_errors=True)
    finally:
        host.close()
