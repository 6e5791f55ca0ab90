"""Every sg-ofctl group/rule/port command and output format, on a real ovsdb-server."""
from __future__ import annotations

import json

import pytest
import yaml

from ovsdb_fixtures import ok, run_cli, sgdb  # noqa: F401  (fixture)

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


def show(db, kind, ref):
    return json.loads(ok(kind, "show", ref, "-f", "json", db=db.remote))


def test_default_group_exists_on_first_use_with_neutron_rules(sgdb):
    groups = json.loads(ok("group", "list", "-f", "json", db=sgdb.remote))
    assert [g["Name"] for g in groups] == ["default"]
    default = show(sgdb, "group", "default")
    assert default["id"] == "default" and default["stateful"] is True
    got = sorted((r["direction"], r["ethertype"], r.get("remote_group_id"))
                 for r in default["rules"])
    assert got == [("egress", "IPv4", None), ("egress", "IPv6", None),
                   ("ingress", "IPv4", "default"), ("ingress", "IPv6", "default")]


def test_group_create_has_two_egress_rules_and_shows_in_every_format(sgdb):
    created = json.loads(ok("group", "create", "web", "--description", "Web tier",
                            "--external-id", "owner=team-a", "-f", "json", db=sgdb.remote))
    assert created["name"] == "web" and created["description"] == "Web tier"
    assert created["external_ids"] == {"owner": "team-a"}
    assert sorted((r["direction"], r["ethertype"]) for r in created["rules"]) == \
        [("egress", "IPv4"), ("egress", "IPv6")]
    gid = created["id"]
    assert len(gid) == 36 and gid.count("-") == 4
    as_yaml = yaml.safe_load(ok("group", "show", "web", "-f", "yaml", db=sgdb.remote))
    assert as_yaml["id"] == gid
    table = ok("group", "show", gid, db=sgdb.remote)
    assert "| name            | web" in table and table.startswith("+")
    assert ok("group", "show", "web", "-f", "value", "-c", "id", db=sgdb.remote) == gid + "\n"
    listed = ok("group", "list", "-f", "value", "-c", "Name", db=sgdb.remote).split()
    assert listed == ["default", "web"]
    assert "| web " in ok("group", "list", db=sgdb.remote)
    assert [g["Name"] for g in yaml.safe_load(ok("group", "list", "-f", "yaml",
                                                 db=sgdb.remote))] == ["default", "web"]


def test_group_create_stateless_and_set(sgdb):
    ok("group", "create", "raw", "--stateless", db=sgdb.remote)
    assert show(sgdb, "group", "raw")["stateful"] is False
    ok("group", "set", "raw", "--name", "raw2", "--description", "d", "--stateful",
       "--external-id", "k=v", db=sgdb.remote)
    group = show(sgdb, "group", "raw2")
    assert (group["name"], group["description"], group["stateful"]) == ("raw2", "d", True)
    assert group["external_ids"] == {"k": "v"} and group["revision_number"] == 2
    rc, _, err = run_cli("group", "show", "raw", db=sgdb.remote)
    assert rc == 1 and "security_group='raw'" in err


def test_group_delete_several_at_once_removes_their_rules(sgdb):
    ok("group", "create", "a", db=sgdb.remote)
    ok("group", "create", "b", db=sgdb.remote)
    ok("rule", "create", "a", "--remote-group", "b", db=sgdb.remote)
    assert ok("group", "delete", "a", "b", db=sgdb.remote) == ""
    assert ok("group", "list", "-f", "value", "-c", "name", db=sgdb.remote) == "default\n"
    rules = json.loads(ok("rule", "list", "-f", "json", db=sgdb.remote))
    assert {r["Security Group"] for r in rules} == {"default"}


