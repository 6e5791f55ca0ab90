"""The incremental compiler's bookkeeping: the flows of each part of a view.

A part is one unit the compiler recomputes as a whole: `("static",)`,
`("uplinks",)`, `("port", id)`, `("group", id)`, `("conj", ref key)`,
`("member", address)`.  Each part remembers the inputs it was built from; a
part whose inputs are equal is not rebuilt.  Every flow a part makes is checked
against the pipeline declaration and must be made by no other part.  The flow
mods since the last `take_changes()` are kept as "flow key -> flow before"."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from sg_ofctl import pipeline
from sg_ofctl.compiler.flows import Flow, format_flow

FlowKey = tuple[object, ...]   # Flow.key: table, priority, match
PartKey = tuple[str, ...]      # (kind, id)


class CompilerError(RuntimeError):
    """Two parts of a view produced the same flow (an input the model let
    through), or a flow leaves the pipeline declaration."""


@dataclass
class FlowDiff:
    add: list[Flow] = field(default_factory=list)
    modify: list[Flow] = field(default_factory=list)
    delete: list[Flow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.add) + len(self.modify) + len(self.delete)

    def __bool__(self) -> bool:
        return len(self) > 0


class FlowParts:
    def __init__(self) -> None:
        self.flows: dict[FlowKey, Flow] = {}          # flow key -> flow
        self._owner: dict[FlowKey, PartKey] = {}      # flow key -> part key
        self._parts: dict[PartKey, tuple[object, tuple[FlowKey, ...]]] = {}  # inputs, flows
        self._by_kind: dict[str, set[str]] = {}       # part kind -> ids present
        self._before: dict[FlowKey, Flow | None] = {}  # flow key -> flow before the changes

    def put(self, key: PartKey, inputs: object, make: Callable[..., Iterable[Flow]],
            *args: object) -> None:
        """Make part `key` the flows of `make(*args)`, made from `inputs` (None: no
        part); `make` runs only when the inputs differ from the part's last ones."""
        old = self._parts.get(key)
        if old is not None and old[0] == inputs:
            return
        new_flows = list(make(*args)) if inputs is not None else []
        for flow in new_flows:
            try:
                pipeline.check_flow(flow)
            except ValueError as e:
                raise CompilerError(f"{key}: {e}: {format_flow(flow)}") from None
        for fk in old[1] if old else ():
            self._before.setdefault(fk, self.flows[fk])
            del self.flows[fk]
            del self._owner[fk]
        new_keys = []
        for flow in new_flows:
            fk = flow.key
            if fk in self._owner:
                raise CompilerError(f"{key} and {self._owner[fk]} both produce "
                                    f"{format_flow(flow)}")
            self._before.setdefault(fk, None)
            self.flows[fk] = flow
            self._owner[fk] = key
            new_keys.append(fk)
        present = self._by_kind.setdefault(key[0], set())
        if inputs is None:
            self._parts.pop(key, None)
            present.discard(key[-1])
        else:
            self._parts[key] = (inputs, tuple(new_keys))
            present.add(key[-1])

    def keep_only(self, kind: str, keep: set[str]) -> None:
        """Remove the parts of `kind` whose id is not in `keep`."""
        for part_id in [i for i in self._by_kind.get(kind, ()) if i not in keep]:
            self.put((kind, part_id), None, list)

    def take_changes(self) -> FlowDiff:
        """The flow mods since the last call."""
        out = FlowDiff()
        for fk, before in self._before.items():
            after = self.flows.get(fk)
            if before is None and after is not None:
                out.add.append(after)
            elif after is None and before is not None:
                out.delete.append(before)
            elif after is not None and before != after:
                out.modify.append(after)
        self._before = {}
        return out
