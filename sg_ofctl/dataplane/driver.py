"""A minimal controller process driven over a unix socket: the functional tests'
way to install flows through the real os-ken path (and a debugging aid).

    python -m sg_ofctl.dataplane.driver --listen 127.0.0.1:6653 --control DIR/driver.sock

Requests and replies are JSON lines: {"op": "install_full", "flows": [...]} ->
{"ok": true, "result": {...}} or {"ok": false, "error": "..."}.  Ops: wait_switch,
install_full, apply, read_flows, ct_flush_zone, ct_flush, shutdown.  One request
at a time, on the main thread: the only thread that sends to the switch."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time

from sg_ofctl import pipeline
from sg_ofctl.compiler import FlowDiff
from sg_ofctl.dataplane.flowjson import flow_from_json, flow_to_json

LOG = logging.getLogger("sg_ofctl.dataplane.driver")


def start_os_ken(host: str, port: int, first_table: int):
    from sg_ofctl.dataplane.app import DataplaneApp, start_os_ken as start
    return start("sg_ofctl.dataplane.app", DataplaneApp, host, port, first_table)


class Driver:
    def __init__(self, app):
        self.app = app

    def handle(self, req: dict):
        op = req["op"]
        if op == "wait_switch":
            conn = self.app.wait_for_switch(req.get("timeout", 10),
                                            min_generation=req.get("min_generation", 0))
            return {"dpid": conn.datapath.id, "generation": self.app.generation}
        conn = self.app.wait_for_switch(req.get("timeout", 10))
        if op == "install_full":
            flows = [flow_from_json(f) for f in req["flows"]]
            start = time.monotonic()
            change = conn.install_full(flows)
            return {"add": len(change.add), "modify": len(change.modify),
                    "delete": len(change.delete), "seconds": time.monotonic() - start}
        if op == "apply":
            change = FlowDiff(*([flow_from_json(f) for f in req.get(k, [])]
                                for k in ("add", "modify", "delete")))
            result = conn.apply(change)
            return {"flow_mods": result.flow_mods, "seconds": result.seconds}
        if op == "read_flows":
            return {"flows": [flow_to_json(f) for f in conn.read_flows()]}
        if op == "ct_flush_zone":
            conn.flush_conntrack_zone(req["zone"])
            return {}
        if op == "ct_flush":
            conn.flush_conntrack(**req.get("match", {}))
            return {}
        raise ValueError(f"unknown op {op!r}")

    def serve(self, path: str) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        server.bind(path)
        server.listen(4)
        print("ready", flush=True)
        while True:
            client, _ = server.accept()
            with client, client.makefile("rwb") as stream:
                for line in stream:
                    req = json.loads(line)
                    if req.get("op") == "shutdown":
                        stream.write(b'{"ok": true, "result": {}}\n')
                        stream.flush()
                        return
                    try:
                        reply = {"ok": True, "result": self.handle(req)}
                    except Exception as e:  # reported to the client, never fatal
                        LOG.exception("request %s", req.get("op"))
                        reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                    stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:6653", help="HOST:PORT for OpenFlow")
    ap.add_argument("--control", required=True, help="unix socket path for requests")
    ap.add_argument("--first-table", type=int, default=pipeline.DEFAULT_FIRST_TABLE)
    ap.add_argument("--log-file")
    args = ap.parse_args(argv)
    logging.basicConfig(filename=args.log_file, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, port = args.listen.rsplit(":", 1)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    app = start_os_ken(host, int(port), pipeline.check_first_table(args.first_table))
    Driver(app).serve(args.control)
    os._exit(0)  # os-ken's hub threads don't stop on their own


if __name__ == "__main__":
    sys.exit(main())
