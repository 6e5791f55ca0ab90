"""Start, stop and inspect the ovsdb-server that serves the security-group database.

One state directory holds one member: the database file, its unix socket (which
local clients use), pidfile, log and control socket.  The member is either a
private standalone database (the default) or a member of a Raft cluster
(`ovsdb-tool create-cluster` / `join-cluster`).  Processes are found by their
pidfile and stopped by pid, never by name.  No ovsdbapp import here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

from sg_ofctl import errors, safetext
from sg_ofctl.ovsdb import relay, tls
from sg_ofctl.ovsdb.daemon import (ServerError, process_alive, spawn,  # noqa: F401
                                    stop_pid)

SCHEMA_NAME = "SG_ofctl"
SCHEMA_PATH = Path(__file__).with_name("sg_ofctl.ovsschema")


def default_state_dir() -> Path:
    """--state-dir, else SG_OFCTL_STATE_DIR, else /var/lib/sg-ofctl for root,
    else $XDG_STATE_HOME/sg-ofctl (~/.local/state/sg-ofctl)."""
    env = os.environ.get("SG_OFCTL_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/sg-ofctl")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "sg-ofctl"


@dataclasses.dataclass(frozen=True)
class Member:
    """The files of one database member in a state directory."""

    state_dir: Path

    @property
    def db(self) -> Path:
        return self.state_dir / "sg_ofctl.db"

    @property
    def sock(self) -> Path:
        return self.state_dir / "db.sock"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "ovsdb-server.pid"

    @property
    def log(self) -> Path:
        return self.state_dir / "ovsdb-server.log"

    @property
    def ctl(self) -> Path:
        return self.state_dir / "ovsdb-server.ctl"

    @property
    def options(self) -> Path:
        """What `db start` was given (--listen), reused by a bare restart."""
        return self.state_dir / "ovsdb-server.options.json"

    @property
    def local_remote(self) -> str:
        return f"unix:{self.sock}"

    def pid(self) -> int | None:
        """The pid of the running ovsdb-server of this member, or None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # A stale pidfile whose pid now belongs to another program is not ours
        # (a member names its database file, a relay its pidfile).
        if b"ovsdb-server" not in cmdline or (str(self.db).encode() not in cmdline and
                                              str(self.pidfile).encode() not in cmdline):
            return None
        return pid

    def is_clustered(self) -> bool:
        result = subprocess.run(["ovsdb-tool", "db-is-clustered", str(self.db)],
                                capture_output=True, text=True)
        return result.returncode == 0


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ServerError(f"{argv[0]} {argv[1]} failed: {detail[-1] if detail else 'no output'}")
    return result.stdout


def create(member: Member, cluster_address: str | None = None,
           join: list[str] | None = None) -> str:
    """Create the database file if missing; returns what was done.  Addresses
    are checked by the caller (tls.raft_address)."""
    member.state_dir.mkdir(parents=True, exist_ok=True)
    if member.db.exists():
        if not member.is_clustered():
            out = subprocess.run(["ovsdb-tool", "needs-conversion", str(member.db),
                                  str(SCHEMA_PATH)], capture_output=True, text=True)
            if out.stdout.strip() == "yes":
                _run(["ovsdb-tool", "convert", str(member.db), str(SCHEMA_PATH)])
                return "converted"
        return "exists"
    if join:
        if not cluster_address:
            raise ServerError("--join needs --cluster-address (this member's ssl:ADDR:PORT)")
        _run(["ovsdb-tool", "join-cluster", str(member.db), SCHEMA_NAME, cluster_address,
              *join])
        return "joined cluster"
    if cluster_address:
        _run(["ovsdb-tool", "create-cluster", str(member.db), str(SCHEMA_PATH),
              cluster_address])
        return "created cluster"
    _run(["ovsdb-tool", "create", str(member.db), str(SCHEMA_PATH)])
    return "created"


def _options(member: Member, given: dict) -> dict:
    """The options of this start: each one given replaces the one saved by the
    last start (a bare `db start` restarts the member as it was)."""
    saved = json.loads(member.options.read_text()) if member.options.exists() else {}
    return {**given, **saved, **{k: v for k, v in given.items() if v}}


