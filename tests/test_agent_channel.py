"""The switch channel cannot be captured (issue 10): TLS with the agent's own
CA, a datapath check through the local Open_vSwitch database, impostors
refused (never replacing the bridge's connection) and shown as `degraded`,
and an agent that cannot listen or reach its bridge exits non-zero at once."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_testbed import OF_LISTEN, Hypervisor, eventually
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database, run_cli

pytestmark = pytest.mark.root

FAKE = str(Path(__file__).with_name("fake_switch.py"))
MAC = {"a": "fa:16:3e:00:0a:01", "b": "fa:16:3e:00:0a:02"}
IP = {"a": "10.0.10.1", "b": "10.0.10.2"}
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture(scope="module")
def net():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv-ch")
        h.cli("group", "create", "gate")
        for rid in h.cli("rule", "list", "gate", "-f", "value", "-c", "id").split():
            h.cli("rule", "delete", rid)
        h.cli("rule", "create", "gate", "--egress")
        h.cli("port", "create", "pa", "--mac", MAC["a"], "--ip", IP["a"])
        h.cli("port", "create", "pb", "--mac", MAC["b"], "--ip", IP["b"], "--group", "gate")
        h.start_agent()
        h.vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                 for n in "ab"}
        for vm in h.vms.values():
            h.wait_enforced(vm)
        h.vms["b"].serve("udp", 7)
        yield h


def fake_switch(h, *args, user=()) -> subprocess.Popen:
    host, port = OF_LISTEN.split(":")
    return subprocess.Popen(["ip", "netns", "exec", h.tb.ns, *user, sys.executable, FAKE, host,
                             port, *args], stdout=subprocess.PIPE, text=True)


def status_text(h) -> tuple[int, str]:
    """`sg-ofctl status` (exit status, output): non-zero unless healthy."""
    rc, out, _err = run_cli("status", "--run-dir", str(h.tb.dir), db=h.db)
    return rc, out


def degraded(h) -> dict | None:
    s = h.status()
    return s if s.get("health", {}).get("state") == "degraded" else None


def bridge_dpid(h) -> str:
    return h.tb.vsctl("get", "Bridge", h.tb.bridge, "datapath_id").strip('"')


def rule_change_latency(h) -> float:
    """Open udp/7 to b, time until a's datagrams pass, close it again."""
    a, b = h.vms["a"], h.vms["b"]
    assert not a.send("udp", b.ip, 7, timeout=0.3)
    start = time.monotonic()
    rid = json.loads(h.cli("rule", "create", "gate", "--protocol", "udp", "--dst-port", "7",
                           "-f", "json"))["id"]
    eventually(lambda: a.send("udp", b.ip, 7, timeout=0.2), 5, what="udp/7 open")
    took = time.monotonic() - start
    h.cli("rule", "delete", rid)
    eventually(lambda: not a.send("udp", b.ip, 7, timeout=0.2), 5, what="udp/7 closed")
    return took


def test_channel_is_tls_and_checked_against_the_local_database(net):
    s = net.status()
    assert s["state"] == "running" and s["channel"]["security"] == "tls"
    assert s["channel"]["problem"] is None
    assert s["channel"]["verified"] and s["channel"]["datapath_id"] == bridge_dpid(net)
    assert net.tb.vsctl("get-controller", net.tb.bridge) == "ssl:127.0.0.1:6653"
    eventually(lambda: net.status()["channel"]["ovsdb"]["controller_is_connected"], 15,
               what="Controller is_connected in the status")
    rc, out = status_text(net)
    assert "tls" in out and "is_connected=True" in out and "last audit" in out
    # The private key is closed to other users (an unprivileged impostor can't use it).
    pki = net.tb.dir / "pki"
    probe = subprocess.run([*NOBODY, "cat", str(pki / "switch-key.pem")], check=False,
                           capture_output=True)
    assert probe.returncode != 0


def test_an_unprivileged_impostor_without_certificate_is_refused(net):
    before = net.status()["channel"]["refused_total"]
    fake = fake_switch(net, bridge_dpid(net), "5", user=NOBODY)
    out = fake.communicate(timeout=30)[0]
    counts = json.loads(out.splitlines()[-1])
    assert counts["closed_by_peer"] and counts["flow_mods"] == counts["bundle_msgs"] == 0
    s = eventually(lambda: net.status() if net.status()["channel"]["refused_total"] > before
                   else None, 10, what="the refusal in the status")
    assert "TLS handshake" in s["channel"]["problem"]
    s = eventually(lambda: degraded(net), 10, what="the agent degraded")
    assert any(p.startswith("switch channel: refused a switch connection")
               for p in s["health"]["problems"])
    assert s["switch"]["connected"] and s["channel"]["verified"]
    rc, out = status_text(net)
    assert rc != 0 and "degraded" in out and "switch channel: refused" in out
    assert "refused a switch connection" in net.tb.log_tail("agent.log", 200)
    assert rule_change_latency(net) < 1.0


