"""The contracts between the core and its plugins.

Plugins satisfy these typing.Protocols structurally (no base class needed). The dataclasses are
what crosses the boundary: what a benchmark asks the model, what it asks a judge, and what comes
back. They are plain data so that steps can persist them as JSON lines.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from harness.results import BenchmarkResult, TrainRecord
    from harness.specs import (
        CellSpec,
        DataSource,
        EvalSpec,
        ExecutorSpec,
        HardwareSpec,
        JudgeSpec,
        ModelSpec,
        SizeSpec,
        TrainSpec,
    )


# --- what a benchmark asks the model -------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One benchmark item as loaded from its official file; `data` keeps the official fields."""

    id: str
    data: dict[str, Any]
    image: str | None = None  # path of the image file, when the item has one


@dataclass(frozen=True)
class GenerationRequest:
    """Ask the model to answer `prompt` (one user turn; `<image>` marks where the image goes)."""

    id: str
    prompt: str
    image: str | None = None  # image file path; requests sharing one path share one encoding
    template: str = "vicuna_v1"  # conversation template; "raw" feeds the prompt as is
    max_new_tokens: int = 1024
    num_beams: int = 1
    temperature: float = 0.0


@dataclass(frozen=True)
class LoglikRequest:
    """Score continuations after a context (multiple choice by log-likelihood, as MMLU)."""

    id: str
    context: str
    continuations: tuple[str, ...]


@dataclass
class ModelOutput:
    """The model's answer to one request: generated text, or one log-likelihood per choice."""

    id: str
    text: str | None = None
    logliks: list[float] | None = None
    n_tokens: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- what a benchmark asks a judge ---------------------------------------------------------------


JudgeKind = Literal["pairwise", "correctness", "choice", "generic"]


@dataclass(frozen=True)
class JudgeRequest:
    """One chat-completion request to a judge, with structured facts for offline judges.

    `messages` is exactly what an API judge sends. `facts` carries the same content in parts
    (question, reference, answer, options, ...) so that offline judges need not parse prompts.
    """

    id: str
    kind: JudgeKind
    messages: tuple[dict[str, str], ...]
    temperature: float = 0.0
    max_tokens: int = 1024
    run: int = 0  # repeat index: distinct runs are distinct judgments (and cache entries)
    attempt: int = 0  # re-ask index under the benchmark's retry rule
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeResponse:
    """A judge's answer; `ok=False` marks a failed call (counted by the benchmark, never scored)."""

    id: str
    text: str | None
    ok: bool = True
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalContext:
    """What the core hands a benchmark besides its items: settings, protocol files, a work dir."""

    eval: EvalSpec
    assets: dict[str, Path]  # asset name -> verified local file; missing when unavailable
    work_dir: Path
    judge_name: str = "reference"
    judge_snapshot: str | None = None


# --- the plugin protocols ------------------------------------------------------------------------


@runtime_checkable
class Benchmark(Protocol):
    """A benchmark under its official protocol."""

    name: str
    version: str
    modality: Literal["multimodal", "language"]
    judged: bool  # True when scoring needs a judge
    assets: tuple[str, ...]  # registry asset names the protocol needs (prompts, question files)

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        """The protocol record: prompt sha256s, judge settings, parsing rule, `official` flag."""
        ...

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        """Read items from the official files, a hub dataset, or the synthetic mini set."""
        ...

    def requests(
        self, items: Sequence[Item], ctx: EvalContext
    ) -> list[GenerationRequest | LoglikRequest]:
        """What to ask the model for every item."""
        ...

    def judge_requests(
        self, items: Sequence[Item], outputs: dict[str, ModelOutput], run: int, ctx: EvalContext
    ) -> list[JudgeRequest]:
        """What to ask the judge in repeat `run` (empty for unjudged benchmarks)."""
        ...

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        """The parsed judgment, or None when the response breaks the parsing rule."""
        ...

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        """The protocol's re-ask after a parse failure, or None when it allows no more."""
        ...

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        """Aggregate the official way; `judgments[run][request_id]` is a parsed value or None."""
        ...


