"""An agent's writes for its host (ovsdb/host_writes.py) on a real ovsdb-server,
through the agent's long-lived writer connection (SgDatabase.write): one
transaction, only the rows it touches replicated, items re-checked on fresh
rows (a row made meanwhile by another agent is the benign race it is), one bad
item reported by name while the others are written, nothing written when
nothing is to be done."""
from __future__ import annotations

import pytest

from ovsdb_fixtures import new_database, ok
from sg_ofctl.agent.sgdb import SgDatabase
from sg_ofctl.ovsdb import api as sg_api
from sg_ofctl.ovsdb.host_writes import HostWrites, PortSpec

pytestmark = pytest.mark.root   # a real ovsdb-server

BASE = """
groups:
  web: {}
ports:
  api-1: {mac: 'fa:16:3e:00:08:01', ips: [10.0.8.1], groups: [web]}
  pairs-1: {mac: 'fa:16:3e:00:08:02', ips: [10.0.8.2],
            allowed_addresses: ['10.0.8.200,fa:16:3e:00:08:99']}
"""


def spec(n, mac=None, ips=None, groups=("web",), **ids) -> PortSpec:
    return PortSpec(f"vm-{n}", mac or f"fa:16:3e:00:09:{n:02x}", ips or (f"10.0.9.{n}",),
                    tuple(groups), {"sg-ofctl-created-by": "hv1", **ids})


@pytest.fixture
def env():
    with new_database() as db:
        ok("apply", "-", db=db.remote, stdin=BASE)
        agent = SgDatabase(db.remote, on_change=lambda: None)
        reader = sg_api.connect(db.remote)
        try:
            yield db, agent, reader
        finally:
            agent.close()
            reader.close()


def ports(reader) -> dict:
    return reader.read(lambda t: {r.name: r for r in t["Port"].rows.values()})


def hosts(reader) -> dict:
    """{port name: its hosts, comma-joined} from the Port_Binding rows."""
    from sg_ofctl.ovsdb import bindings
    return reader.read(lambda t: {name: ",".join(sorted(h)) for name, h in
                                  bindings.hosts_by_port(t).items()})


def revision(reader) -> int:
    return reader.read(lambda t: next(iter(t["Global"].rows.values())).revision)


