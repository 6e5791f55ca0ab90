"""Compiler Flow values <-> OpenFlow 1.3 (+ Nicira extensions) messages.

`flow_mod(dp, flow)` renders one Flow as an OFPFlowMod; `parse_flow_stats(stats)`
turns an OFPFlowStats read back from the switch into the Flow it installs, so the
compiler's `diff` can compare installed and desired flows.  Pure apart from
os-ken's message classes: nothing is sent here."""
from __future__ import annotations

import functools
import ipaddress
import re
import socket
import struct
from typing import Any

from os_ken.ofproto import nicira_ext
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sg_ofctl import pipeline
from sg_ofctl.compiler.flows import (Conjunction, Controller, Ct, CtClear, Flow, Goto, Load,
                                     Move, Normal, Output, PopVlan, PushVlan, Resubmit, SetVlan,
                                     format_flow,
                                     make_match)

ZONE_OFS_NBITS = nicira_ext.ofs_nbits(0, 15)
ETH_8021Q = 0x8100
RESUBMIT_IN_PORT = 0xfff8  # OFPP_IN_PORT in the 16-bit port space of NX resubmit


class FlowParseError(ValueError):
    """A flow read back from the switch that no compiler Flow can describe."""


# ---- controller(meter_id=N): os-ken 4 knows NXAST_CONTROLLER2 but not its meter
# property (NXAC2PT_METER_ID, OVS 2.15+).  Its property registry is a class local
# to os-ken's parser factory: found through NXActionController2's closure.
NXAC2PT_METER_ID = 5


def _controller2_prop_base():
    for cell in parser.NXActionController2.__init__.__closure__ or ():
        value = cell.cell_contents
        if isinstance(value, type) and hasattr(value, "register_type"):
            return value
    raise ImportError("os-ken's NXActionController2 property registry not found")


_Controller2Prop: Any = _controller2_prop_base()
if NXAC2PT_METER_ID not in _Controller2Prop._TYPES:
    @_Controller2Prop.register_type(NXAC2PT_METER_ID)
    class _MeterIdProp(_Controller2Prop):
        _arg_name = "meter_id"

        @classmethod
        def parser_prop(cls, buf, length):
            return struct.unpack_from("!I", buf, 0)[0], 4

        @classmethod
        def serialize_prop(cls, meter_id):
            return bytearray(struct.pack("!HHI", NXAC2PT_METER_ID, 8, meter_id))


# ---- names and numbers ----------------------------------------------------------

