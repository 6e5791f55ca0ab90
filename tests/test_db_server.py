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
                            "--insecure-plain-tcp", "-f", "json"))
    assert started["state"] == "started (created)" and started["model"] == "standalone"
    assert f"ptcp:{port}:127.0.0.1" in started["listen"]
    assert "anyone who reaches it can read and rewrite" in started["warning"]
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
    (["--cluster-address", "tcp:127.0.0.1:1", "--join", "127.0.0.1:2",
      "--insecure-plain-tcp"], "join='127.0.0.1:2'"),
    (["--listen", "nowhere"], "listen='nowhere'"),
    # issue 11: TLS unless plain TCP is asked for loudly; the address asked, never 0.0.0.0
    (["--listen", "6641"], "listen='6641': give the address to listen on"),
    (["--listen", "pssl:6641"], "listen='pssl:6641': give the address"),
    (["--listen", "ptcp:6641", "--insecure-plain-tcp"], "listen='ptcp:6641': give the addr"),
    (["--listen", "ssl:127.0.0.1:6641"], "TLS needs --private-key, --certificate and --ca-cert"),
    (["--listen", "pssl:6641:127.0.0.1"], "missing: --private-key, --certificate, --ca-cert"),
    (["--listen", "127.0.0.1:6641"], "plain TCP: anyone who reaches it can read and rewrite"),
    (["--listen", "tcp:127.0.0.1:6641"], "--insecure-plain-tcp to accept the risk"),
    (["--cluster-address", "tcp:127.0.0.1:1"], "plain-TCP Raft lets any host"),
    (["--cluster-address", "ssl:127.0.0.1:1"], "cluster-address='ssl:127.0.0.1:1': TLS needs"),
    (["--agent-listen", "ssl:127.0.0.1:6642"], "--agent-listen needs --agent-ca-cert"),
])
def test_bad_start_options(state_dir, argv, fragment):
    rc, out, err = run_cli("--state-dir", str(state_dir), "db", "start", *argv)
    assert rc == 1 and out == "" and fragment in err
    assert server.Member(state_dir).pid() is None
    # a refused option is not remembered: a bare start afterwards works
    assert server.start(server.Member(state_dir))["state"].startswith("started")


@pytest.mark.parametrize("key,fragment", [
    ("/nonexistent/k.pem", "--private-key='/nonexistent/k.pem': No such file"),
    ("/etc/hostname", "--private-key='/etc/hostname': not a PEM private key"),
])
def test_unusable_key_material_is_refused_before_start(state_dir, key, fragment):
    rc, out, err = run_cli("--private-key", key, "--certificate", "/etc/hostname",
                           "--ca-cert", "/etc/hostname", "--state-dir", str(state_dir),
                           "db", "start", "--listen", "ssl:127.0.0.1:6641")
    assert rc == 1 and out == "" and fragment in err
    assert server.Member(state_dir).pid() is None


def test_start_failure_is_reported_with_the_log(state_dir):
    busy = free_tcp_port()
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", busy))
        s.listen()
        rc, _, err = run_cli("--state-dir", str(state_dir), "db", "start", "--listen",
                             f"127.0.0.1:{busy}", "--insecure-plain-tcp")
    assert rc == 1 and "ovsdb-server did not start" in err and "ovsdb-server.log" in err
    assert server.Member(state_dir).pid() is None


def _old_schema(tmp: Path) -> Path:
    """Version 1.0.0 of the schema (Port.host; no Port_Binding, no RBAC tables),
    also without Global.external_ids (0.9.0)."""
    schema = json.loads(server.SCHEMA_PATH.read_text())
    schema["version"] = "1.0.0"
    schema["tables"]["Port"]["columns"]["host"] = {"type": "string"}
    for table in ("Port_Binding", "RBAC_Role", "RBAC_Permission"):
        del schema["tables"][table]
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
    old_port = {"id": "5b1e0c7e-0000-4000-8000-000000000001", "name": "old-vm",
                "mac": "fa:16:3e:00:00:09", "fixed_ips": "10.0.0.9",
                "port_security_enabled": True, "network": 0, "host": "compute-1",
                "revision_number": 1, "created_at": "", "updated_at": ""}
    subprocess.run(["ovsdb-tool", "transact", str(member.db), json.dumps(
        ["SG_ofctl", {"op": "insert", "table": "Global", "row": {"revision": 1}},
         {"op": "insert", "table": "Port", "row": old_port}])], check=True,
        capture_output=True)
    started = server.start(member)
    assert started["state"] == "started (converted)"
    assert _schema_version(member) == json.loads(server.SCHEMA_PATH.read_text())["version"]
    ok("port", "create", "p", "--mac", "fa:16:3e:00:00:01", "--ip", "10.0.0.1",
       db=member.local_remote)
    # Rows survive; the old Port.host is dropped (agents bind again: Port_Binding).
    ports = json.loads(ok("port", "list", "-f", "json", db=member.local_remote))
    assert {(p["Name"], p["Host"]) for p in ports} == {("old-vm", ""), ("p", "")}
    ok("port", "show", "old-vm", db=member.local_remote)


def test_a_cluster_of_an_older_schema_is_converted_online(state_dir):
    member = server.Member(state_dir)
    address = f"tcp:127.0.0.1:{free_tcp_port()}"
    subprocess.run(["ovsdb-tool", "create-cluster", str(member.db),
                    str(_old_schema(state_dir)), address], check=True)
    started = server.start(member, allow_plain_tcp=True)
    assert started["state"] == "started (exists, schema converted)", started
    assert _schema_version(member) == json.loads(server.SCHEMA_PATH.read_text())["version"]
    assert server.stop(member)["state"] == "stopped"
    assert server.start(member)["state"] == "started (exists)"