def test_an_impostor_claiming_the_datapath_never_replaces_the_bridge(net):
    """Even with a certificate of the CA (a stolen key): it claims br-int's
    datapath id but cannot report the bridge's secret.  While it is connected
    (it stalls the check) changes keep reaching the real bridge at once."""
    pki = net.tb.dir / "pki"
    tls = ["--tls", str(pki / "switch-cert.pem"), str(pki / "switch-key.pem"),
           str(pki / "ca-cert.pem")]
    dpid = bridge_dpid(net)
    before = net.status()["channel"]["refused_total"]
    stalling = fake_switch(net, dpid, "20", "--stall", *tls)
    assert stalling.stdout.readline().strip() == "connected"
    assert rule_change_latency(net) < 1.0          # the impostor is connected meanwhile
    liar = fake_switch(net, dpid, "10", "--desc", "Open vSwitch br-int", *tls)
    counts = json.loads(liar.communicate(timeout=30)[0].splitlines()[-1])
    assert counts["closed_by_peer"] and counts["flow_mods"] == counts["bundle_msgs"] == 0
    stalled = json.loads(stalling.communicate(timeout=40)[0].splitlines()[-1])
    assert stalled["closed_by_peer"] and stalled["flow_mods"] == stalled["bundle_msgs"] == 0
    s = eventually(lambda: net.status() if net.status()["channel"]["refused_total"] >=
                   before + 2 else None, 10, what="two refusals")
    reasons = [r["reason"] for r in s["channel"]["refused"]]
    assert any("secret" in r for r in reasons) and any("description within" in r
                                                        for r in reasons)
    assert all(r["datapath_id"] == dpid for r in s["channel"]["refused"][-2:])
    assert degraded(net) and s["switch"]["connected"]
    assert s["switch"]["datapath_id"] == dpid
    assert rule_change_latency(net) < 1.0          # still the real bridge


def test_a_second_agent_that_cannot_listen_exits_at_once(net):
    tb = net.tb
    start = time.monotonic()
    proc = subprocess.run(
        ["ip", "netns", "exec", tb.ns, sys.executable, "-m", "sg_ofctl.cli", "--db", net.db,
         "agent", "--bridge", tb.bridge, "--ovs-db", tb.db, "--listen", OF_LISTEN,
         "--host", "hv-ch", "--run-dir", str(tb.dir / "second"), "--switch-pki-dir",
         str(tb.dir / "pki")], check=False, capture_output=True, text=True, env=tb.env, timeout=60)
    assert proc.returncode != 0 and time.monotonic() - start < 10
    assert "listen=127.0.0.1:6653: cannot listen for the switch" in proc.stderr
    s = net.status()
    assert s["pid"] == net.proc.pid and s["switch"]["connected"]
    assert tb.vsctl("get-controller", tb.bridge) == "ssl:127.0.0.1:6653"


def test_an_agent_that_cannot_reach_its_bridge_exits_at_once(net):
    tb = net.tb
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sg_ofctl.cli", "--db", net.db, "--timeout", "2", "agent",
         "--bridge", tb.bridge, "--ovs-db", f"unix:{tb.dir}/no-such.sock", "--listen",
         "127.0.0.1:0", "--run-dir", str(tb.dir / "third"), "--switch-pki-dir",
         str(tb.dir / "pki")],
        check=False, capture_output=True, text=True, env=tb.env, timeout=60)
    assert proc.returncode != 0 and time.monotonic() - start < 15, proc.stderr


def test_plain_tcp_needs_its_flag_and_still_refuses_an_impostor(net):
    """Last: restarts the agent with --insecure-plain-tcp."""
    net.stop_agent()
    net.start_agent(True, "--insecure-plain-tcp")
    s = net.status()
    assert s["channel"]["security"] == "plain" and "INSECURE" in s["channel"]["description"]
    assert net.tb.vsctl("get-controller", net.tb.bridge) == "tcp:127.0.0.1:6653"
    assert "INSECURE" in net.tb.log_tail("agent.log", 50)
    dpid = bridge_dpid(net)
    fake = fake_switch(net, dpid, "10", user=NOBODY)      # the attack of the issue
    counts = json.loads(fake.communicate(timeout=30)[0].splitlines()[-1])
    assert counts["closed_by_peer"] and counts["flow_mods"] == counts["bundle_msgs"] == 0
    s = eventually(lambda: degraded(net), 10, what="degraded")
    assert "secret" in s["channel"]["problem"] and s["switch"]["datapath_id"] == dpid
    assert rule_change_latency(net) < 1.0
