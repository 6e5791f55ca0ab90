"""A port with no security group at all (`--no-security-group`, `groups: []`),
as in Neutron, versus a port with none given (it gets `default`): the model,
the file format, the CLI and apply/export on a real ovsdb-server."""
from __future__ import annotations

import json

import pytest
import yaml

from ovsdb_fixtures import ok, run_cli, sgdb  # noqa: F401  (fixture)
from sg_ofctl import desired, errors, model

MAC = "fa:16:3e:00:07:01"


def test_the_model_keeps_none_only_where_it_differs_from_default():
    none = model.Port(id="p", mac=MAC, explicit_groups=True)
    assert none.effective_groups == () and none.explicit_groups
    assert model.Port(id="p", mac=MAC).effective_groups == (model.DEFAULT_GROUP,)
    # With groups, or without port security, "explicit" changes nothing: one value.
    assert model.Port(id="p", mac=MAC, security_groups=("web",), explicit_groups=True) == \
        model.Port(id="p", mac=MAC, security_groups=("web",))
    assert model.Port(id="p", mac=MAC, port_security_enabled=False, explicit_groups=True) \
        == model.Port(id="p", mac=MAC, port_security_enabled=False)


def test_groups_empty_in_the_file_means_none_and_round_trips():
    text = (f"ports:\n  a: {{mac: '{MAC}', groups: []}}\n"
            f"  b: {{mac: 'fa:16:3e:00:07:02'}}\n  c: {{mac: 'fa:16:3e:00:07:03', groups: ~}}\n")
    state = desired.load(text)
    assert state.ports["a"].port.effective_groups == ()
    assert state.ports["b"].port.effective_groups == (model.DEFAULT_GROUP,)
    assert state.ports["c"].port.effective_groups == (model.DEFAULT_GROUP,)
    data = desired.to_data(state)
    assert data["ports"]["a"]["groups"] == [] and "groups" not in data["ports"]["b"]
    assert desired.load(desired.dump(state)) == state


@pytest.mark.root
def test_cli_create_and_set_no_security_group(sgdb):
    db = sgdb.remote
    ok("group", "create", "web", db=db)
    ok("port", "create", "none", "--mac", MAC, "--ip", "10.7.0.1", "--no-security-group", db=db)
    ok("port", "create", "dflt", "--mac", "fa:16:3e:00:07:02", "--ip", "10.7.0.2", db=db)
    none = json.loads(ok("port", "show", "none", "-f", "json", db=db))
    dflt = json.loads(ok("port", "show", "dflt", "-f", "json", db=db))
    assert none["security_groups"] == [] and none["no_security_groups"] is True
    assert dflt["security_groups"] == [] and dflt["no_security_groups"] is False
    # A group added later replaces "none"; --no-security-group takes every group away.
    ok("port", "set", "none", "--group", "web", db=db)
    shown = json.loads(ok("port", "show", "none", "-f", "json", db=db))
    assert shown["security_groups"] == ["web"] and shown["no_security_groups"] is False
    ok("port", "set", "none", "--no-security-group", db=db)
    shown = json.loads(ok("port", "show", "none", "-f", "json", db=db))
    assert shown["security_groups"] == [] and shown["no_security_groups"] is True
    # --no-group clears the list: empty again means `default`.
    ok("port", "set", "none", "--no-group", db=db)
    assert json.loads(ok("port", "show", "none", "-f", "json", db=db))[
        "no_security_groups"] is False


@pytest.mark.root
def test_cli_refuses_none_with_groups_and_changes_nothing(sgdb):
    db = sgdb.remote
    ok("group", "create", "web", db=db)
    rc, _out, err = run_cli("port", "create", "x", "--mac", MAC, "--ip", "10.7.0.1",
                            "--group", "web", "--no-security-group", db=db)
    assert rc != 0 and "--no-security-group" in err
    ok("port", "create", "x", "--mac", MAC, "--ip", "10.7.0.1", "--group", "web", db=db)
    rc, _out, err = run_cli("port", "set", "x", "--no-security-group", "--group", "web", db=db)
    assert rc != 0 and "no_security_groups" in err, err
    assert json.loads(ok("port", "show", "x", "-f", "json", db=db))["security_groups"] == ["web"]


@pytest.mark.root
def test_apply_and_export_keep_none_apart_from_default(sgdb):
    db = sgdb.remote
    text = f"ports:\n  a: {{mac: '{MAC}', ips: [10.7.0.1], groups: []}}\n" \
           f"  b: {{mac: 'fa:16:3e:00:07:02', ips: [10.7.0.2]}}\n"
    ok("apply", "-", db=db, stdin=text)
    exported = yaml.safe_load(ok("export", db=db))
    assert exported["ports"]["a"]["groups"] == [] and "groups" not in exported["ports"]["b"]
    assert ok("apply", "-", db=db, stdin=text).startswith("No changes")
    # none -> default is a change apply shows and makes.
    out = ok("apply", "-", db=db, stdin=text.replace(", groups: []", ""))
    assert "no_security_groups True -> False" in out, out
    assert json.loads(ok("port", "show", "a", "-f", "json", db=db))["no_security_groups"] \
        is False


def test_neutrons_word_security_groups_is_accepted_but_not_with_groups():
    state = desired.load(f"ports:\n  a: {{mac: '{MAC}', security_groups: []}}\n"
                         f"  b: {{mac: 'fa:16:3e:00:07:02', security_groups: [default]}}\n")
    assert state.ports["a"].port.effective_groups == ()
    assert state.ports["b"].port.security_groups == (model.DEFAULT_GROUP,)
    with pytest.raises(errors.UserError, match="security_groups.*either groups"):
        desired.load(f"ports:\n  a: {{mac: '{MAC}', groups: [], security_groups: []}}\n")
