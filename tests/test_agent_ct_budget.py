"""Conntrack is a budget per VM (issue 10): each local port has its own zone
(its ofport) with a zone limit (`--conntrack-limit-per-port`), so one VM's SYN
flood fills its own zone and not the host's table, while the other VMs keep
opening connections.  Refused SYNs leave no entry anywhere.  When the port
leaves, its zone is flushed and its limit removed; an ovs-vswitchd restart
gets the limits back."""
import re
import subprocess
import sys
import time

import pytest

from agent_testbed import Hypervisor, eventually
from ovs_testbed import OvsTestbed, stop_pid
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root

LIMIT, TABLE = 300, 2000        # per port; the whole datapath (dpctl/ct-set-maxconns)
NET = "10.0.31"
MAC = {"f": "fa:16:3e:00:1f:01", "b": "fa:16:3e:00:1f:02", "c": "fa:16:3e:00:1f:03",
       "x": "fa:16:3e:00:1f:04"}
IP = {"f": f"{NET}.1", "b": f"{NET}.2", "c": f"{NET}.3", "x": f"{NET}.4"}
SERVICE, OUTSIDE, REFUSED = 5001, 5002, 9

# Raw SYNs from the flooder's own MAC and IP (anti-spoofing lets them out), each
# a new connection: to unanswered addresses beyond the uplink (allowed by its
# egress rule), and to B and C on a port their ingress rules refuse.
FLOOD = r"""
import socket, struct, sys, time
src_mac, src_ip, uplink_mac = sys.argv[1], sys.argv[2], sys.argv[3]
refused = [(mac, ip) for mac, ip in zip(sys.argv[4::2], sys.argv[5::2])]
count, seconds, refused_port = int(sys.argv[-3]), float(sys.argv[-2]), int(sys.argv[-1])
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
def syn(dst_mac, dst_ip, sport, dport):
    s, d = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(s + d + struct.pack("!BBH", 0, 6, 20) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + ip + tcp
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind(("eth0", 0))
start = time.monotonic()
for i in range(count):
    if i % 4 == 3:        # one in four to a refused port of B or C
        mac, ip = refused[i % len(refused)]
        frame = syn(mac, ip, 20000 + i % 40000, refused_port)
    else:                 # three in four out through the uplink, allowed
        frame = syn(uplink_mac, f"10.77.{i // 250 % 250}.{i % 250 + 1}", 20000 + i % 40000, 80)
    sock.send(frame)
    pause = start + seconds * (i + 1) / count - time.monotonic()
    if pause > 0:
        time.sleep(pause)
print(count)
"""

# Sequential TCP connections (connect, echo, close); prints "ok/total".
CLIENT = r"""
import socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
for i in range(n):
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.sendall(b"hello")
            ok += s.recv(16) == b"hello"
    except OSError:
        pass
    time.sleep(0.05)
print(f"{ok}/{n}")
"""


def zone_of(entry: str) -> int:
    """The zone of a `dpctl/dump-conntrack` line (absent: zone 0)."""
    found = re.search(r"\bzone=(\d+)", entry)
    return int(found.group(1)) if found else 0


def zone_entries(tb, zone: int) -> list[str]:
    return [e for e in tb.conntrack() if zone_of(e) == zone]


def zone_limits(tb) -> dict[int, tuple[int, int]]:
    out = {}
    for line in tb.appctl("dpctl/ct-get-limits").splitlines():
        fields = dict(f.split("=", 1) for f in line.split(",") if "=" in f)
        if "zone" in fields:
            out[int(fields["zone"])] = (int(fields["limit"]), int(fields["count"]))
    return out


