"""Continuous reconciliation (issue 10): flows deleted, altered or added behind
the agent's back (`ovs-ofctl del-flows/mod-flows/add-flow` on its tables) are
repaired within one audit period, in one bundle, counted and logged."""
import time

import pytest

from agent_testbed import Hypervisor, eventually
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database, run_cli

pytestmark = pytest.mark.root

MAC = {"a": "fa:16:3e:00:0b:01", "b": "fa:16:3e:00:0b:02"}
IP = {"a": "10.0.11.1", "b": "10.0.11.2"}
PERIOD = 2.0


@pytest.fixture(scope="module")
def net():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-au")
        for n in "ab":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n])
        h.start_agent(True, "--audit-interval", str(PERIOD))
        h.vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                 for n in "ab"}
        for vm in h.vms.values():
            h.wait_enforced(vm)
        h.vms["b"].serve("udp", 7)
        yield h


def repaired(net, before: int, at_least: int):
    def check():
        s = net.status()
        return s if s["audit"]["repairs_total"] >= before + at_least else None
    return eventually(check, 2 * PERIOD + 5, what="the audit's repair")


def test_deleted_flows_come_back_within_one_period(net):
    a, b, tb = net.vms["a"], net.vms["b"], net.tb
    baseline = sorted(tb.dump_flows())
    assert a.send("udp", b.ip, 7)
    before = net.status()["audit"]["repairs_total"]
    n_rules = len(tb.dump_flows("table=ingress_rules"))
    tb.ofctl("del-flows", tb.bridge, "table=ingress_rules")
    start = time.monotonic()
    s = repaired(net, before, n_rules)
    assert time.monotonic() - start < PERIOD + 3
    assert s["audit"]["last"]["why"] == "periodic" and s["audit"]["last"]["missing"] == n_rules
    assert sorted(tb.dump_flows()) == baseline
    assert eventually(lambda: a.send("udp", b.ip, 7, timeout=0.3), 3)
    log = tb.log_tail("agent.log", 300)
    assert "audit repair: restored missing flow table=ingress_rules" in log
    assert "cookie=0x5" in log
    reported = s["errors"] + s.get("past_errors", [])     # resolved by the next good round
    assert any("audit (periodic) repaired" in e["error"] for e in reported)


def test_altered_and_foreign_flows_are_replaced_and_removed(net):
    tb = net.tb
    baseline = sorted(tb.dump_flows())
    before = net.status()["audit"]["repairs_total"]
    n_out = len(tb.dump_flows("table=ingress_output"))
    tb.ofctl("mod-flows", tb.bridge, "table=ingress_output,actions=drop")
    # A flow with someone else's cookie that would skip the ingress rules.
    tb.ofctl("add-flow", tb.bridge, "table=forward,priority=65000,cookie=0x1234,ip,"
             "actions=NORMAL")
    s = repaired(net, before, n_out + 1)
    last = s["audit"]["last"]
    assert last["altered"] == n_out and last["unexpected"] == 1
    assert sorted(tb.dump_flows()) == baseline
    log = tb.log_tail("agent.log", 300)
    assert "removed foreign flow table=forward priority=65000 cookie=0x1234" in log
    assert "restored altered flow table=ingress_output" in log


def test_an_audit_with_nothing_to_repair_sends_nothing(net):
    s0 = net.status()
    eventually(lambda: net.status()["audit"]["audits"] >= s0["audit"]["audits"] + 2,
               3 * PERIOD + 5, what="two more audits")
    s = net.status()
    assert s["audit"]["repairs_total"] == s0["audit"]["repairs_total"]
    assert s["flow_mods_total"] == s0["flow_mods_total"]
    assert s["audit"]["last"]["read_seconds"] >= 0
    _rc, out, _err = run_cli("status", "--run-dir", str(net.tb.dir), db=net.db)
    assert "last audit" in out and "audit repairs" in out
