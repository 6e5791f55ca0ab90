"""Pure tests of the Flow <-> OpenFlow rendering (no switch needed)."""
import struct

import pytest
from os_ken.ofproto import nicira_ext, ofproto_protocol
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sg_ofctl import scenario
from sg_ofctl.compiler import compile_host
from sg_ofctl.compiler.flows import (Conjunction, Ct, Flow, Goto, Load, Output, Resubmit,
                                     make_match)
from sg_ofctl.dataplane import render, switch
from sg_ofctl.dataplane.flowjson import flow_from_json, flow_to_json

DP = ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION)


def _scenario_flows(name: str):
    return compile_host(scenario.host_view(scenario.load(scenario.path(name))))


def _wire_round_trip(flow: Flow, first_table: int) -> Flow:
    """Serialize the flow mod, parse it back as the switch would see it, and read
    it as flow stats."""
    mod = render.flow_mod(DP, flow, first_table)
    mod.set_xid(1)
    mod.serialize()
    back = parser.OFPFlowMod.parser(DP, ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, len(mod.buf), 1,
                                    bytes(mod.buf))
    stats = parser.OFPFlowStats(table_id=back.table_id, priority=back.priority,
                                cookie=back.cookie, match=back.match,
                                instructions=back.instructions)
    return render.parse_flow_stats(stats, first_table)


@pytest.mark.parametrize("name", ["small", "medium"])
@pytest.mark.parametrize("first_table", [0, 40])
def test_every_compiled_flow_survives_the_wire(name, first_table):
    flows = _scenario_flows(name)
    assert [_wire_round_trip(f, first_table) for f in flows] == list(flows)


def test_actions_use_the_nicira_encodings():
    flow = Flow("egress_verdict", 85, make_match(reg4=(1, 1)),
                (Load("reg5", 3, 1, 2), Resubmit("egress_rules"),
                 Ct(commit=True, table="egress_state", mark=(0, 1)),
                 Conjunction(7, 2, 2), Output(3), Goto("forward")), 0x5 << 60)
    inst = render.render_instructions(flow.actions, first_table=10)
    load, resubmit, ct, conj, output = inst[0].actions
    assert (load.dst, load.value, load.ofs_nbits) == ("reg5", 3, nicira_ext.ofs_nbits(1, 2))
    assert resubmit.table_id == 17  # egress_rules is the 8th table
    assert (ct.flags, ct.zone_src, ct.zone_ofs_nbits, ct.recirc_table) == \
        (nicira_ext.NX_CT_F_COMMIT, "reg2", nicira_ext.ofs_nbits(0, 15), 15)
    assert (ct.actions[0].dst, ct.actions[0].value, ct.actions[0].mask) == ("ct_mark", 0, 1)
    assert (conj.clause, conj.n_clauses, conj.id) == (1, 2, 7)  # os-ken's clause is 0-based
    assert output.port == 3
    assert inst[1].table_id == 19  # forward
    assert _wire_round_trip(flow, 10) == flow


def test_goto_must_come_last():
    with pytest.raises(TypeError):
        render.render_instructions((Goto("forward"), Output(1)))


def test_unknown_action_read_back_is_an_error():
    stats = parser.OFPFlowStats(table_id=0, priority=1, cookie=0, match=parser.OFPMatch(),
                                instructions=[parser.OFPInstructionActions(
                                    ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionDecNwTtl()])])
    with pytest.raises(render.FlowParseError):
        render.parse_flow_stats(stats)


def test_ofctl_text_uses_table_numbers():
    flow = Flow("egress_ct", 90, make_match(eth_type=0x800),
                (Ct(table="egress_state"), Resubmit("egress_rules"), Goto("egress_dispatch")), 1)
    text = render.ofctl_text(flow, 20)
    assert text.startswith("table=24,") and "table=25)" in text
    assert "resubmit(,27)" in text and "goto_table:26" in text


def test_flow_json_round_trip():
    flows = compile_host(scenario.host_view(scenario.load(scenario.path("small"))))
    assert [flow_from_json(flow_to_json(f)) for f in flows] == list(flows)


def test_ct_flush_messages_follow_nicira_ext_h():
    zone = switch.ct_flush_zone_msg(DP, 7)
    zone.set_xid(5)
    zone.serialize()
    assert struct.unpack("!BBHIII", bytes(zone.buf[:16])) == (4, ofp.OFPT_EXPERIMENTER, 24, 5,
                                                              0x2320, 29)
    assert bytes(zone.buf[16:]) == b"\0" * 6 + b"\x00\x07"
    flush = switch.ct_flush_msg(DP, zone=3, ip_proto=6, src="10.0.0.1", dst_port=22)
    flush.set_xid(6)
    flush.serialize()
    body = bytes(flush.buf[16:])
    assert body[:8] == b"\x06" + b"\0" * 7
    # Original tuple: nested header (type 0) padded to 8, then src (type 0, 16-byte
    # IPv4-mapped address) and dst port (type 3), each padded to 8.
    assert struct.unpack("!HH", body[8:12]) == (0, 8 + 24 + 8)
    assert body[16:20] == struct.pack("!HH", 0, 20)
    assert body[20:36] == b"\0" * 10 + b"\xff\xff" + bytes([10, 0, 0, 1])
    assert body[40:46] == struct.pack("!HHH", 3, 6, 22)
    assert body[48:54] == struct.pack("!HHH", 2, 6, 3)  # zone property
    assert len(body) == 56


@pytest.mark.parametrize("name", ["small", "medium"])
def test_fast_match_encoding_equals_os_kens(name):
    for flow in _scenario_flows(name):
        fast, slow = bytearray(), bytearray()
        render.render_match(flow.match).serialize(fast, 0)
        render.render_match_slow(flow.match).serialize(slow, 0)
        assert fast == slow, flow
