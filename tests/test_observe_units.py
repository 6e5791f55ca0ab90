"""Pure parts of observe/: the trace's parser and cookie map on a captured
ofproto/trace text, the probe's checks, health, frames, syslog format, the
metrics endpoint's address rules, and the Grafana dashboard's metric names."""
import json
import pathlib
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sg_ofctl import errors, golden
from sg_ofctl.compiler import Compiler, ids
from sg_ofctl.compiler.logflows import LogFlags
from sg_ofctl.model import ValidationError
from sg_ofctl.observe import frames, health, metrics, syslog
from sg_ofctl.observe.cookies import CookieMap
from sg_ofctl.observe.probe import TraceRequest, build_probe
from sg_ofctl.observe.trace import explain_switch, parse_hops

ROOT = pathlib.Path(__file__).resolve().parent.parent
VIEW = golden.load_view(golden.SCENARIO_DIR / "web-db.yaml")
NAMES = {n: t for n, t in enumerate(["classify", "egress_spoof", "egress_guard", "egress_nd",
                                     "egress_ct", "egress_state", "egress_dispatch",
                                     "egress_rules", "egress_verdict", "forward",
                                     "ingress_guard", "ingress_ct", "ingress_state",
                                     "ingress_dispatch", "ingress_rules", "ingress_verdict",
                                     "ingress_output"])}


def _trace_text(view) -> str:
    """An ofproto/trace of web1 -> db1 tcp/22 (dropped: no ingress rule), in the
    format OVS 3.1 prints, with the cookies and group numbers of `view`."""
    cookies = CookieMap(view)
    number = {cookies.group_name(n): n for n in cookies.group_by_number}
    port = lambda p: f"{ids.cookie(ids.KIND_PORT, p):#x}"   # noqa: E731
    static = f"{ids.cookie(ids.KIND_STATIC, 'static'):#x}"
    rule = f"{ids.cookie(ids.KIND_RULE, 'web', 'web-out'):#x}"
    return f"""Flow: tcp,in_port=1

bridge("br-int")
----------------
 0. in_port=1,vlan_tci=0x0000/0x1fff,dl_src=fa:16:3e:00:00:01, priority 100, cookie {port('web1')}
    set_field:0x1->reg0
    goto_table:1
 1. ip,reg0=0x1,dl_src=fa:16:3e:00:00:01,nw_src=10.0.0.1, priority 100, cookie {port('web1')}
    goto_table:2
 2. priority 0, cookie {static}
    goto_table:4
 4. ip, priority 90, cookie {static}
    ct(table=5,zone=NXM_NX_REG2[0..15])
    drop
     -> A clone of the packet is forked to recirculate.

===============================================================================
recirc(0x1) - resume conntrack with ct_state=new|trk
===============================================================================

bridge("br-int")
----------------
    thaw
        Resuming from table 5
 5. ct_state=+new+trk, priority 60, cookie {static}
    goto_table:6
 6. reg0=0x1, priority 100, cookie {port('web1')}
    set_field:{number['web']:#x}->reg3
    resubmit(,7)
     7. ip,reg3={number['web']:#x}, priority 10, cookie {rule}
            load:0x1->NXM_NX_REG4[0]
    goto_table:8
 8. ip,reg4=0x1/0x1, priority 75, cookie {static}
    ct(commit,zone=NXM_NX_REG2[0..15])
    drop
    goto_table:9
 9. reg2=0x1,dl_dst=fa:16:3e:00:00:03, priority 100, cookie {port('db1')}
    goto_table:10
10. ip, priority 50, cookie {static}
    goto_table:11
11. ip, priority 90, cookie {static}
    ct(table=12,zone=NXM_NX_REG2[0..15])
    drop

===============================================================================
recirc(0x2) - resume conntrack with ct_state=new|trk
===============================================================================

bridge("br-int")
----------------
12. ct_state=+new+trk, priority 60, cookie {static}
    goto_table:13
13. reg1=0x3, priority 100, cookie {port('db1')}
    set_field:0->reg4
    set_field:{number['db']:#x}->reg3
    resubmit(,14)
    14. No match.
            drop
    goto_table:15
15. No match.
    drop

Final flow: unchanged
Datapath actions: drop
"""


