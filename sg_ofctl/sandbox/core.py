"""The sandbox: everything private, started in order, each step printed.

    SG database      sg-ofctl db start, state directory DIR/sgdb
    Open vSwitch     ovsdb-server + ovs-vswitchd (userspace datapath) in namespace
                     PREFIX-hv, run directory DIR/ovs, bridge br-int (fail_mode=secure)
    groups, ports    sg-ofctl apply examples/three-tier.yaml
    agent            sg-ofctl agent, inside PREFIX-hv, OpenFlow on 127.0.0.1:6653, metrics :9464
    VMs              one namespace PREFIX-NAME per port of the file, eth0 on br-int,
                     tagged like a hypervisor does (external_ids:iface-id, attached-mac),
                     echo servers on the TCP ports of the matrix

Everything created is recorded in DIR/state.json before it is created (ledger.py),
so `stop` removes exactly that, whatever state `start` reached."""
from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sg_ofctl.sandbox import matrix
from sg_ofctl.sandbox.ledger import Ledger, list_netns
from sg_ofctl.sandbox.ovs import PrivateOvs
from sg_ofctl.sandbox.proc import alive, run

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = Path(os.environ.get("SG_SANDBOX_DIR", "/run/sg-ofctl-sandbox"))
DEFAULT_PREFIX = os.environ.get("SG_SANDBOX_PREFIX", "sgsb")
EXAMPLE = REPO / "examples" / "three-tier.yaml"
BRIDGE = "br-int"
OF_LISTEN, METRICS_LISTEN = "127.0.0.1:6653", "127.0.0.1:9464"   # both inside PREFIX-hv
HOST = "sandbox-hv1"
# The live change: the monitoring host (group `default`) may now reach PostgreSQL.
CHANGE = ["rule", "create", "db", "--ingress", "--protocol", "tcp", "--dst-port", "5432",
          "--remote-group", "default", "--description", "monitoring checks PostgreSQL"]
TOOLS = {"ip": "iproute2", "ethtool": "ethtool", "ovsdb-tool": "openvswitch-switch",
         "ovsdb-server": "openvswitch-switch", "ovs-vswitchd": "openvswitch-switch",
         "ovs-vsctl": "openvswitch-switch", "ovs-ofctl": "openvswitch-switch",
         "ovs-appctl": "openvswitch-switch"}


class SandboxError(RuntimeError):
    """A step failed; the message says which and what to do."""


