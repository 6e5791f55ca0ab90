"""The agent's pure parts: instance tags, the view builder (one bad port never
closes the others), conntrack flush choice, the status file."""
import pytest

from sg_ofctl import model
from sg_ofctl.agent import revoke, status, tags
from sg_ofctl.agent.local_ovs import LocalInterface, LocalState
from sg_ofctl.agent.sgdb import PortRecord, SgState
from sg_ofctl.agent.view import ViewBuilder

GROUP_IDS = {"web": "g-web", "g-web": "g-web", "default": "default"}


def test_tags_declare_a_port():
    decl = tags.declared("tap1", {"iface-id": "p1", "attached-mac": "FA:16:3E:00:00:01",
                                  "sg-ofctl-groups": "web, default",
                                  "sg-ofctl-ips": "10.0.0.5,fd00::5"}, GROUP_IDS)
    assert decl == tags.Declared("p1", "fa:16:3e:00:00:01", ("10.0.0.5", "fd00::5"),
                                 ("web", "default"))
    assert tags.declared("tap1", {"iface-id": "p1"}, GROUP_IDS) is None
    assert tags.declared("tap1", {"sg-ofctl-ips": "10.0.0.5"}, GROUP_IDS) is None


@pytest.mark.parametrize("ids,key,value", [
    ({"sg-ofctl-groups": "web,nope", "sg-ofctl-ips": "10.0.0.5"}, "sg-ofctl-groups", "web,nope"),
    ({"sg-ofctl-ips": "10.0.0.5,10.0.0.300"}, "sg-ofctl-ips", "10.0.0.5,10.0.0.300"),
    ({"sg-ofctl-ips": ""}, "sg-ofctl-ips", ""),
])
def test_bad_tags_name_interface_key_and_value(ids, key, value):
    with pytest.raises(tags.TagError) as err:
        tags.declared("tap9", {"iface-id": "p9", "attached-mac": "fa:16:3e:00:00:09", **ids},
                      GROUP_IDS)
    text = str(err.value)
    assert "tap9" in text and key in text and repr(value) in text


def test_missing_mac_tag():
    with pytest.raises(tags.TagError, match="attached-mac"):
        tags.declared("tap9", {"iface-id": "p9", "sg-ofctl-ips": "10.0.0.9"}, GROUP_IDS)


def _state(ports, groups=()):
    groups = {g.id: g for g in (model.default_group(), *groups)}
    recs = {p.id: PortRecord(p.id, p.id, p, None, {}) for p in ports}
    members = {"default": model.MemberAddresses.parse(
        [a for p in ports if not p.security_groups for a in p.addresses()])}
    return SgState(groups, {g: g for g in groups}, recs, members)


def _iface(name, ofport, iface_id=None):
    return LocalInterface(name, name, ofport, {"iface-id": iface_id} if iface_id else {})


def test_view_leaves_out_only_the_bad_ports():
    ok = model.Port(id="ok", mac="fa:16:3e:00:00:01", fixed_ips=("10.0.0.1",))
    clash1 = model.Port(id="c1", mac="fa:16:3e:00:00:02", fixed_ips=("10.0.0.2",))
    clash2 = model.Port(id="c2", mac="fa:16:3e:00:00:02", fixed_ips=("10.0.0.3",))
    nogroup = model.Port(id="ng", mac="fa:16:3e:00:00:04", fixed_ips=("10.0.0.4",),
                         security_groups=("missing",))
    local = LocalState(True, 1, (_iface("t1", 1, "ok"), _iface("t2", 2, "c1"),
                                 _iface("t3", 3, "c2"), _iface("t4", 4, "ng"),
                                 _iface("t5", 5, "unknown"), _iface("up", 6)))
    built = ViewBuilder().build(local, _state([ok, clash1, clash2, nogroup]))
    assert [p.id for p in built.view.ports] == ["ok"]
    assert built.view.ports[0].ofport == 1 and built.view.uplinks == (6,)
    assert set(built.problems) == {"t2", "t3", "t4", "t5"}
    assert "missing" in built.problems["t4"] and "unknown" in built.problems["t5"]


def test_view_reuses_unchanged_ports():
    port = model.Port(id="ok", mac="fa:16:3e:00:00:01", fixed_ips=("10.0.0.1",))
    builder, local, sg = ViewBuilder(), LocalState(True, 1, (_iface("t1", 1, "ok"),)), \
        _state([port])
    first = builder.build(local, sg).view
    assert builder.build(local, sg).view.ports is first.ports


