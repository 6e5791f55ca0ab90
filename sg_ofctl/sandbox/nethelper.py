"""Tiny traffic tools run inside a VM namespace (no nc/scapy needed; standard
library only, so any python3 runs it: `python3 PATH/nethelper.py ...`).

    nethelper.py serve PROTO PORT...    echo servers (tcp or udp); prints "ready"
    nethelper.py probe SPEC...          SPEC = tcp:HOST:PORT, udp:HOST:PORT or ping:HOST,
                                         all at once; prints {"SPEC": true|false, ...}
    nethelper.py send PROTO HOST PORT [--src IP] [--timeout S]
                                         exit 0 if the echo came back, 1 if not
    nethelper.py session HOST PORT      one TCP connection; a line on stdin -> "ok"/"fail"
    nethelper.py sniff SECONDS          print "ready", then the hex of each frame eth0 receives
    nethelper.py frames HEX...          send raw Ethernet frames on eth0
    nethelper.py flood HEX RATE SECONDS one raw frame RATE times a second; prints the count
    nethelper.py ping HOST [--src IP] [--timeout S]
                                         one ICMP echo (raw socket; no ping binary)
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def ping(host: str, src: str | None, timeout: float, seq: int = 1) -> int:
    v6 = ":" in host
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                         socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    if src:
        sock.bind((src, 0))
    ident = os.getpid() & 0xffff
    payload = b"sg-ofctl-ping"
    request, reply = (128, 129) if v6 else (8, 0)
    head = struct.pack("!BBHHH", request, 0, 0, ident, seq)
    # The kernel computes ICMPv6 checksums itself.
    checksum = 0 if v6 else _checksum(head + payload)
    packet = struct.pack("!BBHHH", request, 0, checksum, ident, seq) + payload
    sock.sendto(packet, (host, 0))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, peer = sock.recvfrom(2048)
        except OSError:
            return 1
        icmp = data if v6 else data[(data[0] & 0x0f) * 4:]  # v6 raw sockets: no IP header
        if peer[0] == host and icmp[0] == reply and \
                struct.unpack("!HH", icmp[4:8]) == (ident, seq):
            return 0
    return 1


def serve(proto: str, ports) -> None:
    socks = []
    for port in ports:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET6, kind)  # dual stack: IPv4 and IPv6 clients
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        if proto == "tcp":
            sock.listen(16)
        socks.append(sock)
    for sock in socks[1:]:
        threading.Thread(target=_serve_one, args=(proto, sock), daemon=True).start()
    print("ready", flush=True)
    _serve_one(proto, socks[0])


def _serve_one(proto: str, sock) -> None:
    while True:
        if proto == "udp":
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)
            continue
        conn, _ = sock.accept()
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn) -> None:
    """Echo until the peer closes (one-shot clients and long sessions alike)."""
    with conn:
        try:
            while data := conn.recv(2048):
                conn.sendall(data)
        except OSError:
            pass


def session(host: str, port: int, timeout: float) -> int:
    """One long TCP connection: for each stdin line, send it and print "ok" if the
    echo came back within `timeout`, else "fail"."""
    try:
        sock = socket.create_connection((host, port), timeout)
    except OSError:
        print("fail", flush=True)
        return 1
    print("ok", flush=True)
    for line in sys.stdin:
        sock.settimeout(timeout)
        try:
            sock.sendall(line.encode())
            got = b""
            while len(got) < len(line.encode()):
                chunk = sock.recv(2048)
                if not chunk:
                    break
                got += chunk
            print("ok" if got == line.encode() else "fail", flush=True)
        except OSError:
            print("fail", flush=True)
    return 0


def send(proto: str, host: str, port: int, src: str | None, timeout: float) -> int:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    sock.settimeout(timeout)
    if src:
        sock.bind((src, 0))
    try:
        sock.connect((host, port))
        sock.send(b"hello")
        return 0 if sock.recv(2048) == b"hello" else 1
    except OSError:
        return 1
    finally:
        sock.close()


def sniff(seconds: float) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.bind(("eth0", 0))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame, addr = sock.recvfrom(65535)
        except OSError:
            break
        if addr[2] != socket.PACKET_OUTGOING:
            print(frame.hex(), flush=True)
    return 0


def frames(hexes) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("eth0", 0))
    for h in hexes:
        sock.send(bytes.fromhex(h))
    return 0


def flood(hex_frame: str, rate: int, seconds: float) -> int:
    """Send one frame `rate` times a second (in 10 ms batches) for `seconds`."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("eth0", 0))
    frame, sent, start = bytes.fromhex(hex_frame), 0, time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(rate * min(elapsed + 0.01, seconds))
        while sent < due:
            try:
                sock.send(frame)
                sent += 1
            except BlockingIOError:
                break
        time.sleep(0.01)
    print(sent, flush=True)
    return 0


def probe(specs, timeout: float) -> int:
    """Every probe at once, one thread each; prints one JSON object."""
    results: dict[str, bool] = {}

    def one(index: int, spec: str) -> None:
        kind, _, rest = spec.partition(":")
        if kind == "ping":
            results[spec] = ping(rest, None, timeout, seq=index + 1) == 0
        else:
            host, _, port = rest.rpartition(":")
            results[spec] = send(kind, host.strip("[]"), int(port), None, timeout) == 0

    threads = [threading.Thread(target=one, args=(i, spec)) for i, spec in enumerate(specs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("proto", choices=("tcp", "udp"))
    s.add_argument("port", type=int, nargs="+")
    pr = sub.add_parser("probe")
    pr.add_argument("spec", nargs="+")
    pr.add_argument("--timeout", type=float, default=1.0)
    c = sub.add_parser("send")
    c.add_argument("proto", choices=("tcp", "udp"))
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--src")
    c.add_argument("--timeout", type=float, default=1.0)
    t = sub.add_parser("session")
    t.add_argument("host")
    t.add_argument("port", type=int)
    t.add_argument("--timeout", type=float, default=1.0)
    sub.add_parser("sniff").add_argument("seconds", type=float)
    sub.add_parser("frames").add_argument("hex", nargs="+")
    fl = sub.add_parser("flood")
    fl.add_argument("hex")
    fl.add_argument("rate", type=int)
    fl.add_argument("seconds", type=float)
    p = sub.add_parser("ping")
    p.add_argument("host")
    p.add_argument("--src")
    p.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args()
    if args.cmd == "sniff":
        return sniff(args.seconds)
    if args.cmd == "frames":
        return frames(args.hex)
    if args.cmd == "flood":
        return flood(args.hex, args.rate, args.seconds)
    if args.cmd == "session":
        return session(args.host, args.port, args.timeout)
    if args.cmd == "ping":
        return ping(args.host, args.src, args.timeout)
    if args.cmd == "probe":
        return probe(args.spec, args.timeout)
    if args.cmd == "serve":
        serve(args.proto, args.port)
        return 0
    return send(args.proto, args.host, args.port, args.src, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
