"""A burst of tag-declared ports on a test bed, for tests/test_agent_bulk.py and
bench/burst.py: add them in one ovs-vsctl transaction, count what the agent's
status shows, and probe when a rule change lets traffic through."""
from __future__ import annotations

import subprocess
import sys


def bulk(i: int) -> tuple[str, str, str]:
    """Interface, MAC and IP of the i-th tag-declared port (1-based)."""
    return f"bk{i}", f"fa:16:3e:01:{i >> 8:02x}:{i & 255:02x}", \
        f"10.1.{i // 200}.{i % 200 + 1}"


def add_tagged_ports(tb, first: int, count: int) -> None:
    """`count` internal ports with instance tags, in one ovs-vsctl transaction."""
    args = []
    for i in range(first, first + count):
        dev, mac, ip = bulk(i)
        args += ["--", "add-port", tb.bridge, dev, "--", "set", "Interface", dev,
                 "type=internal", f"external_ids:iface-id=bulk-{i}",
                 f'external_ids:attached-mac="{mac}"', f'external_ids:sg-ofctl-ips="{ip}"',
                 "external_ids:sg-ofctl-groups=web"]
    tb.vsctl(*args[1:])


# A UDP probe every 5 ms until the first echo comes back; prints its
# time.monotonic() (one clock for every process of the machine).
PROBE = r"""
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    s.sendto(b"probe", (host, port))
    stop = time.monotonic() + 0.005
    while time.monotonic() < stop:
        try:
            s.recv(64)
            print(time.monotonic(), flush=True)
            sys.exit(0)
        except BlockingIOError:
            time.sleep(0.0005)
print("none", flush=True)
"""


def start_probe(vm, ip, port, seconds=10.0) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", vm.ns, sys.executable, "-c", PROBE, ip,
                             str(port), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def seen(h) -> int:
    return sum(1 for p in h.status().get("ports", []) if p["port"].startswith("bulk-"))


def enforced(h) -> int:
    return sum(1 for p in h.status().get("ports", [])
               if p["port"].startswith("bulk-") and p["state"] == "enforced")


def remove_tagged_ports(tb, first: int, count: int) -> None:
    """Take the interfaces of add_tagged_ports() off the bridge."""
    args = []
    for i in range(first, first + count):
        args += ["--", "--if-exists", "del-port", tb.bridge, bulk(i)[0]]
    tb.vsctl(*args[1:])
