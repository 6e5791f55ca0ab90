"""Every command README.md shows is exercised: the `sg-ofctl` lines run here, in
order, against a private database; every other command names the test that
runs it (a README command no test covers fails this test)."""
import ast
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from ovsdb_fixtures import ok, sgdb  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()

# command prefix -> (the test function that runs it, text in that function or in the
# helper it runs it through, that helper's file if any)
COVERED_ELSEWHERE = {
    "sg-ofctl pki": ("test_db_tls.py::test_pki_certificates_carry_the_name_and_private_keys_are_"
                     "private", '"pki", "--dir", str(pki.dir), "init"', "tls_fixtures.py"),
    "export SG_OFCTL_": ("test_db_tls.py::test_key_material_from_the_environment",
                         "SG_OFCTL_PRIVATE_KEY", None),
    "sg-ofctl db start --cluster ssl:": (
        "test_db_cluster_tls.py::test_a_tls_cluster_survives_a_leader_kill_for_admins_and_agents",
        "TlsCluster(pki)", None),
    "sg-ofctl --db ssl:10.0.0.1:6642": (
        "test_agent_tls.py::test_the_agent_binds_its_ports_and_creates_its_tag_made_row_over_tls",
        '"--db", self.db, "agent"', "agent_testbed.py"),
    "sg-ofctl db start --relay-of ssl:": (
        "test_db_cluster_tls.py::test_a_tls_relay_of_the_cluster_serves_admins_and_agents",
        '"--relay-of", cluster.admin_remotes', None),
    "sg-ofctl --db ssl:10.0.1.1:6642": (
        "test_agent_tls.py::test_the_agent_binds_its_ports_and_creates_its_tag_made_row_over_tls",
        '"--db", self.db, "agent"', "agent_testbed.py"),
    "sg-ofctl --db ssl:10.0.0.1:6641": (
        "test_db_cluster_tls.py::test_a_tls_cluster_survives_a_leader_kill_for_admins_and_agents",
        '"group", "list"', None),
    "./sg-ofctl-sandbox": ("test_sandbox.py::test_sandbox_start_matrix_change_restart_stop",
                           'sandbox("start"', None),
    "source /run/sg-ofctl-sandbox/env.sh": (
        "test_sandbox.py::test_sandbox_start_matrix_change_restart_stop", "env.sh", None),
    'scripts/test.sh -m "not root"': ("test_readme.py::test_not_root_selects_the_pure_tests",
                                      '"not root"', None),
    "scripts/test.sh": ("test_readme.py::test_ci_runs_the_readme_test_command",
                        "scripts/test.sh", None),
    "SG_OFCTL_PROPERTY_MODELS=": ("test_property.py::test_flows_agree_with_reference",
                                  "SG_OFCTL_PROPERTY_MODELS", None),
    "python -m sg_ofctl.pipeline_doc": (
        "test_compiler_structure.py::test_pipeline_doc_is_up_to_date", "pipeline_doc.main", None),
    "python -m sg_ofctl.golden": ("test_golden.py::test_golden_check_command_agrees",
                                  "golden.main", None),
    "python bench/compile.py": ("test_bench_compile.py::test_compile_bench_prints_json_lines",
                                "BENCH", None),
    ".venv/bin/python mininet/run.py": ("test_mininet_runner.py::test_runner_reachability",
                                        "run.py", None),
    "sg-ofctl status": ("test_agent_traffic.py::test_status_command", '"status"', None),
    "sg-ofctl trace --bridge": (
        "test_trace_agent.py::test_trace_names_the_rules_and_matches_real_packets", "trace(hv",
        None),
    "sg-ofctl explain --from web-1-eth0": (
        "test_explain.py::test_explain_names_the_deciding_rules", "web-1-eth0", None),
    "sg-ofctl agent": ("test_agent_traffic.py::test_tags_create_and_bind_the_port",
                       '"agent", "--bridge"', "agent_testbed.py"),
    "sg-ofctl db start --cluster": ("test_db_cluster.py::test_leader_killed_during_writes",
                                    '"--cluster", self.raft[index], *join',
                                    "ovsdb_fixtures.py"),
    "sg-ofctl --db": ("test_agent_traffic.py::test_tags_create_and_bind_the_port",
                      '"--db", self.db, "agent"', "agent_testbed.py"),
}


def _function_source(test: str) -> str:
    """The source of `FILE::FUNCTION` and of the fixtures it takes from FILE."""
    file_name, function = test.split("::")
    text = (REPO / "tests" / file_name).read_text()
    tree = ast.parse(text)
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert function in functions, f"{file_name} has no test function {function}"
    node = functions[function]
    used = [functions[a.arg] for a in node.args.args if a.arg in functions]
    return "\n".join(ast.get_source_segment(text, n) for n in [node, *used])


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
        test, text, helper = where
        source = _function_source(test)
        if helper is not None:
            assert text in (REPO / "tests" / helper).read_text(), f"{helper} does not run {command}"
            assert pathlib.Path(helper).stem in (REPO / "tests" / test.split("::")[0]).read_text()
        else:
            assert text in source, f"{test} does not run: {command}"


def test_not_root_selects_the_pure_tests():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m",
                          "not root", "-p", "no:cacheprovider", str(REPO / "tests")],
                         capture_output=True, text=True, cwd=REPO, timeout=120).stdout
    selected = {line.split("::")[0] for line in out.splitlines() if "::" in line}
    assert "tests/test_property.py" in selected and "tests/test_golden.py" in selected
    assert not any(name.startswith(("tests/test_agent_t", "tests/test_dataplane_traffic",
                                    "tests/test_sandbox.py")) for name in selected)


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in [line.strip() for line in ci.splitlines()]
    assert "scripts/test.sh" in README


@pytest.mark.root
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
