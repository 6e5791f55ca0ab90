"""sg-ofctl apply / export: round trip, idempotence, dry run, what the file
leaves out, the default group, and the bundled example."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ovsdb_fixtures import ok, run_cli, sgdb, subprocess_cli  # noqa: F401
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "three-tier.yaml"


def apply(db, text, *flags):
    return ok("apply", *flags, "-", db=db.remote, stdin=text)


def export(db):
    return ok("export", db=db.remote)


def test_example_applies_round_trips_and_is_idempotent(sgdb):
    out = ok("apply", str(EXAMPLE), db=sgdb.remote)
    assert "+ group web" in out and "+ port web-1-eth0" in out
    assert out.splitlines()[-1].endswith("change(s) applied.")
    again = ok("apply", str(EXAMPLE), db=sgdb.remote)
    assert again == "No changes: the database already matches the file.\n"
    exported = export(sgdb)
    assert apply(sgdb, exported) == again
    # The export says what the example says (same groups, rules and ports).
    want, got = yaml.safe_load(EXAMPLE.read_text()), yaml.safe_load(exported)
    assert set(got["groups"]) == set(want["groups"])
    for name, group in want["groups"].items():
        key = lambda r: json.dumps(r, sort_keys=True, default=str)  # noqa: E731
        assert sorted(map(key, got["groups"][name]["rules"])) == \
            sorted(map(key, group["rules"])), name
    assert got["ports"]["db-1-eth0"]["external_ids"] == {"role": "primary"}
    assert "groups" not in got["ports"]["monitor-eth0"]
    # Ids are stable across a no-op apply.
    ids = ok("rule", "list", "-f", "value", "-c", "ID", db=sgdb.remote)
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    assert ok("rule", "list", "-f", "value", "-c", "ID", db=sgdb.remote) == ids


def test_export_then_apply_to_a_fresh_database_reproduces_it(sgdb):
    from ovsdb_fixtures import new_database
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    ok("rule", "create", "db", "--protocol", "tcp", "--dst-port", "6432", "--remote-group",
       "web", "--description", "pgbouncer", db=sgdb.remote)
    ok("port", "set", "web-1-eth0", "--external-id", "vm=web-1", db=sgdb.remote)
    text = export(sgdb)
    with new_database() as other:
        ok("apply", "-", db=other.remote, stdin=text)
        assert ok("export", db=other.remote) == text


def test_dry_run_prints_changes_and_changes_nothing(sgdb):
    before = export(sgdb)
    out = ok("apply", "--dry-run", str(EXAMPLE), db=sgdb.remote)
    assert "+ group db" in out and out.splitlines()[-1].startswith("25 change(s) would be")
    assert export(sgdb) == before


def test_things_left_out_are_deleted_but_default_is_kept(sgdb):
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    ok("rule", "delete", *ok("rule", "list", "default", "-f", "value", "-c", "ID",
                             db=sgdb.remote).split()[:1], db=sgdb.remote)
    default_before = ok("group", "show", "default", "-f", "json", db=sgdb.remote)
    out = apply(sgdb, """
groups:
  web:
    description: Web servers
    rules:
      - {direction: ingress, protocol: tcp, dst_port: 443}
ports:
  web-1-eth0: {mac: "fa:16:3e:00:02:01", ips: [10.0.2.11], groups: [web], network: 1}
""")
    for line in ("- group db", "- group ssh-bastion", "- port db-1-eth0",
                 "- rule web: direction=ingress protocol=tcp dst_port=80",
                 "~ port web-1-eth0: ips ['10.0.2.11', 'fd00:2::11'] -> ['10.0.2.11']"):
        assert line in out.splitlines(), (line, out)
    names = ok("group", "list", "-f", "value", "-c", "Name", db=sgdb.remote).split()
    assert names == ["default", "web"]
    assert ok("port", "list", "-f", "value", "-c", "Name", db=sgdb.remote).split() == \
        ["web-1-eth0"]
    rules = json.loads(ok("rule", "list", "web", "-f", "json", db=sgdb.remote))
    assert [(r["IP Protocol"], r["Port Range"]) for r in rules] == [("tcp", "443:443")]
    # default was not in the file: left exactly as it was (3 rules after the delete)
    default_after = ok("group", "show", "default", "-f", "json", db=sgdb.remote)
    assert default_after == default_before
    assert len(json.loads(default_after)["rules"]) == 3


def test_default_in_the_file_is_reset_to_its_rules(sgdb):
    text = "groups:\n  default:\n    rules:\n      - {direction: egress}\n"
    out = apply(sgdb, text)
    assert out.count("- rule default:") == 3
    assert "~ group default: description 'Default security group' -> ''" in out
    rules = json.loads(ok("group", "show", "default", "-f", "json", db=sgdb.remote))["rules"]
    assert [(r["direction"], r["ethertype"]) for r in rules] == [("egress", "IPv4")]
    assert apply(sgdb, text).startswith("No changes")
    assert ok("group", "show", "default", "-f", "value", "-c", "description",
              db=sgdb.remote) == "\n"


def test_updates_in_place_keep_ids_and_host(sgdb):
    from sg_ofctl.ovsdb import api
    apply(sgdb, """
