"""Fail-closed does not depend on the agent running (issue 10): a VM plugged
while no agent runs gets nothing (not one of N unsolicited datagrams, not a
broadcast) and reaches nobody, by the flows already in place (`deliver`
outputs only to ports the agent enforced; OVS NORMAL would flood to it)."""
import sys

import pytest

from agent_testbed import Hypervisor, eventually
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root

MAC = {"a": "fa:16:3e:00:0d:01", "b": "fa:16:3e:00:0d:02", "n": "fa:16:3e:00:0d:0e"}
IP = {"a": "10.0.13.1", "b": "10.0.13.2", "n": "10.0.13.14"}
N = 20
BLAST = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" \
        "[s.sendto(b'unsolicited',(sys.argv[1],int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]"


def frames_from(seen, mac: str) -> list:
    raw = bytes.fromhex(mac.replace(":", ""))
    return [f for f in seen if f[6:12] == raw]


def test_a_vm_plugged_while_no_agent_runs_gets_and_sends_nothing():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-fc")
        for n in "abn":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n])
        h.start_agent()
        a, b = (tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                for n in "ab")
        for vm in (a, b):
            h.wait_enforced(vm)
        b.serve("udp", 7)
        assert a.send("udp", b.ip, 7)

        assert h.stop_agent() == 0
        new = tb.add_vm("n", MAC["n"], [IP["n"]], external_ids={"iface-id": "pn"})
        a.exec("ip", "neigh", "replace", IP["n"], "lladdr", MAC["n"], "dev", "eth0",
               check=True)                  # a knows its MAC: plain unicast to it
        with new.sniffing(2.5) as seen_by_new, b.sniffing(2.5) as seen_by_b:
            a.exec(sys.executable, "-c", BLAST, IP["n"], "9", str(N), check=True)
            assert not a.ping("10.0.13.99", timeout=0.5)     # an ARP broadcast
            assert not new.send("udp", b.ip, 7, timeout=0.5)
        assert frames_from(seen_by_new, MAC["a"]) == [], \
            f"{len(frames_from(seen_by_new, MAC['a']))} frame(s) from a reached the new VM"
        assert frames_from(seen_by_b, MAC["n"]) == []
        assert a.send("udp", b.ip, 7)       # the enforced ports keep working

        h.start_agent()                     # the control: enforced, it gets traffic
        h.wait_enforced(new)
        new.serve("udp", 9)
        assert eventually(lambda: a.send("udp", new.ip, 9, timeout=0.3), 5)
