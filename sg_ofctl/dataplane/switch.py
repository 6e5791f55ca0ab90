"""One OpenFlow connection to a bridge: apply flow changes as one atomic bundle,
read back installed flows, flush conntrack.

Use a SwitchConnection from ONE worker thread (never from an os-ken event
handler: it blocks waiting for replies that arrive through those handlers).
The os-ken app hands every reply and error to `feed()` (see app.py)."""
from __future__ import annotations

import itertools
import logging
import random
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

from os_ken.ofproto import ofproto_common
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sg_ofctl import pipeline
from sg_ofctl.compiler import FlowDiff, diff, format_flow
from sg_ofctl.compiler.flows import Flow
from sg_ofctl.compiler.ids import COOKIE_SIGNATURE, COOKIE_SIGNATURE_MASK
from sg_ofctl.dataplane import render

LOG = logging.getLogger(__name__)

BUNDLE_FLAGS = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
SEND_CHUNK = 256 * 1024  # bytes of bundle-add messages per socket write
NXT_CT_FLUSH_ZONE, NXT_CT_FLUSH = 29, 32
NXT_CT_ORIG_TUPLE, NXT_CT_ZONE_ID = 0, 2
NXT_CT_TUPLE_SRC, NXT_CT_TUPLE_DST, NXT_CT_TUPLE_SRC_PORT, NXT_CT_TUPLE_DST_PORT = 0, 1, 2, 3


class SwitchError(RuntimeError):
    """The switch refused a request; `errors` lists (what, error text)."""

    def __init__(self, message: str, errors=()):
        self.errors = list(errors)
        detail = "".join(f"\n  {what}: {err}" for what, err in self.errors[:20])
        more = f"\n  ... {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(message + detail + more)


def error_text(msg) -> str:
    """`OFPET_BAD_ACTION/OFPBAC_BAD_ARGUMENT (2/4)` for an OFPErrorMsg."""
    types = {v: k for k, v in vars(ofp).items() if k.startswith("OFPET_") and isinstance(v, int)}
    tname = types.get(msg.type, str(msg.type))
    prefix = {"OFPET_BAD_REQUEST": "OFPBRC_", "OFPET_BAD_ACTION": "OFPBAC_",
              "OFPET_BAD_INSTRUCTION": "OFPBIC_", "OFPET_BAD_MATCH": "OFPBMC_",
              "OFPET_FLOW_MOD_FAILED": "OFPFMFC_",
              "OFPET_METER_MOD_FAILED": "OFPMMFC_"}.get(tname)
    cname = str(msg.code)
    if prefix:
        codes = {v: k for k, v in vars(ofp).items() if k.startswith(prefix) and isinstance(v, int)}
        cname = codes.get(msg.code, cname)
    return f"{tname}/{cname} ({msg.type}/{msg.code})"


@dataclass
class _Waiter:
    done: threading.Event = field(default_factory=threading.Event)
    replies: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    each: object = None          # consume each reply as it arrives (not kept)
    received: int = 0
    failure: BaseException | None = None


@dataclass
class ApplyResult:
    flow_mods: int
    seconds: float


