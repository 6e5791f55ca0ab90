"""What the agent writes to the databases for its host, as a pure plan.

`plan_writes(local, sg, built, host)` looks at the local interfaces and the
security-group database as the worker last saw them and returns a `WritePlan`:

- rows to create from instance tags (an interface whose `iface-id` has no row
  but carries sg-ofctl-ips/-groups), bound to this host as they are created;
- tag-made rows whose tags changed (updated);
- rows to bind to this host (the interface is here, and this host has no
  Port_Binding row for it);
- tag-made rows of interfaces that left this host (deleted) and API-made rows
  that left (unbound);
- VLAN tags of OVS Ports (a port's `network`), in the local database.

The plan is executed off the flow path by `writer.DatabaseWriter`, the whole
plan in one transaction per database; the command re-checks every item on
fresh rows (ovsdb/host_writes.py), so a plan from a snapshot that lags behind
is harmless.  The database row wins over tags: tags matter only for rows they
create.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from sg_ofctl.agent import tags
from sg_ofctl.ovsdb.host_writes import HostWrites, PortSpec


@dataclass(frozen=True)
class WritePlan:
    db: HostWrites
    vlan_tags: Mapping[str, int | None] = field(default_factory=dict)  # OVS Port -> tag
    creating: Mapping[str, str] = field(default_factory=dict)   # interface -> port name
    tag_errors: Mapping[str, str] = field(default_factory=dict)  # interface -> error
    tag_errors_kept: Mapping[str, str] = field(default_factory=dict)  # row exists: kept

    def __bool__(self) -> bool:
        return bool(self.db or self.vlan_tags)


def _spec(decl: tags.Declared, external_ids: dict) -> PortSpec:
    return PortSpec(decl.name, decl.mac, decl.ips, decl.groups, external_ids)


@functools.lru_cache(maxsize=4096)
def _declared(interface: str, tag_items: tuple, group_items: tuple):
    """tags.declared, remembered: a round looks at every tag-declared interface
    again, and parsing 500 of them costs ~50 ms.  (Declared, None) or (None, error)."""
    try:
        return tags.declared(interface, dict(tag_items), dict(group_items)), None
    except tags.TagError as e:
        return None, str(e)


def plan_writes(local, sg, built, host: str) -> WritePlan:
    """local: agent.local_ovs.LocalState; sg: agent.sgreplica.SgState; built:
    agent.view.Built (the ports that have flows, by interface)."""
    create, update, bind, vlan_tags = {}, {}, [], {}
    group_items = tuple(sorted(sg.group_ids.items()))
    creating, tag_errors, tag_errors_kept = {}, {}, {}
    for iface in local.interfaces:
        name = iface.iface_id
        if name is None:
            continue
        if name in sg.pending:
            continue      # its row may exist: it is on its way
        rec = sg.ports.get(name)
        made_by_tags = rec is not None and bool(rec.external_ids.get(tags.CREATED_BY))
        decl = None
        if rec is None or made_by_tags:
            decl, error = _declared(iface.name, tuple(sorted(iface.external_ids.items())),
                                    group_items)
            if error is not None:
                (tag_errors if rec is None else tag_errors_kept)[iface.name] = error
        if rec is None:
            if decl is not None:
                create.setdefault(name, _spec(decl, {tags.CREATED_BY: host,
                                                     tags.TAGS_APPLIED: decl.text()}))
                creating[iface.name] = name
            continue
        if decl is not None and made_by_tags and \
                rec.external_ids.get(tags.TAGS_APPLIED) != decl.text():
            update[name] = _spec(decl, {tags.TAGS_APPLIED: decl.text()})
        if host not in sg.bound.get(name, ()) and name not in bind:
            bind.append(name)
        port = built.ports_by_iface.get(iface.name)
        if port is not None and iface.vlan_tag != (port.network or None):
            vlan_tags[iface.port_name] = port.network or None
    gone = [r for r in sg.ports.values()
            if host in sg.bound.get(r.name, ()) and r.name not in local.present_ids]
    # A tag-made row belongs to whichever agent hosts the VM (it may have moved
    # here from the host that created it): deleted when it leaves; others unbound.
    delete = tuple(sorted(r.name for r in gone if r.external_ids.get(tags.CREATED_BY)))
    unbind = tuple(sorted(r.name for r in gone if not r.external_ids.get(tags.CREATED_BY)))
    db = HostWrites(host, tuple(create.values()), tuple(update.values()), delete,
                    tuple(bind), unbind)
    return WritePlan(db, vlan_tags, creating, tag_errors, tag_errors_kept)
