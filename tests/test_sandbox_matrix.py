"""The sandbox's reachability matrix without a network: the expectation of
examples/three-tier.yaml, the reasons it names, and how disagreement is shown."""
import dataclasses
from pathlib import Path

import pytest

from sg_ofctl import desired
from sg_ofctl.model import HostView
from sg_ofctl.sandbox import matrix

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "three-tier.yaml"


@pytest.fixture(scope="module")
def three_tier():
    state = desired.load(EXAMPLE.read_text())
    ports = [dataclasses.replace(p.port, ofport=i + 1)
             for i, p in enumerate(sorted(state.ports.values(), key=lambda p: p.port.name))]
    groups = {g.group.id: g.group for g in state.groups.values()}
    members = {}
    for port in ports:
        for gid in port.effective_groups:
            members.setdefault(gid, set()).update(port.addresses())
    endpoints = [matrix.Endpoint(p.name.removesuffix("-eth0"), p, ()) for p in ports]
    view = HostView(ports=tuple(ports), groups=groups, members=members)
    return endpoints, matrix.Expectation(view).matrix(endpoints)


def test_expected_verdicts_name_the_deciding_rule(three_tier):
    _, expected = three_tier
    assert len(expected) == 5 * 4 * len(matrix.SERVICES)
    web_to_db = expected[("web-1", "db-1", "pg/5432")]
    assert web_to_db.passes
    assert web_to_db.why == ("in: db: ingress tcp/5432 from group web; "
                             "out: web: egress tcp/5432 to group db")
    smtp = expected[("web-1", "monitor", "smtp/25")]
    assert not smtp.passes
    assert smtp.why == "denied by web: deny egress tcp/25 (no mail from web servers)"
    assert not expected[("db-1", "web-1", "http/80")].passes
    assert expected[("db-1", "web-1", "http/80")].why == \
        "no egress rule of db-1's groups (db) allows it"
    assert expected[("bastion", "web-2", "ssh/22")].passes
    assert not expected[("monitor", "db-1", "pg/5432")].passes
    assert sum(v.passes for v in expected.values()) == 14


def test_render_marks_mismatches_and_changes(three_tier):
    endpoints, expected = three_tier
    observed = {k: v.passes for k, v in expected.items()}
    text = matrix.render(endpoints, expected, observed)
    assert "All 100 probes agree with the expectation." in text
    assert "MISMATCH" not in text

    observed[("monitor", "db-1", "pg/5432")] = True
    changed = {("web-1", "db-1", "pg/5432")}
    text = matrix.render(endpoints, expected, observed, changed=changed)
    assert "MISMATCH in 1 cell(s)" in text
    assert "monitor -> db-1 pg/5432: expected drop, observed pass" in text
    row = next(line for line in text.splitlines() if line.startswith("monitor -> db-1"))
    assert "PASS!" in row
    row = next(line for line in text.splitlines() if line.startswith("web-1   -> db-1"))
    assert row.rstrip().endswith("*")
