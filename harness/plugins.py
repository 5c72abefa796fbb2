"""The plugin manager: entry points of the `harness` group, built-ins included, through pluggy.

Built-in plugins are found exactly as third-party ones are. What each registers is checked
against its protocol; a registration that falls short is refused with what is missing. Every
plugin loads and registers inside its own guard: a broken, misspelt or clashing plugin is listed
by `harness plugins` with what to fix, and only the commands that use what it touches stop.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import UserError

GROUP = "harness"

# kind -> (hook name, attributes and methods a registered object must have)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "backend": (
        "register_backends",
        (
            "name",
            "version",
            "defaults",
            "load_model",
            "prepare",
            "deepspeed_config",
            "save",
            "load",
        ),
    ),
    "benchmark": (
        "register_benchmarks",
        (
            "name",
            "version",
            "modality",
            "judged",
            "assets",
            "protocol",
            "load",
            "requests",
            "judge_requests",
            "parse_judgment",
            "retry_request",
            "score",
        ),
    ),
    "judge": ("register_judges", ("name", "__call__")),
    "executor": ("register_executors", ("name", "__call__")),
}


@dataclass(frozen=True)
class Origin:
    """Where a registered object came from: the entry point, its package and version."""

    plugin: str
    package: str
    version: str


@dataclass
class Plugins:
    """Everything registered, by kind and name, with its origin and any refusals."""

    objects: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in KINDS})
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)
    modules: dict[str, Origin] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    # (kind, name) registered by two plugins -> what to rename; using that name exits 2
    clashes: dict[tuple[str, str], str] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> Any:
        if (kind, name) in self.clashes:
            raise UserError(self.clashes[(kind, name)])
        known = self.objects[kind]
        if name not in known:
            for message in self.refused:
                if f"{kind} {name!r}" in message:
                    raise UserError(message)
        from harness.config.registry import lookup  # pydantic and the registry only when needed

        return known[lookup(name, known, kind)]

    def names(self, kind: str) -> list[str]:
        return sorted(self.objects[kind])

    def origin(self, kind: str, name: str) -> Origin:
        return self.origins[(kind, name)]


def missing_members(obj: Any, required: tuple[str, ...]) -> list[str]:
    return [attr for attr in required if not hasattr(obj, attr)]


def _manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _register_guarded(
    pm: pluggy.PluginManager, plugins: Plugins, module: object, origin: Origin
) -> None:
    """Register one plugin module; a clash of entry-point names or a hook whose arguments do
    not match its specification refuses this plugin alone, with what to change."""
    name = origin.plugin
    if name in plugins.modules:
        first = plugins.modules[name]
        plugins.refused.append(
            f"entry point {name!r} is declared by both {first.package} and {origin.package}: "
            f"rename it in {origin.package}'s [project.entry-points.harness] (entry-point names "
            "must be unique; name it after the package)"
        )
        name = f"{name}@{origin.package}"  # still loaded: its registrations may not clash
    try:
        pm.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        plugins.refused.append(
            f"plugin {origin.plugin!r} from {origin.package} {origin.version} refused: {reason}"
        )
        return
    plugins.modules[name] = origin


def _unknown_hooks(pm: pluggy.PluginManager, plugins: Plugins) -> None:
    """What pluggy's check_pending would raise for, as one refusal line per misspelt hook."""
    for hook_name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        close = difflib.get_close_matches(hook_name, [h for h, _ in KINDS.values()], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        for impl in caller.get_hookimpls():
            origin = plugins.modules[impl.plugin_name]
            plugins.refused.append(
                f"plugin {origin.plugin!r} from {origin.package} {origin.version} implements "
                f"unknown hook {hook_name!r}{hint}: it registers nothing through it"
            )


def _load_order(ep: Any) -> tuple[str, bool, str]:
    """By entry-point name; on a shared name the built-ins first, so a clash names the other."""
    return (ep.name, not ep.value.startswith("harness_plugins."), ep.dist.name if ep.dist else "")


def load_plugins(extra: list[ModuleType | object] | None = None) -> Plugins:
    """Load every entry point of the group (minus HARNESS_BLOCK_PLUGINS) plus `extra` objects."""
    blocked = {b.strip() for b in os.environ.get("HARNESS_BLOCK_PLUGINS", "").split(",") if b}
    pm = _manager()
    plugins = Plugins(blocked=sorted(blocked))
    for ep in sorted(entry_points(group=GROUP), key=_load_order):
        if ep.name in blocked:
            continue
        dist = ep.dist
        origin = Origin(ep.name, dist.name if dist else "?", dist.version if dist else "?")
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the harness down
            plugins.refused.append(
                f"plugin {ep.name!r} from {origin.package} {origin.version} failed to load: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        _register_guarded(pm, plugins, module, origin)
    for index, obj in enumerate(extra or []):
        if pm.is_registered(obj):  # already found through its entry point
            continue
        name = getattr(obj, "__name__", f"extra-{index}")
        _register_guarded(pm, plugins, obj, Origin(name, "(in process)", "-"))
    _unknown_hooks(pm, plugins)
    for kind, (hook, required) in KINDS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            origin = plugins.modules[impl.plugin_name]
            try:
                impl.function(register=_registrar(plugins, kind, required, origin))
            except Exception as exc:  # a broken hook refuses its plugin, not the harness
                plugins.refused.append(
                    f"plugin {origin.plugin!r} from {origin.package} {origin.version} failed "
                    f"in {hook}: {type(exc).__name__}: {exc}"
                )
    return plugins


def _registrar(plugins: Plugins, kind: str, required: tuple[str, ...], origin: Origin):
    def register(obj: Any) -> None:
        name = getattr(obj, "name", None)
        missing = missing_members(obj, required)
        if missing or not isinstance(name, str):
            plugins.refused.append(
                f"{kind} {name!r} from {origin.package} {origin.version} refused: "
                f"missing {', '.join(missing) or 'a str name'}"
            )
            return
        if name in plugins.objects[kind]:
            first = plugins.origins[(kind, name)]
            plugins.clashes[(kind, name)] = (
                f"two plugins register the {kind} {name!r}: {first.package} "
                f"({first.plugin}) and {origin.package} ({origin.plugin}); rename the "
                f"{kind} in {origin.package} (its `name`) or uninstall one of them"
            )
            return
        plugins.objects[kind][name] = obj
        plugins.origins[(kind, name)] = origin

    return register


_CACHE: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded once."""
    global _CACHE
    if _CACHE is None:
        _CACHE = load_plugins()
    return _CACHE


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Replace (or forget) the process-wide plugin set; tests use this."""
    global _CACHE
    _CACHE = plugins
