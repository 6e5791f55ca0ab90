"""TLS on the security-group database, against a real ovsdb-server (issue 11):
who gets an answer on the admin listener and on the agents' relay, what the
listeners bind, and `sg-ofctl pki`."""
from __future__ import annotations

import json
import subprocess

import pytest

from ovsdb_fixtures import ok, run_cli
from sg_ofctl.ovsdb import server
from tls_fixtures import (Pki, as_client, pki, raw_tcp_request,  # noqa: F401 (fixture)
                          raw_tls_request, tls_database)


@pytest.fixture(scope="module")
def rogue():
    """Certificates of another CA (same names): what an outsider can make."""
    p = Pki.create()
    yield p
    p.close()


@pytest.fixture(scope="module")
def db(pki):
    with tls_database(pki) as database:
        yield database


def test_an_admin_certificate_reads_and_writes(pki, db):
    admin = pki.admin("alice")
    rc, out, err = as_client(admin, db.admin_remote, "group", "create", "web", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["name"] == "web"
    rc, out, err = as_client(admin, db.admin_remote, "group", "list", "-f", "value",
                             "-c", "Name")
    assert rc == 0 and "web" in out.split()


def test_key_material_from_the_environment(pki, db, monkeypatch):
    admin = pki.admin("alice")
    monkeypatch.setenv("SG_OFCTL_PRIVATE_KEY", admin.private_key)
    monkeypatch.setenv("SG_OFCTL_CERTIFICATE", admin.certificate)
    monkeypatch.setenv("SG_OFCTL_CA_CERT", admin.ca_cert)
    rc, out, err = as_client(None, db.admin_remote, "group", "list", "-f", "value", "-c",
                             "Name")
    assert rc == 0 and "default" in out.split(), err


def test_a_client_without_key_material_is_refused_by_the_cli(db):
    rc, out, err = as_client(None, db.admin_remote, "group", "list")
    assert rc == 1 and out == ""
    assert f"db='{db.admin_remote}': TLS needs --private-key, --certificate and --ca-cert" \
        in err


@pytest.mark.parametrize("listener", ["admin", "agent"])
def test_no_certificate_no_answer(db, listener):
    port = db.admin_port if listener == "admin" else db.agent_port
    assert raw_tls_request(port, None) == ""          # TLS without a client certificate
    assert raw_tcp_request(port) == ""                # plain TCP to a TLS port


def test_the_raw_request_gets_an_answer_with_a_good_certificate(pki, db):
    """The probe above can fail only for the reason it tests."""
    assert "SG_ofctl" in raw_tls_request(db.admin_port, pki.admin("alice"),
                                         pki.admin("alice").ca_cert)
    assert "SG_ofctl" in raw_tls_request(db.agent_port, pki.host("compute-1"),
                                         pki.host("compute-1").ca_cert)


def test_certificates_of_another_ca_are_refused(rogue, db):
    for keys in (rogue.admin("alice"), rogue.member("db-1"), rogue.host("compute-1")):
        assert raw_tls_request(db.admin_port, keys) == ""
        assert raw_tls_request(db.agent_port, keys) == ""
    rc, _, err = as_client(rogue.admin("alice"), db.admin_remote, "group", "list")
    assert rc == 1 and "did not answer" in err


def test_a_hypervisor_certificate_does_not_open_the_admin_listener(pki, db):
    """Hypervisors are signed by their own CA, which only the agents' relay trusts."""
    host = pki.host("compute-1")
    assert raw_tls_request(db.admin_port, host) == ""
    rc, _, err = as_client(host, db.admin_remote, "group", "create", "evil")
    assert rc == 1 and "did not answer" in err
    assert "evil" not in ok("group", "list", "-f", "value", "-c", "Name",
                            db=db.member.local_remote).split()


def _listening(port: int) -> set[str]:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[3] for line in out.splitlines()}


def test_listeners_bind_the_address_asked(db):
    assert _listening(db.admin_port) == {f"127.0.0.1:{db.admin_port}"}
    assert _listening(db.agent_port) == {f"127.0.0.1:{db.agent_port}"}


