"""A burst of tag-declared ports: how long until the agent has created their rows
and enforces them, and how fast a rule change made during the burst is enforced.

    .venv/bin/python bench/burst.py [--ports 500] [--trials 5]

One private ovs-vswitchd (userspace datapath) and security-group database, the
agent, and two probe VMs (a -> b, UDP 8080, refused until a rule allows it).
Each trial: N internal ports with instance tags (sg-ofctl-ips/-groups) are added
in one ovs-vsctl transaction; once the agent's status lists them, a rule that
allows a -> b is created.  Figures (medians over the trials):

- enforced: from the ovs-vsctl transaction's return to every port `enforced`
  in the agent's status (rows created by the agent, flows in, NO_FWD cleared);
- rule: from the `rule create` command's return to the first probe packet
  (one every 5 ms) that comes back.

Between trials the ports and their rows are removed and the rule deleted.
Every line of output is a JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from agent_testbed import Hypervisor, eventually  # noqa: E402
from burst import (add_tagged_ports, enforced, remove_tagged_ports, seen,  # noqa: E402
                   start_probe)
from ovs_testbed import OvsTestbed  # noqa: E402
from ovsdb_fixtures import new_database  # noqa: E402

MAC = {"a": "fa:16:3e:00:0b:01", "b": "fa:16:3e:00:0b:02"}
IP = {"a": "10.0.11.1", "b": "10.0.11.2"}


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def trial(h, n: int) -> tuple[dict, str]:
    a, b = h.vms["a"], h.vms["b"]
    probe = start_probe(a, b.ip, 8080)
    add_tagged_ports(h.tb, 1, n)
    added = time.monotonic()
    eventually(lambda: seen(h) == n, 300, interval=0.05, what="the burst seen")
    rule = json.loads(h.cli("rule", "create", "web", "--protocol", "udp", "--dst-port",
                            "8080", "-f", "json"))["id"]
    ruled = time.monotonic()
    during = enforced(h)
    out, _ = probe.communicate(timeout=15)
    eventually(lambda: enforced(h) == n, 300, interval=0.05, what="every port enforced")
    done = time.monotonic()
    return {"enforced_s": round(done - added, 3), "enforced_at_rule": during,
            "rule_ms": None if out.strip() == "none" else
            round((float(out) - ruled) * 1000, 1)}, rule


def clean_up(h, n: int, rule: str) -> None:
    h.cli("rule", "delete", rule)
    remove_tagged_ports(h.tb, 1, n)
    eventually(lambda: seen(h) == 0, 300, interval=0.1, what="the ports gone")
    # The agent deletes the rows its tags made when their interfaces leave.
    eventually(lambda: "bulk-" not in h.cli("port", "list", "-f", "value", "-c", "Name"),
               300, interval=0.2, what="the tag-made rows deleted")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", type=int, default=500)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    with new_database() as db, OvsTestbed() as tb:
        h = Hypervisor(tb, db.remote, "bench-host")
        h.cli("group", "create", "web")
        for n in "ab":
            h.cli("port", "create", f"p{n}", "--mac", MAC[n], "--ip", IP[n],
                  *(["--group", "web"] if n == "b" else []))
        h.start_agent()
        h.vms = {n: tb.add_vm(n, MAC[n], [IP[n]], external_ids={"iface-id": f"p{n}"})
                 for n in "ab"}
        for vm in h.vms.values():
            h.wait_enforced(vm)
        h.vms["b"].serve("udp", 8080)
        results = []
        for i in range(args.trials):
            result, rule = trial(h, args.ports)
            results.append(result)
            emit(bench="burst.trial", trial=i + 1, ports=args.ports, **result)
            if i + 1 < args.trials:
                clean_up(h, args.ports, rule)
        rules = [r["rule_ms"] for r in results if r["rule_ms"] is not None]
        emit(bench="burst", ports=args.ports, trials=args.trials,
             enforced_s_median=statistics.median(r["enforced_s"] for r in results),
             enforced_s_max=max(r["enforced_s"] for r in results),
             rule_ms_median=statistics.median(rules) if rules else None,
             rule_ms_max=max(rules) if rules else None,
             rule_not_enforced=len(results) - len(rules))


if __name__ == "__main__":
    main()
