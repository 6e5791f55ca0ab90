"""A burst of tag-declared ports on a real ovs-vswitchd: 500 interfaces tagged
with sg-ofctl-ips/-groups appear at once; the agent creates their rows in one
transaction off the flow path and enforces them in a few seconds (the figure:
bench/burst.py; before: ~3.7 minutes, one transaction per port inside the flow
round), while a rule change made during the burst is enforced in a fraction of
a second (before: only after the whole burst).  A restart writes its status at once;
the log has no error, traceback or per-plug warning when nothing is wrong."""
from __future__ import annotations

import json
import re
import time

import pytest

from agent_testbed import Hypervisor, eventually
from burst import add_tagged_ports, enforced, seen, start_probe
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

N = 500
MAC = {"a": "fa:16:3e:00:0b:01", "b": "fa:16:3e:00:0b:02"}
IP = {"a": "10.0.11.1", "b": "10.0.11.2"}


@pytest.fixture(scope="module")
def bed():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv1")
        h.cli("group", "create", "web")          # egress only: nothing gets in
        h.cli("port", "create", "pa", "--mac", MAC["a"], "--ip", IP["a"])
        h.cli("port", "create", "pb", "--mac", MAC["b"], "--ip", IP["b"], "--group", "web")
        h.start_agent()
        vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
               for n in "ab"}
        for vm in vms.values():
            h.wait_enforced(vm)
        vms["b"].serve("udp", 8080)
        h.vms = vms
        yield h


def test_a_burst_of_500_tag_declared_ports(bed):
    """One test (its steps need each other): the burst with a rule change in it,
    then the log, then an agent restart over the same 500 interfaces."""
    burst_and_rule_change(bed)
    log_has_no_error_and_no_warning_per_plug(bed)
    restart_writes_its_status_at_once(bed)


def burst_and_rule_change(h):
    tb = h.tb
    a, b = h.vms["a"], h.vms["b"]
    probe = start_probe(a, b.ip, 8080)
    start = time.monotonic()
    add_tagged_ports(tb, 1, N)
    added = time.monotonic()
    # A rule change once the agent has seen the burst, while its rows are being
    # created and its ports enforced.
    eventually(lambda: seen(h) == N, 10, interval=0.05, what="the burst seen by the agent")
    h.cli("rule", "create", "web", "--protocol", "udp", "--dst-port", "8080")
    ruled = time.monotonic()
    during = enforced(h)
    out, _ = probe.communicate(timeout=15)
    assert out.strip() != "none", "the new rule was not enforced within 10 s"
    rule_latency = float(out) - ruled
    eventually(lambda: enforced(h) == N, 30, interval=0.05, what=f"{N} ports enforced")
    done = time.monotonic()
    print(f"\n{N} tag-declared ports: ovs-vsctl add {added - start:.2f} s; created and "
          f"enforced {done - added:.2f} s after it returned ({done - start:.2f} s after the "
          f"add began); rule change enforced {rule_latency * 1000:.0f} ms after its "
          f"write, with {during}/{N} enforced at the time")
    assert during < N, "the rule change came after the burst: the test proves nothing"
    # bench/burst.py (medians, 5 trials): ~3 s for the 500 and ~0.2 s for the rule on
    # this shared 2-core machine; the bounds leave room for its load.
    assert rule_latency < 2.0
    assert done - added < 20
    ports = {p["Name"]: p for p in json.loads(h.cli("port", "list", "-f", "json"))}
    assert all(ports[f"bulk-{i}"]["Host"] == "hv1" for i in range(1, N + 1))


def log_has_no_error_and_no_warning_per_plug(h):
    log = (h.tb.dir / "agent.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    bad = [line for line in log.splitlines() if re.search(r" (ERROR|WARNING|CRITICAL) ", line)]
    assert bad == [], "\n".join(bad[:20])
    assert "creating port bulk-1 from the tags" in log


def restart_writes_its_status_at_once(h):
    h.stop_agent()
    names = [f"bulk-{i}" for i in range(1, N + 1)]
    h.cli("port", "delete", *names)         # the rows go; the tagged interfaces stay
    started = time.monotonic()
    h.start_agent(wait=False)
    pid = h.proc.pid
    eventually(lambda: h.status().get("pid") == pid and h.status().get("syncs"), 15,
               interval=0.02, what="the new agent's first status")
    first_status = time.monotonic() - started
    h.wait_synced()
    eventually(lambda: enforced(h) == N, 30, interval=0.05, what=f"{N} ports enforced")
    all_in = time.monotonic() - started
    print(f"restart: first status {first_status:.2f} s after the start, {N} rows "
          f"re-created and enforced {all_in:.2f} s after it")
    assert first_status < 10 and all_in < 30   # before: over a minute (one write per port)