def _save_options(member: Member, options: dict) -> None:
    """Saved once they are checked (a refused option is not remembered)."""
    member.state_dir.mkdir(parents=True, exist_ok=True)
    member.options.write_text(json.dumps(options))
    member.options.chmod(0o600)


def start(member: Member, listen: list[str] | None = None, cluster_address: str | None = None,
          join: list[str] | None = None, keys: tls.KeyMaterial | None = None,
          allow_plain_tcp: bool = False, agent_listen: list[str] | None = None,
          agent_ca_cert: str | None = None, relay_of: str | None = None) -> dict:
    """Create the database if needed and start its ovsdb-server (detached), and
    with `agent_listen` the agents' relay beside it (relay.py).  With
    `relay_of` (the cluster's remotes) this state directory holds a relay of
    the cluster instead of a member: no database file of its own."""
    pid = member.pid()
    if pid is not None:
        return {"state": "already running", "pid": pid, **_describe(member)}
    if join and not cluster_address:
        raise ServerError("--join needs --cluster-address (this member's ssl:ADDR:PORT)")
    keys = keys or tls.KeyMaterial()
    if relay_of is not None and not relay_of.strip():
        relay.relay_sources(relay_of, keys, allow_plain_tcp)     # the error names it
    opts = _options(member, {"listen": list(listen or ()), "keys": keys.as_dict()
                             if keys.given else {}, "allow_plain_tcp": allow_plain_tcp,
                             "agent_listen": list(agent_listen or ()),
                             "agent_ca_cert": agent_ca_cert or "",
                             "relay_of": relay_of or ""})
    keys = tls.KeyMaterial(**opts["keys"])
    plain = opts["allow_plain_tcp"]
    listen = [tls.listener(v, keys, plain) for v in opts["listen"]]
    if opts["relay_of"]:
        return _start_relay(member, opts, keys, listen, cluster_address or join)
    if cluster_address:
        tls.raft_address("cluster-address", cluster_address, keys, plain)
    for remote in join or ():
        tls.raft_address("join", remote, keys, plain)
    if member.db.exists() and member.is_clustered():
        local = subprocess.run(["ovsdb-tool", "db-local-address", str(member.db)],
                               capture_output=True, text=True).stdout.strip()
        if local:
            tls.raft_address("cluster-address", local, keys, plain)
    agents = relay.Relay(member, opts["agent_listen"], opts["agent_ca_cert"], keys)
    agents.check()
    done = create(member, cluster_address, join)
    _save_options(member, opts)
    remotes = [f"punix:{member.sock}"] + listen
    for stale in (member.sock, member.ctl):
        if stale.exists():
            stale.unlink()
    argv = ["ovsdb-server", str(member.db), f"--pidfile={member.pidfile}", "--detach",
            "--no-chdir", f"--log-file={member.log}", f"--unixctl={member.ctl}",
            *(f"--remote={r}" for r in remotes),
            *(keys.server_args() if keys.given else ()), *tls.SERVER_OPTIONS]
    spawn(argv, member.log, lambda: stop(member), "ovsdb-server")
    if done in ("exists", "joined cluster") and member.is_clustered():
        done += convert_online(member)
    out = {"state": f"started ({done})", "pid": member.pid(), **_describe(member),
           "listen": ",".join(remotes)}
    if agents.listen:
        try:
            out.update(agents.start())
        except Exception:
            stop(member)            # all or nothing: no member without its agents' listener
            raise
    if any(r.startswith("ptcp:") for r in listen) or (cluster_address or "").startswith("tcp:"):
        out["warning"] = f"{tls.PLAIN_RISK} ({tls.PLAIN_FLAG})"
    return out


