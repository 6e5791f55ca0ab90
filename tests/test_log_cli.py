"""`sg-ofctl log create|list|show|set|delete` on a real database: a log names
one group or one port; bad input names the field and changes nothing."""
import json

import pytest

from ovsdb_fixtures import ok, run_cli, sgdb  # noqa: F401

pytestmark = pytest.mark.root   # real ovsdb-server


def _logs(db):
    return {r["Name"]: r for r in json.loads(ok("log", "list", "-f", "json", db=db.remote))}


def test_log_life_cycle(sgdb):  # noqa: F811
    r = sgdb.remote
    ok("group", "create", "web", db=r)
    ok("port", "create", "p1", "--mac", "fa:16:3e:00:00:01", "--ip", "10.0.0.1", db=r)
    created = json.loads(ok("log", "create", "web-drops", "--group", "web", "--event", "drop",
                            "--rate", "10/s", "--description", "who knocks", "-f", "json",
                            db=r))
    assert created["target"] == "security group web" and created["rate"] == "10/s"
    ok("log", "create", "p1-all", "--port", "p1", db=r)
    logs = _logs(sgdb)
    assert logs["p1-all"]["Event"] == "all" and logs["p1-all"]["Rate"] == "100/s"
    ok("log", "set", "web-drops", "--disable", "--rate", "20", db=r)
    shown = json.loads(ok("log", "show", created["id"], "-f", "json", db=r))
    assert shown["enabled"] is False and shown["rate"] == "20/s"
    ok("group", "delete", "web", db=r)           # the log stays, inert
    assert _logs(sgdb)["web-drops"]["Target"] == "(deleted)"
    ok("log", "delete", "web-drops", "p1-all", db=r)
    assert _logs(sgdb) == {}


@pytest.mark.parametrize("argv,needle", [
    (("--group", "nope"), "group='nope'"),
    (("--port", "nope"), "port='nope'"),
    (("--group", "web", "--rate", "0/s"), "rate='0/s'"),
    (("--group", "web", "--rate", "fast"), "rate='fast'"),
    (("--group", "web", "--rate", "20000"), "rate='20000'"),
])
def test_bad_log_input_names_the_field_and_changes_nothing(sgdb, argv, needle):  # noqa: F811
    ok("group", "create", "web", db=sgdb.remote)
    rc, _, err = run_cli("log", "create", "l1", *argv, db=sgdb.remote)
    assert rc == 1 and needle in err
    rc, _, err = run_cli("log", "create", "bad name!", "--group", "web", db=sgdb.remote)
    assert rc == 1 and "name='bad name!'" in err
    ok("log", "create", "l1", "--group", "web", db=sgdb.remote)
    rc, _, err = run_cli("log", "create", "l1", "--group", "web", db=sgdb.remote)
    assert rc == 1 and "name='l1'" in err
    rc, _, err = run_cli("log", "delete", "l1", "nope", db=sgdb.remote)
    assert rc == 1 and "log='nope'" in err
    assert list(_logs(sgdb)) == ["l1"]
