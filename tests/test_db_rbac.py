"""OVSDB roles (RBAC) on the agents' relay, against a real ovsdb-server (issue
11): a hypervisor's certificate (CN = its host name) binds its own ports and
writes the rows its tags declare, and nothing else; every refusal names the
table.  The agent's own database layer (agent.sgdb) and, as an attacker would,
`ovsdb-client transact` with the hypervisor's key."""
from __future__ import annotations

import json
import subprocess

import pytest

from ovsdb_fixtures import ok
from sg_ofctl import desired, errors
from sg_ofctl.agent import sgdb as sgdb_mod
from sg_ofctl.agent import tags
from sg_ofctl.ovsdb import api as sg_api
from sg_ofctl.ovsdb import tls
from tls_fixtures import Pki, tls_database

BASELINE = """
groups:
  web:
    rules:
      - {protocol: tcp, dst_port: 80}
  spare: {}
ports:
  vm-a: {mac: "fa:16:3e:00:00:0a", ips: [10.0.0.10], groups: [web]}
  vm-b: {mac: "fa:16:3e:00:00:0b", ips: [10.0.0.11], groups: [web]}
"""


@pytest.fixture(scope="module")
def pki():
    p = Pki.create()
    yield p
    p.close()


@pytest.fixture(scope="module")
def db(pki):
    with tls_database(pki) as database:
        ok("apply", "-", db=database.member.local_remote, stdin=BASELINE)
        ok("--timeout", "5", "port", "list", db=database.member.local_remote)
        with sg_api.connect(database.member.local_remote) as admin:
            admin.run(admin.port_bind("vm-b", "compute-2"))
        yield database


@pytest.fixture
def agent(pki, db):
    """compute-1's agent database layer, through the relay with its certificate."""
    keys = pki.host("compute-1")
    tls.configure(tls.KeyMaterial(keys.private_key, keys.certificate, keys.ca_cert))
    handle = sgdb_mod.SgDatabase(db.agent_remote, lambda *a: None, timeout=10)
    yield handle
    handle.close()
    tls.forget()


def _hosts(db) -> dict:
    ports = json.loads(ok("port", "list", "-f", "json", db=db.member.local_remote))
    return {p["Name"]: p["Host"] for p in ports}


def _export(db) -> str:
    return ok("export", db=db.member.local_remote)


def test_the_agent_reads_everything_and_binds_its_own_port(agent, db):
    state = agent.snapshot()
    assert {"vm-a", "vm-b"} <= set(state.ports) and "web" in state.group_ids
    agent.bind(["vm-a"], "compute-1")
    assert _hosts(db)["vm-a"] == "compute-1"
    agent.unbind(["vm-a"], "compute-1")
    assert _hosts(db)["vm-a"] == ""


@pytest.mark.parametrize("attempt,table", [
    (lambda a: a.bind(["vm-a"], "compute-2"), "Port_Binding"),        # another host's name
    (lambda a: a.unbind(["vm-b"], "compute-2"), "Port_Binding"),      # another host's binding
    (lambda a: a.create_declared(tags.Declared("vm-x", "fa:16:3e:00:00:99", ("10.0.0.99",),
                                               ("web",)), "compute-2"), "Port"),
    (lambda a: a.update_declared(tags.Declared("vm-a", "fa:16:3e:00:00:0a", ("10.0.0.66",),
                                               ("web",))), "Port"),   # an admin's port
    (lambda a: a.delete_declared("vm-b", "compute-1") and None, None),
])
def test_the_agent_cannot_touch_other_hosts_or_admin_rows(agent, db, attempt, table):
    before = (_export(db), _hosts(db))
    if table is None:
        # deleting an admin's port falls back to removing its own (absent) binding
        attempt(agent)
    else:
        with pytest.raises(errors.PermissionDenied) as err:
            attempt(agent)
        assert str(err.value).startswith('permission denied: RBAC rules for client '
                                         '"compute-1" role "sg-agent" prohibit ')
        assert str(err.value).endswith(f'table "{table}"')
    assert (_export(db), _hosts(db)) == before


@pytest.mark.parametrize("write,table", [
    (lambda a: a.rule_create("web", {"protocol": "tcp", "dst_port": 22}), "Security_Group"),
    (lambda a: a.group_create("evil"), "Security_Group"),
    (lambda a: a.group_delete(["spare"]), "Security_Group"),
    (lambda a: a.port_set("vm-b", {"groups": ["default"]}), "Port"),
    (lambda a: a.port_delete(["vm-b"]), "Port"),
    (lambda a: a.apply(desired.load(BASELINE.replace("dst_port: 80", "dst_port: 81"))),
     "Security_Group"),
])
def test_the_agent_cannot_write_policy(agent, db, write, table):
    before = _export(db)
    with agent._writer() as api:         # the connection the agent writes rows with
        with pytest.raises(errors.PermissionDenied) as err:
            api.run(write(api))
    assert 'RBAC rules for client "compute-1"' in str(err.value)
    assert f'table "{table}' in str(err.value)
    assert _export(db) == before


