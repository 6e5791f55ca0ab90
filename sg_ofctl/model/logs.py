"""Packet logging objects (like Neutron's `network log`): which ports' events
are logged (a security group's ports, or one port), which events (accept: the
first packet of each new connection; drop: every dropped packet; all), and at
most how many per second per host (a meter)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sg_ofctl.model.values import ValidationError

EVENTS = ("accept", "drop", "all")
MAX_RATE = 10_000
DEFAULT_RATE = 100
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def parse_rate(value) -> int:
    """100, "100" or "100/s" -> 100 packets per second (1..10000)."""
    text = str(value).strip()
    if text.endswith("/s"):
        text = text[:-2]
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_RATE:
        raise ValidationError("rate", value, f"expected N or N/s, N from 1 to {MAX_RATE} "
                              "(packets per second)")
    return int(text)


@dataclass(frozen=True)
class PacketLog:
    id: str
    name: str
    group_id: str | None = None      # log the ports of this security group...
    port_id: str | None = None       # ...or this one port
    event: str = "all"
    rate: int = DEFAULT_RATE
    enabled: bool = True
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValidationError("name", self.name, "expected 1-64 letters, digits, "
                                  "'_', '.', ':' or '-', starting with a letter or digit")
        if (self.group_id is None) == (self.port_id is None):
            raise ValidationError("target", None, "a log names exactly one security group "
                                  "or one port")
        if self.event not in EVENTS:
            raise ValidationError("event", self.event, f"must be one of {', '.join(EVENTS)}")
        object.__setattr__(self, "rate", parse_rate(self.rate))
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled", self.enabled, "must be true or false")
        if not isinstance(self.description, str) or len(self.description) > 255:
            raise ValidationError("description", self.description, "at most 255 characters")

    @property
    def logs_accept(self) -> bool:
        return self.event in ("accept", "all")

    @property
    def logs_drop(self) -> bool:
        return self.event in ("drop", "all")
