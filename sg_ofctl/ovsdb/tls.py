"""TLS for the security-group database: key material, client remotes, listeners
and Raft addresses, each checked before anything starts or connects.

- Clients (CLI, agent) name `ssl:IP:PORT` remotes with a private key, its
  certificate and the CA certificate that signed the server's certificate
  (`--private-key`, `--certificate`, `--ca-cert`, or SG_OFCTL_PRIVATE_KEY,
  SG_OFCTL_CERTIFICATE, SG_OFCTL_CA_CERT).  python-ovs keeps one key
  configuration per process (ovs.stream.Stream); `install()` sets it.
- Listeners (`db start --listen`) bind exactly the address given: `ssl:IP:PORT`
  (TLS, needs the key material) or, only with `--insecure-plain-tcp`,
  `tcp:IP:PORT`.  A port without an address is refused, never 0.0.0.0.
- Raft addresses are `ssl:IP:PORT` (members authenticate each other with the
  CA) or, only with `--insecure-plain-tcp`, `tcp:IP:PORT`.
No ovsdbapp import here (server.py uses it).
"""
from __future__ import annotations

import dataclasses
import os

from sg_ofctl import errors, safetext

ENV = {"private_key": "SG_OFCTL_PRIVATE_KEY", "certificate": "SG_OFCTL_CERTIFICATE",
       "ca_cert": "SG_OFCTL_CA_CERT"}
OPTION = {"private_key": "--private-key", "certificate": "--certificate",
          "ca_cert": "--ca-cert"}
PLAIN_FLAG = "--insecure-plain-tcp"
PLAIN_RISK = ("plain TCP: anyone who reaches it can read and rewrite every group, rule "
              "and port")
# ovsdb-server 3.1 knows TLSv1..TLSv1.2 by name; TLSv1.3 stays enabled (OpenSSL's default).
SERVER_OPTIONS = ["--ssl-protocols=TLSv1.2"]
_PEM = {"private_key": b"PRIVATE KEY-----", "certificate": b"-----BEGIN CERTIFICATE-----",
        "ca_cert": b"-----BEGIN CERTIFICATE-----"}


@dataclasses.dataclass(frozen=True)
class KeyMaterial:
    """Paths of a private key, its certificate and the CA certificate that
    peers' certificates must be signed by ("" = not given)."""

    private_key: str = ""
    certificate: str = ""
    ca_cert: str = ""

    @classmethod
    def from_options(cls, private_key=None, certificate=None, ca_cert=None) -> "KeyMaterial":
        """Options given, else the environment variables."""
        given = {"private_key": private_key, "certificate": certificate, "ca_cert": ca_cert}
        return cls(**{k: os.path.abspath(v) if v else
                      (os.path.abspath(os.environ[ENV[k]]) if os.environ.get(ENV[k]) else "")
                      for k, v in given.items()})

    @property
    def given(self) -> bool:
        return any(dataclasses.astuple(self))

    def check(self, what: str) -> "KeyMaterial":
        """Refuse (naming what needs them) unless all three files are readable PEM."""
        missing = [OPTION[k] for k, v in dataclasses.asdict(self).items() if not v]
        if missing:
            raise errors.UserError(
                f"{what}: TLS needs --private-key, --certificate and --ca-cert (or "
                f"{', '.join(ENV.values())}); missing: {', '.join(missing)}")
        for key, path in dataclasses.asdict(self).items():
            try:
                with open(path, "rb") as f:
                    head = f.read(64 * 1024)
            except OSError as e:
                raise errors.UserError(f"{OPTION[key]}={safetext.quote(path)}: "
                                       f"{e.strerror}") from None
            if _PEM[key] not in head:
                raise errors.UserError(f"{OPTION[key]}={safetext.quote(path)}: not a PEM "
                                       f"{key.replace('_', ' ')}")
        return self

    def server_args(self) -> list[str]:
        return [f"--private-key={self.private_key}", f"--certificate={self.certificate}",
                f"--ca-cert={self.ca_cert}"]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_configured: KeyMaterial | None = None      # what the command line gave
_installed: KeyMaterial | None = None       # what python-ovs uses


def configure(keys: KeyMaterial) -> None:
    """The key material of this process's clients (checked when an ssl: remote is used)."""
    global _configured
    _configured = keys


