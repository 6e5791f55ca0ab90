"""An impostor OpenFlow 1.3 switch (the attack of issue 10): connects to the
agent's listener, answers the handshake claiming a datapath id, and counts
what the agent sends it.  Run as a script (inside the test bed's namespace):

    fake_switch.py HOST PORT DPID_HEX SECONDS [--tls CERT KEY CA] [--desc TEXT] [--stall]

(--stall: never answer the datapath description request.)

Prints `connected` once its hello was sent, `closed` when the agent closed the
connection, and at the end one JSON line: {"flow_mods": N, "bundle_msgs": N,
"closed_by_peer": bool}."""
from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import time

V13 = 4
HELLO, ECHO_REQ, ECHO_REP, FEATURES_REQ, FEATURES_REP = 0, 2, 3, 5, 6
FLOW_MOD, MP_REQ, MP_REP, BARRIER_REQ, BARRIER_REP, EXPERIMENTER = 14, 18, 19, 20, 21, 4
MP_DESC, MP_PORT_DESC = 0, 13


def msg(mtype: int, xid: int, body: bytes = b"") -> bytes:
    return struct.pack("!BBHI", V13, mtype, 8 + len(body), xid) + body


def main(argv) -> int:
    host, port, dpid, seconds = argv[0], int(argv[1]), int(argv[2], 16), float(argv[3])
    desc = b"an impostor"
    tls = None
    if "--desc" in argv:
        desc = argv[argv.index("--desc") + 1].encode()
    if "--tls" in argv:
        i = argv.index("--tls")
        tls = argv[i + 1:i + 4]
    sock = socket.create_connection((host, port), timeout=5)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_cert_chain(tls[0], tls[1])
        ctx.load_verify_locations(tls[2])
        sock = ctx.wrap_socket(sock)
    counts = {"flow_mods": 0, "bundle_msgs": 0, "closed_by_peer": False}
    deadline = time.monotonic() + seconds
    buf = b""
    try:
        sock.sendall(msg(HELLO, 1))
        print("connected", flush=True)
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                counts["closed_by_peer"] = True
                print("closed", flush=True)
                break
            buf += data
            while len(buf) >= 8:
                _v, mtype, length, xid = struct.unpack("!BBHI", buf[:8])
                if len(buf) < length:
                    break
                body, buf = buf[8:length], buf[length:]
                if mtype == FEATURES_REQ:
                    sock.sendall(msg(FEATURES_REP, xid,
                                     struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0x4f, 0)))
                elif mtype == ECHO_REQ:
                    sock.sendall(msg(ECHO_REP, xid, body))
                elif mtype == BARRIER_REQ:
                    sock.sendall(msg(BARRIER_REP, xid))
                elif mtype == MP_REQ:
                    mp_type = struct.unpack("!H", body[:2])[0]
                    if mp_type == MP_DESC and "--stall" in argv:
                        continue
                    if mp_type == MP_DESC:
                        fields = [b"Nicira, Inc.", b"Open vSwitch", b"3.1.0", b"None", desc]
                        sizes = [256, 256, 256, 32, 256]
                        payload = b"".join(f.ljust(n, b"\0") for f, n in zip(fields, sizes))
                        sock.sendall(msg(MP_REP, xid, struct.pack("!HH4x", MP_DESC, 0) + payload))
                    elif mp_type == MP_PORT_DESC:
                        sock.sendall(msg(MP_REP, xid, struct.pack("!HH4x", MP_PORT_DESC, 0)))
                    else:
                        sock.sendall(msg(MP_REP, xid, struct.pack("!HH4x", mp_type, 0)))
                elif mtype == FLOW_MOD:
                    counts["flow_mods"] += 1
                elif mtype == EXPERIMENTER:
                    counts["bundle_msgs"] += 1
    except (OSError, ssl.SSLError) as e:
        counts["closed_by_peer"] = True
        counts["error"] = str(e)
        print("closed", flush=True)
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
