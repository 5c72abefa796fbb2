"""`harness new`: write a plugin package skeleton that installs and passes its own test at once.

The files come from the string templates in harness.cli.scaffold_templates; placeholders are
upper-case words between double underscores (__NAME__, __PKG__, ...), so the templates stay
plain Python with ordinary braces.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import UserError

KINDS = ("benchmark", "backend", "judge")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def placeholders(kind: str, name: str) -> dict[str, str]:
    """Names derived from the plugin name: distribution, import package, class, entry point."""
    from harness import __version__

    words = name.split("-")
    suffix = {"benchmark": "", "backend": "Backend", "judge": "Judge"}[kind]
    return {
        "__NAME__": name,
        "__KIND__": kind,
        "__DIST__": f"harness-{name}",
        "__PKG__": "harness_" + "_".join(words),
        "__CLASS__": "".join(w.capitalize() for w in words) + suffix,
        "__ENTRY__": "harness_" + "_".join(words),  # the package's name: never a built-in's
        "__HOOK__": {"benchmark": "benchmarks", "backend": "backends", "judge": "judges"}[kind],
        "__HARNESS_VERSION__": __version__,
    }


def render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def package_files(kind: str, name: str) -> dict[str, str]:
    """Relative path -> text of every file of the skeleton."""
    from harness.cli import scaffold_templates as t

    if kind not in KINDS:
        raise UserError(f"unknown plugin kind {kind!r}: expected one of {', '.join(KINDS)}")
    if not _NAME.match(name):
        raise UserError(
            f"invalid plugin name {name!r}: use lower-case letters, digits and single hyphens, "
            "starting with a letter (e.g. my-bench)"
        )
    values = placeholders(kind, name)
    pkg = values["__PKG__"]
    plugin, test = {
        "benchmark": (t.BENCHMARK_PLUGIN, t.BENCHMARK_TEST),
        "backend": (t.BACKEND_PLUGIN, t.BACKEND_TEST),
        "judge": (t.JUDGE_PLUGIN, t.JUDGE_TEST),
    }[kind]
    files = {
        "pyproject.toml": t.PYPROJECT,
        "README.md": t.README,
        f"src/{pkg}/__init__.py": t.INIT,
        f"src/{pkg}/plugin.py": plugin,
        f"tests/test_{pkg}.py": test,
    }
    if kind == "benchmark":
        files[f"src/{pkg}/data/items.jsonl"] = t.BENCHMARK_DATA
    return {path: render(text, values) for path, text in files.items()}


def refuse_registered(kind: str, name: str) -> None:
    """A new plugin may not take a name an installed plugin already registers: once both are
    installed, every command using the name would stop on the clash."""
    from harness.plugins import get_plugins

    found = get_plugins()
    if name in found.names(kind):
        origin = found.origin(kind, name)
        raise UserError(
            f"a {kind} named {name!r} is already registered by {origin.package} "
            f"({origin.plugin}): choose another name (e.g. my-{name})"
        )


def write_package(kind: str, name: str, folder: Path | None = None) -> Path:
    """Write the skeleton into `folder` (default ./harness-NAME); refuse a non-empty folder."""
    files = package_files(kind, name)
    refuse_registered(kind, name)
    target = Path(folder) if folder is not None else Path(f"harness-{name}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not an empty folder")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