@functools.lru_cache(maxsize=8)   # read-back calls it per flow; treat the result as read-only
def table_names(first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> dict[int, str]:
    """Table number -> name: ours, and Neutron's br-int tables that the Neutron
    placement's flows live in or jump to (ours win on a clash)."""
    names = {number: name for name, number in pipeline.NEUTRON_TABLE_NUMBERS.items()}
    names.update({pipeline.table_number(t.name, first_table): t.name for t in pipeline.TABLES})
    return names


def _full(name: str) -> int:
    return (1 << pipeline.FIELDS[name].bits) - 1


# ---- match ----------------------------------------------------------------------

def _to_user(name: str, value: int, mask: int | None):
    kind = pipeline.FIELDS[name].kind

    def conv(v):
        if kind == "mac":
            raw = f"{v:012x}"
            return ":".join(raw[i:i + 2] for i in range(0, 12, 2))
        if kind == "ipv4":
            return str(ipaddress.IPv4Address(v))
        if kind == "ipv6":
            return str(ipaddress.IPv6Address(v))
        return v
    return conv(value) if mask is None else (conv(value), conv(mask))


def _from_user(name: str, value) -> int:
    if isinstance(value, int):
        return value
    kind = pipeline.FIELDS[name].kind
    if kind == "mac":
        return int(value.replace(":", ""), 16)
    if kind in ("ipv4", "ipv6"):   # inet_pton: ~5x faster than ipaddress (read-back)
        try:
            return int.from_bytes(socket.inet_pton(
                socket.AF_INET if kind == "ipv4" else socket.AF_INET6, value), "big")
        except (OSError, TypeError):
            raise FlowParseError(f"{name}={value!r}: not an {kind} address") from None
    raise FlowParseError(f"{name}={value!r}: unexpected value")


class _WireMatch(parser.OFPMatch):
    """An OFPMatch whose OXM bytes are packed directly from our integers:
    os-ken's keyword OFPMatch converts every address through text and netaddr,
    which made rendering 25,000 flows take seconds."""

    def __init__(self, oxm: bytes):  # no super().__init__(): its Flow() is the cost
        self._oxm, self.type = oxm, ofp.OFPMT_OXM
        self.length: int | None = None
        self.fields: list = []
        self._fields2: list = []

    def __str__(self):
        return f"OFPMatch(oxm={self._oxm.hex()})"

    __repr__ = __str__

    def serialize(self, buf, offset):
        length = 4 + len(self._oxm)
        pad = -length % 8
        buf[offset:offset + length + pad] = (struct.pack("!HH", ofp.OFPMT_OXM, length) +
                                             self._oxm + b"\0" * pad)
        self.length = length
        return length + pad


def _oxm_header(name: str) -> tuple[int, int]:
    """(32-bit OXM/NXM header without mask, value length in bytes)."""
    buf = bytearray()
    ofp.oxm_serialize_header(ofp.oxm_from_user_header(name), buf, 0)
    header = struct.unpack("!I", bytes(buf))[0]
    return header, header & 0xff


OXM_HEADERS = {name: _oxm_header(name) for name in pipeline.FIELDS}


def _oxm_field(name: str, value: int, mask: int | None) -> tuple[int, bytes]:
    header, size = OXM_HEADERS[name]
    if mask is None:
        return header, struct.pack("!I", header) + value.to_bytes(size, "big")
    header = (header & ~0x1ff) | 0x100 | (2 * size)
    return header, (struct.pack("!I", header) + value.to_bytes(size, "big") +
                    mask.to_bytes(size, "big"))


def render_match(match) -> parser.OFPMatch:
    """OXM fields in header order, which puts prerequisites (eth_type, ip_proto)
    before the fields that need them, as OVS requires."""
    fields = sorted(_oxm_field(n, v, m) for n, v, m in match)
    return _WireMatch(b"".join(raw for _, raw in fields))


def render_match_slow(match) -> parser.OFPMatch:
    """The same match through os-ken's keyword API (for tests and debugging)."""
    return parser.OFPMatch(**{n: _to_user(n, v, m) for n, v, m in match})


def parse_match(match: parser.OFPMatch):
    fields: dict[str, object] = {}
    for name, value in match.items():
        if name not in pipeline.FIELDS:
            raise FlowParseError(f"match field {name}={value!r} is not in the pipeline")
        if isinstance(value, (tuple, list)):
            fields[name] = (_from_user(name, value[0]), _from_user(name, value[1]))
        else:
            fields[name] = _from_user(name, value)
    return make_match(**fields)


# ---- actions --------------------------------------------------------------------

def _reg_load(field: str, value: int, ofs: int, nbits: int):
    return parser.NXActionRegLoad(ofs_nbits=nicira_ext.ofs_nbits(ofs, ofs + nbits - 1),
                                  dst=field, value=value)


def _mark_load(value: int, mask: int):
    """ct_mark <- value under mask (OF1.3 set_field cannot carry a mask)."""
    if mask == _full("ct_mark"):
        return parser.OFPActionSetField(ct_mark=value)
    return parser.NXActionRegLoad2(dst="ct_mark", value=value & mask, mask=mask)


def _render_action(action, first_table: int):
    num = lambda name: pipeline.table_number(name, first_table)  # noqa: E731
    if isinstance(action, Load):
        if action.ofs == 0 and action.nbits == 32:
            return parser.OFPActionSetField(**{action.field: action.value})
        return _reg_load(action.field, action.value, action.ofs, action.nbits)
    if isinstance(action, Move):
        return parser.NXActionRegMove(src_field=action.src, dst_field=action.dst,
                                      n_bits=action.nbits, src_ofs=0, dst_ofs=0)
    if isinstance(action, Resubmit):
        return parser.NXActionResubmitTable(in_port=RESUBMIT_IN_PORT, table_id=num(action.table))
    if isinstance(action, Ct):
        inner = [] if action.mark is None else [_mark_load(*action.mark)]
        return parser.NXActionCT(
            flags=nicira_ext.NX_CT_F_COMMIT if action.commit else 0,
            zone_src=action.zone, zone_ofs_nbits=ZONE_OFS_NBITS,
            recirc_table=num(action.table) if action.table else nicira_ext.NX_CT_RECIRC_NONE,
            alg=0, actions=inner)
    if isinstance(action, CtClear):
        return parser.NXActionCTClear()
    if isinstance(action, Conjunction):
        return parser.NXActionConjunction(clause=action.clause - 1, n_clauses=action.n_clauses,
                                          id_=action.conj_id)
    if isinstance(action, Output):
        return parser.OFPActionOutput(action.port)
    if isinstance(action, Normal):
        return parser.OFPActionOutput(ofp.OFPP_NORMAL)
    if isinstance(action, PopVlan):
        return parser.OFPActionPopVlan()
    if isinstance(action, PushVlan):
        return parser.OFPActionPushVlan(ETH_8021Q)
    if isinstance(action, SetVlan):
        return parser.OFPActionSetField(vlan_vid=ofp.OFPVID_PRESENT | action.vid)
    if isinstance(action, Controller):
        return parser.NXActionController2(max_len=action.max_len, meter_id=action.meter_id)
    raise TypeError(f"cannot render action {action!r}")


def render_instructions(actions, first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> list:
    """Apply-actions for everything but a final Goto, which becomes goto_table."""
    actions = list(actions)
    goto = actions.pop() if actions and isinstance(actions[-1], Goto) else None
    if any(isinstance(a, Goto) for a in actions):
        raise TypeError("goto_table must be the last action")
    out = []
    if actions:
        out.append(parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [_render_action(a, first_table) for a in actions]))
    if goto is not None:
        out.append(parser.OFPInstructionGotoTable(pipeline.table_number(goto.table,
                                                                        first_table)))
    return out


def flow_mod(datapath, flow: Flow, first_table: int = pipeline.DEFAULT_FIRST_TABLE,
             command: int = ofp.OFPFC_ADD) -> parser.OFPFlowMod:
    """An add (which replaces a flow of the same key, cookie and actions included)
    or a strict delete of `flow`."""
    table_id = pipeline.table_number(flow.table, first_table)
    if command == ofp.OFPFC_DELETE_STRICT:
        return parser.OFPFlowMod(datapath, table_id=table_id, command=command,
                                 priority=flow.priority, match=render_match(flow.match),
                                 out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
    return parser.OFPFlowMod(datapath, cookie=flow.cookie, table_id=table_id, command=command,
                             priority=flow.priority, match=render_match(flow.match),
                             instructions=render_instructions(flow.actions, first_table))


# ---- read-back ------------------------------------------------------------------

def _mask_to_slice(mask: int) -> tuple[int, int]:
    ofs = (mask & -mask).bit_length() - 1
    nbits = mask.bit_length() - ofs
    if mask >> ofs != (1 << nbits) - 1:
        raise FlowParseError(f"non-contiguous load mask {mask:#x}")
    return ofs, nbits


def _parse_mark(actions) -> tuple[int, int] | None:
    if not actions:
        return None
    if len(actions) != 1:
        raise FlowParseError(f"ct with several nested actions: {actions}")
    a = actions[0]
    if isinstance(a, parser.OFPActionSetField) and a.key == "ct_mark":
        value = a.value
        return tuple(value) if isinstance(value, (tuple, list)) else (value, _full("ct_mark"))
    if isinstance(a, parser.NXActionRegLoad2) and a.dst == "ct_mark":
        return a.value, _full("ct_mark") if a.mask is None else a.mask
    if isinstance(a, parser.NXActionRegLoad) and a.dst == "ct_mark":
        ofs, nbits = a.ofs_nbits >> 6, (a.ofs_nbits & 0x3f) + 1
        return a.value << ofs, ((1 << nbits) - 1) << ofs
    raise FlowParseError(f"unexpected action inside ct: {a}")


def _parse_action(a, names: dict[int, str]):
    def name(table_id):
        if table_id not in names:
            raise FlowParseError(f"table {table_id} is outside the pipeline")
        return names[table_id]
    if isinstance(a, parser.OFPActionSetField) and a.key == "vlan_vid":
        return SetVlan(a.value & 0xfff)
    if isinstance(a, parser.OFPActionPushVlan) and a.ethertype == ETH_8021Q:
        return PushVlan()
    if isinstance(a, parser.OFPActionSetField):
        if not a.key.startswith("reg") or isinstance(a.value, (tuple, list)):
            raise FlowParseError(f"unexpected set_field {a.key}={a.value!r}")
        return Load(a.key, a.value)
    if isinstance(a, parser.NXActionRegLoad):
        return Load(a.dst, a.value, a.ofs_nbits >> 6, (a.ofs_nbits & 0x3f) + 1)
    if isinstance(a, parser.NXActionRegLoad2):
        if a.mask is None:
            return Load(a.dst, a.value)
        ofs, nbits = _mask_to_slice(a.mask)
        return Load(a.dst, (a.value & a.mask) >> ofs, ofs, nbits)
    if isinstance(a, parser.NXActionRegMove):
        if a.src_ofs or a.dst_ofs:
            raise FlowParseError(f"move with offsets {a.src_ofs}/{a.dst_ofs}")
        return Move(a.src_field, a.dst_field, a.n_bits)
    if isinstance(a, parser.NXActionResubmitTable):
        if a.in_port != RESUBMIT_IN_PORT:
            raise FlowParseError(f"resubmit with in_port {a.in_port}")
        return Resubmit(name(a.table_id))
    if isinstance(a, parser.NXActionCT):
        if a.zone_src not in pipeline.ZONE_REGISTERS or a.zone_ofs_nbits != ZONE_OFS_NBITS or \
                a.alg:
            raise FlowParseError(f"ct with zone {a.zone_src}/{a.zone_ofs_nbits}, alg {a.alg}")
        if a.flags & ~nicira_ext.NX_CT_F_COMMIT:
            raise FlowParseError(f"ct flags {a.flags:#x}")
        table = None if a.recirc_table == nicira_ext.NX_CT_RECIRC_NONE else name(a.recirc_table)
        return Ct(commit=bool(a.flags & nicira_ext.NX_CT_F_COMMIT), table=table,
                  mark=_parse_mark(a.actions), zone=a.zone_src)
    if isinstance(a, parser.NXActionCTClear):
        return CtClear()
    if isinstance(a, parser.NXActionConjunction):
        return Conjunction(a.id, a.clause + 1, a.n_clauses)
    if isinstance(a, parser.OFPActionOutput):
        return Normal() if a.port == ofp.OFPP_NORMAL else Output(a.port)
    if isinstance(a, parser.OFPActionPopVlan):
        return PopVlan()
    if isinstance(a, parser.NXActionController2) and hasattr(a, "meter_id"):
        return Controller(a.meter_id, getattr(a, "max_len", 0xffff))
    raise FlowParseError(f"unexpected action {a}")


def parse_instructions(instructions, names: dict[int, str]) -> tuple:
    actions, goto = [], None
    for inst in instructions:
        if isinstance(inst, parser.OFPInstructionActions) and \
                inst.type == ofp.OFPIT_APPLY_ACTIONS:
            actions += [_parse_action(a, names) for a in inst.actions]
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            if inst.table_id not in names:
                raise FlowParseError(f"goto_table {inst.table_id} is outside the pipeline")
            goto = Goto(names[inst.table_id])
        else:
            raise FlowParseError(f"unexpected instruction {inst}")
    return tuple(actions) + ((goto,) if goto else ())


def parse_flow_stats(stats, first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> Flow:
    """The Flow that an OFPFlowStats entry of our pipeline installs."""
    names = table_names(first_table)
    if stats.table_id not in names:
        raise FlowParseError(f"table {stats.table_id} is outside the pipeline")
    return Flow(names[stats.table_id], stats.priority, parse_match(stats.match),
                parse_instructions(stats.instructions, names), stats.cookie)


# ---- ovs-ofctl text with table numbers ----------------------------------------------

_TABLE_REF = re.compile(r"(table=|goto_table:|resubmit\(,)([a-z_]+)")


def ofctl_text(flow: Flow, first_table: int = pipeline.DEFAULT_FIRST_TABLE) -> str:
    """format_flow() with table numbers instead of names (for `ovs-ofctl add-flows`
    on a switch whose tables are not named)."""
    return _TABLE_REF.sub(lambda m: m.group(1) + str(pipeline.table_number(m.group(2),
                                                                           first_table)),
                          format_flow(flow))
