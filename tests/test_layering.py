"""The import rules of DESIGN.md, checked on the source: the core (df_robot) imports nothing of
sim, deploy or teleop, and no module imports itself back through others (no import circle).
Every import statement counts, those inside functions too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("df_robot", "sim", "deploy", "teleop")


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict) -> set[str]:
    """The project modules a module imports (a `from a import b` names a.b when b is a module)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import df_robot.policy.model` is a dependency on that module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_core_imports_none_of_its_users():
    g = graph()
    assert "df_robot.cli" in g and "sim.plugin" in g  # the walk sees the whole tree
    wrong = {m: sorted(d for d in deps if d.split(".")[0] in ("sim", "deploy", "teleop"))
             for m, deps in g.items() if m.split(".")[0] == "df_robot"}
    assert not {m: d for m, d in wrong.items() if d}


def test_no_import_circle():
    assert cycles(graph()) == []


def test_the_walk_finds_a_circle_and_a_lazy_import(tmp_path):
    """The checks above can fail: a circle made of a function-level import is found."""
    g = graph()
    g["df_robot.policy.model"] = g["df_robot.policy.model"] | {"df_robot.train"}  # as if model imported train
    assert any("df_robot.policy.model" in c and "df_robot.train" in c for c in cycles(g))
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from sim.twin import Twin\n")
    assert "sim.twin" in imports_of("df_robot.m", src, modules())
