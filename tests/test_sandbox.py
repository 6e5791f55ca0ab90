"""The sandbox end to end, as a newcomer runs it: ./sg-ofctl-sandbox starts
everything, the matrix agrees with the expectation before and after the live
change, a second start replaces the first, and stop leaves nothing behind."""
import json
import os
import secrets
import subprocess
from pathlib import Path

from sg_ofctl.sandbox.ledger import list_netns
from sg_ofctl.sandbox.proc import alive
import pytest

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "sg-ofctl-sandbox"


def sandbox(*args, timeout=240):
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def recorded(directory: Path) -> dict:
    return json.loads((directory / "state.json").read_text())


def test_sandbox_start_matrix_change_restart_stop(tmp_path):
    prefix = f"sgsbt{secrets.token_hex(2)}"
    directory = tmp_path / "sandbox"
    where = ["--dir", str(directory), "--prefix", prefix]
    try:
        first = sandbox("start", *where, "--no-change")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "All 100 probes agree with the expectation." in first.stdout
        before = recorded(directory)
        first_pids = before["pids"] + [int(Path(f).read_text()) for f in before["pidfiles"]]
        assert all(alive(p) for p in first_pids)

        # Running it twice works: the second start replaces the first.
        second = sandbox("start", *where)
        out = second.stdout
        assert second.returncode == 0, out + second.stderr
        assert "already running: stopping it first" in out
        assert not any(alive(p) for p in first_pids)
        assert out.count("All 100 probes agree with the expectation.") == 2
        # The live change opened exactly one cell: monitor -> db-1 on 5432.
        changed = [line for line in out.splitlines() if line.rstrip().endswith("*")]
        assert len(changed) == 1 and changed[0].startswith("monitor -> db-1"), changed
        assert "monitoring checks PostgreSQL" in out
        assert f"sg-ofctl-sandbox stop --dir {directory} --prefix {prefix}" in out
        env_sh = (directory / "env.sh").read_text()
        assert f"SG_OFCTL_DB=unix:{directory}/sgdb/db.sock" in env_sh

        assert sandbox("status", *where).returncode == 0
        again = sandbox("matrix", *where)
        assert again.returncode == 0 and "All 100 probes agree" in again.stdout

        state = recorded(directory)
        pids = state["pids"] + [int(Path(f).read_text()) for f in state["pidfiles"]]
        sg_db_pid = int((directory / "sgdb" / "ovsdb-server.pid").read_text())
        links = [vm["link"] for vm in state["vms"]]
    finally:
        stop = sandbox("stop", *where)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "every process, namespace and file of the sandbox is gone" in stop.stdout
    assert not any(alive(p) for p in pids + [sg_db_pid])
    assert not [ns for ns in list_netns() if ns.startswith(prefix)]
    assert not directory.exists()
    root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not any(f" {link}@" in root_links or f" {link}:" in root_links for link in links)
    # Stopping again is harmless.
    assert sandbox("stop", *where).returncode == 0


def test_sandbox_refuses_clearly_without_root():
    if os.geteuid() == 0:
        # The script on stdin: the checkout may not be readable by another user.
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "bash", "-s"], input=SCRIPT.read_text(), capture_output=True,
                              text=True, timeout=30, cwd="/")
    else:
        proc = sandbox()
    assert proc.returncode == 2
    assert "needs root" in proc.stderr
