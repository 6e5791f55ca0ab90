"""Certificates (made by `sg-ofctl pki`) and TLS databases for tests: each in
its own temporary directory, processes stopped by pid.

    pki = Pki.create()             # cluster CA + hypervisor CA in /tmp/sgpXXXX
    pki.member("m1"); pki.admin("alice"); pki.host("compute-1")
    with tls_database(pki) as db:  # member key, admin ssl: listener, agents' relay
        db.admin_remote, db.agent_remote
"""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsdb_fixtures import free_tcp_port, ok, run_cli, short_tmpdir
from sg_ofctl.ovsdb import server


@dataclass
class Keys:
    private_key: str
    certificate: str
    ca_cert: str

    def global_args(self) -> list[str]:
        return ["--private-key", self.private_key, "--certificate", self.certificate,
                "--ca-cert", self.ca_cert]


class Pki:
    def __init__(self, directory: Path):
        self.dir = directory

    @classmethod
    def create(cls) -> "Pki":
        pki = cls(short_tmpdir("sgp"))
        ok("pki", "--dir", str(pki.dir), "init")
        return pki

    def _issue(self, kind: str, name: str) -> Keys:
        key = self.dir / f"{kind}-{name}-key.pem"
        if not key.exists():
            ok("pki", "--dir", str(self.dir), kind, name)
        return Keys(str(key), str(self.dir / f"{kind}-{name}-cert.pem"),
                    str(self.dir / "cluster-ca" / "cacert.pem"))

    def member(self, name: str) -> Keys:
        return self._issue("member", name)

    def admin(self, name: str) -> Keys:
        return self._issue("admin", name)

    def host(self, name: str) -> Keys:
        return self._issue("host", name)

    @property
    def agent_ca_cert(self) -> str:
        return str(self.dir / "hypervisor-ca" / "cacert.pem")

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class TlsDatabase:
    """A standalone member: admin listener ssl:127.0.0.1:P, agents' relay on Q."""

    def __init__(self, pki: Pki):
        self.pki = pki
        self.state_dir = short_tmpdir()
        self.member = server.Member(self.state_dir)
        self.keys = pki.member("db-1")
        self.admin_port, self.agent_port = free_tcp_port(), free_tcp_port()

    @property
    def admin_remote(self) -> str:
        return f"ssl:127.0.0.1:{self.admin_port}"

    @property
    def agent_remote(self) -> str:
        return f"ssl:127.0.0.1:{self.agent_port}"

    def start(self) -> dict:
        rc, out, err = run_cli(*self.keys.global_args(), "--state-dir", str(self.state_dir),
                               "db", "start", "--listen", self.admin_remote,
                               "--agent-listen", self.agent_remote, "--agent-ca-cert",
                               self.pki.agent_ca_cert, "-f", "json")
        assert rc == 0, err
        return json.loads(out)

    def close(self) -> None:
        server.stop(self.member)
        shutil.rmtree(self.state_dir, ignore_errors=True)


@contextlib.contextmanager
def tls_database(pki: Pki):
    db = TlsDatabase(pki)
    try:
        db.start()
        yield db
    finally:
        db.close()


def as_client(keys: Keys | None, remote: str, *argv: str, stdin: str | None = None):
    """sg-ofctl in this process with these keys (None: no key material)."""
    from sg_ofctl.ovsdb import tls
    tls.forget()                         # no leftovers of another test in this process
    return run_cli(*(keys.global_args() if keys else []), "--timeout", "5", *argv,
                   db=remote, stdin=stdin)


def raw_tls_request(port: int, keys: Keys | None, ca_cert: str | None = None,
                    timeout: float = 3.0) -> str:
    """Send `list_dbs` over TLS (with or without a client certificate) and return
    what came back ("" when the server closed the connection or refused the
    handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca_cert:
        ctx.load_verify_locations(ca_cert)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if keys is not None:
        ctx.load_cert_chain(keys.certificate, keys.private_key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw) as s:
            s.sendall(b'{"id": 1, "method": "list_dbs", "params": []}')
            return s.recv(65536).decode(errors="replace")
    except (OSError, ssl.SSLError):
        return ""


def raw_tcp_request(port: int, timeout: float = 3.0) -> str:
    """The same request in plain TCP to a TLS port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b'{"id": 1, "method": "list_dbs", "params": []}')
            return s.recv(65536).decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def pki():
    """A cluster CA and a hypervisor CA for one test module."""
    p = Pki.create()
    yield p
    p.close()
