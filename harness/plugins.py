"""The plugin manager: entry points of the `harness` group, built-ins included, through pluggy.

Built-in plugins are found exactly as third-party ones are. pluggy loads, blocks and registers
them and keeps their distributions; what each hook registers is checked against its protocol,
and a registration that falls short is refused with what is missing. Every plugin loads and runs
its hooks inside its own guard: a broken, misspelt or clashing plugin is listed by
`harness plugins` with what to fix, and only the commands that use what it touches stop.
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from harness import hookspecs
from harness.errors import UserError
from harness.protocols import (
    Benchmark,
    ExecutorFactory,
    JudgeFactory,
    TrainingBackend,
    declared_members,
)

GROUP = "harness"

# kind -> (its hook, the protocol of what the hook registers)
PROTOCOLS: dict[str, tuple[str, type]] = {
    "backend": ("register_backends", TrainingBackend),
    "benchmark": ("register_benchmarks", Benchmark),
    "judge": ("register_judges", JudgeFactory),
    "executor": ("register_executors", ExecutorFactory),
}
# kind -> (its hook, the attributes and methods a registered object must have)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    kind: (hook, declared_members(protocol)) for kind, (hook, protocol) in PROTOCOLS.items()
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
    modules: dict[str, Origin] = field(default_factory=dict)  # pluggy name -> origin, load order
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

        try:
            return known[lookup(name, known, kind)]
        except UserError as exc:
            if not self.refused:
                raise
            # the name may be one a refused plugin would have registered: say where to look
            problems = f"{len(self.refused)} plugin problem{'s' * (len(self.refused) > 1)}"
            raise UserError(f"{exc}; `harness plugins` lists {problems}") from None

    def backend(self, name: str) -> TrainingBackend:
        return self.get("backend", name)

    def benchmark(self, name: str) -> Benchmark:
        return self.get("benchmark", name)

    def judge(self, name: str) -> JudgeFactory:
        return self.get("judge", name)

    def executor(self, name: str) -> ExecutorFactory:
        return self.get("executor", name)

    def names(self, kind: str) -> list[str]:
        return sorted(self.objects[kind])

    def origin(self, kind: str, name: str) -> Origin:
        return self.origins[(kind, name)]


def missing_members(obj: Any, required: tuple[str, ...]) -> list[str]:
    return [attr for attr in required if not hasattr(obj, attr)]


def _manager(blocked: set[str]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    return pm


def _refuse(plugins: Plugins, origin: Origin, what: str) -> None:
    """One refusal line, naming the plugin with its package and version."""
    label = f"plugin {origin.plugin!r} from {origin.package} {origin.version}"
    plugins.refused.append(f"{label} {what}")


def _validation(
    pm: pluggy.PluginManager, plugins: Plugins, name: str, origin: Origin, exc: Exception
) -> None:
    """A hook whose arguments do not match its specification refuses its plugin alone."""
    pm.unregister(name=name)  # pluggy keeps what it registered before the failing hook
    _refuse(plugins, origin, f"refused: {' '.join(str(exc).split())}")


def _register(pm: pluggy.PluginManager, plugins: Plugins, module: object, origin: Origin) -> None:
    """Register what pluggy does not load itself; an entry-point name already taken is
    refused with what to rename, and the plugin is still registered under a name of its own."""
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
        _validation(pm, plugins, name, origin, exc)
        return
    plugins.modules[name] = origin


def _key(ep: EntryPoint) -> str:
    return f"{ep.name}={ep.value}"  # two packages may declare one name: the value tells them apart


def _origin(ep: EntryPoint) -> Origin:
    dist = ep.dist
    return Origin(ep.name, dist.name if dist else "?", dist.version if dist else "?")


def _import(plugins: Plugins, declared: list[EntryPoint]) -> dict[str, Any]:
    """Each entry point's object, imported once (pluggy's own load then finds it in
    sys.modules); a plugin that fails to import is refused alone."""
    modules = {}
    for ep in declared:
        try:
            modules[_key(ep)] = ep.load()
        except Exception as exc:  # a broken plugin must not take the harness down
            _refuse(plugins, _origin(ep), f"failed to load: {type(exc).__name__}: {exc}")
    return modules


def _pluggy_loads(
    pm: pluggy.PluginManager, plugins: Plugins, declared: list[EntryPoint], mine: set[str]
) -> set[str]:
    """pluggy loads and registers every declared entry point whose name is not in `mine` (the
    harness registers those itself), walking the installed distributions once; only when a
    plugin is refused does it walk once per remaining name, to refuse that plugin alone.
    Returns the names refused."""
    for name in mine:  # kept from pluggy's walk
        pm.set_blocked(name)
    refused: set[str] = set()
    try:
        pm.load_setuptools_entrypoints(GROUP)
    except (pluggy.PluginValidationError, ValueError) as exc:
        stopped_at = pm.get_name(getattr(exc, "plugin", None))  # registered part way, if any
        for ep in declared:
            if ep.name == stopped_at:
                _validation(pm, plugins, ep.name, _origin(ep), exc)
                refused.add(ep.name)
            elif not (pm.has_plugin(ep.name) or pm.is_blocked(ep.name)):
                try:
                    pm.load_setuptools_entrypoints(GROUP, name=ep.name)
                except (pluggy.PluginValidationError, ValueError) as again:
                    _validation(pm, plugins, ep.name, _origin(ep), again)
                    refused.add(ep.name)
    finally:
        for name in mine:
            pm.unblock(name)
    return refused


def _load_order(ep: EntryPoint) -> tuple[str, bool, str]:
    """By entry-point name; on a shared name the built-ins first, so a clash names the other."""
    return (ep.name, not ep.value.startswith("harness_plugins."), ep.dist.name if ep.dist else "")


def _unknown_hooks(pm: pluggy.PluginManager, plugins: Plugins) -> None:
    """What pluggy's check_pending would raise for, as one refusal line per misspelt hook."""
    for hook_name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        close = difflib.get_close_matches(hook_name, [h for h, _ in KINDS.values()], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        for impl in caller.get_hookimpls():
            _refuse(
                plugins,
                plugins.modules[impl.plugin_name],
                f"implements unknown hook {hook_name!r}{hint}: it registers nothing through it",
            )


def _call_hooks(pm: pluggy.PluginManager, plugins: Plugins) -> None:
    """Each plugin's hooks, through pluggy, one plugin at a time and in load order: what it
    registers is labelled with its origin, and an exception refuses that plugin alone."""
    everyone = [plugin for _, plugin in pm.list_name_plugin() if plugin is not None]
    for kind, (hook, required) in KINDS.items():
        implementers = {impl.plugin_name for impl in getattr(pm.hook, hook).get_hookimpls()}
        for name, origin in plugins.modules.items():
            if name not in implementers:
                continue
            plugin = pm.get_plugin(name)
            alone = pm.subset_hook_caller(hook, [p for p in everyone if p is not plugin])
            try:
                alone(register=_registrar(plugins, kind, required, origin))
            except Exception as exc:  # a broken hook refuses its plugin, not the harness
                _refuse(plugins, origin, f"failed in {hook}: {type(exc).__name__}: {exc}")


def load_plugins(extra: list[ModuleType | object] | None = None) -> Plugins:
    """Load every entry point of the group (minus HARNESS_BLOCK_PLUGINS) plus `extra` objects."""
    blocked = {b.strip() for b in os.environ.get("HARNESS_BLOCK_PLUGINS", "").split(",") if b}
    pm = _manager(blocked)
    plugins = Plugins(blocked=sorted(blocked))
    found = sorted(entry_points(group=GROUP), key=_load_order)
    declared = [ep for ep in found if not pm.is_blocked(ep.name)]
    modules = _import(plugins, declared)
    taken = Counter(ep.name for ep in declared)
    # pluggy would keep whichever of two packages declaring one name it met first, in silence:
    # those, and what failed to import, the harness handles itself
    mine = {ep.name for ep in declared if taken[ep.name] > 1 or _key(ep) not in modules}
    refused = _pluggy_loads(pm, plugins, declared, mine)
    distinfo = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for ep in declared:
        module = modules.get(_key(ep))
        if module is None or ep.name in refused:
            continue  # refused already: it failed to import, or pluggy refused its hooks
        plugin = pm.get_plugin(ep.name) if ep.name not in mine else None
        if plugin is not None and id(plugin) in distinfo:
            dist = distinfo[id(plugin)]
            plugins.modules[ep.name] = Origin(ep.name, dist.project_name, dist.version)
        else:  # a shared name, or not among the distributions pluggy walks: registered as it is
            _register(pm, plugins, module, _origin(ep))
    for index, obj in enumerate(extra or []):
        if pm.is_registered(obj):  # already found through its entry point
            continue
        name = getattr(obj, "__name__", f"extra-{index}")
        _register(pm, plugins, obj, Origin(name, "(in process)", "-"))
    _unknown_hooks(pm, plugins)
    _call_hooks(pm, plugins)
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
