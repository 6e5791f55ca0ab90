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
from sg_ofctl.ovsdb import bindings as ovsdb_bindings
from sg_ofctl.ovsdb import host_writes as hw
from sg_ofctl.ovsdb import tls
from tls_fixtures import pki, tls_database  # noqa: F401 (fixture)

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


def _write(agent, **writes):
    """The agent's one write path: a HostWrites plan for compute-1 (or `host`)."""
    return agent.write(hw.HostWrites(host=writes.pop("host", "compute-1"), **writes))


def _spec(name, mac, ips, created_by="compute-1"):
    return hw.PortSpec(name, mac, ips, ("web",), {tags.CREATED_BY: created_by,
                                                  tags.TAGS_APPLIED: "x"})


@pytest.fixture
def agent_api(pki, db):
    """A plain connection with compute-1's certificate (the same role)."""
    keys = pki.host("compute-1")
    tls.configure(tls.KeyMaterial(keys.private_key, keys.certificate, keys.ca_cert))
    handle = sg_api.connect(db.agent_remote, initialize=False, leader_only=False)
    yield handle
    handle.close()
    tls.forget()


def test_the_agent_reads_everything_and_binds_its_own_port(agent, db):
    state = agent.snapshot()
    assert {"vm-a", "vm-b"} <= set(state.ports) and "web" in state.group_ids
    assert _write(agent, bind=("vm-a",)).written == 1
    assert _hosts(db)["vm-a"] == "compute-1"
    assert _write(agent, unbind=("vm-a",)).written == 1
    assert _hosts(db)["vm-a"] == ""


@pytest.mark.parametrize("writes,table", [
    ({"host": "compute-2", "bind": ("vm-a",)}, "Port_Binding"),     # another host's name
    ({"host": "compute-2", "unbind": ("vm-b",)}, "Port_Binding"),   # another host's binding
    ({"create": (_spec("vm-x", "fa:16:3e:00:00:99", ("10.0.0.99",), "compute-2"),)}, "Port"),
    ({"update": (_spec("vm-a", "fa:16:3e:00:00:0a", ("10.0.0.66",)),)}, "Port"),  # admin's
])
def test_the_agent_cannot_touch_other_hosts_or_admin_rows(agent, db, writes, table):
    before = (_export(db), _hosts(db))
    with pytest.raises(errors.PermissionDenied) as err:
        _write(agent, **writes)
    assert str(err.value).startswith('permission denied: RBAC rules for client '
                                     '"compute-1" role "sg-agent" prohibit ')
    assert str(err.value).endswith(f'table "{table}"')
    assert (_export(db), _hosts(db)) == before


def test_deleting_an_admins_port_it_has_not_bound_does_nothing(agent, db):
    before = (_export(db), _hosts(db))
    assert _write(agent, delete=("vm-b",)).written == 0
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
def test_the_agent_cannot_write_policy(agent_api, db, write, table):
    before = _export(db)
    with pytest.raises(errors.PermissionDenied) as err:
        agent_api.run(write(agent_api))
    assert 'RBAC rules for client "compute-1"' in str(err.value)
    assert f'table "{table}' in str(err.value)
    assert _export(db) == before


def test_the_agent_creates_updates_and_deletes_the_rows_of_its_own_tags(agent, db):
    result = _write(agent, create=(_spec("vm-tagged", "fa:16:3e:00:00:77", ("10.0.0.77",)),))
    assert result.written == 1 and not result.failed, result
    assert "vm-tagged" in _export(db) and _hosts(db)["vm-tagged"] == "compute-1"
    result = _write(agent, update=(_spec("vm-tagged", "fa:16:3e:00:00:77", ("10.0.0.78",)),))
    assert result.written == 1 and "10.0.0.78" in _export(db)
    assert _write(agent, delete=("vm-tagged",)).written == 1
    assert "vm-tagged" not in _export(db) and "vm-tagged" not in _hosts(db)


def test_a_tag_made_row_another_host_bound_meanwhile_stays(agent, db):
    """The VM moved: its new host's binding keeps the row when the old host lets go."""
    _write(agent, create=(_spec("vm-moving", "fa:16:3e:00:00:78", ("10.0.0.79",)),))
    with sg_api.connect(db.member.local_remote) as admin:   # compute-2's bind, as admin
        admin.run(bindings_bind(admin, "vm-moving", "compute-2"))
    result = _write(agent, delete=("vm-moving",))
    assert "vm-moving" in result.skipped
    assert _hosts(db)["vm-moving"] == "compute-2"
    with sg_api.connect(db.member.local_remote) as admin:
        admin.run(admin.port_delete(["vm-moving"]))
    assert "vm-moving" not in _hosts(db)


def bindings_bind(api, name, host):
    """Add one Port_Binding row (what another host's agent would write)."""
    from ovsdbapp.backend.ovs_idl import command

    class Add(command.BaseCommand):
        def run_idl(self, txn):
            ovsdb_bindings.insert(txn, api, name, host)
    return Add(api)


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
