"""Plugins that misbehave on purpose, and a helper that "installs" them as real distributions.

Each plugin is a class of hook implementations, so one module can back several entry points,
each in its own distribution with its own name and version (what error messages must name).
"""

from __future__ import annotations

from pathlib import Path

from _core_fakes import FakeBackend, FakeBench, FakeModel

from harness.hookspecs import hookimpl
from harness.protocols import GenerationRequest, Item


def install_dist(target: Path, dist: str, version: str, entry_points: dict[str, str]) -> Path:
    """A dist-info folder under `target` (put it on sys.path) declaring `entry_points`."""
    folder = target / f"{dist.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (folder / "entry_points.txt").write_text("[harness]\n" + lines)
    return folder


class FlakyBench(FakeBench):
    """A benchmark whose request building breaks: its generate step must fail, and only it."""

    name = "flakybench"

    def requests(self, items, ctx):
        raise RuntimeError("flaky on purpose")


class HalfBench:
    """A benchmark without retry_request and score: refused at registration."""

    name = "halfbench"
    version = "1"
    modality = "language"
    judged = False
    assets = ()

    def protocol(self, ctx):
        return {"official": False}

    def load(self, source, ctx):
        return [Item(id="a", data={})]

    def requests(self, items, ctx):
        return [GenerationRequest(id=i.id, prompt="?") for i in items]

    def judge_requests(self, items, outputs, run, ctx):
        return []

    def parse_judgment(self, request, response):
        return None


class BrokenJudge:
    """A judge whose judge() raises (it should return ok=False instead)."""

    name = "brokenjudge"
    official = False

    def __init__(self, spec):
        self.spec = spec

    def snapshot(self):
        return "broken-1"

    def check(self):
        pass

    def judge(self, requests):
        raise ConnectionError("judge server went away")


class RedModel(FakeModel):
    """Answers "red" to everything: a deterministic stand-in for a trained model."""

    def run_requests(self, requests, batch_size):
        from harness.protocols import ModelOutput

        return {r.id: ModelOutput(id=r.id, text="red", n_tokens=1) for r in requests}


class RedBackend(FakeBackend):
    """A backend with no stage 1 whose model answers "red"; trains nothing."""

    name = "red"
    needs_stage1 = False

    def load(self, model, out_dir):
        return RedModel(0)


class FlakyPlugin:
    @staticmethod
    @hookimpl
    def register_benchmarks(register):
        register(FlakyBench())


class HalfPlugin:
    @staticmethod
    @hookimpl
    def register_benchmarks(register):
        register(HalfBench())


class BrokenJudgePlugin:
    @staticmethod
    @hookimpl
    def register_judges(register):
        register(BrokenJudge)


class RedPlugin:
    @staticmethod
    @hookimpl
    def register_backends(register):
        register(RedBackend())


class ClashingLora(FakeBackend):
    """What `harness new backend lora` used to produce: a backend named like the built-in."""

    name = "lora"


class ClashingLoraPlugin:
    @staticmethod
    @hookimpl
    def register_backends(register):
        register(ClashingLora())


class WrongArgumentPlugin:
    """A hook whose argument is not the hook's: pluggy refuses it at registration."""

    @staticmethod
    @hookimpl
    def register_backends(reg):
        reg(FakeBackend())


class MisspeltHookPlugin:
    """`register_benchmark` (no s) is no hook: without a check it registers nothing silently."""

    @staticmethod
    @hookimpl
    def register_benchmark(register):
        register(FlakyBench())
