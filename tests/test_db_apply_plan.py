"""`apply --dry-run` cannot disagree with `apply`: the plan is a list of typed
changes (ovsdb/apply.py), the dry run prints it, and the executor writes exactly
that list.  Pure tests of the plan, then on a real ovsdb-server: the dry run's
lines are apply's lines, and an executor given all but one change leaves
exactly that change to do."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovsdb_fixtures import new_database, ok   # first: sg_ofctl.ovsdb before ovsdbapp
from ovsdbapp.backend.ovs_idl import command as ovsdbapp_command
from sg_ofctl import desired
from sg_ofctl.ovsdb import apply as apply_mod

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "three-tier.yaml"
BEFORE = """
groups:
  web: {description: old, rules: [{direction: ingress, protocol: tcp, dst_port: 80},
                                  {direction: ingress, protocol: tcp, dst_port: 22,
                                   description: ssh}]}
  gone: {}
ports:
  p1: {mac: 'fa:16:3e:00:0c:01', ips: [10.0.12.1], groups: [web]}
  p2: {mac: 'fa:16:3e:00:0c:02', ips: [10.0.12.2]}
"""
AFTER = """
groups:
  web: {description: new, rules: [{direction: ingress, protocol: tcp, dst_port: 443},
                                  {direction: ingress, protocol: tcp, dst_port: 22,
                                   description: secure shell}]}
  db: {stateful: false, rules: [{direction: ingress, protocol: tcp, dst_port: 5432,
                                 remote_group: web}]}
ports:
  p1: {mac: 'fa:16:3e:00:0c:01', ips: [10.0.12.1, 10.0.12.11], groups: [web],
       external_ids: {vm: one}}
  p3: {mac: 'fa:16:3e:00:0c:02', ips: [10.0.12.3], groups: [db]}
"""


def test_the_plan_is_typed_changes_in_writing_order():
    changes = apply_mod.plan(desired.load(BEFORE), desired.load(AFTER))
    kinds = [type(c).__name__ for c in changes]
    assert kinds == ["SetGroupField", "CreateGroup", "DeleteRule", "SetRuleDescription",
                     "CreateRule", "CreateRule", "DeletePort", "SetPortField",
                     "SetPortField", "CreatePort", "DeleteGroup"]
    texts = [c.text() for c in changes]
    assert "~ group web: description 'old' -> 'new'" in texts
    assert "+ rule db: direction=ingress protocol=tcp dst_port=5432 remote_group=web" in texts
    assert "~ port p1: ips ['10.0.12.1'] -> ['10.0.12.1', '10.0.12.11']" in texts
    assert texts[-1] == "- group gone" and "- port p2" in texts
    assert apply_mod.plan(desired.load(AFTER), desired.load(AFTER)) == []


class _WriteThese(ovsdbapp_command.BaseCommand):
    """The executor on a given list of changes (what ApplyCommand does after planning)."""

    def __init__(self, api, changes):
        super().__init__(api)
        self.changes = changes

    def run_idl(self, txn):
        apply_mod.execute(self.api, txn, self.changes)


@pytest.mark.root     # a real ovsdb-server
def test_dry_run_prints_what_apply_writes_and_the_executor_writes_only_the_plan():
    from sg_ofctl.ovsdb import api
    with new_database() as db:
        ok("apply", "-", db=db.remote, stdin=BEFORE)
        dry = ok("apply", "--dry-run", "-", db=db.remote, stdin=AFTER).splitlines()
        done = ok("apply", "-", db=db.remote, stdin=AFTER).splitlines()
        assert dry[:-1] == done[:-1] and len(dry) == 12
        assert ok("apply", "--dry-run", "-", db=db.remote, stdin=AFTER).startswith(
            "No changes")
        # Back to BEFORE, then every change but one: exactly that one is left.
        ok("apply", "-", db=db.remote, stdin=BEFORE)
        with api.connect(db.remote) as handle:
            plan = handle.read(lambda t: apply_mod.plan(apply_mod.current(t),
                                                        desired.load(AFTER)))
            left_out = next(c for c in plan if isinstance(c, apply_mod.SetRuleDescription))
            handle.run(_WriteThese(handle, [c for c in plan if c is not left_out]))
        assert ok("apply", "--dry-run", "-", db=db.remote, stdin=AFTER).splitlines()[:-1] \
            == [left_out.text()]
