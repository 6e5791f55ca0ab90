"""Packet logging with real packets: `sg-ofctl log create` for a group; an
allowed connection gives exactly one accept line naming the rule, a dropped
SYN a drop line naming "no rule" with the group, a forged source IP a drop
line naming the anti-spoofing guard; a flood of 10,000 dropped packets a
second yields at most the meter's rate and a counter of the rest, without
growing the agent; deleting the log removes every logging flow and the meter
(logging off costs nothing).  JSON lines, readable lines and RFC 5424 syslog."""
import json
import socket
import struct
import subprocess
import sys

import pytest

from agent_testbed import Hypervisor, eventually
from ovs_testbed import HELPER, OvsTestbed
from ovsdb_fixtures import new_database
from sg_ofctl.compiler import ids

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

MAC = {"a": "fa:16:3e:00:04:01", "b": "fa:16:3e:00:04:02"}
IP = {"a": "10.0.0.1", "b": "10.0.0.2"}
RATE = 20


def udp_frame(src_mac, dst_mac, src_ip, dst_ip, sport, dport) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8, 0)
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0,
                       socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    total = sum(struct.unpack("!10H", head))
    checksum = ~((total & 0xffff) + (total >> 16)) & 0xffff
    head = head[:10] + struct.pack("!H", checksum) + head[12:]
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + head + udp


def log_cookies(tb) -> list[str]:
    return [f for f in tb.dump_flows(f"cookie={ids.COOKIE_SIGNATURE | ids.KIND_LOG << 56:#x}"
                                     f"/{0xff << 56:#x}")]


def rss_kb(pid: int) -> int:
    # The agent runs under `ip netns exec`, which execs: the pid is the agent's.
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Lines:
    def __init__(self, path):
        self.path = path

    def all(self) -> list[dict]:
        try:
            return [json.loads(line) for line in self.path.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def since(self, n: int) -> list[dict]:
        return self.all()[n:]


@pytest.fixture(scope="module")
def hv():
    with new_database() as db, OvsTestbed() as tb:
        syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        syslog.bind(str(tb.dir / "syslog.sock"))
        syslog.settimeout(5)
        tb._undo.append(syslog.close)
        h = Hypervisor(tb, db.remote, "hv1")
        h.cli("group", "create", "web")
        h.rule = json.loads(h.cli("rule", "create", "web", "--protocol", "tcp", "--dst-port",
                                  "80", "--description", "http", "-f", "json"))["id"]
        h.cli("port", "create", "pa", "--mac", MAC["a"], "--ip", IP["a"], "--group", "web")
        h.cli("port", "create", "pb", "--mac", MAC["b"], "--ip", IP["b"])
        h.start_agent(True, "--packet-log-syslog", f"unix:{tb.dir}/syslog.sock",
                      "--health-interval", "0.5")
        h.vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                 for n in "ab"}
        for vm in h.vms.values():
            h.wait_enforced(vm)
        h.vms["a"].serve("tcp", 80)
        h.flows_without_log = h.wait_synced()["flows"]
        assert log_cookies(tb) == []
        h.cli("log", "create", "web-log", "--group", "web", "--rate", f"{RATE}/s")
        eventually(lambda: len(log_cookies(tb)) == 10, 10, what="the logging flows")
        h.lines = Lines(tb.dir / "packets-br-int.json")
        h.text = tb.dir / "packets-br-int.log"
        h.syslog = syslog
        yield h


def test_an_allowed_connection_gives_one_accept_line_naming_the_rule(hv):
    a, b = hv.vms["a"], hv.vms["b"]
    before = len(hv.lines.all())
    assert b.send("tcp", a.ip, 80)
    accept = eventually(lambda: [e for e in hv.lines.since(before) if e["event"] == "accept"],
                        10, what="an accept line")
    assert len(accept) == 1
    e = accept[0]
    assert (e["port"], e["direction"], e["protocol"], e["dst_port"]) == ("pa", "ingress",
                                                                         "tcp", 80)
    assert (e["src"], e["dst"]) == (b.ip, a.ip) and e["logs"] == ["web-log"]
    assert e["rule"] == {"id": hv.rule, "action": "allow", "description": "http"}
    assert e["group"]["name"] == "web" and e["host"] == "hv1" and e["network"] == 0
    text = hv.text.read_text().splitlines()[-1]
    assert f"ACCEPT ingress port pa net 0 tcp {b.ip}:" in text and "of group web" in text
    message = hv.syslog.recv(4096).decode()
    assert message.startswith("<134>1 ") and " hv1 sg-ofctl " in message
    assert "[sg-ofctl@32473 event=\"accept\" direction=\"ingress\" port=\"pa\"" in message
    eventually(lambda: len(hv.lines.all()) == before + 1, 1, what="no more lines")


def test_a_dropped_syn_gives_a_drop_line_naming_no_rule_and_the_group(hv):
    a, b = hv.vms["a"], hv.vms["b"]
    before = len(hv.lines.all())
    assert not b.send("tcp", a.ip, 22, timeout=0.5)
    drops = eventually(lambda: [e for e in hv.lines.since(before) if e["event"] == "drop"],
                       10, what="a drop line")
    e = drops[0]
    assert (e["port"], e["direction"], e["dst_port"]) == ("pa", "ingress", 22)
    assert e["rule"] is None and e["reason"] == "no ingress rule of group(s) web allows it"


def test_a_forged_source_ip_names_the_guard(hv):
    a, b = hv.vms["a"], hv.vms["b"]
    before = len(hv.lines.all())
    a.send_frames(udp_frame(a.mac, b.mac, "10.0.0.99", b.ip, 5000, 53))
    e = eventually(lambda: hv.lines.since(before), 10, what="a drop line")[0]
    assert (e["event"], e["direction"], e["port"]) == ("drop", "egress", "pa")
    assert e["guard"] == "anti-spoofing: source IP 10.0.0.99 is not the port's"


def test_a_flood_is_logged_at_the_meter_rate_and_the_rest_counted(hv):
    a, b = hv.vms["a"], hv.vms["b"]
    eventually(lambda: hv.status().get("packet_log", {}).get("rate") == RATE, 5)
    before, limited = len(hv.lines.all()), hv.status()["packet_log"]["rate_limited"]
    rss = rss_kb(hv.proc.pid)
    frame = udp_frame(b.mac, a.mac, b.ip, a.ip, 6000, 9999)
    seconds = 3.0
    done = subprocess.run(["ip", "netns", "exec", b.ns, sys.executable, HELPER, "flood",
                           frame.hex(), "10000", str(seconds)], capture_output=True, text=True,
                          check=True, timeout=60)
    sent = int(done.stdout)
    assert sent >= 25_000
    counted = eventually(lambda: (s := hv.status()["packet_log"]["rate_limited"] - limited)
                         and s >= sent * 0.9 and s, 15, what="the rate-limited counter")
    logged = [e for e in hv.lines.since(before) if e["dst_port"] == 9999]
    assert 1 <= len(logged) <= RATE * (seconds + 2) + RATE   # the rate, plus one burst
    assert len(logged) + counted <= sent
    assert rss_kb(hv.proc.pid) - rss < 20_000


def test_deleting_the_log_removes_its_flows_and_meter(hv):
    hv.cli("log", "delete", "web-log")
    eventually(lambda: log_cookies(hv.tb) == [], 10, what="no logging flows")
    eventually(lambda: hv.status()["flows"] == hv.flows_without_log, 10,
               what="the flow count of logging off")
    meters = hv.tb.ofctl("dump-meters", hv.tb.bridge).stdout
    assert "meter=" not in meters
