"""Conntrack zone limits on ovs-vswitchd, through its unixctl socket (what
`ovs-appctl dpctl/ct-set-limits` does).  OVS 3.1 has no OpenFlow message and no
database column for them (its schema, 8.3.1, has no CT_Zone limit), so they
live only in the running ovs-vswitchd: whoever sets them sets them again after
it restarts.  The socket is root's (mode 0750 in OVS's run directory)."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

DEFAULT_RUNDIR = "/var/run/openvswitch"
ZONES_PER_CALL = 256      # keeps one request short
TIMEOUT = 5               # seconds for one command
MAX_REPLY = 1 << 20       # bytes


class VswitchdError(RuntimeError):
    pass


def ovs_rundir(ovs_db: str) -> Path:
    """Where ovs-vswitchd's pidfile and control socket are: $OVS_RUNDIR, else the
    directory of a `unix:` --ovs-db socket, else /var/run/openvswitch."""
    if os.environ.get("OVS_RUNDIR"):
        return Path(os.environ["OVS_RUNDIR"])
    if ovs_db.startswith("unix:"):
        return Path(ovs_db[len("unix:"):]).parent
    return Path(DEFAULT_RUNDIR)


class Vswitchd:
    """ovs-vswitchd's control socket: RUNDIR/ovs-vswitchd.ctl when it was started
    with that `--unixctl`, else its default RUNDIR/ovs-vswitchd.PID.ctl, found
    again on every call (a restarted ovs-vswitchd has a new pid)."""

    def __init__(self, rundir: Path):
        self.rundir = Path(rundir)

    def socket_path(self) -> Path:
        fixed = self.rundir / "ovs-vswitchd.ctl"
        if fixed.exists():
            return fixed
        pidfile = self.rundir / "ovs-vswitchd.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError) as e:
            raise VswitchdError(f"ovs-vswitchd's pidfile {pidfile}: {e}") from None
        return self.rundir / f"ovs-vswitchd.{pid}.ctl"

    def call(self, command: str, *args: str) -> str:
        """One unixctl command (JSON-RPC, what ovs-appctl sends), in-process and
        bounded by TIMEOUT seconds: the worker waits for it before it opens a new
        port, so a fork of ovs-appctl would show in every port's start."""
        path = self.socket_path()
        request = json.dumps({"method": command, "params": list(args), "id": 0}).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(TIMEOUT)
                sock.connect(str(path))
                sock.sendall(request)
                reply = _read_reply(sock)
        except (OSError, ValueError) as e:
            raise VswitchdError(f"{command} via {path}: {e}") from None
        if reply.get("error") is not None:
            raise VswitchdError(f"{command} {' '.join(args)[:200]}: "
                                f"{str(reply['error']).strip()[:300]}")
        return str(reply.get("result") or "")

    def set_zone_limits(self, limits: dict[int, int]) -> None:
        items = sorted(limits.items())
        for i in range(0, len(items), ZONES_PER_CALL):
            self.call("dpctl/ct-set-limits",
                      *(f"zone={z},limit={n}" for z, n in items[i:i + ZONES_PER_CALL]))

    def delete_zone_limits(self, zones) -> None:
        zones = sorted(zones)
        for i in range(0, len(zones), ZONES_PER_CALL):
            self.call("dpctl/ct-del-limits",
                      "zone=" + ",".join(str(z) for z in zones[i:i + ZONES_PER_CALL]))

    def zone_limits(self) -> dict[int, tuple[int, int]]:
        """zone -> (limit, count) of the zones that have their own limit."""
        out: dict[int, tuple[int, int]] = {}
        for line in self.call("dpctl/ct-get-limits").splitlines():
            fields = dict(f.split("=", 1) for f in line.replace(",", " ").split() if "=" in f)
            if "zone" in fields and fields["zone"].isdigit():
                out[int(fields["zone"])] = (int(fields.get("limit", 0)),
                                            int(fields.get("count", 0)))
        return out


def _read_reply(sock) -> dict:
    """One JSON-RPC reply (OVS's stream has no framing: read until it parses)."""
    data = b""
    while len(data) < MAX_REPLY:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a reply")
        data += chunk
        try:
            reply, _end = json.JSONDecoder().raw_decode(data.decode())
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(reply, dict):
            raise ValueError(f"not a JSON-RPC reply: {reply!r:.100}")
        return reply
    raise ValueError(f"reply larger than {MAX_REPLY} bytes")
