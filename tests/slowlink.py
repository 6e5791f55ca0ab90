"""A slow link for tests (no netem in this kernel): a unix-socket relay to a
database that holds every chunk `delay` seconds in each direction, and once in
`stall_every` chunks stalls `stall` seconds more (what TCP retransmission after
a lost segment looks like to the application).  Threads; `close()` ends them."""
from __future__ import annotations

import os
import socket
import threading
import time


class SlowLink:
    def __init__(self, listen_path: str, target_path: str, delay: float = 0.0):
        self.listen_path, self.target_path = listen_path, target_path
        self.delay, self.stall, self.stall_every = delay, 0.0, 0
        self._chunks = 0
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(listen_path)
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def remote(self) -> str:
        return f"unix:{self.listen_path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target_path)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                data = src.recv(65536)
                if not data:
                    break
                self._chunks += 1
                wait = self.delay
                if self.stall_every and self._chunks % self.stall_every == 0:
                    wait += self.stall
                if wait:
                    time.sleep(wait)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        for s in self._sockets:
            s.close()
        try:
            os.unlink(self.listen_path)
        except FileNotFoundError:
            pass
