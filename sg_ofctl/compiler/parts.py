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
        self.flows: dict[tuple, Flow] = {}          # flow key -> flow
        self._owner: dict[tuple, tuple] = {}        # flow key -> part key
        self._parts: dict[tuple, tuple] = {}        # part key -> (inputs, flow keys)
        self._by_kind: dict[str, set] = {}          # part kind -> ids present
        self._before: dict[tuple, Flow | None] = {}  # flow key -> flow before the changes

    def set(self, key: tuple, inputs, make: Callable[[], Iterable[Flow]]) -> None:
        """Make part `key` the flows of `make()` for `inputs` (None: no part)."""
        old = self._parts.get(key)
        if old is not None and old[0] == inputs:
            return
        new_flows = list(make()) if inputs is not None else []
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

    def keep_only(self, kind: str, keep: set) -> None:
        """Remove the parts of `kind` whose id is not in `keep`."""
        for part_id in [i for i in self._by_kind.get(kind, ()) if i not in keep]:
            self.set((kind, part_id), None, list)

    def take_changes(self) -> FlowDiff:
        """The flow mods since the last call."""
        out = FlowDiff()
        for fk, before in self._before.items():
            after = self.flows.get(fk)
            if before is None and after is not None:
                out.add.append(after)
            elif after is None and before is not None:
                out.delete.append(before)
            elif before != after:
                out.modify.append(after)
        self._before = {}
        return out
