"""The per-port conntrack budget's bookkeeping (agent/ctbudget.py), with a
recording stand-in for ovs-vswitchd's control socket; the real thing is
tests/test_agent_ct_budget.py."""
from dataclasses import dataclass

import pytest

from sg_ofctl import model, pipeline
from sg_ofctl.agent import ctbudget
from sg_ofctl.dataplane.ctlimits import VswitchdError, ovs_rundir
from sg_ofctl.model import ValidationError


class FakeVswitchd:
    def __init__(self):
        self.limits: dict[int, int] = {}
        self.calls: list = []
        self.down = False

    def set_zone_limits(self, limits):
        if self.down:
            raise VswitchdError("no socket")
        self.calls.append(("set", dict(limits)))
        self.limits.update(limits)

    def delete_zone_limits(self, zones):
        if self.down:
            raise VswitchdError("no socket")
        self.calls.append(("del", sorted(zones)))
        for z in zones:
            self.limits.pop(z, None)


class FakeConn:
    def __init__(self):
        self.flushed = []

    def flush_conntrack_many(self, flushes):
        self.flushed += [zone if src is None and dst is None else (zone, src, dst)
                         for zone, src, dst in flushes]


def port(n: int, **kw) -> model.Port:
    return model.Port(id=f"p{n}", mac=f"fa:16:3e:00:00:{n:02x}", fixed_ips=(f"10.0.0.{n}",),
                      ofport=n, **kw)


def view(*ports) -> model.HostView:
    return model.HostView(ports=ports, groups={"default": model.default_group()},
                          members={"default": frozenset()})


@dataclass(frozen=True)
class Iface:
    ofport: int
    iface_id: str | None


def ifaces(*ports, uplinks=()) -> list:
    """The local interfaces of these ports (and of uplinks: no iface-id)."""
    return [Iface(p.ofport, p.id) for p in ports] + [Iface(o, None) for o in uplinks]


def test_every_instance_interface_gets_its_zone_limit_until_it_leaves():
    vs, conn, errors = FakeVswitchd(), FakeConn(), []
    budget = ctbudget.ConntrackBudget(500, vs, on_error=errors.append)
    p1, p2, p4 = port(1), port(2), port(4)
    first = view(p1, p2)
    # p4's interface is there before its port is enforced: its zone is limited already
    budget.after_flows(conn, None, first, ifaces(p1, p2, p4, uplinks=[9]))
    assert vs.limits == {1: 500, 2: 500, 4: 500}           # the uplink has no zone
    vs.calls.clear()
    second = view(p1, p2, p4)
    budget.after_flows(conn, first, second, ifaces(p1, p2, p4))   # no call
    assert vs.calls == [] and conn.flushed == []
    third = view(p2, p4)                                   # p1 and its interface leave
    # p1's whole zone flushed, and its address in its network peers' zones
    assert budget.after_flows(conn, second, third, ifaces(p2, p4)) == 5
    assert conn.flushed == [1, (2, "10.0.0.1", None), (2, None, "10.0.0.1"),
                            (4, "10.0.0.1", None), (4, None, "10.0.0.1")]
    assert vs.limits == {2: 500, 4: 500} and vs.calls == [("del", [1])]
    vs.limits.clear()                                      # ovs-vswitchd restarted
    budget.after_flows(conn, None, third, ifaces(p2, p4))  # a new switch connection
    assert vs.limits == {2: 500, 4: 500} and errors == []


def test_an_unreachable_vswitchd_is_reported_and_retried(monkeypatch):
    vs, errors, kicks = FakeVswitchd(), [], []
    monkeypatch.setattr(ctbudget, "RETRY", 0.01)
    budget = ctbudget.ConntrackBudget(100, vs, on_error=errors.append, kick=kicks.append)
    vs.down = True
    budget.after_flows(FakeConn(), None, view(port(1)), ifaces(port(1)))
    assert "conntrack zone limits not applied" in errors[0] and "no socket" in errors[0]
    assert budget.describe()["error"] and budget.applied == {}
    budget._retry.join(2)
    assert kicks == ["conntrack limits"]
    vs.down = False
    budget.after_flows(FakeConn(), view(port(1)), view(port(1)), ifaces(port(1)))
    assert vs.limits == {1: 100} and budget.describe() == {
        "limit_per_port": 100, "zones_limited": 1, "error": None}


def test_no_limit_sets_none():
    vs = FakeVswitchd()
    ctbudget.ConntrackBudget(0, vs).after_flows(FakeConn(), None, view(port(1)),
                                                ifaces(port(1)))
    assert vs.calls == []


@pytest.mark.parametrize("bad", [-1, 3_000_001, True, "100", 1.5])
def test_a_bad_limit_is_refused_naming_the_option(bad):
    with pytest.raises(ValidationError, match="conntrack_limit_per_port"):
        ctbudget.check_limit(bad)


def test_zones_are_ofports_standalone_and_the_vlan_in_neutron():
    assert pipeline.STANDALONE.port_zone(7, 3) == 7
    assert pipeline.neutron_placement().port_zone(7, 3) == 3
    with pytest.raises(ValueError, match="ofport 65280"):
        pipeline.STANDALONE.port_zone(0xFF00, 0)


def test_the_control_socket_is_found_in_ovs_rundir(monkeypatch):
    monkeypatch.delenv("OVS_RUNDIR", raising=False)
    assert str(ovs_rundir("unix:/x/y/db.sock")) == "/x/y"
    assert str(ovs_rundir("tcp:127.0.0.1:6640")) == "/var/run/openvswitch"
    monkeypatch.setenv("OVS_RUNDIR", "/r")
    assert str(ovs_rundir("unix:/x/y/db.sock")) == "/r"


def test_the_agent_refuses_a_bad_limit_before_it_touches_anything(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "sg_ofctl.cli", "--db", "unix:/nonexistent",
                           "agent", "--bridge", "br-none", "--run-dir", str(tmp_path),
                           "--conntrack-limit-per-port", "5000000"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "conntrack_limit_per_port=5000000: must be an integer from 0" in done.stderr
    assert list(tmp_path.iterdir()) == []