def test_a_flooding_vm_fills_only_its_own_zone():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-budget")
        h.cli("group", "create", "servers")
        h.cli("rule", "create", "servers", "--ingress", "--protocol", "tcp",
              "--dst-port", str(SERVICE), "--remote-ip", f"{NET}.0/24")
        h.cli("group", "create", "flooder")     # egress anything (its default rules)
        for rid in h.cli("rule", "list", "flooder", "-f", "value", "-c", "id").split():
            h.cli("rule", "delete", rid)
        h.cli("rule", "create", "flooder", "--egress")
        h.cli("port", "create", "pf", "--mac", MAC["f"], "--ip", IP["f"], "--group", "flooder")
        for n in "bc":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n],
                  "--group", "servers")
        tb.appctl("dpctl/ct-set-maxconns", str(TABLE))
        h.start_agent(True, "--conntrack-limit-per-port", str(LIMIT))
        vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
               for n in "fbc"}
        x = tb.add_vm("x", MAC["x"], [IP["x"]])           # no iface-id: behind an uplink
        for vm in vms.values():
            h.wait_enforced(vm)
        f, b, c = vms["f"], vms["b"], vms["c"]
        for vm in (b, c):
            vm.serve("tcp", SERVICE)
        x.serve("tcp", OUTSIDE)
        # Every filtered port's zone (its ofport) has the limit.
        eventually(lambda: all(zone_limits(tb).get(vm.ofport, (0,))[0] == LIMIT
                               for vm in vms.values()), 10, what="zone limits set")
        eventually(lambda: h.status().get("conntrack") == {
            "limit_per_port": LIMIT, "zones_limited": 3, "error": None}, 10,
            what="the status shows the limits")
        assert b.session(c.ip, SERVICE).connected and c.session(x.ip, OUTSIDE).connected
        assert x.session(b.ip, SERVICE).connected
        assert not x.send("tcp", c.ip, REFUSED, timeout=0.3)   # refused at C's ingress
        assert not b.send("tcp", c.ip, REFUSED, timeout=0.3)
        entries = tb.conntrack()
        # B -> C is in B's zone and in C's; C -> X (out an uplink) in C's only;
        # X -> B (in from the uplink) in B's only; the refused SYNs nowhere.
        def orig(src, dst):
            return {zone_of(e) for e in entries if f"orig=(src={src},dst={dst}," in e}
        assert (orig(b.ip, c.ip), orig(c.ip, x.ip), orig(x.ip, b.ip)) == \
            ({b.ofport, c.ofport}, {c.ofport}, {b.ofport})
        assert {zone_of(e) for e in entries} <= {b.ofport, c.ofport}, entries
        assert not [e for e in entries if f"dport={REFUSED}," in e], entries

        flood = subprocess.Popen(
            ["ip", "netns", "exec", f.ns, sys.executable, "-c", FLOOD, MAC["f"], IP["f"],
             MAC["x"], MAC["b"], IP["b"], MAC["c"], IP["c"], "8000", "8", str(REFUSED)],
            stdout=subprocess.PIPE, text=True)
        tb._undo.append(lambda: (flood.poll() is None and stop_pid(flood.pid), flood.wait()))
        time.sleep(1.5)         # the flooder's zone is full by now
        clients = [subprocess.Popen(["ip", "netns", "exec", src.ns, sys.executable, "-c",
                                     CLIENT, ip, str(port), "40"],
                                    stdout=subprocess.PIPE, text=True)
                   for src, ip, port in ((b, c.ip, SERVICE), (c, b.ip, SERVICE),
                                         (b, x.ip, OUTSIDE), (c, x.ip, OUTSIDE))]
        results = [p.communicate(timeout=60)[0].strip() for p in clients]
        in_zone = len(zone_entries(tb, f.ofport))
        assert flood.communicate(timeout=60)[0].strip() == "8000"
        ok = sum(int(r.split("/")[0]) for r in results)
        assert ok >= 0.95 * 160, f"the other VMs' connections during the flood: {results}"
        print(f"others: {results}; flooder's zone: {in_zone} entries")
        limit, count = zone_limits(tb)[f.ofport]
        assert (limit, in_zone <= LIMIT, count <= LIMIT) == (LIMIT, True, True), \
            f"flooder's zone: {in_zone} entries, limit {limit}, count {count}"
        assert in_zone >= LIMIT * 0.9, f"the flood filled only {in_zone} of {LIMIT}"
        assert len(tb.conntrack()) < TABLE          # the table itself never filled
        refused = [e for e in tb.conntrack() if f"dport={REFUSED}," in e]
        assert refused == [], f"{len(refused)} refused SYN(s) in conntrack: {refused[:3]}"

        # The port leaves: its zone is flushed and its limit removed.
        tb.vsctl("del-port", tb.bridge, "vm-f")
        eventually(lambda: f.ofport not in zone_limits(tb), 10, what="limit removed")
        assert zone_entries(tb, f.ofport) == []
        # ovs-vswitchd restarts (limits live only in it): the agent sets them again.
        tb.restart_vswitchd()
        eventually(lambda: all(zone_limits(tb).get(vm.ofport, (0,))[0] == LIMIT
                               for vm in (b, c)), 30, what="limits set again after restart")
