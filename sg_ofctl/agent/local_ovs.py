"""The local Open_vSwitch database: the bridge's interfaces with their ofport
and tags, pushed by an ovsdbapp monitor; and the bridge settings the agent
owns (controller, fail mode, protocols, table names, VLAN tags of ports).

Only the tables the agent reads are replicated.  Every row change calls
`on_change()` (from the IDL thread); the worker then reads a snapshot."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sg_ofctl.ovsdb  # noqa: F401  (before ovsdbapp: python-ovs without eventlet)
from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.open_vswitch import impl_idl

from sg_ofctl.agent.idlwatch import ConnectionWatch
from sg_ofctl.dataplane import tables as of_tables

LOG = logging.getLogger(__name__)
TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller", "Flow_Table", "SSL")
# Interface rows: only what the agent reads.  ovs-vswitchd rewrites the others
# (statistics every 5 s, link state, mtu...): replicating them would wake the
# worker for nothing, 500 rows at a time.
COLUMNS = {"Interface": ("name", "ofport", "external_ids", "mac_in_use", "type")}
OFPP_LOCAL = 65534


@dataclass(frozen=True)
class LocalInterface:
    name: str
    port_name: str           # the OVS Port row holding it
    ofport: int
    external_ids: dict = field(default_factory=dict, compare=True, hash=False)
    vlan_tag: int | None = None   # the OVS Port's `tag`
    mac_in_use: str | None = None
    type: str = ""

    @property
    def iface_id(self) -> str | None:
        return self.external_ids.get("iface-id") or None


@dataclass(frozen=True)
class LocalState:
    bridge_found: bool
    datapath_id: int | None
    interfaces: tuple[LocalInterface, ...]   # with an ofport, on our bridge (LOCAL excluded)
    present_ids: frozenset = frozenset()     # iface-ids on the bridge, ofport or not
    controller_connected: bool | None = None  # the bridge's Controller row: is_connected


def _single(value):
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


class _Idl(ConnectionWatch, connection.OvsdbIdl):
    on_change = None
    changed = True     # since the last snapshot (set under the connection lock)

    def connection_changed(self) -> None:
        self.changed = True
        if self.on_change is not None:
            self.on_change()

    def cooperative_yield(self):
        """No eventlet here: don't sleep after every row."""

    def notify(self, event, row, updates=None):
        self.changed = True
        try:
            if self.on_change is not None:
                self.on_change()
        except Exception:  # never let the IDL thread die
            LOG.exception("local OVSDB change notification")