def prerequisites() -> list[str]:
    """What is missing, as sentences a newcomer can act on."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the sandbox needs root (network namespaces, Open vSwitch): "
                        "run it with sudo")
    missing = {tool: pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)}
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        problems.append(f"missing commands: {', '.join(missing)} (Debian packages: {pkgs}; "
                        f"scripts/setup.sh installs them, or: apt-get install {pkgs})")
    if not os.path.exists("/usr/share/openvswitch/vswitch.ovsschema"):
        problems.append("Open vSwitch's schema /usr/share/openvswitch/vswitch.ovsschema is "
                        "missing (apt-get install openvswitch-switch)")
    if agent_command() is None:
        problems.append("the agent is not in this checkout: no sg_ofctl/agent package and no "
                        "`sg-ofctl agent` command (the sandbox needs it to enforce the "
                        "security groups; set SG_SANDBOX_AGENT to another agent command)")
    return problems


def agent_command() -> list[str] | None:
    """The argv that starts the agent (global options follow), or None."""
    if os.environ.get("SG_SANDBOX_AGENT"):
        return shlex.split(os.environ["SG_SANDBOX_AGENT"])
    from sg_ofctl import cli
    if "agent" in cli.COMMAND_MODULES and importlib.util.find_spec("sg_ofctl.agent"):
        return [sys.executable, "-m", "sg_ofctl.cli"]
    return None


class Sandbox:
    def __init__(self, directory: Path = DEFAULT_DIR, prefix: str = DEFAULT_PREFIX,
                 out=print, settle: float = 20.0):
        self.dir = Path(directory).resolve()
        self.prefix = prefix
        self.hv_ns = f"{prefix}-hv"
        self.sgdb = self.dir / "sgdb"
        self.db = f"unix:{self.sgdb}/db.sock"
        self.ovs = PrivateOvs(self.dir / "ovs", self.hv_ns)
        self.run_dir = self.dir / "agent"       # the agent's status file (sg-ofctl status)
        self.ledger = Ledger(self.dir)
        self.out = out
        self.settle = settle
        self.t0 = time.monotonic()

    # -- output ---------------------------------------------------------------------------
    def step(self, text: str) -> None:
        self.out(f"[{time.monotonic() - self.t0:5.1f}s] ==> {text}", flush=True)

    def say(self, text: str = "") -> None:
        self.out(text, flush=True)

    # -- helpers --------------------------------------------------------------------------
    def sg(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        """sg-ofctl on the sandbox's database."""
        proc = run([sys.executable, "-m", "sg_ofctl.cli", "--state-dir", str(self.sgdb),
                    "--db", self.db, *args], check=False, timeout=timeout)
        if check and proc.returncode:
            raise SandboxError(f"sg-ofctl {' '.join(args)} failed:\n{proc.stderr.strip()}")
        return proc

    def running(self) -> bool:
        return self.ledger.exists() or any(ns.startswith(self.prefix + "-")
                                           for ns in list_netns())

    # -- start ----------------------------------------------------------------------------
    def start(self, change: bool = True) -> int:
        problems = prerequisites()
        if problems:
            raise SandboxError("cannot start the sandbox:\n" + "\n".join(
                f"  - {p}" for p in problems))
        if self.running():
            self.step(f"a sandbox ({self.prefix}) is already running: stopping it first")
            self.stop(quiet=True)
        try:
            return self._start(change)
        except BaseException:
            self.say(f"\nThe sandbox did not start; logs are in {self.dir} until you run "
                     f"`{self.stop_command()}`.")
            raise

    def _start(self, change: bool) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ledger.set("prefix", self.prefix)
        self.ledger.set("python", sys.executable)

        self.step(f"security-group database: sg-ofctl db start (state directory {self.sgdb})")
        self.ledger.add("sg_state_dirs", str(self.sgdb))
        self.sg("db", "start")

        self.step(f"Open vSwitch: namespace {self.hv_ns}, ovsdb-server + ovs-vswitchd "
                  f"(userspace datapath), bridge {BRIDGE}")
        self._add_netns(self.hv_ns)
        for pidfile in self.ovs.pidfiles:
            self.ledger.add("pidfiles", pidfile)
        try:
            self.ovs.start()
            self.ovs.add_bridge(BRIDGE)
        except RuntimeError as e:
            raise SandboxError(f"Open vSwitch did not start: {e}\n{self.ovs.log_tail()}") from e

        self.step(f"groups and ports: sg-ofctl apply {EXAMPLE.relative_to(REPO)}")
        self.say(indent(self.sg("apply", str(EXAMPLE)).stdout))

        self.step(f"agent: sg-ofctl agent --bridge {BRIDGE} --host {HOST} (in {self.hv_ns}, "
                  f"OpenFlow on {OF_LISTEN}, log {self.dir / 'agent.log'})")
        self._start_agent()
        self.say(f"    Prometheus metrics: http://{METRICS_LISTEN}/metrics in {self.hv_ns}")

        state = self._db_state()
        ports = sorted(state.ports, key=lambda p: p.name)
        self.step(f"VMs (network namespaces on {BRIDGE}): "
                  + ", ".join(vm_name(p.name) for p in ports))
        for port in ports:
            self._add_vm(port)

        self.step("waiting for the agent to bind the ports and install their flows")
        self._wait_bound()

        self.step("reachability matrix: expected (security groups) vs. observed "
                  "(real packets)")
        ok, before = self._matrix()

        if change:
            self.say()
            self.step("live change: the monitoring host (group default) may now reach "
                      "PostgreSQL on db-1")
            self.say(f"    $ sg-ofctl {shlex.join(CHANGE)}")
            self.sg(*CHANGE)
            ok2, _ = self._matrix(previous=before)
            ok = ok and ok2

        self._write_env()
        self.say()
        self.say(self.cheat_sheet())
        return 0 if ok else 1

    def _add_netns(self, ns: str) -> None:
        self.ledger.add("namespaces", ns)
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _start_agent(self) -> None:
        argv = [*agent_command(), "--db", self.db, "agent", "--bridge", BRIDGE,
                "--ovs-db", self.ovs.db, "--listen", OF_LISTEN, "--host", HOST,
                "--run-dir", str(self.run_dir), "--metrics-listen", METRICS_LISTEN]
        log = open(self.dir / "agent.log", "ab")
        env = {**self.ovs.env, "SG_OFCTL_DB": self.db, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(["ip", "netns", "exec", self.hv_ns, *argv], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        log.close()
        self.ledger.add("pids", proc.pid)
        self.ledger.set("agent_pid", proc.pid)
        # The agent sets the bridge's controller to its --listen address.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxError(f"the agent exited with status {proc.returncode}:\n"
                                   + self.tail("agent.log"))
            connected = run(["ovs-vsctl", f"--db={self.ovs.db}", "get", "controller", BRIDGE,
                             "is_connected"], check=False, env=self.ovs.env).stdout.strip()
            if connected == "true":
                return
            time.sleep(0.2)
        raise SandboxError("the switch did not connect to the agent within 30 s:\n"
                           + self.tail("agent.log"))

    def _add_vm(self, port) -> None:
        vm = vm_name(port.name)
        ns, link = f"{self.prefix}-{vm}", f"vm-{vm}"[:15]
        self._add_netns(ns)
        run(["ip", "-n", self.hv_ns, "link", "add", link, "type", "veth", "peer", "name",
             "eth0", "netns", ns])
        run(["ip", "-n", self.hv_ns, "link", "set", link, "up"])
        cmds = [["link", "set", "eth0", "address", port.mac], ["link", "set", "eth0", "up"]]
        for ip in port.fixed_ips:
            cmds.append(["addr", "add", f"{ip}/128", "dev", "eth0", "nodad"] if ":" in ip
                        else ["addr", "add", f"{ip}/32", "dev", "eth0"])
        # Every address is on the link: the VMs ARP for each other directly.
        cmds.append(["route", "add", "0.0.0.0/0", "dev", "eth0"])
        if any(":" in ip for ip in port.fixed_ips):
            cmds.append(["-6", "route", "add", "::/0", "dev", "eth0"])
        for cmd in cmds:
            run(["ip", "-n", ns, *cmd])
        run(["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"])
        # What a hypervisor writes on the instance NIC (docs/AGENT.md).
        tag = [f"tag={port.network}"] if port.network else []
        self.ovs.vsctl("add-port", BRIDGE, link, *tag, "--", "set", "Interface", link,
                       f"external_ids:iface-id={port.name}",
                       f"external_ids:attached-mac={port.mac}",
                       "external_ids:iface-status=active", f"external_ids:vm-id={vm}")
        self.ledger.add("vms", {"name": vm, "ns": ns, "port": port.name, "link": link})
        log_path = self.dir / "vms" / f"{vm}.log"
        log_path.parent.mkdir(exist_ok=True)
        with open(log_path, "w") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *matrix.server_argv()],
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.ledger.add("pids", proc.pid)
        deadline = time.monotonic() + 10
        while "ready" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SandboxError(f"echo servers in {vm} did not start: {log_path.read_text()}")
            time.sleep(0.05)

    def _db_state(self):
        from sg_ofctl.ovsdb import api
        with api.connect(self.db) as db:
            return db.state()

    def _wait_bound(self, timeout: float = 30.0) -> None:
        names = {vm["port"] for vm in self.ledger.data.get("vms", [])}
        deadline = time.monotonic() + timeout
        while True:
            state = self._db_state()
            unbound = sorted(p.name for p in state.ports
                             if p.name in names and state.hosts.get(p.id) != HOST)
            if not unbound:
                return
            if not alive(self.ledger.data["agent_pid"]):
                raise SandboxError("the agent has exited:\n" + self.tail("agent.log"))
            if time.monotonic() > deadline:
                raise SandboxError(f"the agent did not bind {', '.join(unbound)} within "
                                   f"{timeout:.0f} s:\n" + self.tail("agent.log"))
            time.sleep(0.3)

    # -- the matrix -----------------------------------------------------------------------
    def endpoints(self) -> tuple[list[matrix.Endpoint], object]:
        """The VMs as matrix endpoints (ports with their ofports) and the HostView."""
        import dataclasses
        from sg_ofctl.model import HostView
        state = self._db_state()
        by_name = {p.name: p for p in state.ports}
        endpoints = []
        for vm in self.ledger.data.get("vms", []):
            port = by_name.get(vm["port"])
            if port is None:
                continue            # deleted since (sg-ofctl port delete)
            ofport = int(self.ovs.vsctl("get", "Interface", vm["link"], "ofport"))
            endpoints.append(matrix.Endpoint(vm["name"], dataclasses.replace(port, ofport=ofport),
                                             ("ip", "netns", "exec", vm["ns"])))
        view = HostView(ports=tuple(e.port for e in endpoints), groups=state.groups,
                        members=state.members())
        return endpoints, view

    def _matrix(self, previous=None) -> tuple[bool, dict]:
        endpoints, view = self.endpoints()
        expected = matrix.Expectation(view).matrix(endpoints)
        observed, took = matrix.observe_until_agreed(
            endpoints, expected, time.monotonic() + self.settle)
        changed = set()
        if previous:
            changed = {k for k, v in expected.items()
                       if k in previous and previous[k].passes != v.passes}
        bad = matrix.mismatches(expected, observed)
        self.say(matrix.render(endpoints, expected, observed, changed=changed))
        if bad:
            self.say(f"(probed for {took:.1f} s; the agent's log: {self.dir / 'agent.log'})")
        elif previous is not None:
            self.say(f"Enforced: the real packets agreed with the new rules after {took:.1f} s.")
        return not bad, expected

    def matrix(self) -> int:
        """Probe again (`sg-ofctl-sandbox matrix`)."""
        if not self.ledger.exists():
            raise SandboxError(f"no sandbox is running in {self.dir}")
        self.settle = 0
        ok, _ = self._matrix()
        return 0 if ok else 1

    # -- stop and status ------------------------------------------------------------------
    def stop(self, quiet: bool = False) -> int:
        if not self.running():
            if not quiet:
                self.say(f"No sandbox is running ({self.dir}, prefix {self.prefix}).")
            shutil.rmtree(self.dir, ignore_errors=True)
            return 0
        if not quiet:
            self.step(f"stopping the sandbox in {self.dir}")
        # Namespaces of our prefix that a crashed start left unrecorded are ours too.
        known = set(self.ledger.data.get("namespaces", []))
        for ns in list_netns():
            if ns.startswith(self.prefix + "-") and ns not in known:
                self.ledger.data.setdefault("namespaces", []).append(ns)
        left = self.ledger.undo(log=self.say)
        self.ledger = Ledger(self.dir)          # empty: the next start records anew
        if not quiet:
            self.step("stopped: every process, namespace and file of the sandbox is gone"
                      if not left else "stopped, but some things remain (see above)")
        return 1 if left else 0

    def status(self) -> int:
        if not self.ledger.exists():
            self.say(f"No sandbox is running ({self.dir}).")
            return 3
        pids = self.ledger.pids()
        spaces = [ns for ns in self.ledger.data.get("namespaces", []) if ns in list_netns()]
        agent = self.ledger.data.get("agent_pid")
        self.say(f"sandbox {self.prefix} in {self.dir}: {len(pids)} processes, "
                 f"{len(spaces)} namespaces; agent "
                 f"{'running' if agent and alive(agent) else 'NOT running'}")
        return 0

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.dir / name).read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"({self.dir / name} missing)"
        return indent("\n".join(text))

    # -- the cheat sheet ------------------------------------------------------------------
    def stop_command(self) -> str:
        extra = ""
        if self.dir != DEFAULT_DIR.resolve():
            extra += f" --dir {self.dir}"
        if self.prefix != DEFAULT_PREFIX:
            extra += f" --prefix {self.prefix}"
        return f"{REPO}/sg-ofctl-sandbox stop{extra}"

    def _write_env(self) -> None:
        helper = matrix.nethelper.__file__
        scrape = (f"import urllib.request as u; print(u.urlopen('http://{METRICS_LISTEN}"
                  "/metrics').read().decode())")
        bindir = os.path.dirname(sys.executable)
        (self.dir / "env.sh").write_text(f"""\
# source me: sg-ofctl and the ovs-* tools then talk to the sandbox
export PATH={bindir}:$PATH
export SG_OFCTL_DB={self.db}
export SG_OFCTL_STATE_DIR={self.sgdb} SG_OFCTL_RUN_DIR={self.run_dir}
export OVS_RUNDIR={self.ovs.rundir} OVS_LOGDIR={self.ovs.rundir} OVS_DBDIR={self.ovs.rundir}
export SG_OFCTL_OVS_DB={self.ovs.db} SG_OFCTL_VSWITCHD={self.ovs.rundir}/ovs-vswitchd.ctl
metrics() {{ ip netns exec {self.hv_ns} {sys.executable} -c "{scrape}" | grep -E "${{1:-^sg_}}"; }}
# vm NAME [COMMAND...]: a shell (or a command) inside a VM
vm() {{ local n=$1; shift; ip netns exec {self.prefix}-$n "${{@:-bash}}"; }}
# probe NAME SPEC...: SPEC = tcp:IP:PORT or ping:IP, from VM NAME
probe() {{ local n=$1; shift; ip netns exec {self.prefix}-$n {sys.executable} {helper} \\
  probe "$@"; }}
""")

    def cheat_sheet(self) -> str:
        d, ns = self.dir, self.hv_ns
        trace = ("in_port=vm-web-1,tcp,dl_src=fa:16:3e:00:02:01,dl_dst=fa:16:3e:00:03:01,"
                 "nw_src=10.0.2.11,nw_dst=10.0.3.21,tp_dst=5432")
        return f"""\
The sandbox is running. Try it (as root, in a shell):

  source {d}/env.sh                  # sg-ofctl, ovs-*, vm and probe now use the sandbox
  sg-ofctl status --ports                               # what the agent enforces
  sg-ofctl group list
  sg-ofctl rule list db
  sg-ofctl port list
  sg-ofctl explain --from monitor-eth0 --to db-1-eth0 --protocol tcp --dst-port 5432
  sg-ofctl trace --bridge {BRIDGE} --from monitor-eth0 --to db-1-eth0 --dst-port 5432
  sg-ofctl log create db-log --group db --rate 50/s; tail -f {self.run_dir}/packets-{BRIDGE}.log
  sg-ofctl status; echo "exit $?"; metrics convergence   # health (exit 0/2/3); Prometheus
  sg-ofctl rule create web --protocol tcp --dst-port 25 --remote-group db   # a change...
  {REPO}/sg-ofctl-sandbox matrix    # ...and the matrix again
  sg-ofctl apply {EXAMPLE}   # back to the file
  probe web-1 tcp:10.0.3.21:5432 ping:10.0.3.21         # from web-1 to db-1
  vm db-1                                               # a shell inside db-1

  ovs-vsctl show
  ovs-ofctl -O OpenFlow13 --names dump-flows {BRIDGE}         # tables by name
  ovs-ofctl -O OpenFlow13 --names dump-flows {BRIDGE} table=ingress_rules
  ovs-appctl -t $SG_OFCTL_VSWITCHD dpctl/dump-conntrack          # userspace conntrack
  ovs-appctl -t $SG_OFCTL_VSWITCHD ofproto/trace {BRIDGE} {trace}

Logs: {d}/agent.log, {d}/ovs/ovs-vswitchd.log, {d}/sgdb/ovsdb-server.log
Namespaces: {ns} (ovs-vswitchd, agent), {self.prefix}-NAME (the VMs)
Stop (removes every process, namespace and file of the sandbox):
  {self.stop_command()}"""


def vm_name(port_name: str) -> str:
    return port_name.removesuffix("-eth0")


def indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.rstrip().splitlines())
