"""sg-ofctl db start|stop|status, the embedded default database, state directories."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sg_ofctl.ovsdb import server

from ovsdb_fixtures import free_tcp_port, ok, run_cli, state_dir, subprocess_cli  # noqa: F401

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces


def test_start_status_stop_through_the_cli(state_dir):
    sd = ["--state-dir", str(state_dir)]
    rc, out, _ = run_cli(*sd, "db", "status", "-f", "json")
    assert rc == 3 and json.loads(out)["state"] == "not running"
    port = free_tcp_port()
    started = json.loads(ok(*sd, "db", "start", "--listen", f"127.0.0.1:{port}",
                            "-f", "json"))
    assert started["state"] == "started (created)" and started["model"] == "standalone"
    assert f"ptcp:{port}:127.0.0.1" in started["listen"]
    pid = started["pid"]
    assert server.process_alive(pid)
    assert (state_dir / "ovsdb-server.pid").read_text().strip() == str(pid)
    again = json.loads(ok(*sd, "db", "start", "-f", "json"))
    assert again["state"] == "already running" and again["pid"] == pid
    status = json.loads(ok(*sd, "db", "status", "-f", "json"))
    assert status["state"] == "running" and status["pid"] == pid
    # Clients reach it on the unix socket and on TCP.
    ok("group", "create", "g", db=f"unix:{state_dir}/db.sock")
    assert "g" in ok("group", "list", "-f", "value", "-c", "Name",
                     db=f"tcp:127.0.0.1:{port}").split()
    stopped = json.loads(ok(*sd, "db", "stop", "-f", "json"))
    assert stopped["state"] == "stopped" and not server.process_alive(pid)
    assert json.loads(ok(*sd, "db", "stop", "-f", "json"))["state"] == "not running"
    # Restart: same data, same listen address (remembered).
    restarted = json.loads(ok(*sd, "db", "start", "-f", "json"))
    assert restarted["state"] == "started (exists)"
    assert "g" in ok("group", "list", "-f", "value", "-c", "Name",
                     db=f"tcp:127.0.0.1:{port}").split()


def test_stale_pidfile_of_another_process_is_not_ours(state_dir):
    member = server.Member(state_dir)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        member.pidfile.write_text(f"{sleeper.pid}\n")
        assert member.pid() is None
        assert server.stop(member)["state"] == "not running"
        assert sleeper.poll() is None          # not killed
    finally:
        sleeper.kill()
        sleeper.wait()


def test_commands_start_the_private_database_when_none_is_configured(state_dir):
    env = {"SG_OFCTL_STATE_DIR": str(state_dir), "SG_OFCTL_DB": ""}
    result = subprocess_cli("group", "list", "-f", "value", "-c", "Name", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "default\n"
    member = server.Member(state_dir)
    assert member.pid() is not None and member.db.exists()
    status = subprocess_cli("db", "status", "-f", "json", env=env)
    assert json.loads(status.stdout)["state"] == "running"
    stop = subprocess_cli("db", "stop", env=env)
    assert stop.returncode == 0 and member.pid() is None


def test_sg_ofctl_db_environment_variable_names_the_database(state_dir):
    member = server.Member(state_dir)
    server.start(member)
    env = {"SG_OFCTL_DB": member.local_remote, "SG_OFCTL_STATE_DIR": "/nonexistent"}
    result = subprocess_cli("group", "create", "from-env", "-f", "value", "-c", "name",
                            env=env)
    assert result.returncode == 0 and result.stdout == "from-env\n", result.stderr


def test_default_state_directory(monkeypatch):
    monkeypatch.setenv("SG_OFCTL_STATE_DIR", "/srv/sg")
    assert server.default_state_dir() == Path("/srv/sg")
    monkeypatch.delenv("SG_OFCTL_STATE_DIR")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert server.default_state_dir() == Path("/var/lib/sg-ofctl")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", "/home/u/.state")
    assert server.default_state_dir() == Path("/home/u/.state/sg-ofctl")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    assert server.default_state_dir() == Path("/home/u/.local/state/sg-ofctl")


@pytest.mark.parametrize("argv,fragment", [
    (["--cluster-address", "127.0.0.1:1"], "cluster-address='127.0.0.1:1'"),
    (["--join", "tcp:127.0.0.1:1"], "--join needs --cluster-address"),
    (["--cluster-address", "tcp:127.0.0.1:1", "--join", "127.0.0.1:2"], "join='127.0.0.1:2'"),
    (["--listen", "nowhere"], "listen='nowhere'"),
])
def test_bad_start_options(state_dir, argv, fragment):
    rc, out, err = run_cli("--state-dir", str(state_dir), "db", "start", *argv)
    assert rc == 1 and out == "" and fragment in err
    assert server.Member(state_dir).pid() is None


def test_start_failure_is_reported_with_the_log(state_dir):
    busy = free_tcp_port()
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", busy))
        s.listen()
        rc, _, err = run_cli("--state-dir", str(state_dir), "db", "start", "--listen",
                             f"127.0.0.1:{busy}")
    assert rc == 1 and "ovsdb-server did not start" in err and "ovsdb-server.log" in err
    assert server.Member(state_dir).pid() is None


def _old_schema(tmp: Path) -> Path:
    """Version 0.9.0 of the schema: no Port.host, no Global.external_ids."""
    schema = json.loads(server.SCHEMA_PATH.read_text())
    schema["version"] = "0.9.0"
    del schema["tables"]["Port"]["columns"]["host"]
    del schema["tables"]["Global"]["columns"]["external_ids"]
    path = tmp / "old.ovsschema"
    path.write_text(json.dumps(schema))
    return path


def _schema_version(member) -> str:
    return subprocess.run(["ovsdb-client", "get-schema-version", member.local_remote],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_a_standalone_database_of_an_older_schema_is_converted(state_dir):
    member = server.Member(state_dir)
    subprocess.run(["ovsdb-tool", "create", str(member.db), str(_old_schema(state_dir))],
                   check=True)
    started = server.start(member)
    assert started["state"] == "started (converted)"
    assert _schema_version(member) == json.loads(server.SCHEMA_PATH.read_text())["version"]
    ok("port", "create", "p", "--mac", "fa:16:3e:00:00:01", "--ip", "10.0.0.1",
       db=member.local_remote)


def test_a_cluster_of_an_older_schema_is_converted_online(state_dir):
    member = server.Member(state_dir)
    address = f"tcp:127.0.0.1:{free_tcp_port()}"
    subprocess.run(["ovsdb-tool", "create-cluster", str(member.db),
                    str(_old_schema(state_dir)), address], check=True)
    started = server.start(member)
    assert started["state"] == "started (exists, schema converted)", started
    assert _schema_version(member) == json.loads(server.SCHEMA_PATH.read_text())["version"]
    assert server.stop(member)["state"] == "stopped"
    assert server.start(member)["state"] == "started (exists)"
