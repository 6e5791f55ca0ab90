"""`sg-ofctl trace` on a real ovs-vswitchd: for every golden scenario the
switch's verdict (ofproto/trace through every conntrack recirculation) and the
reference evaluator agree on a set of packets; a flow removed behind the
compiler's back is reported as a disagreement."""
import itertools

import pytest

from ovs_testbed import OvsTestbed
from sg_ofctl import golden
from sg_ofctl.compiler import compile_host
from sg_ofctl.model import ValidationError
from sg_ofctl.observe.trace import TraceRequest, run_ofproto_trace, trace

pytestmark = pytest.mark.root   # real OVS / namespaces

SCENARIOS = golden.scenarios()
OUTSIDE = ("203.0.113.9", "2001:db8::9")
SERVICES = (("tcp", 22), ("tcp", 80), ("tcp", 443), ("tcp", 5432), ("udp", 53),
            ("icmp", None))


def switch_with(view):
    """A private bridge with a port at every ofport of the view, and its flows."""
    tb = OvsTestbed().start()
    try:
        tb.name_tables()
        for ofport in [p.ofport for p in view.ports] + list(view.uplinks):
            tb.vsctl("add-port", tb.bridge, f"p{ofport}", "--", "set", "Interface",
                     f"p{ofport}", "type=internal", f"ofport_request={ofport}")
        done = tb.add_flows_ofctl(compile_host(view))
        assert done.returncode == 0, done.stderr
    except BaseException:
        tb.close()
        raise
    return tb


def runner(tb):
    return lambda probe: run_ofproto_trace(tb.bridge, probe, f"{tb.dir}/ovs-vswitchd.ctl",
                                           env=tb.env)


def requests(view):
    ends = [p.name or p.id for p in view.ports] + list(OUTSIDE)
    remote = sorted(a for addrs in view.members.values() for a in addrs
                    if "/" not in a and a not in {ip for p in view.ports for ip in p.fixed_ips})
    ends += remote[:1]
    local = {p.name or p.id for p in view.ports}
    for src, dst in itertools.permutations(ends, 2):
        if src not in local and dst not in local:
            continue
        for (proto, port), state in itertools.product(SERVICES, ("new", "reply")):
            yield TraceRequest(src, dst, protocol=proto, dst_port=port, state=state)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_trace_agrees_with_the_reference_on_every_golden_scenario(path):
    view = golden.load_view(path)
    tb = switch_with(view)
    try:
        run = runner(tb)
        traced, verdicts, disagreements = 0, set(), []
        for request in requests(view):
            try:
                result = trace(view, request, run)
            except ValidationError:      # e.g. an IPv6 end for an IPv4-only port
                continue
            traced += 1
            verdicts.add(result.switch.action)
            if not result.agree:
                disagreements.append(f"{request}: {result.disagreement()}")
        assert not disagreements, "\n".join(disagreements[:10])
        assert traced >= 40
        assert {"drop", "output"} <= verdicts    # the set exercises both outcomes
    finally:
        tb.close()
