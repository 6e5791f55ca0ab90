"""Which rows of the security-group database one agent needs: its OVSDB
monitor conditions, computed from what it holds (pure: no I/O, unit-tested).

An agent asks only for (docs/AGENT.md, "What the agent monitors"):
- Port rows of its local ports (the iface-ids on its bridge) and of the ports
  bound to its host (to unbind those that left), by name;
- the groups those local ports use (a port without groups uses `default`,
  fetched by name), and those groups' rules; the groups that the local
  interfaces' tags name (`sg-ofctl-groups`, for the rows the agent creates);
- the groups that those rules name as remote groups, and (MEMBERS: a second
  monitor of Port, on its own connection) every Port row that is a member of
  one (`security_groups includes G`; the members of `default` are also the
  ports without groups: `security_groups == []`, a superset: it also brings
  ports with no group at all, members of nothing);
- Port_Binding rows of its host and of its local ports;
- packet logs of its local groups and ports;
- nothing of Global (every write bumps it: it would wake every agent).

The conditions depend on rows that the conditions themselves bring (a local
port's row names its groups, whose rules name remote groups): the caller
recomputes them from the rows received until they no longer change (the
fixpoint), and publishes a view only once the server acknowledged them.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

GLOBAL, GROUP, RULE, PORT = "Global", "Security_Group", "Security_Group_Rule", "Port"
BINDING, LOG = "Port_Binding", "Log"
# The member Port rows come through a second monitor of Port: ovsdb-server
# looks `==` clauses up in a hash, but only in a condition made of nothing
# else; one `includes` among 1,000 `name ==` clauses made a change of the
# condition cost 5-12 s of server CPU at 50k ports (0.1 s apart).
MEMBERS = "Port members"
DEFAULT_GROUP = "default"
NOTHING = [False]


@dataclass(frozen=True)
class HeldPort:
    """What the conditions need of one held Port row."""

    uuid: object
    groups: frozenset          # uuids of the groups its row names (raw, held or not)
    uses_default: bool = False  # no groups (not "none at all"), port security on: `default`


@dataclass(frozen=True)
class Held:
    """The agent's inputs: its host, its local iface-ids, and what it holds."""

    host: str
    local_names: frozenset = frozenset()
    bound_names: frozenset = frozenset()          # ports this host has bound
    ports: Mapping[str, HeldPort] = field(default_factory=dict)   # by port name
    rules_by_group: Mapping = field(default_factory=dict)  # group uuid -> {rule uuid: remote}
    default_groups: frozenset = frozenset()       # uuids of held groups whose id is `default`
    tag_groups: frozenset = frozenset()   # groups (names or ids) that local tags declare


@dataclass(frozen=True)
class Needs:
    local_groups: frozenset      # uuids of the groups the local ports use
    remote_groups: frozenset     # uuids of the groups named by their rules
    local_ports: frozenset       # uuids of the held local Port rows


def needs(held: Held) -> Needs:
    local_groups: set = set()
    local_ports: set = set()
    for name in held.local_names:
        port = held.ports.get(name)
        if port is None:
            continue
        local_ports.add(port.uuid)
        local_groups |= port.groups
        if port.uses_default:
            local_groups |= held.default_groups
    remotes = {remote for gid in local_groups
               for remote in held.rules_by_group.get(gid, {}).values() if remote is not None}
    return Needs(frozenset(local_groups), frozenset(remotes), frozenset(local_ports))


@functools.lru_cache(maxsize=1 << 16)
def _text(uuid) -> str:
    return str(uuid)     # uuid.UUID.__str__ is slow, and the same uuids come back


def _uuids(column: str, function: str, uuids: Iterable) -> list:
    if function == "includes":
        return [[column, "includes", ["set", [["uuid", u]]]] for u in sorted(map(_text, uuids))]
    return [[column, "==", ["uuid", u]] for u in sorted(map(_text, uuids))]


def _names(column: str, names: Iterable[str]) -> list:
    return [[column, "==", n] for n in sorted(names)]


def conditions(held: Held) -> dict[str, list]:
    """{table: OVSDB monitor condition (its clauses ORed)}, canonical (sorted),
    so equal inputs give equal conditions."""
    need = needs(held)
    groups = need.local_groups | need.remote_groups
    members = _uuids("security_groups", "includes", need.remote_groups)
    if need.remote_groups & held.default_groups:
        members.append(["security_groups", "==", ["set", []]])
    return {
        GLOBAL: NOTHING,
        GROUP: [["name", "==", DEFAULT_GROUP]] + _uuids("_uuid", "==", groups)
        + [[column, "==", ref] for ref in sorted(held.tag_groups) for column in ("id", "name")],
        RULE: _uuids("security_group", "==", need.local_groups) or NOTHING,
        PORT: _names("name", held.local_names | held.bound_names) or NOTHING,
        MEMBERS: members or NOTHING,
        BINDING: [["host", "==", held.host]] + _names("port", held.local_names),
        LOG: (_uuids("security_group", "==", need.local_groups)
              + _uuids("port", "==", need.local_ports)) or NOTHING,
    }


def initial(host: str) -> dict[str, list]:
    """Before the agent knows its local ports: its bindings and `default`."""
    return conditions(Held(host))
