"""Rows -> what the commands show (field names follow Neutron's API)."""
from __future__ import annotations

from sg_ofctl import vocabulary
from sg_ofctl.ovsdb import convert


def rule_fields(row) -> dict:
    rule = convert.rule_from_row(row)
    remote = convert.opt(row.remote_group)
    return {
        "id": row.id, "security_group": row.security_group.name,
        "security_group_id": row.security_group.id, "direction": row.direction,
        "ethertype": row.ethertype, "protocol": rule.protocol,
        "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix, "normalized_cidr": rule.normalized_cidr,
        "remote_group": remote.name if remote is not None else None,
        "remote_group_id": remote.id if remote is not None else None,
        "action": row.action, "description": row.description,
        "created_at": row.created_at,
    }


def port_range(rule_row) -> str:
    return vocabulary.port_range_text(convert.rule_from_row(rule_row))


RULE_COLUMNS = ["ID", "IP Protocol", "Ethertype", "IP Range", "Port Range", "Direction",
                "Action", "Remote Security Group", "Security Group"]


def rule_list_row(row, long=False) -> list:
    remote = convert.opt(row.remote_group)
    out = [row.id, convert.opt(row.protocol), row.ethertype,
           convert.opt(row.remote_ip_prefix), port_range(row), row.direction, row.action,
           remote.name if remote is not None else None, row.security_group.name]
    return out + [row.description] if long else out


def group_fields(row, rule_rows) -> dict:
    rules = sorted((rule_fields(r) for r in rule_rows), key=lambda r: r["id"])
    for r in rules:
        for key in ("security_group", "security_group_id", "remote_group"):
            r.pop(key)
        for key in [k for k, v in r.items() if v is None or v == ""]:
            r.pop(key)
    return {"id": row.id, "name": row.name, "description": row.description,
            "stateful": row.stateful, "rules": rules,
            "revision_number": row.revision_number, "created_at": row.created_at,
            "updated_at": row.updated_at, "external_ids": dict(row.external_ids)}


def port_fields(row, hosts: str = "") -> dict:
    return {"id": row.id, "name": row.name, "mac_address": row.mac,
            "fixed_ips": list(row.fixed_ips),
            "allowed_address_pairs": list(row.allowed_address_pairs),
            "port_security_enabled": row.port_security_enabled,
            "security_groups": sorted(g.name for g in row.security_groups),
            "no_security_groups": row.no_security_groups,
            "network": row.network, "host": hosts,
            "revision_number": row.revision_number, "created_at": row.created_at,
            "updated_at": row.updated_at, "external_ids": dict(row.external_ids)}


PORT_COLUMNS = ["ID", "Name", "MAC Address", "Fixed IP Addresses", "Network",
                "Security Groups", "Host"]


def port_list_row(row, hosts: str = "") -> list:
    return [row.id, row.name, row.mac, list(row.fixed_ips), row.network,
            sorted(g.name for g in row.security_groups), hosts]