@runtime_checkable
class ItemScoring(Protocol):
    """Optional for a benchmark: per-question scores where a question is not one request.

    MMBench asks each question once per rotation and MMLU scores log-likelihoods, so their
    samples carry no score a paired comparison could use. A benchmark that has this method gets
    an items.jsonl beside its samples, and `harness compare` pairs those scores.
    """

    def item_scores(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> dict[str, list[float | None]]:
        """item id -> one score per judging run (one entry when unjudged); None = left out.

        With one judging run, the mean of the scores that are not None must be the headline
        metric, so that a paired interval speaks about the number in the table."""
        ...


@runtime_checkable
class ReportColumns(Protocol):
    """Optional for a benchmark: the metrics its own report table shows, in order.

    `report_columns` maps a metric key of its BenchmarkResult to a column label, e.g.
    {"acc": "Accuracy", "precision": "Precision", "f1": "F1", "yes_ratio": "Yes %"}. A benchmark
    no study layout shows gets a table of its own in every report format, with these columns
    (or, without them, its top-level metrics).
    """

    report_columns: dict[str, str]


@runtime_checkable
class SourceCheck(Protocol):
    """Optional for a benchmark: a cheap look at a data source before anything trains.

    `harness plan` and `harness run` call it for every selected benchmark first, so a missing
    folder or a malformed file is one line and exit 2 before stage 1 starts, not a failed
    generate step after hours of training.
    """

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """Raise UserError (one line naming the file and the problem) if `source` cannot load."""
        ...


@runtime_checkable
class PromptTemplate(Protocol):
    """Optional for a benchmark: the conversation format its protocol prompts with.

    `harness eval` offers the `prompt` eval setting only to benchmarks with one, and warns when a
    checkpoint's own chat template renders the prompts differently.
    """

    prompt_template: str


@runtime_checkable
class Judge(Protocol):
    """Grades judge requests; never raises for one bad item (returns ok=False instead)."""

    name: str
    official: bool  # True only for the GPT-4-class API judges the protocols name
    # optional `runs_model = True`: the judge runs a model itself (a GPU for its step on a cluster)

    def snapshot(self) -> str:
        """The pinned model snapshot that answers (goes into every result and cache key)."""
        ...

    def check(self) -> None:
        """Fail fast (before any training) when the judge cannot run, e.g. no API key."""
        ...

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResponse]:
        """Answer every request, in order."""
        ...


class JudgeFactory(Protocol):
    """What `register_judges` registers: a judge is built per step from the cell's JudgeSpec."""

    name: str

    def __call__(self, spec: JudgeSpec) -> Judge: ...


@runtime_checkable
class TrainingBackend(Protocol):
    """A stage-2 training method (full, LoRA, QLoRA, ...)."""

    name: str
    version: str

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        """Hyperparameter defaults for this size (merged under the user's overrides)."""
        ...

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        """The model to train (a LlavaBundle), stage-1 projector loaded, quantized if needed."""
        ...

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        """Set exactly the right parameters trainable (adapters, projector, ...)."""
        ...

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        """The DeepSpeed config for this method on this hardware."""
        ...

    def save(self, bundle: Any, out_dir: Path) -> None:
        """Save what was trained so that `load` can rebuild the model."""
        ...

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        """The trained model, ready for evaluation (a LlavaBundle)."""
        ...


@runtime_checkable
class InheritsSettings(Protocol):
    """Optional for a backend: the method whose hyperparameters it shares, e.g. "lora".

    The registry's [methods.lora] table and the experiment's `lora` sub-tables then apply to it
    as they do to LoRA (its own tables over them), so `methods=lora,dora` compares the two at
    the same learning rate, rank and steps unless an experiment says otherwise.
    """

    inherits: str


@runtime_checkable
class Stage1Choice(Protocol):
    """Optional for a backend: whether its cells train stage 1 (the projector) first.

    Without it a backend gets a stage-1 step. With `needs_stage1 = False` the plan has none and
    `load_model` receives `stage1_dir=None`.
    """

    needs_stage1: bool


@runtime_checkable
class LanguageOnly(Protocol):
    """Optional for a backend: `language_only = True` keeps its cells to language benchmarks.

    Read when the matrix resolves a cell: a method without a vision tower (the base LLM) is not
    evaluated on benchmarks that need images.
    """

    language_only: bool