def _start_relay(member: Member, opts: dict, keys: tls.KeyMaterial, listen: list[str],
                 cluster_option) -> dict:
    """`db start --relay-of REMOTES`: ovsdb-server relay:SG_ofctl:REMOTES, serving
    the unix socket and --listen (and the agents' relay beside it), reaching the
    members with this directory's key material (a cluster-CA certificate)."""
    if cluster_option:
        raise errors.UserError(f"relay-of={safetext.quote(opts['relay_of'])}: a relay is "
                               "not a Raft member; drop --cluster-address/--join")
    if member.db.exists():
        raise errors.UserError(f"relay-of={safetext.quote(opts['relay_of'])}: "
                               f"{member.state_dir} holds a database member; give a state "
                               "directory of its own to the relay")
    sources = relay.relay_sources(opts["relay_of"], keys, opts["allow_plain_tcp"])
    agents = relay.Relay(member, opts["agent_listen"], opts["agent_ca_cert"], keys)
    agents.check()
    _save_options(member, opts)
    remotes = [f"punix:{member.sock}"] + listen
    for stale in (member.sock, member.ctl):
        if stale.exists():
            stale.unlink()
    argv = ["ovsdb-server", f"relay:{SCHEMA_NAME}:{','.join(sources)}",
            f"--pidfile={member.pidfile}", "--detach", "--no-chdir",
            f"--log-file={member.log}", f"--unixctl={member.ctl}",
            *(f"--remote={r}" for r in remotes),
            *(keys.server_args() if keys.given else ()), *tls.SERVER_OPTIONS]
    spawn(argv, member.log, lambda: stop(member), "the relay")
    out = {"state": "started (relay)", "pid": member.pid(), **_describe(member),
           "listen": ",".join(remotes)}
    if agents.listen:
        try:
            out.update(agents.start())
        except Exception:
            stop(member)
            raise
    if any(r.startswith("ptcp:") for r in listen) or "tcp:" in opts["relay_of"]:
        out["warning"] = f"{tls.PLAIN_RISK} ({tls.PLAIN_FLAG})"
    return out


def convert_online(member: Member, timeout: int = 10) -> str:
    """A cluster's schema is converted through the running cluster (the leader
    does it for every member).  Returns what happened, for the start message;
    without a quorum yet, conversion waits for the next start."""
    remote = member.local_remote
    check = subprocess.run(["ovsdb-client", f"--timeout={timeout}", "needs-conversion",
                            remote, str(SCHEMA_PATH)], capture_output=True, text=True)
    if check.returncode != 0:
        return ", schema conversion pending: the cluster did not answer"
    if check.stdout.strip() != "yes":
        return ""
    done = subprocess.run(["ovsdb-client", f"--timeout={timeout}", "convert", remote,
                           str(SCHEMA_PATH)], capture_output=True, text=True)
    if done.returncode != 0:
        return f", schema conversion failed: {done.stderr.strip()}"
    return ", schema converted"


def stop(member: Member, timeout: float = 10.0) -> dict:
    """Stop this member's ovsdb-server (and the agents' relay) by pid: SIGTERM,
    then SIGKILL."""
    relay.Relay(member, [], "", tls.KeyMaterial()).stop()
    pid = member.pid()
    if pid is None:
        return {"state": "not running", "state_dir": str(member.state_dir)}
    state = stop_pid(pid, timeout)
    return {"state": state, "pid": pid, "state_dir": str(member.state_dir)}


def _relay_of(member: Member) -> str:
    try:
        return json.loads(member.options.read_text()).get("relay_of", "")
    except (OSError, ValueError):
        return ""


def _describe(member: Member) -> dict:
    out = {"state_dir": str(member.state_dir), "database": str(member.db),
           "local_remote": member.local_remote}
    relay_of = _relay_of(member)
    if relay_of and not member.db.exists():
        del out["database"]
        out.update(model="relay", relay_of=relay_of)
    elif member.db.exists():
        out["model"] = "clustered" if member.is_clustered() else "standalone"
    return out


def status(member: Member) -> dict:
    """Whether this member runs, and for a cluster member its Raft role."""
    pid = member.pid()
    out = {"state": "running" if pid else "not running", "pid": pid, **_describe(member)}
    relay_pid = relay.Relay(member, [], "", tls.KeyMaterial()).pid()
    if relay_pid:
        out["agent_relay_pid"] = relay_pid
    if pid and out.get("model") == "clustered":
        result = subprocess.run(["ovs-appctl", "-t", str(member.ctl), "cluster/status",
                                 SCHEMA_NAME], capture_output=True, text=True, timeout=10)
        for line in result.stdout.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("Cluster ID", "Server ID", "Address", "Status",
                                      "Role", "Term", "Leader"):
                out["cluster_" + key.strip().lower().replace(" ", "_")] = value.strip()
    return out


def ensure_running(member: Member) -> None:
    """Start this member's database if it is not running (the embedded default)."""
    if member.pid() is None:
        start(member)
