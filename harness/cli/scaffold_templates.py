"""The files `harness new` writes, as string templates (placeholders: harness.cli.scaffold)."""

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "A __KIND__ plugin for harness: __NAME__."
requires-python = ">=3.11"
dependencies = ["lmm-harness>=__HARNESS_VERSION__"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The harness finds plugins through this entry-point group, exactly as it finds its own.
[project.entry-points.harness]
__ENTRY__ = "__PKG__.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
__PKG__ = ["data/*"]

[tool.ruff]
line-length = 100
"""

README = """\
# __DIST__

A __KIND__ plugin for [harness](https://github.com/) named `__NAME__`.

    pip install -e .            # registers the entry point `__ENTRY__` in the group `harness`
    harness plugins             # lists __KIND__ `__NAME__` from package __DIST__ 0.1.0
    python -m pytest tests      # the plugin through the real plugin manager

The plugin lives in `src/__PKG__/plugin.py`. The hook reference (every hook and protocol method,
with what the core guarantees) is docs/hooks.md in the harness repository; bump `version` on the
plugin object whenever its outputs change, so that the harness recomputes stored steps.
"""

INIT = '''\
"""__DIST__: a __KIND__ plugin for harness."""

__version__ = "0.1.0"
'''

BENCHMARK_DATA = """\
{"id": "q1", "question": "What colour is the sky on a clear day?", "answer": "blue"}
{"id": "q2", "question": "How many legs does a cat have?", "answer": "4"}
{"id": "q3", "question": "What is the opposite of hot?", "answer": "cold"}
"""

BENCHMARK_PLUGIN = '''\
"""The `__NAME__` benchmark: short questions, scored by exact match after normalisation.

The default data source (`synthetic`) reads the small set shipped in data/items.jsonl;
`--data __NAME__=PATH` reads a JSON-lines file (or PATH/items.jsonl) with id, question, answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.hookspecs import hookimpl
from harness.protocols import (
    EvalContext,
    GenerationRequest,
    Item,
    JudgeRequest,
    JudgeResponse,
    ModelOutput,
)
from harness.results import BenchmarkResult
from harness.specs import DataSource

MAX_NEW_TOKENS = 16


def normalise(text: str) -> str:
    return " ".join(text.lower().strip().rstrip(".").split())


class __CLASS__:
    name = "__NAME__"
    version = "1"  # bump when prompts, parsing or scoring change: stored steps are recomputed
    modality = "language"
    judged = False
    assets: tuple[str, ...] = ()

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        return {
            "name": self.name,
            "official": False,
            "scoring": "exact match after lower-casing, trimming and dropping a final period",
            "max_new_tokens": ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
        }

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        if source.kind == "synthetic":
            where, text = "items.jsonl", (files(__package__) / "data" / "items.jsonl").read_text()
        elif source.kind == "local" and source.path:
            path = Path(source.path).expanduser()
            path = path / "items.jsonl" if path.is_dir() else path
            if not path.is_file():
                raise UserError(f"{self.name}: data file {path} does not exist")
            where, text = str(path), path.read_text(encoding="utf-8")
        else:
            raise UserError(f"{self.name}: data source {source.kind!r} is not supported")
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(Item(id=str(row["id"]), data=row))
            except (json.JSONDecodeError, KeyError) as exc:
                raise UserError(f"{where}:{number}: bad item ({exc})") from None
        return items

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                id=item.id,
                prompt=item.data["question"],
                max_new_tokens=ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
                num_beams=ctx.eval.beam,
            )
            for item in items
        ]

    def judge_requests(
        self, items: Sequence[Item], outputs: dict[str, ModelOutput], run: int, ctx: EvalContext
    ) -> list[JudgeRequest]:
        return []  # unjudged: the core never schedules a judge step for it

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        return None

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        return None

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        answered = [i for i in items if outputs.get(i.id) and outputs[i.id].text is not None]
        correct = sum(
            normalise(outputs[i.id].text) == normalise(str(i.data["answer"])) for i in answered
        )
        metrics = {"accuracy": 100.0 * correct / len(answered)} if answered else {}
        missing = len(items) - len(answered)
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="accuracy",
            metrics=metrics,
            runs=[metrics],
            n_items=len(items),
            n_failed=missing,
            failures={"no_output": missing} if missing else {},
            protocol=self.protocol(ctx),
        )


