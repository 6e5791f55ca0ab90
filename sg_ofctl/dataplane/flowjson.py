"""Flow values <-> JSON (for the test driver's control channel and for files)."""
from __future__ import annotations

import dataclasses

from sg_ofctl.compiler import flows as F

ACTIONS = {cls.__name__: cls for cls in (F.Goto, F.Resubmit, F.Load, F.Move, F.Ct, F.CtClear,
                                         F.Conjunction, F.Output, F.Normal, F.PopVlan)}


def flow_to_json(flow: F.Flow) -> dict:
    return {"table": flow.table, "priority": flow.priority,
            "match": [list(item) for item in flow.match],
            "actions": [[type(a).__name__, dataclasses.asdict(a)] for a in flow.actions],
            "cookie": flow.cookie}


def _action(name: str, fields: dict):
    if name == "Ct" and fields.get("mark") is not None:
        fields = {**fields, "mark": tuple(fields["mark"])}
    return ACTIONS[name](**fields)


def flow_from_json(obj: dict) -> F.Flow:
    return F.Flow(obj["table"], obj["priority"], tuple(tuple(i) for i in obj["match"]),
                  tuple(_action(n, f) for n, f in obj["actions"]), obj["cookie"])
