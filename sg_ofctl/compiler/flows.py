"""Immutable flow values and their ovs-ofctl text.  Pure: no os_ken here.

A match is a sorted tuple of (field, value, mask) with integer values; mask is
None for an exact match.  Field names are os-ken's (see pipeline.FIELDS)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sg_ofctl import pipeline


@dataclass(frozen=True, slots=True)
class Goto:
    table: str


@dataclass(frozen=True, slots=True)
class Resubmit:
    table: str


@dataclass(frozen=True, slots=True)
class Load:
    """Write `value` into bits [ofs, ofs+nbits) of a register."""

    field: str
    value: int
    ofs: int = 0
    nbits: int = 32


@dataclass(frozen=True, slots=True)
class Move:
    """Copy the low `nbits` bits of register `src` into register `dst`."""

    src: str
    dst: str
    nbits: int = 32


def set_bits(register: str, bits: int) -> Load:
    """Set the contiguous `bits` of a register, leaving its other bits alone."""
    ofs = (bits & -bits).bit_length() - 1
    return Load(register, bits >> ofs, ofs, bits.bit_length() - ofs)


@dataclass(frozen=True, slots=True)
class Ct:
    """Conntrack in the zone held by register `zone` (the low 16 bits of
    pipeline.SRC_ZONE's or DST_ZONE's); `table` recirculates; `mark` is
    (value, mask) written to ct_mark on commit."""

    commit: bool = False
    table: str | None = None
    mark: tuple[int, int] | None = None
    zone: str = pipeline.SRC_ZONE.field


@dataclass(frozen=True, slots=True)
class CtClear:
    pass


@dataclass(frozen=True, order=True, slots=True)
class Conjunction:
    conj_id: int
    clause: int  # 1-based, as in ovs-ofctl
    n_clauses: int


@dataclass(frozen=True, slots=True)
class Output:
    port: int


@dataclass(frozen=True, slots=True)
class Normal:
    pass


@dataclass(frozen=True, slots=True)
class PopVlan:
    pass


@dataclass(frozen=True, slots=True)
class Controller:
    """A copy of the packet (its first `max_len` bytes) to the controller,
    rate-limited by meter `meter_id` (excess copies dropped, the packet not)."""

    meter_id: int
    max_len: int = 128


Match = tuple  # tuple[tuple[str, int, int | None], ...]
@dataclass(frozen=True, slots=True)
class PushVlan:
    """Push an 802.1Q header; a SetVlan that follows gives its VID."""


@dataclass(frozen=True, slots=True)
class SetVlan:
    vid: int


Action = Goto | Resubmit | Load | Move | Ct | CtClear | Conjunction | Output | Normal | \
    PopVlan | PushVlan | SetVlan | Controller


@dataclass(frozen=True, slots=True)
class Flow:
    table: str
    priority: int
    match: Match
    actions: tuple
    cookie: int

    @property
    def key(self) -> tuple:
        """OpenFlow identity: a flow mod with the same key replaces this flow."""
        return self.table, self.priority, self.match

    def field(self, name: str):
        for f, value, mask in self.match:
            if f == name:
                return value, mask
        return None


def make_match(**fields) -> Match:
    """make_match(eth_type=0x800, ipv4_src=(v, m)) -> canonical match tuple."""
    items = []
    for name, value in fields.items():
        spec = pipeline.FIELDS[name]
        full = (1 << spec.bits) - 1
        mask = None
        if isinstance(value, tuple):
            value, mask = value
            if mask == full:
                mask = None
        if mask is not None:
            value &= mask
        items.append(intern((name, value, mask)))
    return tuple(sorted(items))


_INTERNED: dict = {}


def intern(value):
    """One shared copy of an equal immutable value (match items and action lists
    repeat across thousands of flows): a memory saving, invisible otherwise."""
    if len(_INTERNED) > 500_000:
        _INTERNED.clear()
    return _INTERNED.setdefault(value, value)


def ip_value(address: str) -> tuple[int, int | None, int]:
    """'10.0.0.0/8' -> (value, mask or None, version); cached parsing."""
    return _ip_value(address)


_IP_CACHE: dict = {}


def _ip_value(address):
    hit = _IP_CACHE.get(address)
    if hit is None:
        net = ipaddress.ip_network(address, strict=False)
        full = (1 << net.max_prefixlen) - 1
        mask = int(net.netmask)
        hit = (int(net.network_address), None if mask == full else mask, net.version)
        if len(_IP_CACHE) < 1_000_000:
            _IP_CACHE[address] = hit
    return hit


# ---- ovs-ofctl text -------------------------------------------------------------

def _format_value(name: str, value: int, mask: int | None) -> str:
    kind = pipeline.FIELDS[name].kind
    if name == "ct_state":
        return _format_ct_state(value, mask)
    if kind == "mac":
        text = _mac(value)
        return text if mask is None else f"{text}/{_mac(mask)}"
    if kind in ("ipv4", "ipv6"):
        cls = ipaddress.IPv4Address if kind == "ipv4" else ipaddress.IPv6Address
        if mask is None:
            return str(cls(value))
        prefix = bin(mask).count("1")
        if mask == ((1 << pipeline.FIELDS[name].bits) - 1) ^ ((1 << (pipeline.FIELDS[name].bits
                                                                      - prefix)) - 1):
            return f"{cls(value)}/{prefix}"
        return f"{cls(value)}/{cls(mask)}"
    if name in ("eth_type", "vlan_vid", "ct_mark") or mask is not None or name.startswith("reg"):
        text = hex(value)
        return text if mask is None else f"{text}/{hex(mask)}"
    return str(value)


def _mac(value: int) -> str:
    raw = f"{value:012x}"
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def _format_ct_state(value: int, mask: int | None) -> str:
    mask = 0xff if mask is None else mask
    out = []
    for name, bit in pipeline.CT_STATE_NAMES:
        if mask & bit:
            out.append(("+" if value & bit else "-") + name)
    return "".join(out)


def format_match(match: Match) -> str:
    return ",".join(f"{pipeline.FIELDS[n].ofctl}={_format_value(n, v, m)}"
                    for n, v, m in match)


def _reg_slice(field: str, ofs: int, nbits: int) -> str:
    reg = f"NXM_NX_{field.upper()}"
    if ofs == 0 and nbits == 32:
        return f"{reg}[]"
    if nbits == 1:
        return f"{reg}[{ofs}]"
    return f"{reg}[{ofs}..{ofs + nbits - 1}]"


def format_action(action) -> str:
    if isinstance(action, Goto):
        return f"goto_table:{action.table}"
    if isinstance(action, Resubmit):
        return f"resubmit(,{action.table})"
    if isinstance(action, Load):
        return f"load:{hex(action.value)}->{_reg_slice(action.field, action.ofs, action.nbits)}"
    if isinstance(action, Move):
        return (f"move:{_reg_slice(action.src, 0, action.nbits)}->"
                f"{_reg_slice(action.dst, 0, action.nbits)}")
    if isinstance(action, Ct):
        parts = ["commit"] if action.commit else []
        parts.append(f"zone={_reg_slice(action.zone, 0, 16)}")
        if action.table:
            parts.append(f"table={action.table}")
        if action.mark is not None:
            value, mask = action.mark
            parts.append(f"exec(set_field:{hex(value)}/{hex(mask)}->ct_mark)")
        return f"ct({','.join(parts)})"
    if isinstance(action, CtClear):
        return "ct_clear"
    if isinstance(action, Conjunction):
        return f"conjunction({action.conj_id},{action.clause}/{action.n_clauses})"
    if isinstance(action, Output):
        return f"output:{action.port}"
    if isinstance(action, Normal):
        return "NORMAL"
    if isinstance(action, PopVlan):
        return "pop_vlan"
    if isinstance(action, PushVlan):
        return "push_vlan:0x8100"
    if isinstance(action, SetVlan):
        return f"set_field:{0x1000 | action.vid}->vlan_vid"
    if isinstance(action, Controller):
        return f"controller(max_len={action.max_len},meter_id={action.meter_id})"
    raise TypeError(f"unknown action {action!r}")


def format_flow(flow: Flow) -> str:
    """One flow in ovs-ofctl add-flow syntax, with the table's name."""
    match = format_match(flow.match)
    head = f"table={flow.table},priority={flow.priority},cookie={flow.cookie:#018x}"
    actions = ",".join(format_action(a) for a in flow.actions) or "drop"
    return f"{head}{',' + match if match else ''} actions={actions}"