def test_flush_only_for_ports_that_left():
    a = model.Port(id="a", mac="fa:16:3e:00:00:01", fixed_ips=("10.0.0.1",), ofport=1,
                   network=3)
    b = model.Port(id="b", mac="fa:16:3e:00:00:02", fixed_ips=("10.0.0.2",), ofport=2)
    groups = {"default": model.default_group()}
    members = {"default": frozenset({"10.0.0.1", "10.0.0.2", "10.9.9.9"})}
    old = model.HostView(ports=(a, b), groups=groups, members=members)
    fewer_members = model.HostView(ports=(a, b), groups=groups,
                                   members={"default": frozenset({"10.0.0.1", "10.0.0.2"})})
    assert revoke.flushes(old, fewer_members) == []     # left to the ct_mark scheme
    gone = model.HostView(ports=(b,), groups=groups, members=members)
    # zones are per port (its ofport): a's whole zone; no peer on its network
    assert revoke.flushes(old, gone) == [revoke.Flush(1)]
    c = model.Port(id="c", mac="fa:16:3e:00:00:03", fixed_ips=("10.0.0.3",), ofport=3,
                   network=3)
    with_peer = model.HostView(ports=(a, b, c), groups=groups, members=members)
    peer_left = model.HostView(ports=(b, c), groups=groups, members=members)
    # ...and its address in the zones of its network's other ports (their halves)
    assert revoke.flushes(with_peer, peer_left) == [
        revoke.Flush(1), revoke.Flush(3, src="10.0.0.1"), revoke.Flush(3, dst="10.0.0.1")]
    # a new port took a's ofport (its zone) in the same round: only a's addresses there
    d = model.Port(id="d", mac="fa:16:3e:00:00:04", fixed_ips=("10.0.0.4",), ofport=1,
                   network=3)
    reused = model.HostView(ports=(b, c, d), groups=groups, members=members)
    assert revoke.flushes(with_peer, reused) == [
        revoke.Flush(1, src="10.0.0.1"), revoke.Flush(1, dst="10.0.0.1"),
        revoke.Flush(3, src="10.0.0.1"), revoke.Flush(3, dst="10.0.0.1")]


def test_status_file_round_trip(tmp_path):
    path = status.status_path(tmp_path, "br-x")
    status.write(path, {"state": "running", "pid": 1 << 22 + 1, "written": 0})
    data = status.read(path)
    assert data["running"] is False and data["age"] > 0


def test_a_stray_interface_never_takes_the_port_from_its_owner():
    port = model.Port(id="p", mac="fa:16:3e:00:00:01", fixed_ips=("10.0.0.1",))
    sg = _state([port])
    builder = ViewBuilder()
    first = builder.build(LocalState(True, 1, (_iface("old", 1, "p"),)), sg)
    assert list(first.ports_by_iface) == ["old"]
    both = LocalState(True, 1, (_iface("old", 1, "p"), _iface("stray", 2, "p")))
    built = builder.build(both, sg)
    assert list(built.ports_by_iface) == ["old"]
    assert "already enforced on interface 'old'" in built.problems["stray"]
    # A restarted agent remembers the owner from its last status file.
    again = ViewBuilder(owners={"p": "old"}).build(both, sg)
    assert list(again.ports_by_iface) == ["old"]
    # Nobody known: nobody guesses.
    fresh = ViewBuilder().build(both, sg)
    assert not fresh.ports_by_iface and set(fresh.problems) == {"old", "stray"}
    # The hypervisor retires the old one: the newcomer takes over.
    retired = LocalInterface("old", "old", 1, {"iface-id": "p", "sg-ofctl-retired": "true"})
    moved = builder.build(LocalState(True, 1, (retired, _iface("stray", 2, "p"))), sg)
    assert list(moved.ports_by_iface) == ["stray"] and "retired" in moved.problems["old"]
    gone = ViewBuilder(owners={"p": "old"}).build(
        LocalState(True, 1, (_iface("stray", 2, "p"),)), sg)
    assert list(gone.ports_by_iface) == ["stray"]


def test_previous_owners_from_the_status_file(tmp_path):
    from sg_ofctl.agent import claims
    path = tmp_path / "agent-br.json"
    assert claims.previous_owners(path) == {}
    status.write(path, {"ports": [{"port": "p", "interface": "old", "state": "enforced"},
                                  {"port": "p", "interface": "stray", "state": "fail-closed"}]})
    assert claims.previous_owners(path) == {"p": "old"}


def test_audit_repairs_reach_the_metrics_counter_but_not_the_start_catch_up():
    from sg_ofctl.agent.audit import AuditResult, Auditor
    from sg_ofctl.observe.metrics import AgentMetrics
    auditor, metrics = Auditor(60), AgentMetrics()
    auditor.on_repairs = metrics.audit_repairs.inc
    found = AuditResult(3, 2, 1, 0, 0.1, 0.2, 0.1)
    auditor.record("start", found, "t0", count=False)
    auditor.record("periodic", found, "t1")
    auditor.record("periodic", AuditResult(0, 0, 0, 0, 0.1, 0.2, 0.1), "t2")
    assert auditor.repairs_total == 3
    assert metrics.registry.get_sample_value("sg_ofctl_audit_repairs_total") == 3