@runtime_checkable
class OwnTraining(Protocol):
    """Optional for a backend: its own training instead of the core's stage-1/stage-2 loop.

    The stage step calls it in place of the core's loop (and the fairness warnings leave such
    methods out, since they read whatever settings they like). `inputs` maps dependency kinds
    ("stage1") to their step folders; `log` writes the step log.
    """

    def train(
        self,
        cell: CellSpec,
        stage: str,
        inputs: dict[str, Path],
        out_dir: Path,
        log: Callable[[str], None],
    ) -> TrainRecord | dict[str, Any]:
        """Train into `out_dir`; return the TrainRecord (or a dict of its fields)."""
        ...


@runtime_checkable
class AnswersRequests(Protocol):
    """Optional for the model a backend's `load` returns: it answers requests itself.

    The generate step calls it instead of the core's engine (which needs a LlavaBundle).
    """

    def run_requests(
        self, requests: Sequence[GenerationRequest | LoglikRequest], batch_size: int
    ) -> dict[str, ModelOutput]:
        """One output per request, keyed by request id."""
        ...


@runtime_checkable
class RendersPrompts(Protocol):
    """Optional for the model a backend's `load` returns: the tokenizer it reads prompts with.

    The generate step renders each request's prompt through it into the samples, so a reader
    sees the prompt as the model read it; without one the samples keep the raw prompt.
    """

    tokenizer: Any


class StepHandle(Protocol):
    def done(self) -> bool: ...

    def result(self) -> Any: ...


@runtime_checkable
class Executor(Protocol):
    """Runs steps: in process, through launchers, or on a cluster."""

    name: str
    capacity: int  # steps it can run at once

    def submit(self, job: Callable[[], Any], resources: dict[str, Any]) -> StepHandle:
        """Start `job` (picklable) with the step's resource shape; return a handle."""
        ...


class ExecutorFactory(Protocol):
    """What `register_executors` registers: called with the run's ExecutorSpec."""

    name: str

    def __call__(self, spec: ExecutorSpec) -> Executor: ...


@runtime_checkable
class BatchSubmit(Protocol):
    """Optional for an executor: several ready steps submitted together (job arrays).

    The runner calls it instead of one `submit` per step whenever more than one step is ready.
    """

    def submit_batch(
        self, jobs: list[tuple[Callable[[], Any], dict[str, Any]]]
    ) -> list[StepHandle]:
        """One handle per `(job, resources)`, in order."""
        ...


@runtime_checkable
class JobScripts(Protocol):
    """Optional for a cluster executor: `harness plan` prints one job script per resource shape.

    `parameters` tells shapes apart (steps with equal parameters share a script).
    """

    def parameters(self, resources: dict[str, Any]) -> dict[str, Any]:
        """The scheduler parameters a step with these resources is submitted with."""
        ...

    def sbatch_script(self, resources: dict[str, Any], folder: Path) -> str:
        """The job script such a step is submitted with."""
        ...


@runtime_checkable
class RunsHere(Protocol):
    """Optional for a cluster executor: the steps it runs in the driver's process tree instead
    of submitting them (`harness plan` prints no job script for those)."""

    def runs_here(self, resources: dict[str, Any]) -> bool: ...


@runtime_checkable
class Stoppable(Protocol):
    """Optional for an executor: stop running work now, on SIGINT/SIGTERM or a failed walk.

    The steps in flight stay unfinished and resume on the next run.
    """

    def stop(self) -> None: ...


@runtime_checkable
class Detachable(Protocol):
    """Optional for a cluster executor: when the driver's terminal hangs up (SIGHUP), leave the
    cluster's jobs running (a rerun waits for them) and stop only this machine's workers."""

    def detach(self) -> None: ...


@runtime_checkable
class Closable(Protocol):
    """Optional for an executor: release workers and connections when the walk ends normally."""

    def close(self) -> None: ...


@runtime_checkable
class Versioned(Protocol):
    """Optional for a judge or executor factory (backends and benchmarks must have it).

    The version goes into the keys of the steps the plugin computes; without it the
    distribution's version is used.
    """

    version: str


def declared_members(protocol: type) -> tuple[str, ...]:
    """A protocol's own attributes, then its methods (`__call__` included), in source order."""
    own = vars(protocol)
    methods = [n for n, v in own.items() if callable(v) and (n == "__call__" or n[0] != "_")]
    return (*inspect.get_annotations(protocol), *methods)
