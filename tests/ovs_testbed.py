"""A private Open vSwitch for functional tests: its own network namespace,
ovsdb-server and ovs-vswitchd (userspace datapath), a bridge, "VMs" that are
network namespaces on veth pairs, and the os-ken driver as controller.

Everything has a per-instance random tag, so parallel tests (pytest -n) never
share anything; `close()` stops processes by pid and deletes namespaces and
files even after a failure.  Set SG_KEEP_TESTBED=1 to keep the directory (logs)."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from sg_ofctl.compiler import FlowDiff
from sg_ofctl.dataplane.flowjson import flow_from_json, flow_to_json
from sg_ofctl.dataplane.render import ofctl_text
from sg_ofctl.dataplane.tables import name_tables_commands
from sg_ofctl.sandbox import nethelper
from sg_ofctl.sandbox.ovs import PrivateOvs
from sg_ofctl.sandbox.proc import run, stop_pid  # noqa: F401  (tests import them here)

HELPER = nethelper.__file__
OF_PORT = 6653


def _read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().strip() if ready else ""


class Vm:
    """A network namespace with eth0 on the bridge."""

    def __init__(self, testbed: "OvsTestbed", name: str, mac: str, ips, ofport: int):
        self.testbed, self.name, self.mac, self.ips, self.ofport = testbed, name, mac, ips, ofport
        self.ns = f"{testbed.ns}-{name}"

    @property
    def ip(self) -> str:
        return self.ips[0]

    def exec(self, *cmd, check=False, timeout=10) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.ns, *cmd], check=check, timeout=timeout)

    def ping(self, ip: str, source: str | None = None, timeout: float = 1.0) -> bool:
        """One ICMP echo (from `source` if given); True if the reply came back."""
        cmd = [sys.executable, HELPER, "ping", ip, "--timeout", str(timeout)]
        return self.exec(*cmd + (["--src", source] if source else [])).returncode == 0

    def add_address(self, cidr: str) -> None:
        self.exec("ip", "addr", "add", cidr, "dev", "eth0", check=True)

    def serve(self, proto: str, port: int) -> None:
        """An echo server (tcp/udp) in this VM until the test bed closes."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, HELPER,
                                 "serve", proto, str(port)], stdout=subprocess.PIPE, text=True)
        self.testbed._undo.append(lambda: (stop_pid(proc.pid), proc.wait()))
        if _read_line(proc.stdout, 10) != "ready":
            raise RuntimeError(f"{proto} server on {self.name}:{port} did not start")

    def send(self, proto: str, ip: str, port: int, src: str | None = None,
             timeout: float = 1.0) -> bool:
        """True if a tcp/udp echo to ip:port came back."""
        cmd = [sys.executable, HELPER, "send", proto, ip, str(port), "--timeout", str(timeout)]
        return self.exec(*cmd + (["--src", src] if src else [])).returncode == 0

    def session(self, ip: str, port: int, timeout: float = 1.0) -> "TcpSession":
        return TcpSession(self, ip, port, timeout)

    def send_frames(self, *frames: bytes) -> None:
        """Raw Ethernet frames out of eth0 (forged ARP, DHCP, RA... without scapy)."""
        self.exec(sys.executable, HELPER, "frames", *(f.hex() for f in frames), check=True)

    @contextlib.contextmanager
    def sniffing(self, seconds: float = 1.0):
        """with vm.sniffing() as seen: ...  -> `seen` (a list) gets every frame eth0
        received during `seconds` once the block has ended."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, HELPER,
                                 "sniff", str(seconds)], stdout=subprocess.PIPE, text=True)
        self.testbed._undo.append(lambda: (stop_pid(proc.pid), proc.wait()))
        if _read_line(proc.stdout, 10) != "ready":
            raise RuntimeError(f"sniffer on {self.name} did not start")
        seen: list[bytes] = []
        yield seen
        out, _ = proc.communicate(timeout=seconds + 10)
        seen += [bytes.fromhex(line) for line in out.split()]


class TcpSession:
    """A long-lived TCP connection from a VM; `exchange()` sends one line and
    returns True if its echo came back."""

    def __init__(self, vm: Vm, ip: str, port: int, timeout: float = 1.0):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", vm.ns, sys.executable, HELPER, "session", ip, str(port),
             "--timeout", str(timeout)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        vm.testbed._undo.append(self.close)
        self.timeout = timeout
        self.connected = _read_line(self.proc.stdout, timeout + 5) == "ok"

    def exchange(self, text: str = "x") -> bool:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return _read_line(self.proc.stdout, self.timeout + 5) == "ok"

    def close(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:  # a broken pipe to a stopped process
                pass


class Controller:
    """The os-ken driver process (sg_ofctl.dataplane.driver) inside the OVS namespace."""

    def __init__(self, testbed: "OvsTestbed", first_table: int = 0):
        self.testbed = testbed
        sock_path = str(testbed.dir / "driver.sock")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", testbed.ns, sys.executable, "-m", "sg_ofctl.dataplane.driver",
             "--listen", f"127.0.0.1:{OF_PORT}", "--control", sock_path,
             "--first-table", str(first_table), "--log-file", str(testbed.dir / "driver.log")],
            stdout=subprocess.PIPE, text=True)
        testbed._undo.append(self.stop)
        if _read_line(self.proc.stdout, 30) != "ready":
            raise RuntimeError("the driver did not start: " + testbed.log_tail("driver.log"))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)
        self.stream = self.sock.makefile("rwb")
        testbed.vsctl("set-controller", testbed.bridge, f"tcp:127.0.0.1:{OF_PORT}", "--",
                      "set", "controller", testbed.bridge, "connection-mode=out-of-band")
        self.generation = self.call("wait_switch", timeout=20)["generation"]

    def wait_reconnect(self, timeout: float = 30) -> None:
        """Wait until the switch has connected again (after a restart)."""
        self.generation = self.call("wait_switch", timeout=timeout,
                                    min_generation=self.generation + 1)["generation"]

    def call(self, op: str, **kwargs):
        self.stream.write(json.dumps({"op": op, **kwargs}).encode() + b"\n")
        self.stream.flush()
        reply = json.loads(self.stream.readline())
        if not reply["ok"]:
            raise RuntimeError(f"driver {op}: {reply['error']}")
        return reply["result"]

    def install_full(self, flows) -> dict:
        return self.call("install_full", flows=[flow_to_json(f) for f in flows])

    def apply(self, change: FlowDiff, settle: bool = True) -> dict:
        """Apply a FlowDiff as one bundle.  `settle`: also wait for a revalidation
        round, since packets matching datapath flows cached before the commit keep
        their old actions until the revalidators have run."""
        result = self.call("apply", **{k: [flow_to_json(f) for f in getattr(change, k)]
                                       for k in ("add", "modify", "delete")})
        if settle:
            self.testbed.appctl("revalidator/wait")
        return result

    def read_flows(self) -> list:
        return [flow_from_json(f) for f in self.call("read_flows")["flows"]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid)
        self.proc.wait()
        self.proc.stdout.close()


class OvsTestbed:
    def __init__(self, bridge: str = "br-int"):
        self.tag = secrets.token_hex(3)
        self.ns = f"sgtb-{self.tag}"
        self.bridge = bridge
        self.dir = Path(tempfile.mkdtemp(prefix=f"sgtb-{self.tag}-", dir="/tmp"))
        self.ovs = PrivateOvs(self.dir, self.ns)
        self.env = self.ovs.env
        self.db = self.ovs.db
        self.vms: dict[str, Vm] = {}
        self._undo: list = []
        self.controller: Controller | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> "OvsTestbed":
        run(["ip", "netns", "add", self.ns])
        self._undo.append(lambda: run(["ip", "netns", "del", self.ns], check=False))
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        self._undo.append(self.ovs.stop)
        self.ovs.start()
        self.ovs.add_bridge(self.bridge)
        return self

    def restart_vswitchd(self) -> None:
        """Stop and start ovs-vswitchd: every OpenFlow flow and conntrack entry is
        lost; the bridge, ports and controller come back from the database."""
        self.ovs.restart_vswitchd(self.bridge)

    def close(self) -> None:
        """Undo everything, last first; never raises."""
        while self._undo:
            try:
                self._undo.pop()()
            except Exception as e:  # keep cleaning up
                print(f"testbed cleanup: {e!r}", file=sys.stderr)
        if not os.environ.get("SG_KEEP_TESTBED"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # -- tools ----------------------------------------------------------------------------
    def vsctl(self, *args) -> str:
        return self.ovs.vsctl(*args)

    def ofctl(self, *args, check=True, input=None) -> subprocess.CompletedProcess:
        return run(["ovs-ofctl", "-O", "OpenFlow13", *args], env=self.env, check=check,
                   input=input, timeout=120)

    def appctl(self, *args) -> str:
        return self.ovs.appctl(*args)

    def ovsdbapp_api(self):
        """An ovsdbapp Open_vSwitch API on this test bed's database (stopped on close)."""
        from ovsdbapp.backend.ovs_idl import connection, idlutils
        from ovsdbapp.schema.open_vswitch import impl_idl
        helper = idlutils.get_schema_helper(self.db, "Open_vSwitch")
        helper.register_all()
        conn = connection.Connection(connection.OvsdbIdl(self.db, helper), timeout=10)
        api = impl_idl.OvsdbIdl(conn)
        self._undo.append(conn.stop)
        return api

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / name).read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return f"({name} missing)"

    def name_tables(self, first_table: int = 0) -> None:
        self.vsctl(*name_tables_commands(self.bridge, first_table))

    def dump_flows(self, *args) -> list[str]:
        out = self.ofctl("dump-flows", "--no-stats", "--names", self.bridge, *args).stdout
        return [line.strip() for line in out.splitlines() if "actions=" in line]

    def add_flows_ofctl(self, flows, first_table: int = 0) -> subprocess.CompletedProcess:
        """Install flows through `ovs-ofctl --bundle add-flows` (a cross-check of the
        os-ken path); returns the completed process, check=False."""
        text = "".join(ofctl_text(f, first_table) + "\n" for f in flows)
        return self.ofctl("--bundle", "add-flows", self.bridge, "-", check=False, input=text)

    def conntrack(self) -> list[str]:
        return [line for line in self.appctl("dpctl/dump-conntrack").splitlines() if line]

    def start_controller(self, first_table: int = 0) -> Controller:
        self.controller = Controller(self, first_table)
        return self.controller

    # -- VMs --------------------------------------------------------------------------
    def add_vm(self, name: str, mac: str, ips, prefix: int = 24,
               external_ids: dict | None = None) -> Vm:
        """A namespace with eth0 (mac, ips) plugged into the bridge; returns the Vm
        (its `ofport` is the bridge port).  IPv4 addresses get /prefix, IPv6 /64
        without duplicate address detection.  `external_ids` (instance tags such
        as iface-id) are set on the Interface in the same transaction as add-port."""
        ips = [ips] if isinstance(ips, str) else list(ips)
        vm_ns, port = f"{self.ns}-{name}", f"vm-{name}"[:15]
        run(["ip", "netns", "add", vm_ns])
        self._undo.append(lambda: run(["ip", "netns", "del", vm_ns], check=False))
        run(["ip", "-n", self.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0",
             "netns", vm_ns])
        run(["ip", "-n", self.ns, "link", "set", port, "up"])
        for cmd in (["link", "set", "eth0", "address", mac], ["link", "set", "lo", "up"],
                    *(["addr", "add", f"{ip}/{64 if ':' in ip else prefix}", "dev", "eth0"]
                      + (["nodad"] if ":" in ip else []) for ip in ips),
                    ["link", "set", "eth0", "up"]):
            run(["ip", "-n", vm_ns, *cmd])
        run(["ip", "netns", "exec", vm_ns, "ethtool", "-K", "eth0", "tx", "off"])
        tags = [f'external_ids:{k}="{v}"' for k, v in (external_ids or {}).items()]
        self.vsctl("add-port", self.bridge, port,
                   *(["--", "set", "Interface", port, *tags] if tags else []))
        ofport = int(self.vsctl("get", "Interface", port, "ofport"))
        vm = self.vms[name] = Vm(self, name, mac, ips, ofport)
        return vm
