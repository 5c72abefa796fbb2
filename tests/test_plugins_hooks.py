"""Every hook of harness/hookspecs.py, exercised through the real plugin manager.

Each hook has a test named test_hook_<hook>; the last test fails when a hook is added to
hookspecs.py without one. Versions are checked where the hook's objects key steps: bumping a
plugin's version gives new keys to exactly its steps and those downstream.
"""

from __future__ import annotations

import json

import _core_fakes as fakes
import pytest

from harness import hookspecs
from harness.hookspecs import hookimpl
from harness.plan.build import Options, build_plan
from harness.plugins import load_plugins, reset_plugins
from harness.run.orchestrate import run_command


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger"))
    (tmp_path / "registry.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    yield tmp_path
    reset_plugins(None)


def _keys(tmp_path, plugins, **kw) -> dict[str, str]:
    opts = Options(
        config=tmp_path / "exp.toml",
        registry=tmp_path / "registry.toml",
        out=tmp_path / "run",
        matrix=["sizes=fake-a"],
        **kw,
    )
    return {step.id: step.key for step in build_plan(opts, plugins).steps}


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    assert before.keys() == after.keys()
    return sorted(sid.split("/")[0] for sid in before if before[sid] != after[sid])


def _versioned(cls, version):
    return type(cls.__name__, (cls,), {"version": version})


def test_hook_register_backends(files):
    class Plugin:
        backend = type("Fake2", (fakes.FakeBackend,), {"name": "fake2"})

        @staticmethod
        @hookimpl
        def register_backends(register):
            register(Plugin.backend())

    plugins = load_plugins(extra=[fakes, Plugin])
    assert {"fake", "fakeproj", "fake2"} <= set(plugins.names("backend"))
    assert plugins.origin("backend", "fake2").package == "(in process)"
    v1 = _keys_for_method(files, plugins, "fake2")
    Plugin.backend = _versioned(Plugin.backend, "2")
    v2 = _keys_for_method(files, load_plugins(extra=[fakes, Plugin]), "fake2")
    # a new backend version retrains stage 2 and re-evaluates; stage 1 is not the backend's
    assert _changed(v1, v2) == ["generate", "judge", "score", "stage2"]


def _keys_for_method(tmp_path, plugins, method) -> dict[str, str]:
    opts = Options(
        config=tmp_path / "exp.toml",
        registry=tmp_path / "registry.toml",
        out=tmp_path / "run",
        matrix=["sizes=fake-a", f"methods={method}"],
    )
    return {step.id: step.key for step in build_plan(opts, plugins).steps}


def test_hook_register_benchmarks(files):
    class Plugin:
        bench = fakes.FakeBench

        @staticmethod
        @hookimpl
        def register_benchmarks(register):
            register(Plugin.bench())

    Plugin.bench = type("OtherBench", (fakes.FakeBench,), {"name": "otherbench"})
    plugins = load_plugins(extra=[fakes, Plugin])
    assert {"fakebench", "otherbench"} <= set(plugins.names("benchmark"))
    v1 = _keys(files, plugins, benchmarks="otherbench")
    assert sorted(s.split("/")[0] for s in v1) == ["generate", "judge", "score", "stage1", "stage2"]
    Plugin.bench = _versioned(Plugin.bench, "2")
    v2 = _keys(files, load_plugins(extra=[fakes, Plugin]), benchmarks="otherbench")
    # a new benchmark version regenerates, re-judges and re-scores; the model is reused
    assert _changed(v1, v2) == ["generate", "judge", "score"]


def test_hook_register_judges(files):
    made = []

    class CountingJudge(fakes.FakeJudge):
        name = "countingjudge"
        version = "1"

        def __init__(self, spec):
            super().__init__(spec)
            made.append(spec)

    class Plugin:
        judge = CountingJudge

        @staticmethod
        @hookimpl
        def register_judges(register):
            register(Plugin.judge)

    plugins = load_plugins(extra=[fakes, Plugin])
    assert plugins.get("judge", "countingjudge") is CountingJudge  # the factory itself
    v1 = _keys(files, plugins, judge="countingjudge:snap-1")
    Plugin.judge = _versioned(CountingJudge, "2")
    v2 = _keys(files, load_plugins(extra=[fakes, Plugin]), judge="countingjudge:snap-1")
    assert _changed(v1, v2) == ["judge", "score"]  # re-judged and re-scored, nothing else
    reset_plugins(load_plugins(extra=[fakes, Plugin]))
    opts = Options(
        config=files / "exp.toml",
        registry=files / "registry.toml",
        out=files / "run",
        matrix=["sizes=fake-a"],
        judge="countingjudge:snap-1",
    )
    assert run_command(opts) == 0
    # built from the cell's JudgeSpec: once for check() before the run, once in the judge step
    assert [(s.name, s.snapshot) for s in made] == [("countingjudge", "snap-1")] * 2


def test_hook_register_executors(files):
    submitted = []

    class RecordingExecutor:
        name = "recording"

        def __init__(self, spec):
            self.capacity = spec.max_parallel

        def submit(self, job, resources):
            from harness.run.jobs import StepJob

            assert isinstance(job, StepJob)
            submitted.append(resources)
            value, error = None, None
            try:
                value = job()
            except Exception as exc:
                error = exc
            return _Handle(value, error)

    class Plugin:
        @staticmethod
        @hookimpl
        def register_executors(register):
            register(RecordingExecutor)

    reset_plugins(load_plugins(extra=[fakes, Plugin]))
    opts = Options(
        config=files / "exp.toml",
        registry=files / "registry.toml",
        out=files / "run",
        matrix=["sizes=fake-a"],
        executor="recording",
    )
    assert run_command(opts) == 0
    kinds = [r["kind"] for r in submitted]
    assert kinds == ["stage1", "stage2", "generate", "judge", "score"]
    shape = {"kind", "step", "nodes", "gpus_per_node", "hardware", "accelerator", "log"}
    shape |= {"judge_runs_model"}
    assert set(submitted[0]) == shape
    results = json.loads((files / "run" / "results.json").read_text())
    assert "fakebench" in results["cells"][0]["benchmarks"]


class _Handle:
    def __init__(self, value, error):
        self.value, self.error = value, error

    def done(self):
        return True

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


def test_every_hook_has_a_test():
    hooks = {name for name, f in vars(hookspecs).items() if hasattr(f, "harness_spec")}
    assert hooks, "no hookspecs found"
    tested = {
        name.removeprefix("test_hook_") for name in globals() if name.startswith("test_hook_")
    }
    assert hooks - tested == set(), f"hooks without a test_hook_<name> here: {hooks - tested}"