@hookimpl
def register_benchmarks(register) -> None:
    register(__CLASS__())
'''

BENCHMARK_TEST = '''\
"""The benchmark through the real plugin manager, as `harness run` sees it."""

import pytest
from harness.plugins import load_plugins
from harness.protocols import EvalContext, ModelOutput
from harness.specs import DataSource, EvalSpec


def test_registered_through_the_entry_point():
    plugins = load_plugins()
    assert "__NAME__" in plugins.names("benchmark")
    origin = plugins.origin("benchmark", "__NAME__")
    assert (origin.package, origin.version) == ("__DIST__", "0.1.0")
    assert not [message for message in plugins.refused if "__DIST__" in message]


def test_exact_match_scoring(tmp_path):
    bench = load_plugins().get("benchmark", "__NAME__")
    ctx = EvalContext(eval=EvalSpec(benchmark="__NAME__"), assets={}, work_dir=tmp_path)
    items = bench.load(DataSource(), ctx)
    requests = bench.requests(items, ctx)
    assert [r.id for r in requests] == ["q1", "q2", "q3"]
    outputs = {
        "q1": ModelOutput(id="q1", text="Blue."),
        "q2": ModelOutput(id="q2", text="four"),
        "q3": ModelOutput(id="q3", text="cold"),
    }
    result = bench.score(items, outputs, [], ctx)
    assert result.primary == "accuracy"
    assert result.metrics["accuracy"] == pytest.approx(200 / 3)
    assert result.n_items == 3 and result.n_failed == 0
'''

BACKEND_PLUGIN = '''\
"""The `__NAME__` training method: stage 2 trains the projector and the LM head only.

A cheap baseline between "projector only" and LoRA. The core calls load_model, prepare and save
around its own training loop, and load before evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.hookspecs import hookimpl
from harness.specs import HardwareSpec, ModelSpec, SizeSpec, TrainSpec

TRAINABLE = ("multi_modal_projector", "lm_head")


class __CLASS__:
    name = "__NAME__"
    version = "1"  # bump when what it trains or saves changes: stored models are retrained

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        return {"lr": 1e-4}

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        from harness.model import build_llava
        from harness.train.stages import stage1_projector

        projector = stage1_projector(stage1_dir) if stage1_dir is not None else None
        return build_llava(model, projector_path=projector)

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        for name, param in bundle.model.named_parameters():
            param.requires_grad = any(part in name for part in TRAINABLE)
        return bundle

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        from harness.train import deepspeed_config

        return deepspeed_config(train, hardware, gpus, zero_stage=2)

    def save(self, bundle: Any, out_dir: Path) -> None:
        from harness.model import save_bundle

        save_bundle(bundle, out_dir)

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        from harness.model import load_bundle

        return load_bundle(out_dir)


@hookimpl
def register_backends(register) -> None:
    register(__CLASS__())
'''

BACKEND_TEST = '''\
"""The backend through the real plugin manager: registered, and trains exactly its parts."""

from types import SimpleNamespace

import torch
from harness.plugins import load_plugins
from harness.specs import SizeSpec, TrainSpec


def test_registered_through_the_entry_point():
    plugins = load_plugins()
    assert "__NAME__" in plugins.names("backend")
    origin = plugins.origin("backend", "__NAME__")
    assert (origin.package, origin.version) == ("__DIST__", "0.1.0")
    assert not [message for message in plugins.refused if "__DIST__" in message]


def test_prepare_trains_projector_and_head_only():
    backend = load_plugins().get("backend", "__NAME__")
    model = torch.nn.ModuleDict(
        {
            "multi_modal_projector": torch.nn.Linear(4, 4),
            "language_model": torch.nn.Linear(4, 4),
            "lm_head": torch.nn.Linear(4, 8),
        }
    )
    bundle = backend.prepare(SimpleNamespace(model=model), TrainSpec(method="__NAME__"))
    trainable = sorted(n for n, p in bundle.model.named_parameters() if p.requires_grad)
    assert trainable == [
        "lm_head.bias",
        "lm_head.weight",
        "multi_modal_projector.bias",
        "multi_modal_projector.weight",
    ]
    size = SizeSpec(name="tiny", hidden_size=8, params_b=0.001)
    assert backend.defaults(size) == {"lr": 1e-4}
'''

JUDGE_PLUGIN = '''\
"""The `__NAME__` judge: grades offline by normalised exact match against the reference.

