"""How the driver's flow mods reach br-int: one atomic bundle per batch.

- `AgentOpenFlowChannel`: through the OVS agent's own os-ken connection to br-int
  (the native `OVSIntegrationBridge` the agent passes in): never a second
  controller.  The bundle is opened and committed with the bridge's `bundled()`
  (request/reply, errors raised), the flow mods in between are sent as raw bytes
  on its datapath (one round trip per message would cost minutes for 25,000).
- `OfctlChannel`: `ovs-ofctl --bundle add-flows` (one atomic transaction), for a
  bridge without an OpenFlow connection (ovs_lib.OVSBridge in test harnesses).
"""
from __future__ import annotations

import itertools
import logging
import os
import random
import subprocess

from sg_ofctl import pipeline
from sg_ofctl.compiler import FlowDiff
from sg_ofctl.compiler.flows import Flow, format_match
from sg_ofctl.compiler.ids import (COOKIE_SIGNATURE, COOKIE_SIGNATURE_MASK, KIND_PORT,
                                   KIND_STATIC, cookie)
from sg_ofctl.dataplane import render
from sg_ofctl.dataplane.render import FlowParseError

LOG = logging.getLogger(__name__)
SEND_CHUNK = 256 * 1024
HOOK_PRIORITIES = (90, 100)
PORT_COOKIE_MASK = 0xFF << 56
PORT_COOKIE = COOKIE_SIGNATURE | KIND_PORT << 56
STATIC_COOKIE_MASK = (1 << 64) - 1
STATIC_COOKIE = cookie(KIND_STATIC, "static")


def is_ours(flow: Flow) -> bool:
    """A flow read back from br-int that this driver owns: every flow with our
    cookie signature in our tables; in Neutron's transient table only our hooks
    (port cookies at the hook priorities), never the agent's own flows, whose
    random cookie may share our signature."""
    if flow.table == "neutron_transient":
        return flow.priority in HOOK_PRIORITIES and \
            flow.cookie & PORT_COOKIE_MASK == PORT_COOKIE
    if flow.table in pipeline.NEUTRON_TABLE_NUMBERS:
        return flow.cookie & STATIC_COOKIE_MASK == STATIC_COOKIE
    return flow.table in pipeline.TABLE_BY_NAME


class AgentOpenFlowChannel:
    def __init__(self, bridge, first_table: int):
        self.bridge = bridge
        self.first_table = first_table
        self._xids = itertools.count(random.randrange(1 << 30, 1 << 31))

    def read_flows(self) -> list[Flow]:
        dp, ofp, ofpp = self.bridge._get_dp()
        req = ofpp.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                       COOKIE_SIGNATURE, COOKIE_SIGNATURE_MASK,
                                       ofpp.OFPMatch())
        replies = self.bridge._send_msg(req, reply_cls=ofpp.OFPFlowStatsReply,
                                        reply_multi=True)
        flows = []
        for reply in replies:
            for stats in reply.body:
                try:
                    flow = render.parse_flow_stats(stats, self.first_table)
                except FlowParseError:
                    continue  # not ours: the agent's flow under a look-alike cookie
                if is_ours(flow):
                    flows.append(flow)
        return flows

    def apply(self, change: FlowDiff) -> None:
        dp, ofp, ofpp = self.bridge._get_dp()
        with self.bridge.bundled(atomic=True, ordered=True) as bundle:
            chunk = bytearray()
            for flow, command in _commands(change, ofp):
                mod = render.flow_mod(dp, flow, self.first_table, command)
                msg = ofpp.ONFBundleAddMsg(dp, bundle.active_bundle, bundle.bundle_flags,
                                           mod, [])
                msg.set_xid(next(self._xids) & 0xffffffff)
                msg.serialize()
                chunk += msg.buf
                if len(chunk) >= SEND_CHUNK:
                    self._send(dp, chunk)
                    chunk = bytearray()
            if chunk:
                self._send(dp, chunk)
            # Every add has reached the switch before the commit.
            self.bridge._send_msg(ofpp.OFPBarrierRequest(dp), reply_cls=ofpp.OFPBarrierReply)

    @staticmethod
    def _send(dp, data: bytearray) -> None:
        if not dp.send(bytes(data)):
            raise RuntimeError("sg-ofctl: the agent's OpenFlow connection to br-int is closed")


def _commands(change: FlowDiff, ofp):
    for flow in change.delete:
        yield flow, ofp.OFPFC_DELETE_STRICT
    for flow in change.modify + change.add:
        yield flow, ofp.OFPFC_ADD


class OfctlChannel:
    """ovs-ofctl fallback.  It cannot read flows back, so the first batch deletes
    what an earlier run left (our signature in our tables, our hooks' cookie kind
    in the transient table) in the same transaction as it adds the full set."""

    def __init__(self, bridge_name: str, first_table: int):
        self.bridge_name = bridge_name
        self.first_table = first_table

    def read_flows(self) -> None:
        return None

    def clear_lines(self) -> list[str]:
        sig = f"cookie={COOKIE_SIGNATURE:#x}/{COOKIE_SIGNATURE_MASK:#x}"
        lines = [f"delete table={pipeline.table_number(t.name, self.first_table)},{sig}"
                 for t in pipeline.TABLES]
        transient = pipeline.NEUTRON_TABLE_NUMBERS["neutron_transient"]
        lines.append(f"delete table={transient},cookie={PORT_COOKIE:#x}/{PORT_COOKIE_MASK:#x}")
        for name in ("neutron_accepted_egress", "neutron_egress_normal",
                     "neutron_accepted_ingress"):
            lines.append(f"delete table={pipeline.NEUTRON_TABLE_NUMBERS[name]},"
                         f"cookie={STATIC_COOKIE:#x}/{STATIC_COOKIE_MASK:#x}")
        return lines

    def apply(self, change: FlowDiff, clear_first: bool = False) -> None:
        lines = self.clear_lines() if clear_first else []
        for flow in change.delete:
            table = pipeline.table_number(flow.table, self.first_table)
            match = format_match(flow.match)
            lines.append(f"delete_strict table={table},priority={flow.priority}"
                         + (f",{match}" if match else ""))
        for flow in change.modify + change.add:
            lines.append("add " + render.ofctl_text(flow, self.first_table))
        cmd = ["ovs-ofctl", "-O", "OpenFlow13,OpenFlow14", "--bundle", "add-flows",
               self.bridge_name, "-"]
        proc = subprocess.run(cmd, input="\n".join(lines) + "\n", text=True,
                              capture_output=True, env=dict(os.environ), timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"sg-ofctl: ovs-ofctl refused the bundle for "
                               f"{self.bridge_name} (nothing was changed): "
                               f"{proc.stderr.strip()[:2000]}")
