"""The agent's private PKI for its OpenFlow channel: one CA that signs exactly
two certificates, the agent's (controller) and the bridge's ovs-vswitchd's
(switch).  Each side accepts only a peer whose certificate this CA signed, so
no other process can be the agent's switch (or the switch's controller)
without the CA key, which stays in a root-only directory.

Made with `openssl` (EC P-256: instant) the first time, reused afterwards."""
from __future__ import annotations

import fcntl
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sg_ofctl import errors

DAYS = "3650"
CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
LEAF_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca-cert.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    def cert(self, who: str) -> Path:
        return self.dir / f"{who}-cert.pem"

    def key(self, who: str) -> Path:
        return self.dir / f"{who}-key.pem"

    def complete(self) -> bool:
        return all(p.exists() for p in (self.ca_cert, self.cert("controller"),
                                        self.key("controller"), self.cert("switch"),
                                        self.key("switch")))


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], check=False, capture_output=True, text=True,
                          timeout=30)
    if proc.returncode:
        raise errors.UserError(f"openssl {args[0]} failed: {proc.stderr.strip()[:300]}")


def ensure(directory) -> Pki:
    """The PKI in `directory`, made if missing.  The directory must be owned by
    us and closed to others (a key anyone can read authenticates nobody)."""
    pki = Pki(Path(directory))
    old_umask = os.umask(0o077)
    try:
        pki.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = pki.dir.stat()
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise errors.UserError(
                f"switch_pki_dir={str(pki.dir)!r}: must be owned by uid {os.geteuid()} and "
                f"closed to group and others (mode {oct(st.st_mode & 0o777)}); chmod 700 it")
        with open(pki.dir / ".lock", "w") as lock:   # agents of one host may start together
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not pki.complete():
                _make(pki)
        return pki
    finally:
        os.umask(old_umask)


def _make(pki: Pki) -> None:
    if not pki.ca_cert.exists():
        _openssl("req", "-x509", *CURVE, "-keyout", str(pki.ca_key), "-out",
                 str(pki.ca_cert), "-days", DAYS, "-subj", "/CN=sg-ofctl agent CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ext = pki.dir / "leaf.ext"
    ext.write_text(LEAF_EXT)
    for who in ("controller", "switch"):
        csr = pki.dir / f"{who}.csr"
        _openssl("req", *CURVE, "-keyout", str(pki.key(who)), "-out", str(csr),
                 "-subj", f"/CN=sg-ofctl {who}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey",
                 str(pki.ca_key), "-CAcreateserial", "-out", str(pki.cert(who)),
                 "-days", DAYS, "-extfile", str(ext))
        csr.unlink()
