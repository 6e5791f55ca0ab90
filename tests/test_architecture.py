"""The package map holds: imports point down the floors, no module imports
itself back through others, and modules stay small enough to read at once."""
from __future__ import annotations

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
# Floors, lowest first: a module may import its own floor and the ones below.
FLOORS = (
    ("model", "errors", "safetext", "safeyaml"),
    ("pipeline", "vocabulary", "state", "reference", "scenario"),
    ("compiler", "desired", "explain", "golden", "pipeline_doc"),
    ("dataplane", "ovsdb"),
    ("agent", "neutron", "observe"),
    ("cli", "sandbox"),
)
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}
MAX_LINES = 430


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in (REPO / "sg_ofctl").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules) -> dict[str, set[str]]:
    """Module -> the sg_ofctl modules it imports (at any depth in its code).
    `from pkg import sub` counts as importing `pkg.sub`; a module's own parent
    packages are not counted (Python loads them first whatever it imports)."""
    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                            for a in node.names]
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        edges[name] = {resolve(t) for t in targets if t.startswith("sg_ofctl")} \
            - {name, ""} - ancestors
    return edges


def _floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOOR.get(parts[1]) if len(parts) > 1 else None


def _upward(edges) -> list[str]:
    return [f"{a} -> {b}" for a, targets in edges.items() for b in targets
            if _floor(a) is not None and _floor(b) is not None and _floor(b) > _floor(a)]


def _cycles(edges) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def test_imports_point_down():
    modules = _modules()
    assert _upward(_imports(modules)) == []
    assert {m.split(".")[1] for m in modules if "." in m} <= set(FLOOR) | {"__main__"}


def test_no_import_cycle():
    assert _cycles(_imports(_modules())) == []


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    for name, text in (("model/__init__.py", "from sg_ofctl import compiler\n"),
                       ("compiler/__init__.py", "def f():\n    from sg_ofctl import model\n")):
        (tmp_path / "sg_ofctl" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sg_ofctl" / name).write_text(text)
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    edges = _imports(_modules())
    assert _upward(edges) == ["sg_ofctl.model -> sg_ofctl.compiler"]
    assert _cycles(edges) == [["sg_ofctl.compiler", "sg_ofctl.model"]]


def test_modules_are_small():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "sg_ofctl").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