class SwitchConnection:
    def __init__(self, datapath, first_table: int = pipeline.DEFAULT_FIRST_TABLE,
                 timeout: float = 30.0):
        self.datapath = datapath
        self.first_table = first_table
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}
        # Our own xids, far from the datapath's counter (which os-ken's echo loop
        # also uses from another thread).
        self._xids = itertools.count(random.randrange(1 << 30, 1 << 31))
        self._bundle_ids = itertools.count(random.randrange(1, 1 << 30))
        self._bundle_errors: dict | None = None  # xid -> error while a bundle is open
        self.closed = False
        self.since = time.monotonic()

    # -- replies (any thread) ---------------------------------------------------------
    def feed(self, msg) -> None:
        """Hand over a reply or error received on this connection."""
        with self._lock:
            waiter = self._waiters.get(msg.xid)
            if waiter is None and self._bundle_errors is not None and \
                    isinstance(msg, parser.OFPErrorMsg):
                # Errors of a bundle's adds: their xids are not registered one by one.
                self._bundle_errors[msg.xid] = msg
                return
        if waiter is None:
            if isinstance(msg, parser.OFPErrorMsg):
                LOG.error("switch error for unknown xid %s: %s", msg.xid, error_text(msg))
            return
        if isinstance(msg, parser.OFPErrorMsg):
            waiter.errors.append(msg)
            waiter.done.set()
            return
        waiter.received += 1
        if waiter.each is None:
            waiter.replies.append(msg)
        elif waiter.failure is None:
            try:
                waiter.each(msg)
            except Exception as e:   # raised in the requesting thread
                waiter.failure = e
        if not getattr(msg, "flags", 0) & ofp.OFPMPF_REPLY_MORE or \
                not isinstance(msg, parser.OFPMultipartReply):
            waiter.done.set()

    def close(self) -> None:
        """The switch went away: wake every waiter."""
        self.closed = True
        with self._lock:
            for waiter in self._waiters.values():
                waiter.done.set()

    # -- sending ----------------------------------------------------------------------
    def _send(self, msg, each=None) -> int:
        if self.closed:
            raise SwitchError("the switch connection is closed")
        xid = next(self._xids) & 0xffffffff
        msg.set_xid(xid)
        with self._lock:
            self._waiters[xid] = _Waiter(each=each)
        self.datapath.send_msg(msg)
        return xid

    def _wait(self, xid: int, what: str) -> _Waiter:
        waiter = self._waiters[xid]
        if not waiter.done.wait(self.timeout):
            raise SwitchError(f"no reply from the switch to {what} within {self.timeout} s")
        if self.closed and not (waiter.received or waiter.errors):
            raise SwitchError(f"the switch disconnected during {what}")
        return waiter

    def _forget(self, xids: Iterable[int]) -> None:
        with self._lock:
            for xid in xids:
                self._waiters.pop(xid, None)

    def request(self, msg, what: str, each=None) -> list:
        """Send a request, wait for its (possibly multipart) reply.  With `each`,
        every reply is handed to each(reply) as it arrives (in os-ken's thread)
        instead of being kept: a read-back of 25,000 flows then never holds all
        of os-ken's parsed messages at once."""
        xid = self._send(msg, each)
        try:
            waiter = self._wait(xid, what)
            if waiter.errors:
                raise SwitchError(f"{what} failed", [(what, error_text(e))
                                                     for e in waiter.errors])
            if waiter.failure is not None:
                raise waiter.failure
            return waiter.replies
        finally:
            self._forget([xid])

    def barrier(self) -> None:
        self.request(parser.OFPBarrierRequest(self.datapath), "barrier")

    # -- flows ------------------------------------------------------------------------
    def flow_mods(self, change: FlowDiff) -> list[tuple[Flow, object]]:
        """(flow, OFPFlowMod) pairs: deletes first, then adds; a modify is an add,
        which replaces the flow of the same key atomically."""
        dp, first = self.datapath, self.first_table
        out = [(f, render.flow_mod(dp, f, first, ofp.OFPFC_DELETE_STRICT)) for f in change.delete]
        out += [(f, render.flow_mod(dp, f, first)) for f in change.modify + change.add]
        return out

    def _iter_flow_mods(self, change: FlowDiff):
        dp, first = self.datapath, self.first_table
        for f in change.delete:
            yield f, render.flow_mod(dp, f, first, ofp.OFPFC_DELETE_STRICT)
        for f in change.modify + change.add:
            yield f, render.flow_mod(dp, f, first)

    def apply(self, change: FlowDiff, extra=()) -> ApplyResult:
        """Apply `change` as one atomic bundle: all of it or none of it.
        `extra`: (label, OFPFlowMod) pairs sent first in the same bundle."""
        start = time.monotonic()
        if not change and not extra:
            return ApplyResult(0, 0.0)
        mods = itertools.chain(extra, self._iter_flow_mods(change))  # rendered one at a
        n_mods = len(change) + len(extra)       # time: 25,000 messages at once cost ~100 MB
        dp, bid = self.datapath, next(self._bundle_ids) & 0xffffffff
        open_xid = self._send(parser.ONFBundleCtrlMsg(dp, bid, ofp.ONF_BCT_OPEN_REQUEST,
                                                      BUNDLE_FLAGS, []))
        add_xids: dict[int, object] = {}   # xid -> Flow or label
        with self._lock:
            self._bundle_errors = {}
        try:
            chunk = bytearray()
            for flow, mod in mods:
                msg = parser.ONFBundleAddMsg(dp, bid, BUNDLE_FLAGS, mod, [])
                xid = next(self._xids) & 0xffffffff
                msg.set_xid(xid)
                msg.serialize()
                add_xids[xid] = flow
                chunk += msg.buf
                if len(chunk) >= SEND_CHUNK:
                    self._send_raw(bytes(chunk))
                    chunk = bytearray()
            if chunk:
                self._send_raw(bytes(chunk))
            barrier = self._send(parser.OFPBarrierRequest(dp))
            try:
                self._wait(barrier, "the bundle's barrier")
            finally:
                self._forget([barrier])
            with self._lock:
                add_errors, self._bundle_errors = self._bundle_errors, None
            errors = [("bundle open", error_text(e)) for e in self._waiters[open_xid].errors]
            errors += [(_label(add_xids[xid]) if xid in add_xids else f"xid {xid}",
                        error_text(e)) for xid, e in add_errors.items()]
            if errors:
                self._discard(bid)
                raise SwitchError(f"the switch refused {len(errors)} of {n_mods} flow "
                                  "mods; nothing was changed", errors)
            self.request(parser.ONFBundleCtrlMsg(dp, bid, ofp.ONF_BCT_COMMIT_REQUEST,
                                                 BUNDLE_FLAGS, []), "bundle commit")
        finally:
            with self._lock:
                self._bundle_errors = None
            self._forget([open_xid])
        return ApplyResult(n_mods, time.monotonic() - start)

    def _send_raw(self, data: bytes) -> None:
        if self.closed or not self.datapath.send(data):
            raise SwitchError("the switch connection is closed")

    def _discard(self, bid: int) -> None:
        try:
            self.request(parser.ONFBundleCtrlMsg(self.datapath, bid, ofp.ONF_BCT_DISCARD_REQUEST,
                                                 BUNDLE_FLAGS, []), "bundle discard")
        except SwitchError as e:  # the bundle dies with the connection anyway
            LOG.warning("discarding bundle %s: %s", bid, e)

    def read_flows(self) -> list[Flow]:
        """Every installed flow with the sg-ofctl cookie signature, as Flow values."""
        req = parser.OFPFlowStatsRequest(self.datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                         ofp.OFPG_ANY, COOKIE_SIGNATURE, COOKIE_SIGNATURE_MASK,
                                         parser.OFPMatch())
        flows = []
        for reply in self.request(req, "flow stats"):
            flows += [render.parse_flow_stats(s, self.first_table) for s in reply.body]
        return flows

    def install_full(self, desired: Iterable[Flow]) -> FlowDiff:
        """Make the installed flows exactly `desired`, sending only the difference
        (flows that are already right are not touched)."""
        change = diff(self.read_flows(), desired)
        self.apply(change)
        return change

    # -- ports ------------------------------------------------------------------------
    def port_descs(self) -> dict[int, tuple[str, int]]:
        """{port_no: (hw_addr, config)} of every port of the switch."""
        out = {}
        for reply in self.request(parser.OFPPortDescStatsRequest(self.datapath, 0),
                                  "port description"):
            for port in reply.body:
                out[port.port_no] = (port.hw_addr, port.config)
        return out

    def set_port_no_forward(self, port_no: int, hw_addr: str, no_forward: bool) -> None:
        """OFPPC_NO_FWD on or off (`ovs-ofctl mod-port BR PORT [no-]forward`):
        with it on, nothing is output to the port, NORMAL included."""
        self.set_ports_no_forward([(port_no, hw_addr, no_forward)])

    def set_ports_no_forward(self, ports) -> None:
        """set_port_no_forward for many (port_no, hw_addr, no_forward) at once:
        sent together, proven by one barrier (500 ports: one round trip)."""
        xids: dict[int, str] = {}
        try:
            for port_no, hw_addr, no_forward in ports:
                msg = parser.OFPPortMod(self.datapath, port_no, hw_addr,
                                        ofp.OFPPC_NO_FWD if no_forward else 0,
                                        ofp.OFPPC_NO_FWD, 0)
                xids[self._send(msg)] = \
                    f"port-mod {port_no} {'no-' if no_forward else ''}forward"
            if not xids:
                return
            self.barrier()
            errors = [(what, error_text(e)) for xid, what in xids.items()
                      for e in self._waiters[xid].errors]
            if errors:
                raise SwitchError(f"the switch refused {len(errors)} port mod(s)", errors)
        finally:
            self._forget(list(xids))

    # -- meters (packet logging) ------------------------------------------------------
    def set_meter(self, meter_id: int, rate_pps: int) -> None:
        """A packets-per-second drop meter (burst = one second's worth): added,
        or modified if it exists."""
        band = parser.OFPMeterBandDrop(rate=rate_pps, burst_size=rate_pps)
        flags = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS
        try:
            self.send_checked(parser.OFPMeterMod(self.datapath, ofp.OFPMC_ADD, flags, meter_id,
                                                 [band]), f"meter {meter_id} add")
        except SwitchError as e:
            if "OFPMMFC_METER_EXISTS" not in str(e) and "(12/1)" not in str(e):
                raise
            self.send_checked(parser.OFPMeterMod(self.datapath, ofp.OFPMC_MODIFY, flags,
                                                 meter_id, [band]), f"meter {meter_id} modify")

    def delete_meter(self, meter_id: int) -> None:
        self.send_checked(parser.OFPMeterMod(self.datapath, ofp.OFPMC_DELETE, 0, meter_id, []),
                          f"meter {meter_id} delete")

    def meter_stats(self, meter_id: int) -> tuple[int, int] | None:
        """(packets in, packets dropped by the band) of a meter, None if absent."""
        replies = self.request(parser.OFPMeterStatsRequest(self.datapath, 0, meter_id),
                               f"meter {meter_id} stats")
        for reply in replies:
            for stats in reply.body:
                if stats.meter_id == meter_id:
                    dropped = sum(b.packet_band_count for b in stats.band_stats)
                    return stats.packet_in_count, dropped
        return None

    # -- conntrack --------------------------------------------------------------------
    def send_checked(self, msg, what: str) -> None:
        """Send a request that has no reply; a barrier proves it was accepted."""
        self.send_all_checked([(msg, what)])

    def send_all_checked(self, msgs) -> None:
        """send_checked for many (msg, what): sent together, one barrier."""
        xids: dict[int, str] = {}
        try:
            for msg, what in msgs:
                xids[self._send(msg)] = what
            if not xids:
                return
            self.barrier()
            errors = [(what, error_text(e)) for xid, what in xids.items()
                      for e in self._waiters[xid].errors]
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                raise SwitchError(f"{errors[0][0]} failed{more}", errors)
        finally:
            self._forget(list(xids))

    def flush_conntrack_zone(self, zone: int) -> None:
        self.send_checked(ct_flush_zone_msg(self.datapath, zone), f"ct flush zone {zone}")

    def flush_conntrack(self, zone: int | None = None, ip_proto: int = 0, src=None, dst=None,
                        src_port: int = 0, dst_port: int = 0) -> None:
        """Flush the connections whose original tuple matches (OVS 3.1+)."""
        self.send_checked(ct_flush_msg(self.datapath, zone, ip_proto, src, dst, src_port,
                                       dst_port), "ct flush")

    def flush_conntrack_many(self, flushes) -> None:
        """(zone, src, dst) each: no address flushes the whole zone; one barrier."""
        self.send_all_checked(
            [(ct_flush_zone_msg(self.datapath, zone), f"ct flush zone {zone}")
             if src is None and dst is None else
             (ct_flush_msg(self.datapath, zone, 0, src, dst), f"ct flush zone {zone}")
             for zone, src, dst in flushes])