def wait_for(reader, predicate, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not predicate(ports(reader)):
        assert time.monotonic() < deadline, "the rows did not arrive"
        time.sleep(0.01)


def test_creates_binds_and_replicates_only_what_it_writes(env):
    db, agent, reader = env
    result = agent.write(HostWrites("hv1", create=tuple(spec(n) for n in range(1, 51)),
                                    bind=("api-1",)))
    assert (result.written, result.failed, result.skipped) == (51, {}, {})
    wait_for(reader, lambda p: len(p) == 52)
    rows = ports(reader)
    assert hosts(reader)["vm-7"] == "hv1" and hosts(reader)["api-1"] == "hv1"
    assert [g.name for g in rows["vm-7"].security_groups] == ["web"]
    assert rows["vm-7"].external_ids == {"sg-ofctl-created-by": "hv1"}
    # The writer replicates the rows it wrote and the rows with pairs, not every port.
    held = agent._writer.read(lambda t: sorted(r.name for r in t["Port"].rows.values()))
    assert "pairs-1" in held and len(held) <= 52
    agent.write(HostWrites("hv1", bind=("vm-1",)))
    held = agent._writer.read(lambda t: sorted(r.name for r in t["Port"].rows.values()))
    assert held == ["vm-1"]                        # a bind needs no clash check


def test_a_row_made_meanwhile_is_skipped_and_a_bad_item_does_not_stop_the_others(env):
    db, agent, reader = env
    # Another agent made vm-1 since our snapshot: "a port with this name exists" is benign.
    ok("port", "create", "vm-1", "--mac", "fa:16:3e:00:09:01", "--ip", "10.0.9.1",
       db=db.remote)
    wait_for(reader, lambda p: "vm-1" in p)       # and so its bump of the revision
    before = revision(reader)
    result = agent.write(HostWrites("hv1", create=(
        spec(1),
        spec(2, mac="fa:16:3e:00:08:99"),      # another port's allowed-pair MAC
        spec(3, ips=("10.0.8.1",)),             # another port's fixed IP
        spec(4, groups=("nosuch",)),
        spec(5))))
    assert set(result.skipped) == {"vm-1"}
    assert "mac_address='fa:16:3e:00:08:99'" in result.failed["vm-2"]
    assert "pairs-1" in result.failed["vm-2"]
    assert "fixed_ips='10.0.8.1'" in result.failed["vm-3"]
    assert "security_groups='nosuch'" in result.failed["vm-4"]
    assert result.written == 1
    wait_for(reader, lambda p: "vm-5" in p)
    assert revision(reader) == before + 1          # serialised with the other writers
    assert "vm-2" not in ports(reader) and "vm-1" not in hosts(reader)


def test_nothing_to_do_writes_nothing_and_unbind_delete_only_rows_bound_here(env):
    db, agent, reader = env
    agent.write(HostWrites("hv1", create=(spec(1), spec(2)), bind=("api-1",)))
    wait_for(reader, lambda p: hosts(reader).get("api-1") == "hv1")
    before = revision(reader)
    again = agent.write(HostWrites("hv1", create=(spec(1), spec(2)), bind=("api-1",)))
    assert again.written == 0 and set(again.skipped) == {"vm-1", "vm-2"}
    assert revision(reader) == before
    # Another host took api-1 and vm-2 meanwhile: our unbind/delete remove only our
    # own bindings, and keep the tag-made row vm-2 that hv2 holds now.
    other = SgDatabase(db.remote, on_change=lambda: None)
    try:
        other.write(HostWrites("hv2", bind=("api-1", "vm-2")))
    finally:
        other.close()
    wait_for(reader, lambda p: hosts(reader).get("vm-2") == "hv1,hv2")
    result = agent.write(HostWrites("hv1", delete=("vm-1", "vm-2"), unbind=("api-1",)))
    assert result.written == 3 and set(result.skipped) == {"vm-2"}
    wait_for(reader, lambda p: "vm-1" not in p)
    assert "vm-2" in ports(reader)
    assert hosts(reader)["vm-2"] == "hv2" and hosts(reader)["api-1"] == "hv2"


def test_tag_update_rewrites_the_row_and_is_checked(env):
    db, agent, reader = env
    agent.write(HostWrites("hv1", create=(spec(1),)))
    result = agent.write(HostWrites("hv1", update=(
        PortSpec("vm-1", "fa:16:3e:00:09:01", ("10.0.9.101",), (), {"sg-ofctl-tags": "x"}),)))
    assert result.written == 1
    wait_for(reader, lambda p: p["vm-1"].fixed_ips == ["10.0.9.101"])
    row = ports(reader)["vm-1"]
    assert row.security_groups == [] and row.external_ids["sg-ofctl-tags"] == "x"
    assert row.revision_number == 2
    bad = agent.write(HostWrites("hv1", update=(
        PortSpec("vm-1", "fa:16:3e:00:09:01", ("10.0.8.2",), (), {}),)))
    assert "fixed_ips='10.0.8.2'" in bad.failed["vm-1"]


def test_two_agents_writing_at_once_both_succeed_and_share_a_name_benignly(env):
    import threading
    db, agent, reader = env
    other = SgDatabase(db.remote, on_change=lambda: None)
    shared = spec(99)                         # both hosts see this VM (a move, a restart)
    results = {}

    def write(name, handle, first):
        specs = tuple(spec(n) for n in range(first, first + 40)) + (shared,)
        results[name] = handle.write(HostWrites(name, create=specs))
    try:
        threads = [threading.Thread(target=write, args=("hv1", agent, 1)),
                   threading.Thread(target=write, args=("hv2", other, 41))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        other.close()
    assert results["hv1"].failed == {} and results["hv2"].failed == {}
    # The shared row is made once; the other agent skips it as the race it is.
    assert results["hv1"].written + results["hv2"].written == 81
    assert {**results["hv1"].skipped, **results["hv2"].skipped}.keys() == {"vm-99"}
    wait_for(reader, lambda p: len([n for n in p if n.startswith("vm-")]) == 81)
