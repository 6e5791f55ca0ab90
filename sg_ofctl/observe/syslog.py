"""Packet-log events to syslog as RFC 5424 messages: the readable line as MSG,
the event's fields as structured data (SD-ID sg-ofctl@32473: the enterprise
number RFC 5612 reserves for documentation; a site may rename it).

Destinations: unix:/dev/log (a datagram socket, the default local syslog) or
udp:HOST:PORT.  Sending never blocks the writer: a lost datagram is counted."""
from __future__ import annotations

import os
import socket

SD_ID = "sg-ofctl@32473"
FACILITY_LOCAL0 = 16
SEVERITY = {"accept": 6, "drop": 5}     # informational, notice
SD_FIELDS = ("event", "direction", "port", "network", "protocol", "src", "src_port", "dst",
             "dst_port")


def _sd_value(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_rfc5424(event: dict, text: str, pid: int) -> bytes:
    """HOSTNAME is the agent's host name (its --host), as in the event."""
    pri = FACILITY_LOCAL0 * 8 + SEVERITY.get(event["event"], 5)
    params = [f'{k}="{_sd_value(event.get(k))}"' for k in SD_FIELDS]
    if event.get("group"):
        params.append(f'group="{_sd_value(event["group"]["name"])}"')
    if event.get("rule"):
        params.append(f'rule="{_sd_value(event["rule"]["id"])}"')
    if event.get("logs"):
        params.append(f'log="{_sd_value(",".join(event["logs"]))}"')
    sd = f"[{SD_ID} {' '.join(params)}]"
    msgid = event["event"].upper()
    host = "".join(c for c in event["host"] if 33 <= ord(c) <= 126)[:255] or "-"
    return f"<{pri}>1 {event['time']} {host} sg-ofctl {pid} {msgid} {sd} {text}".encode()


class SyslogSender:
    def __init__(self, target: str):
        kind, _, rest = target.partition(":")
        if kind == "unix" and rest:
            self.family, self.address = socket.AF_UNIX, rest
        elif kind == "udp" and rest.rpartition(":")[2].isdigit():
            host, _, port = rest.rpartition(":")
            self.family, self.address = socket.AF_INET, (host.strip("[]"), int(port))
            if ":" in host:
                self.family = socket.AF_INET6
        else:
            from sg_ofctl import errors
            raise errors.UserError(f"packet_log_syslog={target!r}: expected unix:PATH or "
                                   "udp:HOST:PORT")
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.lost = 0

    def send(self, event: dict, text: str) -> None:
        try:
            self.sock.sendto(format_rfc5424(event, text, os.getpid()), self.address)
        except OSError:
            self.lost += 1
