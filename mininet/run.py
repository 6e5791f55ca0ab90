#!/usr/bin/env python3
"""Run a Mininet topology of mininet/sg_topos.py with the sg-ofctl agent(s), apply
the security groups of a file, and check reachability between the hosts: the
expectation of sg_ofctl.reference against real probes.

    sudo .venv/bin/python mininet/run.py [--topo sg-single|sg-two-hv]
                                         [--groups examples/three-tier.yaml] [--cli]

Everything is private and removed at the end (also after an error or Ctrl-C):
a network namespace in which Mininet, ovs-vswitchd (userspace datapath) and the
agents run, an ovsdb-server for Open vSwitch and one for the security-group
database, all files in one temporary directory.  Mininet's global cleanup (`mn -c`,
which kills processes machine-wide by name) never runs: processes are stopped by
pid, the namespace deleted by name.

Exit status 0 when every probe agrees with the expectation, 1 if not, 2 when
something could not start."""
from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
if str(REPO) not in sys.path:       # run from a checkout without the package installed
    sys.path.append(str(REPO))

from sg_ofctl.sandbox import matrix  # noqa: E402
from sg_ofctl.sandbox.ledger import Ledger  # noqa: E402
from sg_ofctl.sandbox.ovs import PrivateOvs  # noqa: E402
from sg_ofctl.sandbox.proc import alive, run, stop_pid  # noqa: E402

DEBIAN_MININET = ("/usr/lib/python3/dist-packages/mininet",
                  "/usr/local/lib/python3/dist-packages/mininet")
T0 = time.monotonic()


def step(text: str) -> None:
    print(f"[{time.monotonic() - T0:5.1f}s] ==> {text}", flush=True)


def import_mininet():
    """Mininet's Python package: the interpreter's own, else Debian's `mininet`
    package (pure Python; loaded alone, without the rest of dist-packages, so the
    venv's other packages stay as they are).  Debian's package also brings mnexec."""
    try:
        import mininet.net  # noqa: F401
        return
    except ImportError:
        # This checkout's mininet/ directory (no __init__.py) may have been taken
        # for a namespace package of that name.
        for name in [m for m in sys.modules if m == "mininet" or m.startswith("mininet.")]:
            del sys.modules[name]
    for path in DEBIAN_MININET:
        init = Path(path, "__init__.py")
        if init.exists():
            spec = importlib.util.spec_from_file_location(
                "mininet", init, submodule_search_locations=[path])
            module = importlib.util.module_from_spec(spec)
            sys.modules["mininet"] = module
            spec.loader.exec_module(module)
            return
    raise SystemExit("mininet/run.py: Mininet is not installed: apt-get install mininet "
                     "(scripts/setup.sh installs it)")


def prerequisites() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root (network namespaces, Open vSwitch): run it with sudo")
    for tool, pkg in (("mnexec", "mininet"), ("ovs-vswitchd", "openvswitch-switch"),
                      ("ovsdb-server", "openvswitch-switch"), ("ethtool", "ethtool"),
                      ("ip", "iproute2")):
        if not shutil.which(tool):
            problems.append(f"missing {tool} (apt-get install {pkg}; scripts/setup.sh does)")
    return problems


# -- outside: a private namespace, then this script again inside it --------------------
def outer(args, argv) -> int:
    problems = prerequisites()
    if problems:
        print("mininet/run.py: cannot start:\n" + "\n".join(f"  - {p}" for p in problems),
              file=sys.stderr)
        return 2
    tag = secrets.token_hex(3)
    ns = f"sgmn-{tag}"
    directory = Path(tempfile.mkdtemp(prefix=f"sgmn-{tag}-"))
    ledger = Ledger(directory)
    ledger.add("namespaces", ns)
    try:
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        step(f"private namespace {ns}, files in {directory}")
        return subprocess.call(["ip", "netns", "exec", ns, sys.executable, __file__,
                                "--inner", str(directory), "--netns", ns, *argv])
    except KeyboardInterrupt:
        return 130
    finally:
        step("cleaning up: processes by pid, the namespace, the files")
        Ledger(directory).undo()