def _label(what) -> str:
    return what if isinstance(what, str) else format_flow(what)


# ---- Nicira conntrack flush messages (os-ken has no classes for them) ---------------

class _RawExperimenter(parser.OFPExperimenter):
    def __init__(self, datapath, exp_type: int, body: bytes):
        super().__init__(datapath, ofproto_common.NX_EXPERIMENTER_ID, exp_type, bytearray(body))


def ct_flush_zone_msg(datapath, zone: int):
    """NXT_CT_FLUSH_ZONE: struct nx_zone_id { u8 zero[6]; be16 zone_id; }."""
    return _RawExperimenter(datapath, NXT_CT_FLUSH_ZONE, struct.pack("!6xH", zone))


def _prop(ptype: int, value: bytes, nested: bool = False) -> bytes:
    """An OpenFlow property: be16 type, be16 length, value (nested values start
    at offset 8), padded to a multiple of 8."""
    head = 8 if nested else 4
    length = head + len(value)
    body = struct.pack("!HH", ptype, length) + b"\0" * (head - 4) + value
    return body + b"\0" * (-len(body) % 8)


def _ct_addr(address) -> bytes:
    import ipaddress
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        ip = ipaddress.IPv6Address("::ffff:" + str(ip))  # IPv4-mapped, as OVS expects
    return ip.packed


def ct_flush_msg(datapath, zone=None, ip_proto=0, src=None, dst=None, src_port=0, dst_port=0):
    """NXT_CT_FLUSH: struct nx_ct_flush { u8 ip_proto; u8 pad[7]; } + TLVs: the
    original tuple (nested src, dst, ports) and the zone."""
    tuple_props = b""
    if src:
        tuple_props += _prop(NXT_CT_TUPLE_SRC, _ct_addr(src))
    if dst:
        tuple_props += _prop(NXT_CT_TUPLE_DST, _ct_addr(dst))
    if src_port:
        tuple_props += _prop(NXT_CT_TUPLE_SRC_PORT, struct.pack("!H", src_port))
    if dst_port:
        tuple_props += _prop(NXT_CT_TUPLE_DST_PORT, struct.pack("!H", dst_port))
    body = struct.pack("!B7x", ip_proto)
    if tuple_props:
        body += _prop(NXT_CT_ORIG_TUPLE, tuple_props, nested=True)
    if zone is not None:
        body += _prop(NXT_CT_ZONE_ID, struct.pack("!H", zone))
    return _RawExperimenter(datapath, NXT_CT_FLUSH, body)
