"""A private Open vSwitch: ovsdb-server and ovs-vswitchd (userspace datapath) whose
sockets, pidfiles, logs and database live in one run directory, ovs-vswitchd in its
own network namespace (two userspace ovs-vswitchd in one namespace collide).

With OVS_RUNDIR set to that directory, the ordinary tools find it by themselves:
`ovs-vsctl show`, `ovs-ofctl -O OpenFlow13 dump-flows br-int`, `ovs-appctl
dpctl/dump-conntrack`.  The sandbox, Mininet's runner and the tests all start
Open vSwitch through this class."""
from __future__ import annotations

import os
from pathlib import Path

from sg_ofctl.sandbox.proc import read_pidfile, run, stop_pid

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
BRIDGE_SETTINGS = ("datapath_type=netdev", "fail_mode=secure",
                   "protocols=OpenFlow13,OpenFlow14,OpenFlow15",
                   "other_config:disable-in-band=true")


class PrivateOvs:
    def __init__(self, rundir: Path, netns: str):
        self.rundir = Path(rundir)
        self.ns = netns
        self.env = {**os.environ, "OVS_RUNDIR": str(self.rundir),
                    "OVS_LOGDIR": str(self.rundir), "OVS_DBDIR": str(self.rundir),
                    "SG_OFCTL_SWITCH_PKI_DIR": str(self.rundir / "switch-pki")}  # its TLS
        self.db = f"unix:{self.rundir}/db.sock"

    @property
    def pidfiles(self) -> list[str]:
        return [str(self.rundir / "ovsdb-server.pid"), str(self.rundir / "ovs-vswitchd.pid")]

    def start(self) -> None:
        """ovsdb-server, then ovs-vswitchd inside the namespace (which must exist)."""
        d = self.rundir
        d.mkdir(parents=True, exist_ok=True)
        run(["ovsdb-tool", "create", f"{d}/conf.db", SCHEMA])
        run(["ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
             f"--pidfile={d}/ovsdb-server.pid", f"--unixctl={d}/ovsdb-server.ctl", "--detach",
             f"--log-file={d}/ovsdb-server.log", "--no-chdir"], env=self.env)
        self.vsctl("--no-wait", "init")
        self.start_vswitchd()

    def start_vswitchd(self) -> None:
        d = self.rundir
        run(["ip", "netns", "exec", self.ns, "ovs-vswitchd", self.db,
             f"--pidfile={d}/ovs-vswitchd.pid", f"--unixctl={d}/ovs-vswitchd.ctl", "--detach",
             f"--log-file={d}/ovs-vswitchd.log", "--no-chdir"], env=self.env, timeout=60)

    def stop(self) -> None:
        for pidfile in reversed(self.pidfiles):
            if pid := read_pidfile(pidfile):
                stop_pid(pid)

    def stop_vswitchd(self) -> None:
        if pid := read_pidfile(self.pidfiles[1]):
            stop_pid(pid)

    def restart_vswitchd(self, bridge: str) -> None:
        """Every OpenFlow flow and conntrack entry is lost; the bridge, its ports
        and its controller come back from the database."""
        self.stop_vswitchd()
        self.start_vswitchd()
        self.vsctl("wait-until", "bridge", bridge)

    def add_bridge(self, bridge: str) -> None:
        self.vsctl("add-br", bridge, "--", "set", "bridge", bridge, *BRIDGE_SETTINGS)

    def vsctl(self, *args) -> str:
        return run(["ovs-vsctl", f"--db={self.db}", "--timeout=30", *args],
                   env=self.env).stdout.strip()

    def ofctl(self, *args, check=True):
        return run(["ovs-ofctl", "-O", "OpenFlow13", *args], env=self.env, check=check,
                   timeout=60)

    def appctl(self, *args, check=True) -> str:
        return run(["ovs-appctl", "-t", f"{self.rundir}/ovs-vswitchd.ctl", *args],
                   env=self.env, check=check).stdout

    def log_tail(self, name: str = "ovs-vswitchd.log", lines: int = 15) -> str:
        try:
            return "\n".join((self.rundir / name).read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return f"({name} missing)"
