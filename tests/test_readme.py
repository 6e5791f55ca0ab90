"""Every command README.md shows is exercised: the `sg-ofctl` lines run here, in
order, against a private database; every other command names the test that
runs it (a README command no test covers fails this test)."""
import pathlib
import re
import shlex

from ovsdb_fixtures import ok, sgdb  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()

# command prefix -> (test file that runs it, text that file must contain)
COVERED_ELSEWHERE = {
    "./sg-ofctl-sandbox": ("test_sandbox.py", "sg-ofctl-sandbox"),
    "source /run/sg-ofctl-sandbox/env.sh": ("test_sandbox.py", "env.sh"),
    "scripts/test.sh": ("../.ci/run", "scripts/test.sh"),
    "SG_OFCTL_PROPERTY_MODELS=": ("test_property.py", "SG_OFCTL_PROPERTY_MODELS"),
    "python -m sg_ofctl.pipeline_doc": ("test_compiler_structure.py", "pipeline_doc.main"),
    "python -m sg_ofctl.golden": ("test_golden.py", "golden.main"),
    "python bench/compile.py": ("test_bench_compile.py", "compile.py"),
    ".venv/bin/python mininet/run.py": ("test_mininet_runner.py", "run.py"),
    "sg-ofctl status": ("test_agent_traffic.py", "status"),
    "sg-ofctl explain --from web-1-eth0": ("test_explain.py", "web-1-eth0"),
    "sg-ofctl agent": ("agent_testbed.py", "agent"),
    "sg-ofctl db start --cluster": ("ovsdb_fixtures.py", '"--cluster", self.raft[index], *join'),
    "sg-ofctl --db": ("agent_testbed.py", '"--db", self.db, "agent"'),
}


def readme_commands() -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _covering(command: str):
    for prefix, where in COVERED_ELSEWHERE.items():
        if command.startswith(prefix):
            return where
    return None


def test_readme_commands_that_other_tests_run():
    for command in readme_commands():
        where = _covering(command)
        if where is None:
            assert command.startswith("sg-ofctl "), f"no test runs README command: {command}"
            continue
        path = (REPO / "tests" / where[0]).resolve()
        assert where[1] in path.read_text(), f"{path.name} does not run: {command}"


def test_readme_cli_tour_runs_in_order(sgdb, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(REPO)
    ran = 0
    for command in readme_commands():
        if not command.startswith("sg-ofctl ") or _covering(command):
            continue
        argv = shlex.split(command)[1:]
        target = None
        if ">" in argv:
            target = tmp_path / argv[argv.index(">") + 1]
            argv = argv[:argv.index(">")]
        argv = [str(tmp_path / a) if a == "state.yaml" and target is None else a for a in argv]
        out = ok(*argv, db=sgdb.remote)
        if target is not None:
            target.write_text(out)
        ran += 1
    assert ran >= 10
    assert "web-1-eth0" in ok("port", "list", "-f", "value", "-c", "name", db=sgdb.remote)
