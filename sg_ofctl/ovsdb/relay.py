"""The agents' listener: an OVSDB relay beside a database member, with roles.

Hypervisors must not reach the listeners that admins and Raft members use: a
compromised hypervisor would then rewrite every tenant's policy, or join the
cluster.  ovsdb-server verifies every TLS peer of a process against one CA, so
the agents get a process of their own: `ovsdb-server relay:SG_ofctl:unix:...`
that replicates the member through its unix socket, verifies agents against the
hypervisors' CA (`--agent-ca-cert`), and serves them with the role `sg-agent`
(OVSDB RBAC: `RBAC_Role`/`RBAC_Permission` rows in the SG database; a relay
checks a transaction against the role before it forwards it).  The relay's
listeners are rows of a small local database (`listeners.db`, schema
`listeners.ovsschema`): ovsdb-server takes a role only from a `db:` remote.

What the role allows (the certificate's CN is the host name):
- `Port_Binding` rows whose `host` is the CN: insert and delete (bind, unbind);
- `Port` rows whose `external_ids:sg-ofctl-created-by` is the CN: insert,
  delete and update of the columns instance tags declare (ports from tags);
- `Global.revision`: update (every write verifies and bumps it).
Nothing else: not groups, rules, other hosts' ports or bindings, roles.
No ovsdbapp import here.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sg_ofctl import errors, safetext
from sg_ofctl.ovsdb import daemon, tls

AGENT_ROLE = "sg-agent"
CREATED_BY = "sg-ofctl-created-by"      # = agent.tags.CREATED_BY (agent imports ovsdb)
LISTENERS_SCHEMA = Path(__file__).with_name("listeners.ovsschema")
PERMISSIONS = {
    "Port_Binding": {"authorization": ["host"], "insert_delete": True, "update": []},
    "Port": {"authorization": [f"external_ids:{CREATED_BY}"], "insert_delete": True,
             "update": ["mac", "fixed_ips", "security_groups", "external_ids",
                        "revision_number", "updated_at"]},
    "Global": {"authorization": [""], "insert_delete": False, "update": ["revision"]},
}


def relay_sources(value: str, keys: tls.KeyMaterial, allow_plain: bool) -> list[str]:
    """--relay-of REMOTES (comma-separated ssl:ADDR:PORT, tcp:ADDR:PORT with
    --insecure-plain-tcp, or unix:PATH): the cluster members a relay replicates."""
    field = "relay-of"
    remotes = [r.strip() for r in value.split(",")]
    if not value.strip() or any(not r for r in remotes):
        raise errors.UserError(f"{field}={safetext.quote(value)}: expected the cluster's "
                               "remotes, comma-separated (ssl:ADDR:PORT,...)")
    if len(remotes) > 16:
        raise errors.UserError(f"{field}={safetext.quote(value)}: at most 16 remotes")
    for remote in remotes:
        kind, sep, rest = remote.partition(":")
        if kind == "unix" and sep and rest:
            continue
        if kind not in ("ssl", "tcp") or not sep:
            raise errors.UserError(f"{field}={safetext.quote(remote)}: a remote is "
                                   "ssl:ADDR:PORT, tcp:ADDR:PORT or unix:PATH")
        tls.raft_address(field, remote, keys, allow_plain)
    return remotes


def roles_transaction() -> list:
    """OVSDB operations that (re)write the RBAC tables: the agent role only
    (idempotent; sg-ofctl owns these tables)."""
    ops: list = ["SG_ofctl", {"op": "delete", "table": "RBAC_Role", "where": []},
                 {"op": "delete", "table": "RBAC_Permission", "where": []}]
    refs = []
    for n, (table, perm) in enumerate(sorted(PERMISSIONS.items())):
        ops.append({"op": "insert", "table": "RBAC_Permission", "uuid-name": f"p{n}",
                    "row": {"table": table,
                            "authorization": ["set", perm["authorization"]],
                            "insert_delete": perm["insert_delete"],
                            "update": ["set", perm["update"]]}})
        refs.append([table, ["named-uuid", f"p{n}"]])
    ops.append({"op": "insert", "table": "RBAC_Role",
                "row": {"name": AGENT_ROLE, "permissions": ["map", refs]}})
    return ops


def ensure_roles(remote: str, timeout: int = 10) -> str:
    """Write the agent role through `remote`; returns what happened (for start)."""
    done = subprocess.run(["ovsdb-client", f"--timeout={timeout}", "transact", remote,
                           json.dumps(roles_transaction())], capture_output=True, text=True)
    if done.returncode != 0 or '"error"' in done.stdout:
        return f"agent role not written yet: {(done.stderr or done.stdout).strip()[:200]}"
    return f"role {AGENT_ROLE} written"


class Relay:
    """The relay of one member's state directory (its files sit beside the member's)."""

    def __init__(self, member, listen: list[str], ca_cert: str, keys: tls.KeyMaterial):
        self.member, self.raw_listen, self.ca_cert, self.keys = member, listen, ca_cert, keys
        self.listen: list[str] = []
        d = member.state_dir
        self.db, self.pidfile = d / "listeners.db", d / "relay.pid"
        self.log, self.ctl = d / "relay.log", d / "relay.ctl"

    def check(self) -> None:
        """Refuse before anything starts: TLS only, key material, the agents' CA."""
        if not self.raw_listen:
            return
        if not self.ca_cert:
            raise errors.UserError("--agent-listen needs --agent-ca-cert (the CA that signed "
                                   "the hypervisors' certificates)")
        agent_keys = tls.KeyMaterial(self.keys.private_key, self.keys.certificate,
                                     self.ca_cert)
        for value in self.raw_listen:
            if not value.startswith(("ssl:", "pssl:")):
                raise errors.UserError(f"agent-listen={safetext.quote(value)}: agents "
                                       "connect with TLS only (ssl:IP:PORT)")
            self.listen.append(tls.listener(value, agent_keys, False))
        if self.ca_cert == self.keys.ca_cert:
            raise errors.UserError(
                f"--agent-ca-cert={safetext.quote(self.ca_cert)}: is the members' and "
                "admins' CA (--ca-cert): a hypervisor's certificate would then open the "
                "admin listeners and Raft; sign hypervisors with a CA of their own "
                "(sg-ofctl pki)")

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.db).encode() in cmdline else None

    def _write_listeners(self) -> None:
        if not self.db.exists():
            subprocess.run(["ovsdb-tool", "create", str(self.db), str(LISTENERS_SCHEMA)],
                           check=True, capture_output=True)
        conns = [{"op": "insert", "table": "Connection", "uuid-name": f"c{n}",
                  "row": {"target": target, "role": AGENT_ROLE}}
                 for n, target in enumerate(self.listen)]
        ops = ["SG_ofctl_Listeners", {"op": "delete", "table": "Listeners", "where": []},
               *conns, {"op": "insert", "table": "Listeners", "row": {"connections": [
                   "set", [["named-uuid", f"c{n}"] for n in range(len(conns))]]}}]
        done = subprocess.run(["ovsdb-tool", "transact", str(self.db), json.dumps(ops)],
                              capture_output=True, text=True)
        if done.returncode != 0 or '"error"' in done.stdout:
            raise errors.UserError(f"listeners.db: {done.stderr or done.stdout}")

    def start(self) -> dict:
        roles = ensure_roles(self.member.local_remote)
        if self.pid() is None:
            self._write_listeners()
            for stale in (self.ctl,):
                if stale.exists():
                    stale.unlink()
            argv = ["ovsdb-server", str(self.db),
                    f"relay:SG_ofctl:{self.member.local_remote}",
                    f"--pidfile={self.pidfile}", "--detach", "--no-chdir",
                    f"--log-file={self.log}", f"--unixctl={self.ctl}",
                    "--remote=db:SG_ofctl_Listeners,Listeners,connections",
                    f"--private-key={self.keys.private_key}",
                    f"--certificate={self.keys.certificate}",
                    f"--ca-cert={self.ca_cert}", *tls.SERVER_OPTIONS]
            daemon.spawn(argv, self.log, self.stop, "the agents' relay")
        return {"agent_listen": ",".join(self.listen), "agent_relay_pid": self.pid(),
                "agent_role": roles}

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            daemon.stop_pid(pid)
