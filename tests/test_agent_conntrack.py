"""A connection the receiver's rules refuse never occupies conntrack (issue 10):
the sender's egress verdict no longer commits; the receiver's verdict does
(or `forward`, for a destination that is not a filtered local port).  A flood
of refused datagrams and SYNs leaves no entry; allowed ones leave one each."""
import sys

import pytest

from agent_testbed import Hypervisor
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root

MAC = {"a": "fa:16:3e:00:0e:01", "b": "fa:16:3e:00:0e:02", "x": "fa:16:3e:00:0e:03"}
IP = {"a": "10.0.14.1", "b": "10.0.14.2", "x": "10.0.14.3"}
FLOOD = r"""
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", (host, port))       # a new source port each time: a new connection
    s.close()
    t = socket.socket(); t.setblocking(False)
    try:
        t.connect((host, port))        # one SYN
    except BlockingIOError:
        pass
    t.close()
"""


def test_refused_connections_leave_no_conntrack_entry():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-ct")
        h.cli("group", "create", "closed")
        for rid in h.cli("rule", "list", "closed", "-f", "value", "-c", "id").split():
            h.cli("rule", "delete", rid)
        h.cli("rule", "create", "closed", "--egress")
        h.cli("port", "create", "pa", "--mac", MAC["a"], "--ip", IP["a"])
        h.cli("port", "create", "pb", "--mac", MAC["b"], "--ip", IP["b"])
        h.cli("port", "create", "px", "--mac", MAC["x"], "--ip", IP["x"], "--group", "closed")
        h.start_agent()
        vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
               for n in "abx"}
        for vm in vms.values():
            h.wait_enforced(vm)
        a, b = vms["a"], vms["b"]
        b.serve("udp", 7)
        assert a.send("udp", b.ip, 7)             # ARP resolved, the path works
        tb.appctl("dpctl/flush-conntrack")
        a.exec(sys.executable, "-c", FLOOD, IP["x"], "9", "200", check=True, timeout=60)
        a.exec(sys.executable, "-c", FLOOD, IP["b"], "7", "20", check=True, timeout=60)
        entries = tb.conntrack()
        to_x = [e for e in entries if f"dst={IP['x']}" in e]
        to_b = [e for e in entries if f"dst={IP['b']}" in e and e.startswith("udp")]
        assert to_x == [], f"{len(to_x)} refused connection(s) in conntrack: {to_x[:3]}"
        assert len(to_b) >= 20                    # allowed: committed (once each)