def forget() -> None:
    """No key material configured or installed (a process that serves several tests)."""
    global _configured, _installed
    _configured = _installed = None


def install(keys: KeyMaterial) -> None:
    """Use this key material for every ssl: connection of this process."""
    global _installed
    from ovs import stream
    stream.Stream.ssl_set_private_key_file(keys.private_key)
    stream.Stream.ssl_set_certificate_file(keys.certificate)
    stream.Stream.ssl_set_ca_cert_file(keys.ca_cert)
    _installed = keys


def installed() -> KeyMaterial | None:
    return _installed


def certificate_cn(path: str) -> str | None:
    """The common name of a PEM certificate (what OVSDB RBAC compares), or None."""
    import subprocess
    result = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject",
                             "-nameopt", "multiline,utf8"], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "commonName":
            return value.strip()
    return None


def _host_port(field: str, value: str, rest: str, example: str) -> tuple[str, str]:
    host, sep, port = rest.rpartition(":")
    if not sep and safetext.ascii_int(rest) is not None:
        host, sep, port = "", ":", rest
    if not sep or safetext.ascii_int(port) is None or not 0 < int(port) < 65536:
        raise errors.UserError(f"{field}={safetext.quote(value)}: expected {example}")
    if not host:
        raise errors.UserError(f"{field}={safetext.quote(value)}: give the address to "
                               f"listen on ({example}; 0.0.0.0 for every IPv4 address): "
                               "a port alone is refused rather than bound to every address")
    return host, port


def check_client_remote(remote: str) -> str:
    """unix:PATH, tcp:IP:PORT or ssl:IP:PORT (ssl: needs installed key material)."""
    kind, sep, rest = remote.partition(":")
    if not sep or kind not in ("unix", "tcp", "ssl") or not rest:
        raise errors.UserError(f"db={safetext.quote(remote)}: a remote is unix:PATH, "
                               "tcp:ADDR:PORT or ssl:ADDR:PORT")
    if kind == "ssl":
        keys = _configured if _configured is not None and _configured.given \
            else KeyMaterial.from_options()
        if not keys.given and _installed is not None:
            return remote           # this process's clients keep the keys installed
        if keys != _installed:
            install(keys.check(f"db={safetext.quote(remote)}"))
    return remote


def listener(value: str, keys: KeyMaterial, allow_plain: bool) -> str:
    """A --listen value -> the ovsdb-server remote that binds exactly it."""
    if value.startswith("punix:"):
        return value
    if value.startswith(("pssl:", "ptcp:")):       # ovsdb-server's own syntax
        kind, rest = value[1:4], value[5:]
        port, _, host = rest.partition(":")
        rest = f"{host}:{port}"
    else:
        kind, sep, rest = value.partition(":")
        if kind not in ("ssl", "tcp") or not sep:
            kind, rest = "tcp", value
    host, port = _host_port("listen", value, rest, f"{kind}:IP:PORT")
    if kind == "ssl":
        keys.check(f"listen={safetext.quote(value)}")
        return f"pssl:{port}:{host}"
    if not allow_plain:
        raise errors.UserError(f"listen={safetext.quote(value)}: {PLAIN_RISK}; use "
                               f"ssl:IP:PORT, or {PLAIN_FLAG} to accept the risk")
    return f"ptcp:{port}:{host}"


def raft_address(field: str, value: str, keys: KeyMaterial, allow_plain: bool) -> str:
    """tcp:IP:PORT or ssl:IP:PORT of a Raft member."""
    kind, sep, rest = value.partition(":")
    if kind not in ("tcp", "ssl") or not sep:
        raise errors.UserError(f"{field}={safetext.quote(value)}: expected ssl:ADDR:PORT "
                               "(or tcp:ADDR:PORT)")
    _host_port(field, value, rest, "ssl:ADDR:PORT")
    if kind == "ssl":
        keys.check(f"{field}={safetext.quote(value)}")
    elif not allow_plain:
        raise errors.UserError(
            f"{field}={safetext.quote(value)}: plain-TCP Raft lets any host that reaches "
            "it join the cluster, read everything and kick members; use ssl:ADDR:PORT, "
            f"or {PLAIN_FLAG} to accept the risk")
    return value
