"""The agent's switch channel: who may be its switch.

Two locks, both always on in the agent:

1. The listener (`Listener`).  TLS by default: the peer must present a
   certificate signed by the agent's private CA (pki.py); a plain TCP listener
   only with an explicit --insecure flag.  It binds in the caller's thread, so
   an agent that cannot bind fails at once (os-ken's own listener fails in a
   thread, silently); the TLS handshake has a deadline and the number of
   connections waiting for one is bounded.
2. The datapath check (`ChannelGuard`).  The agent writes a random secret into
   the bridge's `other_config:dp-desc` in the local Open_vSwitch database
   (root-only).  ovs-vswitchd reports it as the datapath description, so a
   connection is accepted as the bridge only if its OFPMP_DESC reply carries
   the secret.  A connection that does not (or that claims a datapath id that
   is not the bridge's) is refused: closed, logged, counted, and the agent is
   `degraded` for a while; it never replaces the verified connection."""
from __future__ import annotations

import logging
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass

from sg_ofctl import errors

LOG = logging.getLogger(__name__)
DESC_PREFIX = "sg-ofctl-channel:"
HANDSHAKE_TIMEOUT = 5.0
MAX_HANDSHAKES = 16       # connections waiting for their TLS handshake at once
DEGRADED_HOLD = 300.0     # seconds a refused connection keeps the agent `degraded`
VERIFY_TIMEOUT = 5.0      # seconds a new connection has to answer the description request


@dataclass(frozen=True)
class ChannelSecurity:
    mode: str                 # "tls" or "plain"
    ca_cert: str = ""
    cert: str = ""            # the agent's (controller) certificate and key
    key: str = ""

    def describe(self) -> str:
        if self.mode == "tls":
            return "tls (the switch's certificate must be signed by the agent's CA)"
        return "plain tcp (INSECURE: any local process may connect; datapath check only)"


def new_secret() -> str:
    return DESC_PREFIX + secrets.token_hex(16)


class Listener:
    """A bound, listening socket; `serve(handle)` runs the accept loop and calls
    handle(sock, addr) in a new thread for each connection (after TLS)."""

    def __init__(self, host: str, port: int, security: ChannelSecurity, on_refused=None):
        self.security, self.on_refused = security, on_refused
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(64)
        except OSError as e:
            sock.close()
            raise errors.UserError(f"listen={host}:{port}: cannot listen for the switch: "
                                   f"{e.strerror or e}") from None
        self.sock = sock
        self.ctx = None
        if security.mode == "tls":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.verify_mode = ssl.CERT_REQUIRED
            try:
                ctx.load_cert_chain(security.cert, security.key)
                ctx.load_verify_locations(security.ca_cert)
            except (OSError, ssl.SSLError) as e:
                sock.close()
                raise errors.UserError(f"TLS files: {e}") from None
            self.ctx = ctx
        self._slots = threading.BoundedSemaphore(MAX_HANDSHAKES)

    def serve(self, handle) -> None:
        while True:
            conn, addr = self.sock.accept()
            if not self._slots.acquire(blocking=False):
                self._refuse(conn, addr, "too many connections waiting for a handshake")
                continue
            threading.Thread(target=self._handshake, args=(conn, addr, handle),
                             name="sg-ofctl-channel", daemon=True).start()

    def _handshake(self, conn, addr, handle) -> None:
        try:
            if self.ctx is not None:
                conn.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    self._refuse(conn, addr, f"TLS handshake failed: {e}")
                    return
                conn.settimeout(None)
        finally:
            self._slots.release()
        try:
            handle(conn, addr)
        except Exception:
            LOG.exception("switch connection from %s", addr)

    def _refuse(self, conn, addr, reason: str) -> None:
        try:
            conn.close()
        except OSError:
            pass
        if self.on_refused is not None:
            self.on_refused(f"{addr[0]}:{addr[1]}", None, reason)


class ChannelGuard:
    """Which connection is the bridge: the secret it must report, refusals."""

    def __init__(self, secret: str, security: ChannelSecurity):
        self.secret, self.security = secret, security
        self.expected_dpid: int | None = None     # the bridge's, from the local OVSDB
        self.refused: deque = deque(maxlen=20)
        self.refused_total = 0
        self._last_refusal = 0.0
        self._lock = threading.Lock()

    def check(self, dpid: int, description: str) -> str | None:
        """None if a connection claiming `dpid` and reporting `description` is
        the bridge; otherwise why not."""
        if isinstance(description, str):
            description = description.encode("utf-8", "replace")
        if not secrets.compare_digest(description, self.secret.encode()):
            return "its datapath description is not the bridge's secret (not our ovs-vswitchd)"
        if self.expected_dpid is not None and dpid != self.expected_dpid:
            return f"datapath id {dpid:016x} is not the bridge's ({self.expected_dpid:016x})"
        return None

    def refuse(self, peer: str, dpid: int | None, reason: str) -> None:
        with self._lock:
            self.refused_total += 1
            self._last_refusal = time.monotonic()
            self.refused.append({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "peer": peer, "reason": reason,
                                 "datapath_id": f"{dpid:016x}" if dpid is not None else None})
        LOG.error("refused a switch connection from %s%s: %s", peer,
                  f" claiming datapath {dpid:016x}" if dpid is not None else "", reason)

    def degraded_reason(self) -> str | None:
        with self._lock:
            if self.refused and time.monotonic() - self._last_refusal < DEGRADED_HOLD:
                last = self.refused[-1]
                return f"refused a switch connection from {last['peer']} at {last['time']}: " \
                       f"{last['reason']}"
        return None

    def status(self) -> dict:
        with self._lock:
            return {"security": self.security.mode, "description": self.security.describe(),
                    "refused_total": self.refused_total, "refused": list(self.refused)}
