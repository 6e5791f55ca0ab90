"""Is the switch the agent programs really the bridge?  The channel's security
and refusals (dataplane/channel.py), cross-checked with the local Open_vSwitch
database: the bridge's datapath_id and its Controller row's is_connected."""
from __future__ import annotations

import time

CONTROLLER_STATUS_GRACE = 15.0   # ovs-vswitchd updates is_connected every few seconds


def channel_status(app, conn, local) -> tuple[dict, str | None]:
    """(the status's `channel` section, why the agent is degraded or None)."""
    guard = getattr(app, "guard", None)
    info = guard.status() if guard is not None else {"security": "unchecked"}
    connected = conn is not None and not conn.closed
    dpid = conn.datapath.id if connected else None
    info["verified"] = connected and guard is not None
    info["datapath_id"] = f"{dpid:016x}" if dpid is not None else None
    reason = guard.degraded_reason() if guard is not None else None
    if local is not None:
        info["ovsdb"] = {"bridge_datapath_id": f"{local.datapath_id:016x}"
                         if local.datapath_id is not None else None,
                         "controller_is_connected": local.controller_connected}
        if connected and local.datapath_id is not None and local.datapath_id != dpid:
            reason = reason or (f"the switch connected as datapath {dpid:016x}, but the "
                                f"bridge's datapath_id is {local.datapath_id:016x}")
        if connected and local.controller_connected is False and \
                time.monotonic() - conn.since > CONTROLLER_STATUS_GRACE:
            reason = reason or ("the bridge's Controller row says is_connected=false while "
                                "the agent holds a switch connection")
    return info, reason


def note_bridge(app, local):
    """Tell the channel guard the bridge's datapath id (from the local
    database); returns `local`, which the status cross-checks."""
    guard = getattr(app, "guard", None)
    if guard is not None:
        guard.expected_dpid = local.datapath_id
    return local


def channel_section(app, conn, local) -> dict:
    channel, problem = channel_status(app, conn, local)
    return {**channel, "problem": problem}
