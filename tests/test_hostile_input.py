"""Files and rows written to hurt are refused cheaply (issue 11): size before
parsing, bad UTF-8 with its place, alias bombs before expansion, and rows that
another writer stored with control characters never reach the terminal raw.
(The table-driven CLI cases are in test_cli_bad_input.py.)"""
from __future__ import annotations

import json
import resource
import subprocess
import time

import pytest

from ovsdb_fixtures import ok, run_cli, sgdb  # noqa: F401 (fixture)
from sg_ofctl import desired, errors, safeyaml


def _bomb(levels: int) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        text += f"{names[i]}: &{names[i]} [" + ",".join([f"*{names[i - 1]}"] * 9) + "]\n"
    return text + f"groups:\n  web: {{description: *{names[levels - 1]}}}\n"


@pytest.mark.parametrize("levels", [9, 10, 12])
def test_alias_bombs_are_refused_before_expansion(levels):
    text = _bomb(levels)
    assert len(text) < 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    with pytest.raises(errors.UserError) as err:
        desired.load(text, "bomb.yaml")
    assert time.process_time() - start < 1.0
    # no growth worth mentioning (the 9-level bomb took ~3 GB before)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 50_000   # KiB
    assert "bomb.yaml:" in str(err.value)
    assert "aliases repeat more than 10,000 nodes" in str(err.value)
    assert len(str(err.value)) < 300


def test_a_few_aliases_are_fine():
    text = "groups:\n  web: {rules: &r [{protocol: tcp, dst_port: 80}]}\n  web2: {rules: *r}\n"
    state = desired.load(text, "ok.yaml")
    assert [r.port_range for r in state.groups["web2"].group.rules] == [(80, 80)]


def test_expansion_budget_counts_repeated_nodes_once_per_use():
    import yaml
    node = yaml.compose("a: &x [1, 2, 3]\nb: [*x, *x, *x]\n", Loader=yaml.SafeLoader)
    assert safeyaml.check_expansion(node, budget=12) is None
    found = safeyaml.check_expansion(node, budget=11)
    assert found is not None and "aliases repeat more than 11 nodes" in found[1]


def test_bad_utf8_names_file_line_and_column(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"groups:\n  web:\n    description: caf\xe9 au lait\n")
    rc, out, err = run_cli("apply", str(path), db="unix:/nonexistent")
    assert rc == 1 and out == ""
    assert err.strip() == f"sg-ofctl: error: {path}:3:21: not valid UTF-8 (byte 0xe9)"


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.write(b"groups:\n  web:\n    description: '")
        f.write(b"x" * safeyaml.MAX_BYTES)
        f.write(b"'\n")
    start = time.monotonic()
    rc, out, err = run_cli("apply", str(path), db="unix:/nonexistent")
    assert time.monotonic() - start < 2.0
    assert rc == 1 and out == ""
    assert f"{path}: larger than 16 MiB" in err and len(err) < 300


def test_oversized_stdin_is_refused_too():
    rc, _, err = run_cli("apply", "-", db="unix:/nonexistent",
                         stdin="#" * (safeyaml.MAX_BYTES + 1))
    assert rc == 1 and "<stdin>: larger than 16 MiB" in err


def test_rows_stored_raw_by_another_writer_print_escaped(sgdb):
    """A name with a terminal escape written straight into OVSDB (no sg-ofctl
    validation) is shown escaped, never sent raw to the terminal."""
    evil = "pwn\x1b]0;owned\x07\x1b[2J"
    op = {"op": "insert", "table": "Security_Group",
          "row": {"id": "6c1d7c7e-0000-4000-8000-000000000001", "name": evil,
                  "description": "\x1b[31mred", "stateful": True, "revision_number": 1,
                  "created_at": "", "updated_at": ""}}
    subprocess.run(["ovsdb-client", "transact", sgdb.remote,
                    json.dumps(["SG_ofctl", op])], check=True, capture_output=True)
    for fmt in ("table", "value"):
        out = ok("group", "list", "-f", fmt, db=sgdb.remote)
        assert "\x1b" not in out and "\x07" not in out
        assert "pwn\\x1b]0;owned\\x07\\x1b[2J" in out


@pytest.mark.parametrize("external_ids", [
    {"iface-id": "vm", "attached-mac": "fa:16:3e:00:00:01", "sg-ofctl-ips": "1" * 100_000},
    {"iface-id": "vm", "attached-mac": "fa:16:3e:00:00:01",
     "sg-ofctl-ips": "10.0.0.1,\x1b[2J" + "x" * 100_000},
    {"iface-id": "vm", "attached-mac": "fa:16:3e:00:00:01", "sg-ofctl-ips": "10.0.0.1",
     "sg-ofctl-groups": "\x1b]0;owned\x07" * 10_000},
    {"iface-id": "vm", "attached-mac": "\x9b" * 50_000, "sg-ofctl-ips": "10.0.0.1"},
], ids=["long-ips", "escape-ip", "escape-groups", "c1-mac"])
def test_hostile_instance_tags_give_a_short_printable_error(external_ids):
    """Tags come from the hypervisor's local database: an error about them goes to
    the agent's log and status, bounded and escaped."""
    from sg_ofctl.agent import tags
    with pytest.raises(tags.TagError) as err:
        tags.declared("tap\x1b[31m0", external_ids, {"web": "web"})
    assert len(str(err.value)) < 400 and str(err.value).isprintable(), str(err.value)
