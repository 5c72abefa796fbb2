"""The plugin manager leans on pluggy: its blocking, its distribution info, its hook calls.

What registration requires is read from the protocols, and the typed getters return what `get`
returns. Optional members are protocols that the core checks with isinstance.
"""

from __future__ import annotations

import _core_fakes as fakes
import pluggy
import pytest
from _plugins_fakes import install_dist

from harness import protocols
from harness.hookspecs import hookimpl
from harness.plugins import KINDS, PROTOCOLS, load_plugins


def test_registration_requires_exactly_the_protocols_members():
    for kind, (hook, protocol) in PROTOCOLS.items():
        assert KINDS[kind] == (hook, protocols.declared_members(protocol))
    assert KINDS["judge"][1] == ("name", "__call__")
    assert KINDS["backend"][1][:2] == ("name", "version")


def test_typed_getters_return_what_get_returns():
    plugins = load_plugins(extra=[fakes])
    assert plugins.backend("fake") is plugins.get("backend", "fake")
    assert plugins.benchmark("fakebench") is plugins.get("benchmark", "fakebench")
    assert plugins.judge("fakejudge") is plugins.get("judge", "fakejudge")
    assert plugins.executor("local") is plugins.get("executor", "local")
    assert isinstance(plugins.benchmark("fakebench"), protocols.Benchmark)


def test_origins_come_from_pluggys_distribution_info(tmp_path, monkeypatch):
    install_dist(tmp_path, "harness-fakes", "0.4.2", {"fakes": "_core_fakes"})
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded: list[tuple[str, str]] = []
    original = pluggy.PluginManager.load_setuptools_entrypoints

    def spy(self, group, name=None):
        count = original(self, group, name)
        loaded.extend((p.__name__, d.project_name) for p, d in self.list_plugin_distinfo())
        return count

    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", spy)
    plugins = load_plugins()
    assert ("_core_fakes", "harness-fakes") in loaded
    origin = plugins.origin("benchmark", "fakebench")
    assert (origin.plugin, origin.package, origin.version) == ("fakes", "harness-fakes", "0.4.2")


def test_blocked_entry_points_are_blocked_in_pluggy(tmp_path, monkeypatch):
    install_dist(tmp_path, "harness-fakes", "0.1", {"fakes": "_core_fakes"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HARNESS_BLOCK_PLUGINS", "fakes,executor_slurm")
    blocked: list[str] = []
    original = pluggy.PluginManager.set_blocked

    def spy(self, name):
        blocked.append(name)
        original(self, name)

    monkeypatch.setattr(pluggy.PluginManager, "set_blocked", spy)
    plugins = load_plugins()
    assert sorted(blocked) == plugins.blocked == ["executor_slurm", "fakes"]
    assert "fakebench" not in plugins.names("benchmark")
    assert "slurm" not in plugins.names("executor") and "local" in plugins.names("executor")


def test_hooks_are_called_through_pluggy_one_plugin_at_a_time(monkeypatch):
    calls: list[tuple[str, list[str]]] = []

    def before(hook_name, impls, kwargs):
        calls.append((hook_name, [impl.plugin_name for impl in impls]))

    original = pluggy.PluginManager.add_hookspecs

    def monitored(self, module):
        original(self, module)
        self.add_hookcall_monitoring(before, lambda *args: None)

    monkeypatch.setattr(pluggy.PluginManager, "add_hookspecs", monitored)
    load_plugins(extra=[fakes])
    assert ("register_benchmarks", ["_core_fakes"]) in calls
    assert all(len(plugins) == 1 for _, plugins in calls)


def test_a_plugin_refused_for_one_hook_keeps_none_of_its_others():
    class HalfRight:
        @staticmethod
        @hookimpl
        def register_backends(register):
            register(fakes.FakeBackend())

        @staticmethod
        @hookimpl
        def register_judges(reg):
            raise AssertionError("never called: its arguments are not the hook's")

    plugins = load_plugins(extra=[HalfRight])
    assert "fake" not in plugins.names("backend")
    (refusal,) = plugins.refused
    assert refusal.startswith("plugin 'HalfRight' from (in process) - refused:")


@pytest.mark.parametrize(
    ("protocol", "obj", "expected"),
    [
        (protocols.Stage1Choice, fakes.FakeBackend(), False),
        (protocols.Stage1Choice, type("B", (), {"needs_stage1": False})(), True),
        (protocols.OwnTraining, type("B", (), {"train": None})(), False),  # None: absent
        (protocols.Versioned, fakes.FakeJudge, False),  # its distribution's version then
        (protocols.Versioned, type("J", (fakes.FakeJudge,), {"version": "2"}), True),
        (protocols.Stoppable, object(), False),
    ],
)
def test_optional_members_are_runtime_checkable_protocols(protocol, obj, expected):
    assert isinstance(obj, protocol) is expected