class LocalOvs:
    def __init__(self, remote: str, bridge: str, on_change, timeout: float = 10.0):
        self.remote, self.bridge = remote, bridge
        helper = idlutils.get_schema_helper(remote, "Open_vSwitch")
        for table in TABLES:
            if table in COLUMNS:
                helper.register_columns(table, list(COLUMNS[table]))
            else:
                helper.register_table(table)
        idl = _Idl(remote, helper)
        idl.on_change = on_change
        self.idl = idl
        self._last: LocalState | None = None
        self.conn = connection.Connection(idl, timeout)
        self.api = impl_idl.OvsdbIdl(self.conn)   # starts the connection thread

    def close(self) -> None:
        self.conn.stop(timeout=5)

    def connected(self) -> bool:
        try:
            return bool(self.idl._session.is_connected())
        except Exception:
            return False

    # -- reads --------------------------------------------------------------------------
    def snapshot(self) -> LocalState:
        """The bridge's interfaces; the previous snapshot (the same object) when
        no row changed since (reading 500 interfaces costs ~0.1 s)."""
        with self.conn.lock:     # the IDL thread notifies under this lock
            if not self.idl.changed and self._last is not None:
                return self._last
            self.idl.changed = False
            self._last = self._read()
            return self._last

    def _read(self) -> LocalState:
        tables = self.idl.tables
        bridge = next((b for b in tables["Bridge"].rows.values() if b.name == self.bridge),
                      None)
        if bridge is None:
            return LocalState(False, None, ())
        dpid = _single(bridge.datapath_id)
        out, present = [], set()
        for port in bridge.ports:
            tag = _single(port.tag)
            for iface in port.interfaces:
                if iface.external_ids.get("iface-id"):
                    present.add(iface.external_ids["iface-id"])
                ofport = _single(iface.ofport)
                if not isinstance(ofport, int) or ofport <= 0 or ofport == OFPP_LOCAL:
                    continue
                out.append(LocalInterface(iface.name, port.name, ofport,
                                          dict(iface.external_ids), tag,
                                          _single(iface.mac_in_use), iface.type))
        connected = [c.is_connected for c in bridge.controller]
        return LocalState(True, int(dpid, 16) if dpid else None,
                          tuple(sorted(out, key=lambda i: i.ofport)), frozenset(present),
                          all(connected) if connected else None)

    # -- writes (called by the worker or at start) --------------------------------------
    def channel_secret(self, new_secret) -> str:
        """The bridge's `other_config:dp-desc` if it is a channel secret (kept
        across agent restarts, so a reconnecting switch is never refused for
        an update it has not applied yet), else new_secret()."""
        from sg_ofctl.dataplane.channel import DESC_PREFIX
        with self.conn.lock:
            bridge = next((b for b in self.idl.tables["Bridge"].rows.values()
                           if b.name == self.bridge), None)
            current = bridge.other_config.get("dp-desc", "") if bridge is not None else ""
        return current if current.startswith(DESC_PREFIX) and len(current) > 40 \
            else new_secret()

    def configure_ssl(self, key: str, cert: str, ca_cert: str) -> None:
        """ovs-vswitchd's TLS files (`ovs-vsctl set-ssl KEY CERT CACERT`).  The SSL
        row is global to ovs-vswitchd: one that names other files is not ours to
        replace, so that is an error naming them."""
        from sg_ofctl import errors
        api = self.api
        with self.conn.lock:
            ovs = next(iter(self.idl.tables["Open_vSwitch"].rows.values()))
            ssl = _single(ovs.ssl)
            current = (ssl.private_key, ssl.certificate, ssl.ca_cert) if ssl else None
        if current == (key, cert, ca_cert):
            return
        if current is not None:
            raise errors.UserError(
                f"Open_vSwitch SSL is already set (private_key={current[0]!r}, "
                f"certificate={current[1]!r}, ca_cert={current[2]!r}) and ovs-vswitchd has "
                "only one: remove it (ovs-vsctl del-ssl) or run the agent with --switch-pki-dir "
                "where those files' CA signs the agent's")
        with api.transaction(check_error=True) as txn:
            row = txn.add(api.db_create("SSL", private_key=key, certificate=cert,
                                        ca_cert=ca_cert, bootstrap_ca_cert=False))
            txn.add(api.db_set("Open_vSwitch", ovs.uuid, ("ssl", row)))

    def configure_bridge(self, controller: str, first_table: int,
                         datapath_type: str | None = None, secret: str = "") -> None:
        """Create the bridge if missing; controller target, fail_mode=secure,
        OpenFlow 1.3+, out-of-band, the channel secret (datapath description)
        and the pipeline's table names."""
        api = self.api
        other = {"disable-in-band": "true", **({"dp-desc": secret} if secret else {})}
        with api.transaction(check_error=True) as txn:
            txn.add(api.add_br(self.bridge, may_exist=True,
                               **({"datapath_type": datapath_type} if datapath_type else {})))
            txn.add(api.set_fail_mode(self.bridge, "secure"))
            txn.add(api.db_set("Bridge", self.bridge,
                               ("protocols", ["OpenFlow13", "OpenFlow14", "OpenFlow15"]),
                               ("other_config", other)))
        current = api.get_controller(self.bridge).execute(check_error=True)
        if list(current) != [controller]:
            api.set_controller(self.bridge, [controller]).execute(check_error=True)
        api.db_set("Controller", self.bridge, ("connection_mode", "out-of-band"),
                   ("inactivity_probe", 10000)).execute(check_error=True)
        of_tables.name_tables(api, self.bridge, first_table)

    def set_vlan_tags(self, tags: dict) -> None:
        """{OVS Port name: tag or None}, in one transaction."""
        with self.api.transaction(check_error=True) as txn:
            for port_name, tag in tags.items():
                txn.add(self.api.db_set("Port", port_name, ("tag", [] if tag is None else tag)))