It reads `JudgeRequest.facts` ("reference", "answer") and answers in the formats the built-in
benchmarks parse: "correctness" -> "1.0"/"0.0", "pairwise" -> "10 10"/"10 1", "generic" -> a
1-10 score. A request it cannot grade comes back with ok=False; it never raises for one item.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.hookspecs import hookimpl
from harness.protocols import JudgeRequest, JudgeResponse
from harness.specs import JudgeSpec

SNAPSHOT = "__NAME__-v1"


def _normalise(text: object) -> str:
    return " ".join(str(text).lower().strip().rstrip(".").split())


class __CLASS__:
    name = "__NAME__"
    version = "1"  # bump when grading changes: stored judgments are recomputed
    official = False

    def __init__(self, spec: JudgeSpec | None = None):
        self.spec = spec or JudgeSpec(name=self.name)

    def snapshot(self) -> str:
        return self.spec.snapshot or SNAPSHOT

    def check(self) -> None:
        """Nothing to check: no key, network or model is needed."""

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResponse]:
        return [self._one(request) for request in requests]

    def _one(self, request: JudgeRequest) -> JudgeResponse:
        facts = request.facts
        if "reference" not in facts or "answer" not in facts:
            return JudgeResponse(id=request.id, text=None, ok=False, error="no reference/answer")
        right = _normalise(facts["answer"]) == _normalise(facts["reference"])
        text = {
            "correctness": "1.0" if right else "0.0",
            "pairwise": "10 10" if right else "10 1",
        }.get(request.kind, "10" if right else "1")
        return JudgeResponse(id=request.id, text=text)


@hookimpl
def register_judges(register) -> None:
    register(__CLASS__)  # a factory: the core calls it with the cell's JudgeSpec
'''

JUDGE_TEST = '''\
"""The judge through the real plugin manager: registered, and grading every request kind."""

from harness.plugins import load_plugins
from harness.protocols import JudgeRequest
from harness.specs import JudgeSpec


def test_registered_through_the_entry_point():
    plugins = load_plugins()
    assert "__NAME__" in plugins.names("judge")
    origin = plugins.origin("judge", "__NAME__")
    assert (origin.package, origin.version) == ("__DIST__", "0.1.0")
    assert not [message for message in plugins.refused if "__DIST__" in message]


def _request(rid, kind, answer):
    return JudgeRequest(
        id=rid,
        kind=kind,
        messages=({"role": "user", "content": "grade"},),
        facts={"reference": "Blue", "answer": answer},
    )


def test_grades_by_exact_match():
    judge = load_plugins().get("judge", "__NAME__")(JudgeSpec(name="__NAME__"))
    judge.check()
    assert judge.snapshot() == "__NAME__-v1"
    responses = judge.judge(
        [
            _request("a", "correctness", "blue."),
            _request("b", "correctness", "red"),
            _request("c", "pairwise", "blue"),
            JudgeRequest(id="d", kind="generic", messages=()),
        ]
    )
    assert [r.text for r in responses] == ["1.0", "0.0", "10 10", None]
    assert [r.ok for r in responses] == [True, True, True, False]
'''
