"""Runs tests/neutron/* scripts in a private Open vSwitch with .venv-neutron
(tests/neutron/run_in_private_ovs.sh), for the root tests of the Neutron driver."""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "neutron" / "run_in_private_ovs.sh"
OURS = "sg_ofctl.neutron.firewall:SgOfctlFirewallDriver"


def start(rundir: pathlib.Path, script: str, *args: str, driver: str | None = None,
          log: pathlib.Path) -> subprocess.Popen:
    """The script running in its own private OVS; output (stdout+stderr) to `log`."""
    assert (ROOT / ".venv-neutron" / "bin" / "python").exists(), \
        "run scripts/setup-neutron.sh (scripts/test.sh does)"
    env = {**os.environ, "NFW_SCRIPT": script}
    env.pop("FW_DRIVER", None)
    if driver:
        env["FW_DRIVER"] = driver
    out = open(log, "w")
    return subprocess.Popen([str(RUNNER), str(rundir), *args], env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)  # its own session: the runner and its children
        proc.wait(30)
        raise


def results(log: pathlib.Path) -> dict[str, str]:
    """{test id: ok|fail|error|skip} from the RESULT lines of a functional run."""
    out = {}
    for line in log.read_text(errors="replace").splitlines():
        if "RESULT " in line:
            test_id, _, verdict = line.split("RESULT ", 1)[1].rpartition(" ")
            out[test_id] = verdict
    return out
