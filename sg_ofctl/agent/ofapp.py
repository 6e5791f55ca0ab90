"""The agent's os-ken application: DataplaneApp (one SwitchConnection per
bridge, replies fed to it) that also wakes the worker when a switch connects,
disconnects or reports a port change.  Handlers only record and wake: all
sending happens in the worker thread."""
from __future__ import annotations

import logging

from os_ken.controller import ofp_event
from os_ken.controller.handler import MAIN_DISPATCHER, set_ev_cls

from sg_ofctl.dataplane.app import DataplaneApp

LOG = logging.getLogger(__name__)


class AgentApp(DataplaneApp):
    listener = None   # the worker's kick(), set before os-ken starts
    packet_in = None  # the packet log's intake (observe/packetlog.py), if any

    def connections_changed(self) -> None:
        if self.listener is not None:
            self.listener("switch")

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        try:
            if self.listener is not None:
                self.listener("port-status")
        except Exception:
            LOG.exception("handling a port status message")

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        try:
            if self.packet_in is not None:
                self.packet_in(ev.msg)
        except Exception:
            LOG.exception("handling a packet-in")