def test_parse_hops_names_flows_groups_and_the_decision():
    hops = parse_hops(_trace_text(VIEW), NAMES, CookieMap(VIEW))
    assert [h.table for h in hops][:3] == ["classify", "egress_spoof", "egress_guard"]
    assert hops[0].owner == "port web1" and hops[0].recirculation == 0
    rule = next(h for h in hops if h.table == "egress_rules")
    assert rule.owner == "rule web-out of group web" and rule.group == "web" and rule.nested
    assert next(h for h in hops if h.table == "ingress_rules").group == "db"
    verdict, sides = explain_switch(hops)
    assert verdict.action == "drop"
    assert verdict.why == "ingress: no ingress rule of group(s) db allows it"
    assert sides[0] == {"side": "egress", "result": "allowed",
                        "why": "allowed by rule web-out of group web"}


def test_unknown_and_foreign_cookies_are_named_as_such():
    cookies = CookieMap(VIEW)
    assert cookies.owner(0x1234).kind == "foreign"
    stale = cookies.owner(ids.cookie(ids.KIND_RULE, "gone", "r1"))
    assert stale.kind == "unknown" and "stale" in stale.text
    member = cookies.owner(ids.cookie(ids.KIND_MEMBER, "10.0.7.7"))
    assert member.kind == "member" and "10.0.7.7" in member.text


@pytest.mark.parametrize("request_,field", [
    (TraceRequest("nope", "db1", dst_port=1), "from"),
    (TraceRequest("10.1.1.1", "10.1.1.2", dst_port=1), "to"),
    (TraceRequest("web1", "db1"), "dst_port"),
    (TraceRequest("web1", "db1", dst_port=70000), "dst_port"),
    (TraceRequest("web1", "db1", dst_port=80, protocol="gre"), "protocol"),
    (TraceRequest("web1", "db1", dst_port=80, state="inv"), "state"),
    (TraceRequest("web1", "web1", dst_port=80), "to"),
    (TraceRequest("web1", "2001:db8::1", dst_port=80), "from"),
])
def test_bad_trace_requests_name_the_field(request_, field):
    with pytest.raises(ValidationError) as e:
        build_probe(VIEW, request_)
    assert e.value.field == field


def test_probe_from_outside_enters_by_the_uplink():
    probe = build_probe(VIEW, TraceRequest("203.0.113.9", "web1", dst_port=443))
    assert probe.flow.startswith("tcp,in_port=100,") and "tcp_dst=443" in probe.flow
    assert probe.packet.in_port == 100 and probe.ct_state == "trk,new"


def test_health_states():
    ok = {"running": True, "age": 1, "switch": {"connected": True},
          "local_ovsdb": {"connected": True},
          "sg_database": {"connected": True, "rtt_median_seconds": 0.002, "probes": 5,
                          "probes_lost": 0}, "errors": [], "ports": []}
    assert health.assess(ok)["state"] == "healthy"
    slow = {**ok, "sg_database": {**ok["sg_database"], "rtt_median_seconds": 0.4}}
    assert "slow" in health.assess(slow)["problems"][0]
    lossy = {**ok, "sg_database": {**ok["sg_database"], "probes_lost": 2}}
    assert "lossy" in health.assess(lossy)["problems"][0]
    assert health.assess({**ok, "running": False})["state"] == "down"
    assert health.assess({**ok, "age": 100})["state"] == "degraded"
    closed = {**ok, "ports": [{"interface": "vm-a", "state": "fail-closed", "reason": "x"}]}
    assert health.assess(closed)["state"] == "healthy" and health.assess(closed)["warnings"]


def test_ports_by_state():
    assert health.port_state({"state": "enforced"}) == "enforced"
    assert health.port_state({"state": "fail-closed", "reason": "no port named 'x' in the "
                              "security-group database"}) == "fail-closed"
    assert health.port_state({"state": "fail-closed",
                              "reason": "port x: mac='zz': invalid"}) == "error"


