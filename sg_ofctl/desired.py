"""The declarative format (YAML) of a whole desired set of groups, rules and ports.

Pure: text <-> `Desired` values.  Groups and ports are keyed by name, rules name
their remote group by name; everything is validated by building model values
(model.Rule, model.SecurityGroup, model.Port), with the file's name used as the
id.  Errors name the file, line, path, field and value.  See docs/FORMAT.md.
"""
from __future__ import annotations

from sg_ofctl import errors, model, safetext, safeyaml
from sg_ofctl.state import Desired, DesiredGroup, DesiredPort
from sg_ofctl.vocabulary import (pair_from_value, pair_to_text, rule_from_fields,
                                 rule_sort_key, rule_to_fields)

GROUP_KEYS = ("description", "stateful", "rules", "external_ids")
PORT_KEYS = ("mac", "ips", "groups", "security_groups", "allowed_addresses",
             "port_security", "network", "external_ids")   # security_groups: Neutron's word
TOP_KEYS = ("version", "groups", "ports")


# ---- reading ---------------------------------------------------------------
_Map = safeyaml.Map


def load(text: str, source: str = "<input>") -> Desired:
    """YAML text -> Desired (bounded first: see safeyaml)."""
    data = safeyaml.load(text, source)
    return from_data(data if data is not None else _Map(), source)


class _Where:
    def __init__(self, source):
        self.source = source

    def fail(self, obj, path, error):
        line = getattr(obj, "line", 0)
        where = f"{self.source}:{line}" if line else self.source
        raise errors.UserError(f"{where}: {safetext.shown(path)}: {error}") from None


def _mapping(where, obj, path, keys=None):
    if obj is None:
        return _Map()
    if not isinstance(obj, dict):
        where.fail(obj, path, model.ValidationError(path.rsplit(".", 1)[-1], obj,
                                                    "must be a mapping"))
    for key in obj:
        if keys is not None and key not in keys:
            where.fail(obj, path, model.ValidationError(
                key, obj[key], f"unknown field (known: {', '.join(keys)})"))
    return obj


def _str_map(where, parent, path, value):
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        where.fail(parent, path, model.ValidationError(
            "external_ids", value, "must map strings to strings"))
    return dict(value)


def from_data(data, source: str = "<input>") -> Desired:
    where = _Where(source)
    top = _mapping(where, data, "(top)", TOP_KEYS)
    if top.get("version", 1) != 1:
        where.fail(top, "version", model.ValidationError("version", top["version"],
                                                         "only version 1 is known"))
    groups = {}
    for name, body in _mapping(where, top.get("groups"), "groups").items():
        path = f"groups.{name}"
        if not isinstance(name, str) or not name.strip():
            where.fail(top, path, model.ValidationError("name", name, "must be a non-empty "
                                                        "string"))
        body = _mapping(where, body, path, GROUP_KEYS)
        rules_in = body.get("rules") or []
        if not isinstance(rules_in, list):
            where.fail(body, f"{path}.rules", model.ValidationError(
                "rules", rules_in, "must be a list"))
        rules = []
        for i, fields in enumerate(rules_in):
            rule_path = f"{path}.rules[{i}]"
            fields = _mapping(where, fields, rule_path)
            try:
                rules.append(rule_from_fields(fields, f"{name}#{i}", name))
            except model.ValidationError as e:
                where.fail(fields if fields else body, rule_path, e)
        try:
            group = model.SecurityGroup(
                id=name, name=name,
                description="" if body.get("description") is None else body["description"],
                stateful=body.get("stateful", True), rules=tuple(rules))
        except model.ValidationError as e:
            where.fail(body, path, e)
        groups[name] = DesiredGroup(group, _str_map(where, body, path,
                                                    body.get("external_ids")))
    ports = {}
    for name, body in _mapping(where, top.get("ports"), "ports").items():
        path = f"ports.{name}"
        body = _mapping(where, body, path, PORT_KEYS)
        try:
            if not isinstance(name, str) or not name.strip():
                raise model.ValidationError("name", name, "must be a non-empty string")
            if "security_groups" in body:
                if "groups" in body:
                    raise model.ValidationError("security_groups", body["security_groups"],
                                                "give either groups or security_groups")
                body["groups"] = body.pop("security_groups")
            pairs = tuple(pair_from_value(p) for p in _listish("allowed_addresses",
                                                     body.get("allowed_addresses")))
            port = model.Port(
                id=name, name=name, mac=body.get("mac"),
                fixed_ips=tuple(_listish("ips", body.get("ips"))),
                allowed_address_pairs=pairs,
                port_security_enabled=body.get("port_security", True),
                security_groups=tuple(_listish("groups", body.get("groups"))),
                explicit_groups=body.get("groups") == [],   # `groups: []`: none, not default
                network=body.get("network", 0))
        except model.ValidationError as e:
            where.fail(body, path, e)
        ports[name] = DesiredPort(port, _str_map(where, body, path, body.get("external_ids")))
    result = Desired(groups=groups, ports=ports)
    try:
        check(result)
    except model.ValidationError as e:
        where.fail(top, "(file)", e)
    return result


def _listish(field, value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise model.ValidationError(field, value, "must be a list")
    return value


def check(state: Desired) -> None:
    """The rules across objects (model.check_ports, model.check_remote_groups):
    named groups exist (in the file, or `default`, which the database always
    has), no port mixes stateful and stateless groups, MACs and fixed IPs are
    unique per network."""
    stateful = {model.DEFAULT_GROUP: True,
                **{name: g.group.stateful for name, g in state.groups.items()}}
    try:
        model.check_remote_groups((g.group for g in state.groups.values()), set(stateful))
    except model.ValidationError as e:     # the file's word for the field
        raise model.ValidationError("remote_group", e.value, e.reason) from None
    model.check_ports([p.port for p in state.ports.values()], stateful)


# ---- writing ---------------------------------------------------------------
class _Flow(dict):
    """A rule: written on one line."""


def to_data(state: Desired) -> dict:
    groups = {}
    names = sorted(state.groups, key=lambda n: (n != model.DEFAULT_GROUP, n))
    for name in names:
        entry = state.groups[name]
        body = {}
        if entry.group.description:
            body["description"] = entry.group.description
        if not entry.group.stateful:
            body["stateful"] = False
        body["rules"] = [_Flow(rule_to_fields(r))
                         for r in sorted(entry.group.rules, key=rule_sort_key)]
        if entry.external_ids:
            body["external_ids"] = dict(sorted(entry.external_ids.items()))
        groups[name] = body
    ports = {}
    for name in sorted(state.ports):
        entry = state.ports[name]
        port = entry.port
        body = {"mac": port.mac, "ips": list(port.fixed_ips)}
        if port.security_groups or port.explicit_groups:
            body["groups"] = list(port.security_groups)
        if port.network:
            body["network"] = port.network
        if port.allowed_address_pairs:
            body["allowed_addresses"] = [pair_to_text(p) for p in port.allowed_address_pairs]
        if not port.port_security_enabled:
            body["port_security"] = False
        if entry.external_ids:
            body["external_ids"] = dict(sorted(entry.external_ids.items()))
        ports[name] = body
    return {"version": 1, "groups": groups, "ports": ports}


def dump(state: Desired) -> str:
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
        pass
    Dumper.add_representer(_Flow, lambda d, data: d.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=True))
    return yaml.dump(to_data(state), Dumper=Dumper, sort_keys=False,
                     default_flow_style=False, width=100, allow_unicode=True)
