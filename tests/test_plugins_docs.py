"""The plugin docs say what the code does: every hook, protocol member and data field, as is.

Signatures are compared through `ast`, so a doc block and the source match when they are the
same Python, whatever their line breaks. Guides must link to pages and anchors that exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness import hookspecs, protocols
from harness.plugins import KINDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS_MD = DOCS / "hooks.md"
GUIDES = ("writing-a-benchmark.md", "writing-a-backend.md", "writing-a-judge.md")


def _member(node: ast.stmt) -> str | None:
    """`name: type [= default]` or `def name(args) -> ret`, canonical; None for anything else."""
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        text = f"{node.target.id}: {ast.unparse(node.annotation)}"
        return text + (f" = {ast.unparse(node.value)}" if node.value is not None else "")
    if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        return f"def {node.name}({ast.unparse(node.args)}){returns}"
    return None


def _classes(tree: ast.Module) -> dict[str, set[str]]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {m for m in map(_member, node.body) if m}
    return out


def _source(module) -> ast.Module:
    return ast.parse(Path(module.__file__).read_text())


def _code_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def _documented() -> tuple[dict[str, set[str]], set[str]]:
    classes: dict[str, set[str]] = {}
    functions: set[str] = set()
    for block in _code_blocks(HOOKS_MD):
        tree = ast.parse(block)  # every python block of the reference is valid Python
        for name, members in _classes(tree).items():
            classes.setdefault(name, set()).update(members)
        functions |= {_member(n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    return classes, functions


def _hookspecs() -> set[str]:
    return {
        _member(node)
        for node in _source(hookspecs).body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d) == "hookspec" for d in node.decorator_list)
    }


def test_every_hook_is_documented_with_its_signature():
    _, functions = _documented()
    specs = _hookspecs()
    assert len(specs) >= 4
    assert specs - functions == set(), "hooks missing or out of date in docs/hooks.md"
    stale = {f for f in functions if f.startswith("def register_") and "->" in f} - specs
    assert stale == set(), "docs/hooks.md documents hooks that hookspecs.py does not have"


SOURCE_CLASSES = _classes(_source(protocols))


@pytest.mark.parametrize("name", sorted(SOURCE_CLASSES))
def test_every_protocol_member_and_data_field_is_documented_as_is(name):
    documented, _ = _documented()
    assert name in documented, f"docs/hooks.md has no `class {name}` block"
    source = SOURCE_CLASSES[name]
    assert source - documented[name] == set(), f"{name}: missing or out of date in the docs"
    assert documented[name] - source == set(), f"{name}: documented but not in protocols.py"


def test_registration_table_lists_what_the_plugin_manager_requires():
    text = HOOKS_MD.read_text()
    for kind, (hook, required) in KINDS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| {kind} |")), None)
        assert row is not None, f"no registration row for {kind}"
        assert f"`{hook}`" in row
        listed = set(re.findall(r"`(\w+)`", row.split("|")[3]))
        assert listed == set(required), f"{kind}: table says {listed}, plugins.py {required}"


OPTIONAL = {
    name: protocols.declared_members(cls)
    for name, cls in vars(protocols).items()
    if isinstance(cls, type) and (cls.__doc__ or "").startswith("Optional for")
}
# read with getattr until harness/eval/ switches to the protocol (PromptTemplate)
NOT_YET_SWITCHED: set[tuple[str, str]] = set()  # (file, member) read another way, for now


def test_every_optional_protocol_is_in_the_optional_members_table():
    section = HOOKS_MD.read_text().split("## Optional members the core looks for", 1)[1]
    rows = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("|")]
    assert {"Stage1Choice", "OwnTraining", "AnswersRequests", "BatchSubmit"} <= OPTIONAL.keys()
    for name, members in OPTIONAL.items():
        row = next((r for r in rows if f"`{name}`" in r.split("|")[1]), None)
        assert row is not None, f"{name}: no row in the optional members table"
        missing = [m for m in members if f"`{m}" not in row]
        assert not missing, f"{name}: the table's row does not name {missing}"


def test_the_core_reads_optional_members_through_their_protocols():
    pattern = re.compile(r"\b(?:getattr|hasattr)\(.*?,\s*\"(\w+)\"")
    members = {m for names in OPTIONAL.values() for m in names}
    found = set()
    for path in (ROOT / "harness").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        found |= {(relative, m) for m in pattern.findall(path.read_text()) if m in members}
    stray = found - NOT_YET_SWITCHED
    assert not stray, f"use isinstance(obj, <its protocol>) instead of getattr/hasattr: {stray}"


@pytest.mark.parametrize("page", ["hooks.md", *GUIDES])
def test_links_between_pages_resolve(page):
    text = (DOCS / page).read_text()
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md|)(?:#([\w-]+))?\)", text):
        linked = DOCS / target if target else DOCS / page
        assert linked.is_file(), f"{page} links to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{page} links to missing anchor {target}#{anchor}"


@pytest.mark.parametrize("page", GUIDES)
def test_guides_python_blocks_are_valid_python(page):
    for block in _code_blocks(DOCS / page):
        ast.parse(block)


def test_every_peft_helper_is_in_the_backend_guides_table():
    from harness.train import peft_helpers

    guide = (DOCS / "writing-a-backend.md").read_text()
    table = guide.split("`harness.train.peft_helpers`:\n", 1)[1].split("\n\n", 1)[0]
    documented = {name for cell in re.findall(r"^\| ([^|]+) \|", table, re.M)
                  for name in re.findall(r"`(\w+)", cell)}  # fmt: skip
    assert set(peft_helpers.__all__) <= documented, set(peft_helpers.__all__) - documented
