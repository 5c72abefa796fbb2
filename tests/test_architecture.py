"""The layers of docs/architecture.md as a contract: no import reaches up a layer, no cycle
between modules, and the core never imports a plugin. Imports inside functions count: a cycle or
an upward import hidden in a function is still one.

Each failure names the importing module, the line and what it imports.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "harness"

# Lowest first; a module may import its own layer and the ones before it (docs/architecture.md).
LAYERS: list[tuple[str, ...]] = [
    ("harness.errors", "harness.support"),
    ("harness.specs", "harness.results", "harness.protocols", "harness.hookspecs"),
    ("harness.config", "harness.plugins"),
    ("harness.data", "harness.model", "harness.train", "harness.eval"),
    ("harness.judging",),
    ("harness.plan",),
    ("harness.cost", "harness.report"),
    ("harness.run",),
    ("harness.cli", "harness.__main__"),
]
PLUGIN_PACKAGES = ("harness_plugins", "harness_example")


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of the core."""
    modules = {}
    for path in CORE.rglob("*.py"):
        if "shipped" in path.relative_to(CORE).parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = module_files()


def layer_of(module: str) -> int | None:
    for index, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return index
    return None


def imports(module: str) -> list[tuple[int, str]]:
    """(line, imported name) for every import in the module, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def core_module(name: str) -> str | None:
    """The core module an imported name lives in (`harness.x.y.f` -> `harness.x.y`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name if name and name != "harness" else None


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for _, name in imports(module):
            target = core_module(name) if name.startswith("harness.") else None
            # a package's __init__ importing its own modules is how a package exports them
            if target and target != module and not target.startswith(module + "."):
                graph[module].add(target)
    return graph


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if m != "harness" and layer_of(m) is None)
    assert not unplaced, f"modules in no layer of docs/architecture.md: {unplaced}"


def test_no_module_imports_a_higher_layer():
    upward = []
    for module in MODULES:
        own = layer_of(module)
        if own is None:
            continue
        for line, name in imports(module):
            target = core_module(name) if name.startswith("harness.") else None
            theirs = layer_of(target) if target is not None else None
            if theirs is not None and theirs > own:
                upward.append(f"{module}:{line} imports {target} (layer {theirs} > {own})")
    assert not upward, "imports up a layer:\n" + "\n".join(upward)


def test_the_core_never_imports_a_plugin():
    found = [
        f"{module}:{line} imports {name}"
        for module in MODULES
        for line, name in imports(module)
        if name.startswith(PLUGIN_PACKAGES)
    ]
    assert not found, "\n".join(found)


def test_no_import_cycles_between_modules():
    cycles = strongly_connected(edges())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert sorted(strongly_connected(graph)) == expected


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    """The contract can fail: a support module importing the runner is named with its line."""
    fake = tmp_path / "bad.py"
    fake.write_text("def f():\n    from harness.run.runner import run_plan\n")
    monkeypatch.setitem(MODULES, "harness.support.bad", fake)
    with pytest.raises(AssertionError, match=r"harness.support.bad:2 imports harness.run.runner"):
        test_no_module_imports_a_higher_layer()