def test_status_shows_the_relay_and_stop_stops_it(pki):
    from tls_fixtures import TlsDatabase
    db = TlsDatabase(pki)
    try:
        db.start()
        relay_pid = server.status(db.member)["agent_relay_pid"]
        member_pid = db.member.pid()
        assert server.process_alive(relay_pid) and server.process_alive(member_pid)
        assert server.stop(db.member)["state"] == "stopped"
        assert not server.process_alive(relay_pid) and not server.process_alive(member_pid)
        # a bare start brings both back, as they were
        restarted = json.loads(run_cli("--state-dir", str(db.state_dir), "db", "start",
                                       "-f", "json")[1])
        assert restarted["agent_listen"] == f"pssl:{db.agent_port}:127.0.0.1"
        assert server.process_alive(restarted["agent_relay_pid"])
    finally:
        db.close()


def test_the_agents_ca_must_differ_from_the_members(pki, tmp_path):
    keys = pki.member("db-2")
    rc, _, err = run_cli(*keys.global_args(), "--state-dir", str(tmp_path), "db", "start",
                         "--agent-listen", "ssl:127.0.0.1:1", "--agent-ca-cert",
                         keys.ca_cert)
    assert rc == 1 and "is the members' and admins' CA" in err
    assert server.Member(tmp_path).pid() is None


def test_pki_refuses_bad_names_and_overwrites(pki):
    rc, _, err = run_cli("pki", "--dir", str(pki.dir), "host", "evil/../name")
    assert rc == 1 and "name='evil/../name'" in err
    rc, _, err = run_cli("pki", "--dir", str(pki.dir), "init")
    assert rc == 1 and "exists (nothing changed)" in err
    pki.host("dup")
    rc, _, err = run_cli("pki", "--dir", str(pki.dir), "host", "dup")
    assert rc == 1 and "exists (nothing changed)" in err


def test_pki_certificates_carry_the_name_and_private_keys_are_private(pki):
    import os
    from sg_ofctl.ovsdb import tls
    host = pki.host("compute-9")
    assert tls.certificate_cn(host.certificate) == "compute-9"
    assert os.stat(host.private_key).st_mode & 0o077 == 0
    assert os.stat(pki.dir / "cluster-ca" / "cakey.pem").st_mode & 0o077 == 0
    verify = subprocess.run(["openssl", "verify", "-CAfile", pki.agent_ca_cert,
                             host.certificate], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    wrong = subprocess.run(["openssl", "verify", "-CAfile", host.ca_cert, host.certificate],
                           capture_output=True, text=True)
    assert wrong.returncode != 0


def test_a_relay_that_cannot_listen_fails_the_start_and_leaves_nothing_running(pki):
    import socket
    from tls_fixtures import TlsDatabase
    db = TlsDatabase(pki)
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", db.agent_port))
            busy.listen()
            rc, _, err = run_cli(*db.keys.global_args(), "--state-dir", str(db.state_dir),
                                 "db", "start", "--listen", db.admin_remote, "--agent-listen",
                                 db.agent_remote, "--agent-ca-cert", pki.agent_ca_cert)
        assert rc == 1 and "the agents' relay did not start" in err and "listen failed" in err
        assert db.member.pid() is None and "agent_relay_pid" not in server.status(db.member)
    finally:
        db.close()


def test_the_agents_host_name_defaults_to_its_certificates_cn(pki, monkeypatch):
    from sg_ofctl.cli import agent as agent_cli
    from sg_ofctl.cli import build_parser
    host = pki.host("compute-42")
    for name in ("SG_OFCTL_PRIVATE_KEY", "SG_OFCTL_CERTIFICATE", "SG_OFCTL_CA_CERT"):
        monkeypatch.delenv(name, raising=False)
    argv = [*host.global_args(), "agent", "--bridge", "br-int"]
    assert agent_cli.host_name(build_parser(argv).parse_args(argv)) == "compute-42"
    argv += ["--host", "other"]
    assert agent_cli.host_name(build_parser(argv).parse_args(argv)) == "other"
    argv = ["agent", "--bridge", "br-int"]
    assert agent_cli.host_name(build_parser(argv).parse_args(argv)) == ""
