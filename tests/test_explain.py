"""`sg-ofctl explain`: the verdict and the deciding group and rule, each side."""
import json
import pathlib

from ovsdb_fixtures import ok, run_cli, sgdb  # noqa: F401
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "three-tier.yaml"


def _explain(db, *argv):
    out = json.loads(ok("explain", "-f", "json", *argv, db=db.remote))
    return out["verdict"], [(s["side"], s["result"], s["why"]) for s in out["steps"]]


def test_explain_names_the_deciding_rules(sgdb):  # noqa: F811
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    verdict, steps = _explain(sgdb, "--from", "web-1-eth0", "--to", "db-1-eth0",
                              "--dst-port", "5432")
    assert verdict == "allowed"
    assert [s[:2] for s in steps] == [("egress", "allowed"), ("ingress", "allowed")]
    assert "of group web" in steps[0][2] and "of group db" in steps[1][2]

    verdict, steps = _explain(sgdb, "--from", "web-1-eth0", "--to", "192.0.2.25",
                              "--dst-port", "25")
    assert verdict == "dropped"
    assert steps == [("egress", "dropped", steps[0][2])]
    assert "denied by rule" in steps[0][2] and "no mail from web servers" in steps[0][2]

    verdict, steps = _explain(sgdb, "--from", "monitor-eth0", "--to", "web-2-eth0",
                              "--dst-port", "22")
    assert verdict == "dropped" and steps[1][:2] == ("ingress", "dropped")
    verdict, _ = _explain(sgdb, "--from", "monitor-eth0", "--to", "web-2-eth0",
                          "--dst-port", "22", "--state", "rpl")
    assert verdict == "allowed"   # a reply of a connection web-2 opened

    out = ok("explain", "--from", "203.0.113.7", "--to", "web-2-eth0", "--dst-port", "443",
             db=sgdb.remote)
    assert "verdict: allowed" in out and "| ingress | web-2-eth0 | web" in out


def test_explain_bad_input_names_the_field(sgdb):  # noqa: F811
    ok("apply", str(EXAMPLE), db=sgdb.remote)
    rc, _, err = run_cli("explain", "--from", "nope", "--to", "db-1-eth0", "--dst-port", "1",
                         db=sgdb.remote)
    assert rc == 1 and "from='nope'" in err
    rc, _, err = run_cli("explain", "--from", "10.0.0.1", "--to", "10.0.0.2",
                         "--dst-port", "1", db=sgdb.remote)
    assert rc == 1 and "to='10.0.0.2'" in err
    rc, _, err = run_cli("explain", "--from", "web-1-eth0", "--to", "db-1-eth0",
                         db=sgdb.remote)
    assert rc == 1 and "dst_port=None" in err