groups:
  a: {rules: [{direction: ingress, protocol: tcp, dst_port: 22, description: old}]}
  b: {stateful: false}
ports:
  p: {mac: "fa:16:3e:00:00:01", ips: [10.0.0.1], groups: [a]}
""")
    with api.connect(sgdb.remote) as handle:
        handle.run(handle.port_bind("p", "compute-7"))
    port_id = ok("port", "show", "p", "-f", "value", "-c", "id", db=sgdb.remote)
    rule_id = ok("rule", "list", "a", "-f", "value", "-c", "ID", db=sgdb.remote)
    out = apply(sgdb, """
groups:
  a: {description: A, rules: [{direction: ingress, protocol: tcp, dst_port: 22,
                               description: new}]}
  b: {stateful: true}
ports:
  p: {mac: "fa:16:3e:00:00:02", ips: [10.0.0.1, 10.0.0.2], groups: [a, b], network: 3,
      external_ids: {k: v}}
""")
    assert "~ rule a: direction=ingress protocol=tcp dst_port=22 description=new" in out
    assert "~ group b: stateful False -> True" in out
    port = json.loads(ok("port", "show", "p", "-f", "json", db=sgdb.remote))
    assert port["id"] + "\n" == port_id and port["host"] == "compute-7"
    assert (port["mac_address"], port["fixed_ips"], port["security_groups"], port["network"],
            port["external_ids"]) == ("fa:16:3e:00:00:02", ["10.0.0.1", "10.0.0.2"],
                                      ["a", "b"], 3, {"k": "v"})
    assert ok("rule", "list", "a", "-f", "value", "-c", "ID", db=sgdb.remote) == rule_id
    assert ok("rule", "show", rule_id.strip(), "-f", "value", "-c", "description",
              db=sgdb.remote) == "new\n"


def test_ips_and_macs_can_move_between_ports_in_one_apply(sgdb):
    apply(sgdb, "ports:\n  a: {mac: 'fa:16:3e:00:00:01', ips: [10.0.0.1]}\n"
                "  b: {mac: 'fa:16:3e:00:00:02', ips: [10.0.0.2]}\n")
    apply(sgdb, "ports:\n  a: {mac: 'fa:16:3e:00:00:02', ips: [10.0.0.2]}\n"
                "  b: {mac: 'fa:16:3e:00:00:01', ips: [10.0.0.1]}\n")
    port = json.loads(ok("port", "show", "a", "-f", "json", db=sgdb.remote))
    assert (port["mac_address"], port["fixed_ips"]) == ("fa:16:3e:00:00:02", ["10.0.0.2"])


def test_empty_file_deletes_everything_but_default(sgdb):
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    out = apply(sgdb, "")
    assert "- group web" in out and "- port web-1-eth0" in out
    assert ok("group", "list", "-f", "value", "-c", "Name", db=sgdb.remote) == "default\n"


def test_real_command_applies_from_stdin_and_exports(sgdb):
    text = EXAMPLE.read_text()
    result = subprocess_cli("--db", sgdb.remote, "apply", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "25 change(s) applied."
    again = subprocess_cli("--db", sgdb.remote, "apply", "-", stdin=text)
    assert again.stdout.startswith("No changes") and again.returncode == 0
    exported = subprocess_cli("--db", sgdb.remote, "export")
    assert exported.returncode == 0 and exported.stdout == export(sgdb)
    bad = subprocess_cli("--db", sgdb.remote, "apply", "-", stdin="groups: [\n")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("sg-ofctl: error: <stdin>:2:1: malformed YAML")
    assert run_cli("export", "-o", "/nonexistent/dir/x.yaml", db=sgdb.remote)[0] == 1