def test_the_agent_creates_updates_and_deletes_the_rows_of_its_own_tags(agent, db):
    decl = tags.Declared("vm-tagged", "fa:16:3e:00:00:77", ("10.0.0.77",), ("web",))
    agent.create_declared(decl, "compute-1")
    export = _export(db)
    assert "vm-tagged" in export and _hosts(db)["vm-tagged"] == "compute-1"
    agent.update_declared(tags.Declared("vm-tagged", "fa:16:3e:00:00:77", ("10.0.0.78",),
                                        ("web",)))
    assert "10.0.0.78" in _export(db)
    assert agent.delete_declared("vm-tagged", "compute-1") is True
    assert "vm-tagged" not in _export(db) and "vm-tagged" not in _hosts(db)


def _transact(keys, remote, ops) -> str:
    """`ovsdb-client transact` with a hypervisor's key: no sg-ofctl code in the way."""
    done = subprocess.run(["ovsdb-client", "--timeout=10", f"--private-key={keys.private_key}",
                           f"--certificate={keys.certificate}", f"--ca-cert={keys.ca_cert}",
                           "transact", remote, json.dumps(ops)],
                          capture_output=True, text=True)
    return done.stdout + done.stderr


@pytest.mark.parametrize("ops,table", [
    (["SG_ofctl", {"op": "insert", "table": "Security_Group",
                   "row": {"id": "x", "name": "evil", "stateful": True}}], "Security_Group"),
    (["SG_ofctl", {"op": "update", "table": "Security_Group_Rule", "where": [],
                   "row": {"remote_ip_prefix": "0.0.0.0/0"}}], "Security_Group_Rule"),
    (["SG_ofctl", {"op": "delete", "table": "Security_Group_Rule", "where": []}],
     "Security_Group_Rule"),
    (["SG_ofctl", {"op": "update", "table": "Port", "where": [["name", "==", "vm-a"]],
                   "row": {"fixed_ips": "10.9.9.9"}}], "Port"),
    (["SG_ofctl", {"op": "insert", "table": "Port_Binding",
                   "row": {"port": "vm-a", "host": "compute-2"}}], "Port_Binding"),
    (["SG_ofctl", {"op": "delete", "table": "RBAC_Role", "where": []}], "RBAC_Role"),
    (["SG_ofctl", {"op": "mutate", "table": "Port", "where": [],
                   "mutations": [["external_ids", "insert",
                                  ["map", [["sg-ofctl-created-by", "compute-1"]]]]]}], "Port"),
    (["SG_ofctl_Listeners", {"op": "insert", "table": "Connection",
                             "row": {"target": "ptcp:1:127.0.0.1", "role": ""}}], "Connection"),
])
def test_raw_transactions_with_a_hypervisor_key_are_refused(pki, db, ops, table):
    before = _export(db)
    out = _transact(pki.host("compute-1"), db.agent_remote, ops)
    assert "permission error" in out and table in out, out
    assert _export(db) == before


def test_one_host_writes_command_under_the_agent_role(agent, db):
    """The agents' batched writes (host_writes): a tag-made row created and bound,
    an admin's port bound, in one transaction; then unbound and deleted."""
    from sg_ofctl.ovsdb import host_writes as hw
    spec = hw.PortSpec("vm-batch", "fa:16:3e:00:00:55", ("10.0.0.55",), ("web",),
                       {tags.CREATED_BY: "compute-1"})
    writes = hw.HostWrites(host="compute-1", create=(spec,), bind=("vm-a",))
    with agent._writer() as api:
        result = api.run(api.host_writes(writes))
    assert result.written == 2 and not result.failed, result
    hosts = _hosts(db)
    assert hosts["vm-batch"] == "compute-1" and hosts["vm-a"] == "compute-1"
    with agent._writer() as api:
        result = api.run(api.host_writes(hw.HostWrites(host="compute-1", delete=("vm-batch",),
                                                       unbind=("vm-a", "vm-b"))))
    assert result.written == 2 and not result.failed, result
    hosts = _hosts(db)
    assert "vm-batch" not in hosts and hosts["vm-a"] == "" and hosts["vm-b"] == "compute-2"
    # the same batch for another host's name is refused as a whole
    before = _export(db), _hosts(db)
    with agent._writer() as api, pytest.raises(errors.PermissionDenied):
        api.run(api.host_writes(hw.HostWrites(host="compute-2", bind=("vm-a",))))
    assert (_export(db), _hosts(db)) == before