def test_rule_create_every_kind_and_show(sgdb):
    ok("group", "create", "web", db=sgdb.remote)
    ok("group", "create", "bastion", db=sgdb.remote)
    cases = [
        (["--protocol", "tcp", "--dst-port", "443", "--remote-ip", "0.0.0.0/0"],
         {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443,
          "remote_ip_prefix": "0.0.0.0/0", "direction": "ingress", "ethertype": "IPv4"}),
        (["--protocol", "udp", "--dst-port", "8000:8080", "--egress"],
         {"protocol": "udp", "port_range_min": 8000, "port_range_max": 8080,
          "direction": "egress"}),
        (["--protocol", "icmp", "--icmp-type", "8", "--icmp-code", "0"],
         {"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}),
        (["--ethertype", "IPv6", "--protocol", "icmp", "--icmp-type", "128"],
         {"ethertype": "IPv6", "protocol": "icmp", "port_range_min": 128}),
        (["--protocol", "tcp", "--dst-port", "22", "--remote-group", "bastion"],
         {"remote_group": "bastion", "remote_group_id": show(sgdb, "group", "bastion")["id"]}),
        (["--protocol", "6", "--dst-port", "25", "--action", "deny",
          "--remote-ip", "10.1.2.3/8", "--description", "no smtp"],
         {"protocol": 6, "action": "deny", "remote_ip_prefix": "10.1.2.3/8",
          "normalized_cidr": "10.0.0.0/8", "description": "no smtp"}),
        (["--protocol", "sctp", "--dst-port", "1:65535"],
         {"protocol": "sctp", "port_range_min": 1, "port_range_max": 65535}),
        (["--protocol", "gre"], {"protocol": "gre", "port_range_min": None}),
    ]
    for argv, expected in cases:
        rule = json.loads(ok("rule", "create", "web", *argv, "-f", "json", db=sgdb.remote))
        for key, value in expected.items():
            assert rule[key] == value, (argv, key, rule)
        assert rule["security_group"] == "web"
        assert show(sgdb, "rule", rule["id"]) == rule
    listed = json.loads(ok("rule", "list", "web", "-f", "json", db=sgdb.remote))
    assert len(listed) == 2 + len(cases)
    assert "Security Group" not in listed[0]
    ports = {r["Port Range"] for r in listed}
    assert {"443:443", "8000:8080", "type=8,code=0", "type=128", "1:65535"} <= ports
    long = json.loads(ok("rule", "list", "web", "--long", "-f", "json", db=sgdb.remote))
    assert "no smtp" in {r["Description"] for r in long}
    everything = json.loads(ok("rule", "list", "-f", "json", db=sgdb.remote))
    assert {r["Security Group"] for r in everything} == {"default", "web", "bastion"}
    value = ok("rule", "list", "web", "-f", "value", "-c", "ID", db=sgdb.remote).split()
    assert sorted(value) == sorted(r["ID"] for r in listed)
    assert "| ID " in ok("rule", "list", db=sgdb.remote)


def test_rule_delete(sgdb):
    ids = [r["ID"] for r in json.loads(ok("rule", "list", "default", "-f", "json",
                                          db=sgdb.remote))]
    assert len(ids) == 4
    ok("rule", "delete", *ids[:3], db=sgdb.remote)
    left = json.loads(ok("rule", "list", "default", "-f", "json", db=sgdb.remote))
    assert [r["ID"] for r in left] == ids[3:]
    assert show(sgdb, "group", "default")["revision_number"] > 1


def test_port_create_show_list_set_delete(sgdb):
    ok("group", "create", "web", db=sgdb.remote)
    ok("group", "create", "ssh", db=sgdb.remote)
    port = json.loads(ok("port", "create", "vm1-eth0", "--mac", "FA:16:3E:00:00:01",
                         "--ip", "10.0.0.5", "--ip", "fd00::5", "--group", "web",
                         "--allowed-address", "10.0.0.100",
                         "--allowed-address", "10.0.0.101,fa:16:3e:aa:bb:cc",
                         "--network", "7", "--external-id", "vm=vm1", "-f", "json",
                         db=sgdb.remote))
    assert port["mac_address"] == "fa:16:3e:00:00:01"
    assert sorted(port["fixed_ips"]) == ["10.0.0.5", "fd00::5"]
    assert port["security_groups"] == ["web"] and port["network"] == 7
    assert sorted(port["allowed_address_pairs"]) == ["10.0.0.100",
                                                     "10.0.0.101,fa:16:3e:aa:bb:cc"]
    assert port["host"] == "" and port["port_security_enabled"] is True
    assert port["external_ids"] == {"vm": "vm1"}
    assert show(sgdb, "port", port["id"]) == port
    ok("port", "create", "vm2-eth0", "--mac", "fa:16:3e:00:00:02", "--ip", "10.0.0.6",
       "--no-port-security", db=sgdb.remote)
    listed = json.loads(ok("port", "list", "-f", "json", db=sgdb.remote))
    assert [p["Name"] for p in listed] == ["vm1-eth0", "vm2-eth0"]
    assert listed[0]["Security Groups"] == ["web"] and listed[1]["Security Groups"] == []
    assert "| vm1-eth0 " in ok("port", "list", db=sgdb.remote)
    assert ok("port", "list", "-f", "value", "-c", "name", db=sgdb.remote) == \
        "vm1-eth0\nvm2-eth0\n"
    ok("port", "set", "vm1-eth0", "--group", "ssh", db=sgdb.remote)
    assert show(sgdb, "port", "vm1-eth0")["security_groups"] == ["ssh", "web"]
    ok("port", "set", "vm1-eth0", "--no-group", "--group", "ssh", "--no-ip", "--ip",
       "10.0.0.9", "--no-allowed-address", "--name", "vm1-nic", "--mac",
       "fa:16:3e:00:00:09", "--network", "0", db=sgdb.remote)
    port = show(sgdb, "port", "vm1-nic")
    assert (port["security_groups"], port["fixed_ips"], port["allowed_address_pairs"],
            port["mac_address"], port["network"]) == \
        (["ssh"], ["10.0.0.9"], [], "fa:16:3e:00:00:09", 0)
    ok("port", "set", "vm1-nic", "--no-group", "--no-port-security", db=sgdb.remote)
    assert show(sgdb, "port", "vm1-nic")["port_security_enabled"] is False
    ok("port", "delete", "vm1-nic", "vm2-eth0", db=sgdb.remote)
    assert json.loads(ok("port", "list", "-f", "json", db=sgdb.remote)) == []


def test_port_list_by_host_after_an_agent_binds_it(sgdb):
    from sg_ofctl.ovsdb import api
    ok("port", "create", "p1", "--mac", "fa:16:3e:00:00:01", "--ip", "10.0.0.1",
       db=sgdb.remote)
    ok("port", "create", "p2", "--mac", "fa:16:3e:00:00:02", "--ip", "10.0.0.2",
       db=sgdb.remote)
    with api.connect(sgdb.remote) as handle:
        handle.run(handle.port_bind("p2", "compute-1"))
    rows = json.loads(ok("port", "list", "--host", "compute-1", "-f", "json", db=sgdb.remote))
    assert [(r["Name"], r["Host"]) for r in rows] == [("p2", "compute-1")]


def test_group_in_use_by_a_port_cannot_change_statefulness(sgdb):
    ok("group", "create", "web", db=sgdb.remote)
    ok("port", "create", "p1", "--mac", "fa:16:3e:00:00:01", "--ip", "10.0.0.1",
       "--group", "web", db=sgdb.remote)
    rc, _, err = run_cli("group", "set", "web", "--stateless", db=sgdb.remote)
    assert rc == 1 and "stateful=False" in err and "p1" in err
    ok("port", "delete", "p1", db=sgdb.remote)
    ok("group", "set", "web", "--stateless", db=sgdb.remote)
    assert show(sgdb, "group", "web")["stateful"] is False


@pytest.mark.parametrize("fmt", ["table", "json", "yaml", "value"])
def test_every_format_of_port_show(sgdb, fmt):
    ok("port", "create", "p1", "--mac", "fa:16:3e:00:00:01", "--ip", "10.0.0.1",
       db=sgdb.remote)
    out = ok("port", "show", "p1", "-f", fmt, db=sgdb.remote)
    if fmt == "json":
        assert json.loads(out)["name"] == "p1"
    elif fmt == "yaml":
        assert yaml.safe_load(out)["fixed_ips"] == ["10.0.0.1"]
    elif fmt == "value":
        assert out.splitlines()[1] == "p1"
    else:
        assert "| mac_address " in out and "fa:16:3e:00:00:01" in out


def test_unknown_column_is_an_error(sgdb):
    rc, out, err = run_cli("group", "list", "-c", "nope", db=sgdb.remote)
    assert rc == 1 and out == "" and "column='nope'" in err


def test_database_commands_import_neither_os_ken_nor_eventlet(sgdb):
    import subprocess
    import sys
    from ovsdb_fixtures import ROOT
    code = ("import sys; from sg_ofctl.cli import main; "
            f"rc = main(['--db', {sgdb.remote!r}, 'rule', 'create', 'default', '--protocol', "
            "'tcp', '--dst-port', '8080', '-f', 'value', '-c', 'id']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('os_ken', 'eventlet'))); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert result.stderr == ""