def test_errors_older_than_the_last_good_round_are_resolved():
    errs = [{"time": "2026-01-01T00:00:01.000+00:00", "error": "old"},
            {"time": "2026-01-01T00:00:03.000+00:00", "error": "new"}]
    active, resolved = health.split_errors(errs, "2026-01-01T00:00:02.000+00:00")
    assert [e["error"] for e in active] == ["new"] and [e["error"] for e in resolved] == ["old"]


def test_frames_parse_what_can_be_read():
    frame = bytes.fromhex("fa163e000001fa163e00000281000005080045000028000000004006000"
                          "00a0000010a0000029c4000500000000000000000500200000000000000")
    got = frames.parse_frame(frame)
    assert (got["vlan"], got["src_ip"], got["dst_ip"], got["proto"], got["sport"],
            got["dport"]) == (5, "10.0.0.1", "10.0.0.2", 6, 40000, 80)
    assert frames.parse_frame(frame[:20]) == {"eth_dst": "fa:16:3e:00:00:01",
                                              "eth_src": "fa:16:3e:00:00:02", "vlan": 5,
                                              "eth_type": "0x0800"}
    assert frames.parse_frame(b"\x00") == {}


def test_syslog_messages_are_rfc5424():
    event = {"event": "drop", "time": "2026-01-01T00:00:00.000Z", "host": "hv 1",
             "direction": "ingress", "port": 'p"1]', "network": 0, "protocol": "tcp",
             "src": "10.0.0.2", "src_port": 1, "dst": "10.0.0.1", "dst_port": 22,
             "group": None, "rule": None, "logs": ["l1"]}
    text = syslog.format_rfc5424(event, "readable", 42).decode()
    assert text.startswith("<133>1 2026-01-01T00:00:00.000Z hv1 sg-ofctl 42 DROP "
                           "[sg-ofctl@32473 event=\"drop\"")
    assert 'port="p\\"1\\]"' in text and text.endswith(" readable")
    with pytest.raises(errors.UserError, match="packet_log_syslog='tcp:x'"):
        syslog.SyslogSender("tcp:x")


def test_metrics_listen_needs_loopback_or_mutual_tls():
    assert metrics.parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert metrics.parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("0.0.0.0:9464", "10.0.0.1:9464"):
        with pytest.raises(errors.UserError, match="mutual TLS"):
            metrics.parse_listen(bad)
    for bad in ("localhost:1", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(errors.UserError, match="metrics_listen="):
            metrics.parse_listen(bad)
    tls = {"certfile": "c", "keyfile": "k", "client_cafile": "ca"}
    assert metrics.parse_listen("0.0.0.0:9464", tls) == ("0.0.0.0", 9464)


def test_the_dashboard_uses_only_metrics_the_agent_exposes():
    m = metrics.AgentMetrics()
    m.links(switch=True, local_ovsdb=True, sg_database=False)
    m.flows.labels("classify").set(3)
    m.log_events.labels("accept").inc()
    exposed = {s.name for f in text_string_to_metric_families(m.exposition().decode())
               for s in f.samples}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {m for p in dashboard["panels"] for t in p["targets"]
            for m in re.findall(r"\b(sg_ofctl_\w+|process_\w+)", t["expr"])}
    assert used and used <= exposed, used - exposed


def test_logging_off_adds_no_flows_and_a_logged_port_a_constant_number():
    plain = Compiler()
    plain.update(VIEW)
    logged = Compiler()
    logged.update(VIEW, {"web1": LogFlags(accept=True, drop=True)})
    extra = set(logged.flows) - set(plain.flows)
    assert set(plain.flows) <= set(logged.flows) and len(extra) == 10
    assert all(ids.cookie_kind(logged.flows[k].cookie) == "log" for k in extra)
    change = logged.update(VIEW)       # logging switched off: exactly those go
    assert {f.key for f in change.delete} == extra and not change.add
