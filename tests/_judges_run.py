"""Whole runs for the judge tests: the core's fake backends (no ML), a judged benchmark of 20
items whose judge requests name their item (`<q7>`), and the real openai judge talking to a
loopback server; plus an executor that runs steps on threads, so judge steps run side by side
without spawning processes."""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _core_fakes as fakes
from _judges_fixtures import KEY_ENV

from harness.hookspecs import hookimpl
from harness.protocols import GenerationRequest, Item, JudgeRequest

N_ITEMS = 20
SNAPSHOT = "test-judge-1"
PADDING = " context" * 40  # judge prompts of a realistic shape: mostly the rule and the context


class ManyItemsBench(fakes.FakeBench):
    name = "judgedbench"

    def load(self, source, ctx):
        return [
            Item(id=f"q{i}", data={"question": "?" * (i + 1), "reference": "ref"})
            for i in range(N_ITEMS)
        ]

    def requests(self, items, ctx):
        return [
            GenerationRequest(id=i.id, prompt=i.data["question"], max_new_tokens=2) for i in items
        ]

    def judge_requests(self, items, outputs, run, ctx):
        return [
            JudgeRequest(
                id=i.id,
                kind="generic",
                messages=(
                    {"role": "system", "content": f"grade it{PADDING}"},
                    {"role": "user", "content": f"<{i.id}> run {run}: {outputs[i.id].text}"},
                ),
                max_tokens=1,
                run=run,
            )
            for i in items
        ]


def reply(messages: list[dict[str, str]]) -> str:
    """A grade that depends on the item and the answer, so scores tell runs apart."""
    content = messages[-1]["content"]
    return str((sum(map(ord, content)) % 9) + 1)


class ThreadExecutor:
    name = "threads"

    def __init__(self, spec: Any = None):
        self.capacity = max(1, getattr(spec, "max_parallel", 1))
        self._pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="step")

    def submit(self, job, resources=None):
        return self._pool.submit(job)


@hookimpl
def register_benchmarks(register):
    register(ManyItemsBench())


@hookimpl
def register_executors(register):
    register(ThreadExecutor)


def write_config(
    folder: Path, base_url: str, price: float | None = 100.0, jitter_seed: int = 0, **judge: Any
) -> tuple[Path, Path]:
    """(registry, experiment) files for one fake cell judged by `openai:test-judge-1`.

    The judge's options are part of its steps' keys: another `jitter_seed` makes new judge
    steps that ask the same questions (answered from the judge cache)."""
    registry = fakes.REGISTRY
    if price is not None:
        registry += f"\n[judges.{SNAPSHOT}]\ninput_usd_per_mtok = {price}\n"
        registry += f"output_usd_per_mtok = {price}\n"
    options = f"{{ backoff_base_s = 0.01, backoff_max_s = 0.05, jitter_seed = {jitter_seed} }}"
    extra = "".join(f", {k} = {v!r}" for k, v in judge.items())
    experiment = textwrap.dedent(
        f"""
        sizes = ["fake-a"]
        methods = ["fake"]
        benchmarks = ["judgedbench"]
        stage1 = {{ method = "fakeproj" }}
        judge = {{ name = "openai", snapshot = "{SNAPSHOT}", base_url = "{base_url}", \
api_key_env = "{KEY_ENV}", max_concurrency = 4, max_retries = 2, timeout_s = 2.0, \
options = {options}{extra} }}
        """
    )
    (folder / "registry.toml").write_text(registry)
    (folder / "exp.toml").write_text(experiment)
    return folder / "registry.toml", folder / "exp.toml"
