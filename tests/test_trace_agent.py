"""`sg-ofctl trace` against a running agent: the verdict of the switch the
agent programmed, named in the rules' words, matches what real packets do; a
flow deleted behind the agent's back makes trace report the disagreement
(exit status 4) while the model still allows the packet."""
import json

import pytest

from agent_testbed import Hypervisor
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import new_database, subprocess_cli
from sg_ofctl.compiler import ids

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

MAC = {"a": "fa:16:3e:00:02:01", "b": "fa:16:3e:00:02:02"}
IP = {"a": "10.0.0.1", "b": "10.0.0.2"}


@pytest.fixture(scope="module")
def hv():
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "hv1")
        group = json.loads(h.cli("group", "create", "web", "-f", "json"))
        rule = json.loads(h.cli("rule", "create", "web", "--protocol", "tcp", "--dst-port",
                                "80", "--description", "http from anywhere", "-f", "json"))
        h.cli("port", "create", "pa", "--mac", MAC["a"], "--ip", IP["a"], "--group", "web")
        h.cli("port", "create", "pb", "--mac", MAC["b"], "--ip", IP["b"])
        h.start_agent()
        h.vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                 for n in "ab"}
        for vm in h.vms.values():
            h.wait_enforced(vm)
        h.vms["a"].serve("tcp", 80)
        h.vms["a"].serve("tcp", 22)
        h.rule_cookie = ids.cookie(ids.KIND_RULE, group["id"], rule["id"])
        h.rule_id = rule["id"]
        yield h


def trace(h, *argv, fmt="json"):
    done = subprocess_cli("--db", h.db, "trace", "--bridge", h.tb.bridge, "--ovs-db", h.tb.db,
                          "--vswitchd", f"{h.tb.dir}/ovs-vswitchd.ctl", "-f", fmt, *argv,
                          env=h.tb.env)
    assert done.returncode in (0, 4), done.stderr
    return done.returncode, (json.loads(done.stdout) if fmt == "json" else done.stdout)


def test_trace_names_the_rules_and_matches_real_packets(hv):
    a, b = hv.vms["a"], hv.vms["b"]
    rc, out = trace(hv, "--from", "pb", "--to", "pa", "--dst-port", "80")
    assert rc == 0 and out["agree"] and out["verdict"] == "allowed"
    assert out["switch"]["action"] == "output" and out["switch"]["port"] == a.ofport
    ingress = next(s for s in out["sides"] if s["side"] == "ingress")
    assert f"rule {hv.rule_id} of group web (http from anywhere)" in ingress["why"]
    assert [h["table"] for h in out["path"]][:2] == ["classify", "egress_spoof"]
    assert b.send("tcp", a.ip, 80)

    rc, out = trace(hv, "--from", "pb", "--to", "pa", "--dst-port", "22")
    assert rc == 0 and out["agree"] and out["verdict"] == "dropped"
    assert out["switch"]["why"] == "ingress: no ingress rule of group(s) web allows it"
    assert not b.send("tcp", a.ip, 22, timeout=0.5)

    rc, out = trace(hv, "--from", "pa", "--to", "pb", "--dst-port", "80", "--state", "reply")
    assert rc == 0 and out["verdict"] == "allowed"
    assert "reply of an allowed connection" in out["switch"]["why"]

    rc, text = trace(hv, "--from", "pb", "--to", "pa", "--dst-port", "80", fmt="table")
    assert rc == 0 and "switch and model agree" in text and "|   ingress_rules " in text


def test_trace_reports_a_flow_removed_behind_the_agents_back(hv):
    a, b = hv.vms["a"], hv.vms["b"]
    hv.tb.ofctl("del-flows", hv.tb.bridge, f"cookie={hv.rule_cookie:#x}/-1")
    hv.tb.appctl("revalidator/wait")
    rc, out = trace(hv, "--from", "pb", "--to", "pa", "--dst-port", "80")
    assert rc == 4 and not out["agree"]
    assert out["switch"]["action"] == "drop" and out["model"]["action"] == "output"
    assert "the switch drops it" in out["disagreement"]
    assert "stale" in out["disagreement"]
    rc, text = trace(hv, "--from", "pb", "--to", "pa", "--dst-port", "80", fmt="table")
    assert rc == 4 and "DISAGREEMENT" in text
    assert not b.send("tcp", a.ip, 80, timeout=0.5)   # the switch really drops it


def test_trace_bad_input_names_the_field(hv):
    done = subprocess_cli("--db", hv.db, "trace", "--bridge", hv.tb.bridge, "--ovs-db",
                          hv.tb.db, "--from", "nope", "--to", "pa", "--dst-port", "80",
                          env=hv.tb.env)
    assert done.returncode == 1 and "from='nope'" in done.stderr
    done = subprocess_cli("--db", hv.db, "trace", "--bridge", "br-nope", "--ovs-db",
                          hv.tb.db, "--from", "pb", "--to", "pa", "--dst-port", "80",
                          env=hv.tb.env)
    assert done.returncode == 1 and "bridge='br-nope'" in done.stderr
    done = subprocess_cli("--db", hv.db, "trace", "--bridge", hv.tb.bridge, "--ovs-db",
                          hv.tb.db, "--from", "pb", "--to", "pa", "--dst-port", "70000",
                          env=hv.tb.env)
    assert done.returncode == 1 and "dst_port=70000" in done.stderr
