"""Is the agent healthy?  Pure: the status the agent writes -> a state and the
problems that make it so, worst first.  `sg-ofctl status` exits non-zero
unless healthy, so monitoring scripts and systemd can use it.

- down: the agent is not running (or its status is too old to trust);
- degraded: a connection is down; the database link is slow (median echo
  round trip above the threshold) or lossy (an echo lost in the recent
  window); the last round failed; the database writer keeps failing;
- fail-closed ports are listed (a port waiting for its row is normal for a
  moment) but do not degrade the agent by themselves."""
from __future__ import annotations

DEFAULT_RTT_THRESHOLD = 0.15   # seconds: a database link slower than this is degraded
STALE_AFTER = 30.0             # seconds without a status write: the agent is stuck


# Why a port may be fail-closed for a moment, as everything works: not an error.
_TRANSIENT = ("no port named", "waiting for the next round", "its row is being created")


def port_state(row: dict) -> str:
    """enforced, fail-closed (waiting: no row yet, a burst's next round) or
    error (an invalid row or tag, a clash with another port)."""
    if row.get("state") == "enforced":
        return "enforced"
    reason = row.get("reason") or ""
    return "fail-closed" if reason.startswith(_TRANSIENT) else "error"


def split_errors(errors, last_good: str | None) -> tuple[list, list]:
    """(active, resolved): an error older than the last good round (ISO UTC
    times compare as text) is resolved; the status keeps it as history."""
    active = [e for e in errors if last_good is None or e.get("time", "") > last_good]
    return active, [e for e in errors if e not in active]


def assess(status: dict, rtt_threshold: float | None = None) -> dict:
    problems: list[str] = []
    warnings: list[str] = []
    if status.get("running") is False:
        return {"state": "down", "problems": ["the agent is not running"], "warnings": []}
    if status.get("age") is not None and status["age"] > STALE_AFTER:
        problems.append(f"the agent's status is {status['age']:.0f} s old: it is stuck")
    for key, what in (("switch", "the switch"), ("local_ovsdb", "the local OVS database"),
                      ("sg_database", "the security-group database")):
        if not status.get(key, {}).get("connected"):
            problems.append(f"{what} is disconnected")
    db = status.get("sg_database", {})
    threshold = rtt_threshold if rtt_threshold is not None else \
        db.get("rtt_threshold_seconds", DEFAULT_RTT_THRESHOLD)
    median = db.get("rtt_median_seconds")
    if db.get("connected") and median is not None and median > threshold:
        problems.append(f"the security-group database link is slow: round trip "
                        f"{median * 1000:.0f} ms (threshold {threshold * 1000:.0f} ms)")
    if db.get("connected") and db.get("probes_lost"):
        problems.append(f"the security-group database link is lossy: {db['probes_lost']} "
                        f"of the last {db.get('probes')} echoes got no reply")
    channel_problem = (status.get("channel") or {}).get("problem")
    if channel_problem:                 # a refused switch connection, a datapath mismatch
        problems.append(f"switch channel: {channel_problem}")
    for error in status.get("errors", []):
        problems.append(error["error"] if isinstance(error, dict) else str(error))
    packet_log = status.get("packet_log") or {}
    if packet_log.get("error"):
        problems.append(packet_log["error"])
    for port in status.get("ports", []):
        if port.get("state") != "enforced":
            warnings.append(f"{port['interface']} is fail-closed: {port.get('reason')}")
    return {"state": "degraded" if problems else "healthy", "problems": problems,
            "warnings": warnings}
