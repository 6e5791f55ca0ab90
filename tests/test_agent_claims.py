"""A stray interface cannot take a healthy port down (issue 10): a second
interface carrying an enforced port's `iface-id` stays fail-closed (reason in
the status and the log), also across an agent restart; the hypervisor hands
the port over (live migration on this host) by marking the old interface
`external_ids:sg-ofctl-retired=true` or by removing it."""
import pytest

from agent_testbed import Hypervisor, eventually
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root

MAC = {"a": "fa:16:3e:00:0c:01", "b": "fa:16:3e:00:0c:02"}
IP = {"a": "10.0.12.1", "b": "10.0.12.2"}


def reason(h, iface):
    return next((p["reason"] for p in h.status().get("ports", []) if p["interface"] == iface),
                None)


def test_the_enforced_interface_keeps_the_port_and_the_stray_gets_nothing():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-cl")
        for n in "ab":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n])
        h.start_agent()
        a, b = (tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                for n in "ab")
        for vm in (a, b):
            h.wait_enforced(vm)
        a.serve("udp", 8)
        b.serve("udp", 7)
        assert a.send("udp", b.ip, 7) and b.send("udp", a.ip, 8)

        stray = tb.add_vm("s", MAC["a"], [IP["a"]], external_ids={"iface-id": "pa"})
        eventually(lambda: h.port_state("vm-s") == "fail-closed", 10, what="stray fail-closed")
        assert "already enforced on interface 'vm-a'" in reason(h, "vm-s")
        assert h.port_state("vm-a") == "enforced"
        with stray.sniffing(2.0) as seen:
            for _ in range(3):
                assert b.send("udp", a.ip, 8) and a.send("udp", b.ip, 7)
        b_mac = bytes.fromhex(MAC["b"].replace(":", ""))
        assert not [f for f in seen if f[6:12] == b_mac], "b's frames reached the stray"
        assert not stray.send("udp", b.ip, 7, timeout=0.5)
        assert "interface vm-s stays fail-closed: port 'pa' is already enforced" in \
            tb.log_tail("agent.log", 200)

        h.stop_agent()                      # a restart remembers which one is the port
        h.start_agent()
        h.wait_enforced(a)
        assert h.port_state("vm-s") == "fail-closed"
        assert b.send("udp", a.ip, 8)

        tb.vsctl("set", "Interface", "vm-a", "external_ids:sg-ofctl-retired=true")
        eventually(lambda: h.port_state("vm-s") == "enforced", 10, what="the stray takes over")
        assert "retired" in reason(h, "vm-a")
        stray.serve("udp", 9)
        assert eventually(lambda: b.send("udp", a.ip, 9, timeout=0.3), 5)
        assert not a.send("udp", b.ip, 7, timeout=0.5)
