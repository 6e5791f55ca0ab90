"""Which interface is a port, when several on the bridge carry its `iface-id`.

A stray interface must not take a healthy port down.  The rule:
- the interface that already enforces the port keeps it (the agent remembers
  the owner across rounds, and across its own restarts through the last
  status file); every other claimant stays fail-closed, with the reason;
- the owner loses its claim when it leaves the bridge, drops the `iface-id`,
  or is marked by the hypervisor `external_ids:sg-ofctl-retired=true` (the end
  of a live migration on this host); then a remaining claimant takes over:
  if exactly one is left it wins, otherwise they all stay fail-closed until
  only one is left (no guessing);
- with no known owner (first start) and several claimants, none is enforced.
Pure: no I/O except `previous_owners()`, which reads the status file."""
from __future__ import annotations

import json
from pathlib import Path

RETIRED = "sg-ofctl-retired"


def retired(iface) -> bool:
    return str(iface.external_ids.get(RETIRED, "")).lower() == "true"


def arbitrate(interfaces, owners: dict) -> tuple[dict, dict]:
    """(winners {iface-id: interface name} of the contested ports, problems
    {interface name: reason} of the interfaces left out).  `owners`:
    {iface-id: interface name} that enforced each port last."""
    claimants: dict = {}
    for iface in interfaces:
        if iface.iface_id is not None:
            claimants.setdefault(iface.iface_id, []).append(iface)
    winners, problems = {}, {}
    for port, ifaces in claimants.items():
        live = [i for i in ifaces if not retired(i)]
        for i in ifaces:
            if retired(i) and len(ifaces) > 1:
                problems[i.name] = (f"marked {RETIRED}=true: port {port!r} moves to another "
                                    "interface")
        if len(ifaces) == 1:
            continue
        owner = owners.get(port)
        names = sorted(i.name for i in ifaces)
        if owner in {i.name for i in live}:
            winner = owner
        elif len(live) == 1:
            winner = live[0].name
        else:
            for i in live:
                problems[i.name] = (f"interfaces {', '.join(names)} all claim port {port!r} "
                                    "and none enforces it yet: remove the stray one(s)")
            continue
        winners[port] = winner
        for i in live:
            if i.name != winner:
                problems[i.name] = (f"port {port!r} is already enforced on interface "
                                    f"{winner!r}; this one stays fail-closed until that one "
                                    f"leaves or is marked external_ids:{RETIRED}=true")
    return winners, problems


def next_owners(interfaces, owners: dict, enforced: dict) -> dict:
    """Owners for the next round: owners still present with the iface-id and
    not retired, plus the interfaces enforced now ({interface name: iface-id})."""
    present = {(i.iface_id, i.name) for i in interfaces if not retired(i)}
    out = {port: name for port, name in owners.items() if (port, name) in present}
    for name, port in enforced.items():
        out.setdefault(port, name)
    return out


def previous_owners(status_path) -> dict:
    """{iface-id: interface name} enforced according to the last status file
    (so that a restart does not forget which interface is the port)."""
    try:
        data = json.loads(Path(status_path).read_text())
        return {p["port"]: p["interface"] for p in data.get("ports", [])
                if p.get("state") == "enforced"}
    except (OSError, ValueError, TypeError, KeyError):
        return {}
