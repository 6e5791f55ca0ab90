"""Load the benchmark scenarios (`bench/scenarios/*.json`, copies of shared/scenarios,
Neutron's field names) into a HostView, and apply their `updates`.  Pure: no I/O
beyond reading JSON."""
from __future__ import annotations

import dataclasses
import json
import pathlib

from sg_ofctl import model
from sg_ofctl.model import HostView, Port, Rule, build_groups

RULE_FIELDS = ("id", "security_group_id", "direction", "ethertype", "protocol",
               "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id")


SCENARIO_DIR = pathlib.Path(__file__).resolve().parent.parent / "bench" / "scenarios"


def path(name: str) -> str:
    """The checked-in copy of a named scenario (small, medium, large)."""
    return str(SCENARIO_DIR / f"{name}.json")


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def host_view(data: dict) -> HostView:
    vlan = int(data.get("network", {}).get("local_vlan", 0))
    groups = build_groups({"id": g["id"], "name": g.get("name", ""),
                           "stateful": g.get("stateful", True),
                           "rules": tuple(_rule(r) for r in g["rules"])}
                          for g in data["security_groups"])
    ports = tuple(Port(id=p["id"], name=p.get("name", ""), mac=p["mac"],
                       fixed_ips=(p["ip"],) if isinstance(p["ip"], str) else tuple(p["ip"]),
                       security_groups=tuple(p["security_groups"]), network=vlan,
                       ofport=p["ofport"]) for p in data["ports"])
    remote = {gid: [ip for ip, _mac in pairs] for gid, pairs in data["members"].items()}
    return model.host_view(ports, groups.values(), remote)


def _rule(raw: dict) -> Rule:
    return Rule(**{k: raw.get(k) for k in RULE_FIELDS if k in raw})


def with_rule_added(view: HostView, update: dict) -> HostView:
    gid = update["security_group_id"]
    group = view.groups[gid]
    group = dataclasses.replace(group, rules=group.rules + (_rule(update["rule"]),))
    return dataclasses.replace(view, groups={**view.groups, gid: group})


def with_member_added(view: HostView, update: dict) -> HostView:
    gid = update["security_group_id"]
    ip = update["member"][0]
    members = {**view.members, gid: view.member_addresses(gid) | {ip}}
    return dataclasses.replace(view, members=members)
