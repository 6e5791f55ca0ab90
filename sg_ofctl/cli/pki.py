"""`sg-ofctl pki init|member NAME|admin NAME|host NAME`: the certificates of a
TLS+RBAC deployment, made with `openssl` (docs/DATABASE.md).

Two CAs, because ovsdb-server verifies every peer of a process against one CA:
- the cluster CA signs database members (Raft peers, servers) and admins
  (full access).  Members and admin clients use it as --ca-cert.
- the hypervisor CA signs one certificate per hypervisor, whose CN is its host
  name (the agent's identity for OVSDB RBAC).  Only the agents' relay trusts
  it (--agent-ca-cert), so a hypervisor's certificate opens neither the admin
  listeners nor Raft.  Agents use the cluster CA as --ca-cert (they verify the
  member they talk to).
Keys are EC P-256, private files 0600 in a 0700 directory; nothing is overwritten.
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import tempfile
from pathlib import Path

from sg_ofctl.cli import common

CAS = {"member": "cluster-ca", "admin": "cluster-ca", "host": "hypervisor-ca"}
USAGE = {"member": "serverAuth,clientAuth", "admin": "clientAuth", "host": "clientAuth"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def register(sub) -> None:
    pki = sub.add_parser("pki", help="make the CAs and certificates for TLS and roles")
    pki.add_argument("--dir", default=os.environ.get("SG_OFCTL_PKI_DIR"),
                     help="where the CAs and certificates go (default $SG_OFCTL_PKI_DIR, "
                          "else STATE_DIR/pki)")
    actions = pki.add_subparsers(dest="pki_command", metavar="ACTION")
    actions.required = True
    out = common.output_parent()
    actions.add_parser("init", parents=[out], help="create the cluster CA and the "
                       "hypervisor CA").set_defaults(func=_init)
    for kind, text in (("member", "a database member (Raft, servers)"),
                       ("admin", "an admin client (full access)"),
                       ("host", "a hypervisor's agent (CN = its host name)")):
        p = actions.add_parser(kind, parents=[out], help=f"a certificate for {text}")
        p.add_argument("name", metavar="NAME")
        p.set_defaults(func=_issue, kind=kind)


def _dir(args) -> Path:
    if args.dir:
        return Path(args.dir).resolve()
    return common.member(args).state_dir / "pki"


def _openssl(*argv: str) -> None:
    result = subprocess.run(["openssl", *argv], capture_output=True, text=True)
    if result.returncode != 0:
        from sg_ofctl import errors
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise errors.UserError(f"openssl {argv[0]} failed: {detail[-1] if detail else '?'}")


def _private(path: Path) -> None:
    path.chmod(0o600)


def _init(args):
    from sg_ofctl import errors
    base = _dir(args)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    base.chmod(0o700)
    made = {}
    for ca in ("cluster-ca", "hypervisor-ca"):
        d = base / ca
        if (d / "cacert.pem").exists():
            raise errors.UserError(f"pki init: {d / 'cacert.pem'} exists (nothing changed)")
    for ca, title in (("cluster-ca", "cluster"), ("hypervisor-ca", "hypervisor")):
        d = base / ca
        d.mkdir(mode=0o700, exist_ok=True)
        _openssl("req", "-x509", "-new", *_EC, "-keyout", str(d / "cakey.pem"),
                 "-out", str(d / "cacert.pem"), "-days", "3650",
                 "-subj", f"/O=sg-ofctl/CN=sg-ofctl {title} CA {secrets.token_hex(4)}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _private(d / "cakey.pem")
        made[f"{title}_ca_cert"] = str(d / "cacert.pem")
    common.emit_one(args, {"pki_dir": str(base), **made})


def _issue(args):
    from sg_ofctl import errors, safetext
    if not _NAME.fullmatch(args.name):
        raise errors.UserError(f"name={safetext.quote(args.name)}: a certificate name is "
                               "1-64 letters, digits, '.', '_' or '-' (the host name for a "
                               "hypervisor)")
    base = _dir(args)
    ca = base / CAS[args.kind]
    if not (ca / "cakey.pem").exists():
        raise errors.UserError(f"pki {args.kind}: no CA in {base} (run `sg-ofctl pki init`)")
    key, cert = base / f"{args.kind}-{args.name}-key.pem", \
        base / f"{args.kind}-{args.name}-cert.pem"
    if key.exists() or cert.exists():
        raise errors.UserError(f"pki {args.kind}: {cert} exists (nothing changed)")
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        req, ext = Path(tmp) / "req.pem", Path(tmp) / "ext.cnf"
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\n"
                       f"extendedKeyUsage={USAGE[args.kind]}\n")
        _openssl("req", "-new", *_EC, "-keyout", str(key), "-out", str(req),
                 "-subj", f"/O=sg-ofctl/OU={args.kind}/CN={args.name}")
        _private(key)
        _openssl("x509", "-req", "-in", str(req), "-CA", str(ca / "cacert.pem"),
                 "-CAkey", str(ca / "cakey.pem"), "-set_serial",
                 f"0x{secrets.token_hex(16)}", "-days", "825", "-extfile", str(ext),
                 "-out", str(cert))
    info = {"private_key": str(key), "certificate": str(cert),
            "ca_cert": str(base / "cluster-ca" / "cacert.pem")}
    if args.kind == "member":
        info["agent_ca_cert"] = str(base / "hypervisor-ca" / "cacert.pem")
    common.emit_one(args, {"kind": args.kind, "name": args.name, **info})