# -- inside the namespace ---------------------------------------------------------------
class Runner:
    def __init__(self, args):
        self.args = args
        self.dir = Path(args.inner)
        self.ledger = Ledger(self.dir)
        self.sgdb = self.dir / "sgdb"
        self.db = f"unix:{self.sgdb}/db.sock"
        self.ovs = PrivateOvs(self.dir / "ovs", args.netns)
        self.procs: list[subprocess.Popen] = []
        self.net = None

    def sg(self, *args, input=None) -> str:
        proc = subprocess.run([sys.executable, "-m", "sg_ofctl.cli", "--state-dir",
                               str(self.sgdb), "--db", self.db, *args], input=input,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode:
            raise RuntimeError(f"sg-ofctl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def spawn(self, argv, log: Path, env=None) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
        self.ledger.add("pids", proc.pid)
        self.procs.append(proc)
        return proc

    def run(self) -> int:
        import_mininet()
        import yaml
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        import sg_topos
        setLogLevel("info" if self.args.verbose else "warning")

        step(f"security-group database (sg-ofctl db start); groups of {self.args.groups}")
        self.ledger.add("sg_state_dirs", str(self.sgdb))
        self.sg("db", "start")
        data = yaml.safe_load(Path(self.args.groups).read_text())
        data.pop("ports", None)          # the hosts declare their ports with tags
        self.sg("apply", "-", input=yaml.safe_dump(data))

        step("Open vSwitch: ovsdb-server + ovs-vswitchd (userspace datapath)")
        for pidfile in self.ovs.pidfiles:
            self.ledger.add("pidfiles", pidfile)
        self.ovs.start()
        os.environ.update({k: v for k, v in self.ovs.env.items() if k.startswith("OVS_")})

        topo = sg_topos.topos[self.args.topo]()
        # Mininet.init() would raise limits and change sysctls machine-wide: not here.
        Mininet.inited = True
        self.net = net = Mininet(topo=topo, controller=None, build=False)
        step(f"Mininet: topology {self.args.topo}")
        net.build()
        for node in net.hosts + net.switches:
            self.ledger.add("pids", node.pid)
        net.start()

        agents = {}
        for i, switch in enumerate(sorted(net.switches, key=lambda s: s.name)):
            host = f"hv{i + 1}"
            listen = f"127.0.0.1:{switch.agent_port}"
            step(f"agent for {switch.name} (hypervisor {host}, OpenFlow {listen})")
            argv = [sys.executable, "-m", "sg_ofctl.cli", "--db", self.db, "agent",
                    "--bridge", switch.name, "--ovs-db", self.ovs.db, "--listen", listen,
                    "--host", host, "--run-dir", str(self.dir / f"agent-{switch.name}"),
                    "--switch-pki-dir", str(self.dir / "pki")]   # one ovs-vswitchd: one SSL row
            self.spawn(argv, self.dir / f"agent-{switch.name}.log",
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
            for _intf, vm in switch.host_ports():
                agents[vm.params["port"]] = host

        step("waiting for the agents to create and bind the hosts' ports")
        state = self.wait_bound(agents)

        step("echo servers in the hosts; probing")
        hosts = {h.name: h for h in net.hosts}
        for h in net.hosts:
            prefix = ["mnexec", "-a", str(h.pid)]
            self.spawn([*prefix, *matrix.server_argv()], self.dir / f"{h.name}.serve.log")
        endpoints, view = self.endpoints(state, hosts)
        self.wait_servers(endpoints)
        expected = matrix.Expectation(view).matrix(endpoints)
        observed, took = matrix.observe_until_agreed(endpoints, expected,
                                                     time.monotonic() + 20)
        print(matrix.render(endpoints, expected, observed), flush=True)
        bad = matrix.mismatches(expected, observed)
        if bad:
            for switch in net.switches:
                print(f"--- agent-{switch.name}.log (last lines)")
                print(tail(self.dir / f"agent-{switch.name}.log"))
        if self.args.cli:
            from mininet.cli import CLI
            print("Mininet CLI: the hosts are", ", ".join(sorted(hosts)), "- try "
                  f"`web1 {sys.executable} {matrix.nethelper.__file__} probe "
                  "tcp:10.0.3.21:5432`; `exit` stops and removes everything.")
            CLI(net)
        return 1 if bad else 0

    def wait_bound(self, agents: dict, timeout: float = 40.0):
        from sg_ofctl.ovsdb import api
        deadline = time.monotonic() + timeout
        while True:
            with api.connect(self.db) as db:
                state = db.state()
            by_name = {p.name: p for p in state.ports}
            missing = sorted(name for name, host in agents.items()
                             if name not in by_name or state.hosts.get(by_name[name].id) != host)
            if not missing:
                return state
            dead = any(p.poll() is not None for p in self.procs)
            if dead or time.monotonic() > deadline:
                logs = "\n".join(tail(f) for f in sorted(self.dir.glob("agent-*.log")))
                raise RuntimeError(f"ports not bound: {', '.join(missing)}"
                                   f"{' (an agent exited)' if dead else ''}\n{logs}")
            time.sleep(0.3)

    @staticmethod
    def endpoints(state, hosts):
        """Matrix endpoints: the hosts' ports from the database, numbered as if on one
        host (the reference's verdict does not depend on the placement)."""
        import dataclasses
        from sg_ofctl.model import HostView
        by_name = {p.name: p for p in state.ports}
        endpoints = []
        for i, name in enumerate(sorted(hosts)):
            h = hosts[name]
            port = dataclasses.replace(by_name[h.params["port"]], ofport=i + 1)
            endpoints.append(matrix.Endpoint(name, port, ("mnexec", "-a", str(h.pid))))
        view = HostView(ports=tuple(e.port for e in endpoints), groups=state.groups,
                        members=state.members())
        return endpoints, view

    def wait_servers(self, endpoints) -> None:
        deadline = time.monotonic() + 10
        for ep in endpoints:
            log = self.dir / f"{ep.name}.serve.log"
            while "ready" not in (log.read_text() if log.exists() else ""):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"echo servers in {ep.name} did not start")
                time.sleep(0.05)

    def close(self) -> None:
        """Stop what this process started, by pid; never raises."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                stop_pid(proc.pid)
            proc.wait()
        if self.net is not None:
            try:
                self.net.stop()
            except Exception as e:   # noqa: BLE001 - keep cleaning up
                print(f"net.stop(): {e!r}", file=sys.stderr)
        self.ovs.stop()
        subprocess.run([sys.executable, "-m", "sg_ofctl.cli", "--state-dir", str(self.sgdb),
                        "db", "stop"], capture_output=True)
        for pid in self.ledger.pids():
            if alive(pid):
                stop_pid(pid)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} missing)"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="mininet/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--topo", default="sg-single", choices=("sg-single", "sg-two-hv"))
    parser.add_argument("--groups", default=str(REPO / "examples" / "three-tier.yaml"),
                        help="a file of docs/FORMAT.md; its groups are applied (its ports "
                             "are left out: the hosts declare theirs with tags)")
    parser.add_argument("--cli", action="store_true", help="then open Mininet's CLI")
    parser.add_argument("--verbose", action="store_true", help="Mininet's info messages")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--netns", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.inner:
        return outer(args, argv)
    runner = Runner(args)
    try:
        return runner.run()
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        print(f"mininet/run.py: {e}", file=sys.stderr)
        return 2
    finally:
        runner.close()


if __name__ == "__main__":
    sys.exit(main())
