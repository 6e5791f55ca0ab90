"""The agent's status: a JSON file in its run directory, written atomically
after every sync and whenever a connection goes up or down; `sg-ofctl status`
reads it (and checks that the pid in it is alive).  A file rather than a
socket: it still tells what the agent last knew when the agent is stuck."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path


def default_run_dir() -> Path:
    env = os.environ.get("SG_OFCTL_RUN_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/sg-ofctl")
    return Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / "sg-ofctl"


def status_path(run_dir: Path, bridge: str) -> Path:
    return Path(run_dir) / f"agent-{bridge}.json"


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError, TypeError):
        return False


def read(path: Path) -> dict:
    """The last status, with `running` (the pid is alive) and `age` (seconds)."""
    data = json.loads(Path(path).read_text())
    data["running"] = data.get("state") != "stopped" and _alive(data.get("pid"))
    data["age"] = round(time.time() - data.get("written", 0), 3)
    return data
