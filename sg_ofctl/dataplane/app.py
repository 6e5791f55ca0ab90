"""The os-ken side: a small app that keeps one SwitchConnection per connected
bridge and feeds it the switch's replies.  The agent subclasses or embeds it;
work on a connection happens in the agent's own worker thread."""
from __future__ import annotations

import logging
import socket
import threading

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       set_ev_cls)
from os_ken.ofproto import ofproto_v1_3

from sg_ofctl import pipeline
from sg_ofctl.dataplane.channel import VERIFY_TIMEOUT
from sg_ofctl.dataplane.switch import SwitchConnection

LOG = logging.getLogger(__name__)

# xid of the description request that checks a new connection (channel.py)
_DESC_REQUEST_XID = 0x5ec0de

REPLY_EVENTS = [ofp_event.EventOFPErrorMsg, ofp_event.EventOFPBarrierReply,
                ofp_event.EventOFPFlowStatsReply, ofp_event.EventONFBundleCtrlMsg,
                ofp_event.EventOFPPortDescStatsReply, ofp_event.EventOFPMeterStatsReply]


class DataplaneApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    first_table = pipeline.DEFAULT_FIRST_TABLE
    guard = None   # a channel.ChannelGuard: connections must prove they are the bridge

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: dict[int, SwitchConnection] = {}
        self._probation: dict = {}   # datapath -> True while its check is pending
        self.generation = 0  # connections made so far (a reconnect increments it)
        self._changed = threading.Condition()

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        # An exception here would silently stop this app's event loop: log it.
        try:
            dp = ev.datapath
            with self._changed:
                if ev.state == MAIN_DISPATCHER and self.guard is not None:
                    self._probe(dp)
                    return
                if ev.state == MAIN_DISPATCHER:
                    self._accept(dp)
                elif self._probation.pop(dp, None):
                    LOG.info("an unchecked switch connection from %s closed", dp.address)
                elif dp.id is not None and dp.id in self.connections and \
                        self.connections[dp.id].datapath is dp:
                    self.connections.pop(dp.id).close()
                    LOG.info("switch %016x disconnected", dp.id)
                self._changed.notify_all()
            self.connections_changed()
        except Exception:
            LOG.exception("handling a switch state change")

    def _accept(self, dp) -> None:
        old = self.connections.get(dp.id)
        if old is not None:
            old.close()
        self.connections[dp.id] = SwitchConnection(dp, self.first_table)
        self.generation += 1
        LOG.info("switch %016x connected", dp.id)

    # -- channel check (see channel.py) ---------------------------------------------------
    def _probe(self, dp) -> None:
        """Ask a new connection for its datapath description; it is not used
        (nor does it replace anything) until the reply proves it is the bridge."""
        req = dp.ofproto_parser.OFPDescStatsRequest(dp, 0)
        req.set_xid(_DESC_REQUEST_XID)
        self._probation[dp] = True
        dp.send_msg(req)
        timer = threading.Timer(VERIFY_TIMEOUT, self._probation_expired, args=(dp,))
        timer.daemon = True
        timer.start()

    def _probation_expired(self, dp) -> None:
        try:
            with self._changed:
                pending = self._probation.pop(dp, None)
            if pending:
                self._refuse(dp, "no datapath description within "
                                 f"{VERIFY_TIMEOUT:g} s")
        except Exception:
            LOG.exception("checking a switch connection")

    @set_ev_cls(ofp_event.EventOFPDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _desc_reply(self, ev):
        try:
            dp = ev.msg.datapath
            if ev.msg.xid != _DESC_REQUEST_XID:
                return
            with self._changed:
                if not self._probation.pop(dp, None):
                    return
                reason = self.guard.check(dp.id, ev.msg.body.dp_desc)
                if reason is None:
                    self._accept(dp)
                    self._changed.notify_all()
            if reason is not None:
                self._refuse(dp, reason)
            else:
                self.connections_changed()
        except Exception:
            LOG.exception("checking a switch connection")

    def _refuse(self, dp, reason: str) -> None:
        peer = dp.address
        self.guard.refuse(f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
                          dp.id, reason)
        try:
            dp.close()
            dp.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connections_changed()

    def connections_changed(self) -> None:
        """Hook: a switch connected or disconnected (runs in os-ken's thread)."""

    @set_ev_cls(REPLY_EVENTS, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _reply(self, ev):
        try:
            dp = ev.msg.datapath
            conn = self.connections.get(dp.id)
            if conn is not None and conn.datapath is dp:
                conn.feed(ev.msg)
        except Exception:
            LOG.exception("handling a switch reply")

    def wait_for_switch(self, timeout: float, dpid: int | None = None,
                        min_generation: int = 0) -> SwitchConnection:
        """The connection to `dpid` (or to the only switch) once it is up, and
        once at least `min_generation` connections have been made."""
        def ready():
            if self.generation < min_generation:
                return False
            return dpid in self.connections if dpid is not None else bool(self.connections)
        with self._changed:
            ok = self._changed.wait_for(ready, timeout)
            if not ok:
                raise TimeoutError(f"no switch connected within {timeout} s")
            if dpid is None:
                return next(iter(self.connections.values()))
            return self.connections[dpid]


def start_os_ken(module: str, app_class, host: str, port: int, first_table: int,
                 listener=None, guard=None):
    """Start the os-ken app `app_class` (defined in `module`) listening for
    switches on host:port, from Python (there is no osken-manager); native hub.
    With `listener` (a bound channel.Listener), switches come through it
    instead of os-ken's own listener; with `guard`, each must prove it is the
    bridge before it is used."""
    from os_ken import cfg
    import os_ken.controller.controller  # noqa: F401  (registers the ofp-* options)
    cfg.CONF(args=[], project="os_ken")
    cfg.CONF.set_override("ofp_listen_host", host)
    cfg.CONF.set_override("ofp_tcp_listen_port", port)
    if listener is not None:
        _use_listener(listener)
    app_class.first_table = first_table
    app_class.guard = guard
    mgr = app_manager.AppManager.get_instance()
    mgr.load_apps([module])
    mgr.instantiate_apps(**mgr.create_contexts())
    return mgr.applications[app_class.__name__]


def _use_listener(listener) -> None:
    """os-ken's OFPHandler starts `OpenFlowController()` in a thread whose
    bind errors are only logged: hand it our already-bound listener instead."""
    from os_ken.controller import controller, ofp_handler

    class ChannelController(controller.OpenFlowController):
        def __call__(self):
            listener.serve(controller.datapath_connection_factory)

    ofp_handler.OpenFlowController = ChannelController
