#!/usr/bin/env python3
"""sg-ofctl's Neutron firewall driver side by side with Neutron's OVSFirewallDriver.

The `small`, `medium` and `large` scenarios (bench/scenarios) are fed through the
driver API, as the neutron-openvswitch-agent calls it, to each driver in turn,
each in its own private Open vSwitch (userspace datapath) with the agent's own
OVSIntegrationBridge.  One JSON line per driver and scenario:
driver, scenario, completed, flows, first_batch_seconds, rule_add_seconds,
rule_add_flow_mods, member_add_seconds, member_add_flow_mods, port_add_seconds,
rss_mb (a driver that exceeds its time or memory budget: completed=false, with
where it stood).

Targets for sg-ofctl: medium >= 5x fewer flows and >= 10x faster rule and member
changes than Neutron's in the same run; large completes (first batch <= 15 s,
<= 35,000 flows, RSS <= 300 MB).

    .venv/bin/python bench/neutron.py [--scenarios small,medium,large]
        [--budget-seconds 600] [--budget-mb 8000]

Needs scripts/setup-neutron.sh (scripts/test.sh runs it) and root."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "neutron" / "run_in_private_ovs.sh"
CHILD = ROOT / "bench" / "neutron_driver_run.py"
DRIVERS = ("neutron", "sg_ofctl")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, MB."""
    total = 0
    for p in [pid] + descendants(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout.split()
    kids = [int(x) for x in out]
    return kids + [g for k in kids for g in descendants(k)]


def run_one(driver: str, scenario: str, budget_s: float, budget_mb: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"nb-{driver[:2]}-") as tmp:
        env = {**os.environ, "NFW_SCRIPT": str(CHILD)}
        path = ROOT / "bench" / "scenarios" / f"{scenario}.json"
        log = open(f"{tmp}/run.log", "w+")
        proc = subprocess.Popen([str(RUNNER), f"{tmp}/ovs", driver, str(path)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        start, peak, why = time.monotonic(), 0.0, None
        while proc.poll() is None:
            time.sleep(0.5)
            peak = max(peak, rss_mb(proc.pid))
            if time.monotonic() - start > budget_s:
                why = f"time budget of {budget_s:.0f} s exceeded"
            elif peak > budget_mb:
                why = f"memory budget of {budget_mb:.0f} MB exceeded"
            if why:
                os.killpg(proc.pid, 15)
                proc.wait(60)
                break
        log.seek(0)
        lines = log.read().splitlines()
        log.close()
    result = next((json.loads(line.split("RESULT ", 1)[1]) for line in lines
                   if line.startswith("RESULT ")), None)
    if result is not None:
        return result
    progress = [line.split() for line in lines if line.startswith("PROGRESS ")]
    stood = {"ports_prepared": int(progress[-1][1]) if progress else 0,
             "seconds": round(time.monotonic() - start, 1), "peak_rss_mb": round(peak)}
    out = {"driver": driver, "scenario": scenario, "completed": False,
           "stopped": why or "failed", "stood": stood}
    if not why:
        out["log_tail"] = "\n".join(lines[-15:])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="small,medium,large")
    ap.add_argument("--drivers", default=",".join(DRIVERS))
    ap.add_argument("--budget-seconds", type=float, default=600)
    ap.add_argument("--budget-mb", type=float, default=8000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/neutron.py needs root (private Open vSwitch, namespaces)")
    if not (ROOT / ".venv-neutron" / "bin" / "python").exists():
        sys.exit("run scripts/setup-neutron.sh first (Neutron in .venv-neutron)")
    for scenario in args.scenarios.split(","):
        for driver in args.drivers.split(","):
            print(json.dumps(run_one(driver, scenario, args.budget_seconds, args.budget_mb)),
                  flush=True)


if __name__ == "__main__":
    main()
