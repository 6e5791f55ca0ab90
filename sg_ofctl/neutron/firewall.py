"""sg-ofctl as the neutron-openvswitch-agent's firewall driver.

    [securitygroup]
    firewall_driver = sg_ofctl

The agent gives the driver rules, members and ports (translate.py); the pure
compiler, with the Neutron placement (pipeline.neutron_placement), turns the
whole host's view into flows and the difference to the last batch; the
difference goes to br-int as one atomic bundle per `defer_apply` batch through
the agent's own OpenFlow connection (channel.py).  An unchanged port costs no
flow mod; after an agent restart the first batch is diffed against what is
installed, so nothing that was right is sent again."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

from neutron.agent import firewall
from neutron_lib.callbacks import events as callbacks_events
from neutron_lib.callbacks import registry as callbacks_registry
from neutron_lib.callbacks import resources as callbacks_resources
from oslo_config import cfg

from sg_ofctl import pipeline
from sg_ofctl.compiler import Compiler, FlowDiff, diff
from sg_ofctl.neutron.channel import AgentOpenFlowChannel, OfctlChannel
from sg_ofctl.neutron.translate import LocalPort, NeutronState, port_security

LOG = logging.getLogger(__name__)

OPTS = [
    cfg.IntOpt("first_table", default=pipeline.NEUTRON_FIRST_TABLE, min=95,
               max=254 - len(pipeline.TABLES),
               help="br-int table of sg-ofctl's first table; its 17 tables follow. "
                    "Must be above Neutron's own tables (94)."),
    cfg.IntOpt("audit_period", default=300, min=0,
               help="Seconds after which the next batch reads br-int back and repairs "
                    "any difference from the desired flows (0: only at start and after "
                    "an Open vSwitch restart)."),
    cfg.StrOpt("log_level", default="INFO",
               choices=["DEBUG", "INFO", "WARNING", "ERROR"],
               help="Level of the driver's own log messages."),
]
DEAD_VLAN = 4095


def register_opts(conf=cfg.CONF) -> None:
    try:
        conf.register_opts(OPTS, "sg_ofctl")
    except cfg.DuplicateOptError:
        pass


class PortNotReady(Exception):
    """The port is not (yet) on br-int with a local VLAN."""


class SgOfctlFirewallDriver(firewall.FirewallDriver):
    provides_arp_spoofing_protection = True
    OVS_HYBRID_PLUG_REQUIRED = False

    def __init__(self, integration_bridge=None):
        register_opts()
        if integration_bridge is None:
            from neutron.agent.common import ovs_lib
            integration_bridge = ovs_lib.OVSBridge(cfg.CONF.OVS.integration_bridge)
        self.bridge = integration_bridge
        self.int_br = SimpleNamespace(br=integration_bridge)  # as OVSFirewallDriver's
        conf = cfg.CONF.sg_ofctl
        logging.getLogger("sg_ofctl").setLevel(conf.log_level)
        self.placement = pipeline.neutron_placement(conf.first_table)
        self.audit_period = conf.audit_period
        self._last_sync = 0.0
        if hasattr(integration_bridge, "_get_dp"):
            self.channel = AgentOpenFlowChannel(integration_bridge,
                                                self.placement.first_table)
        else:
            self.channel = OfctlChannel(integration_bridge.br_name,
                                        self.placement.first_table)
        self._state = NeutronState()
        self._pending: dict[str, dict | None] = {}  # device -> dict (None: trusted), to locate
        self._compiler = Compiler(self.placement)
        self._deferred = False
        self._synced = False
        self.bundles_sent = 0       # what the tests and the benchmark read
        self.last_flow_mods = 0
        self._init_bridge()
        callbacks_registry.subscribe(self._ovs_restarted, callbacks_resources.AGENT,
                                     callbacks_events.OVS_RESTARTED)

    # -- set-up ------------------------------------------------------------------------
    def _init_bridge(self) -> None:
        add_protocols = getattr(self.bridge, "add_protocols", None)
        if add_protocols is not None:
            add_protocols("OpenFlow13", "OpenFlow14")

    def _ovs_restarted(self, resource, event, trigger, payload=None):
        """ovs-vswitchd lost every flow: send the whole set again."""
        LOG.info("sg-ofctl: Open vSwitch restarted; reinstalling every flow")
        self._init_bridge()
        self._compiler.reset()
        self._synced = False
        self._apply()

    # -- the agent's calls ------------------------------------------------------------
    @property
    def ports(self):
        return {dev: p.port for dev, p in self._state.ports.items()
                if p.port is not None and port_security(p.port)}

    def prepare_port_filter(self, port):
        self._set_port(port)

    def update_port_filter(self, port):
        self._set_port(port)

    def remove_port_filter(self, port):
        device = port.get("device") or port.get("id")
        self._state.ports.pop(device, None)
        self._pending.pop(device, None)
        self._apply()

    def process_trusted_ports(self, port_ids):
        for device in port_ids:
            self._pending[device] = None
        self._apply()

    def remove_trusted_ports(self, port_ids):
        for device in port_ids:
            self._state.ports.pop(device, None)
            self._pending.pop(device, None)
        self._apply()

    def update_security_group_rules(self, sg_id, rules):
        self._state.set_rules(sg_id, list(rules or ()))
        self._apply()

    def update_security_group_members(self, sg_id, members):
        self._state.set_members(sg_id, members or {})
        self._apply()

    def security_group_updated(self, action_type, sec_group_ids, device_ids=None):
        """Nothing to do: the agent follows with update_port_filter for each port."""

    def filter_defer_apply_on(self):
        self._deferred = True

    def filter_defer_apply_off(self):
        self._deferred = False
        self._apply()

    def apply_port_filter(self, port):
        """Unused by the OVS agent."""

    # -- helpers -----------------------------------------------------------------------
    def _locate_pending(self) -> None:
        """Where the ports of this batch are on br-int: ofport and MAC (Interface), local
        VLAN (Port other_config:tag, written by the agent), in two OVSDB reads for the
        whole batch, not two per port."""
        pending, self._pending = self._pending, {}
        vifs = self.bridge.get_vifs_by_ids(list(pending))
        names = [v.port_name for v in vifs.values() if v is not None]
        rows = self.bridge.get_ports_attributes("Port", columns=["name", "other_config"],
                                                ports=names, if_exists=True) if names else []
        other = {row["name"]: row["other_config"] or {} for row in rows}
        for device, port in pending.items():
            try:
                ofport, vlan, mac = self._where(vifs.get(device), other)
            except PortNotReady as e:
                LOG.warning("sg-ofctl: port %s is not filtered yet: %s", device, e)
                self._state.ports.pop(device, None)
                continue
            mac = (port or {}).get("mac_address") or mac
            self._state.ports[device] = LocalPort(device, mac, ofport, vlan, port)

    def _where(self, vif, other_by_name) -> tuple[int, int, str]:
        if vif is None or not isinstance(vif.ofport, int) or vif.ofport < 1:
            raise PortNotReady(f"not on {self.bridge.br_name} (or no ofport yet)")
        other = other_by_name.get(vif.port_name, {})
        try:
            vlan = int(other["tag"])
        except (KeyError, TypeError, ValueError):
            raise PortNotReady(f"{vif.port_name} has no local VLAN yet "
                               f"(other_config {other!r})") from None
        if not 0 < vlan < DEAD_VLAN:
            raise PortNotReady(f"{vif.port_name} is on VLAN {vlan}")
        return vif.ofport, vlan, vif.vif_mac

    def _set_port(self, port) -> None:
        self._pending[port.get("device") or port.get("id")] = dict(port)
        self._apply()

    def _apply(self) -> None:
        if self._deferred:
            return
        if self._pending:
            self._locate_pending()
        view, refused = self._state.host_view()
        for device, reason in refused:
            LOG.error("sg-ofctl: port %s gets no flows (its traffic is dropped): %s",
                      device, reason)
        if self.audit_period and time.monotonic() - self._last_sync > self.audit_period:
            self._synced = False  # audit: diff against what br-int really has
        try:
            change = self._compiler.update(view)
            first = not self._synced
            if first:
                installed = self.channel.read_flows()
                if installed is not None:
                    change = diff(installed, self._compiler.flows.values())
                else:
                    change = FlowDiff(add=list(self._compiler.flows.values()))
            self._reserve_hook_cookies()
            if change or (first and installed is None):
                if isinstance(self.channel, OfctlChannel):
                    self.channel.apply(change, clear_first=first)
                else:
                    self.channel.apply(change)
                self.bundles_sent += 1
            if first:
                self._last_sync = time.monotonic()
                LOG.info("sg-ofctl: br-int read back and synchronised with %d flow mods",
                         len(change))
            self._synced = True
            self.last_flow_mods = len(change)
        except Exception:
            # Unknown switch state: the next batch reads back and diffs again.
            self._compiler.reset()
            self._synced = False
            raise

    def _reserve_hook_cookies(self) -> None:
        """Our flows in the agent's tables (60, 91, 92, 94) survive its stale-cookie
        clean-up."""
        reserved = getattr(self.bridge, "_reserved_cookies", None)
        if reserved is None:
            return
        for flow in self._compiler.flows.values():
            if flow.table in pipeline.NEUTRON_TABLE_NUMBERS:
                reserved.add(flow.cookie)
