"""Every input of the harness as a validated pydantic model.

Specs are frozen, reject unknown keys, and have one canonical JSON form, so that the sha256 of a
spec identifies a step's inputs across machines and runs.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from harness.errors import UserError
from harness.support.hashing import canonical_json, sha256_bytes, sha256_json

# Ranges every setting must be in, so that bad values fail at once, not hours into a run.
AtLeastOne = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Spec(BaseModel):
    """Base of all specs: strict, immutable, hashable by content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def canonical(self) -> str:
        """The canonical JSON form: sorted keys, no whitespace, defaults included."""
        return canonical_json(self.model_dump(mode="json"))

    def sha256(self) -> str:
        return sha256_bytes(self.canonical())


def sha256_of(value: Any) -> str:
    """sha256 of any JSON-able value (specs are dumped first)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return sha256_json(value)


# --- model ---------------------------------------------------------------------------------------


# How a tiny tower's pretraining labels read its patch tokens (harness.model.pretrain.TOWER_HEADS)
LABEL_POOLINGS = ("flat", "pooled")


class TowerSpec(Spec):
    """A CLIP-style vision tower: a hub id / local path, or a tiny config built locally."""

    name: str
    checkpoints: dict[int, str] = Field(default_factory=dict)  # resolution -> hub id / local path
    hidden_size: AtLeastOne
    resolutions: list[AtLeastOne] = [224]
    patch_size: AtLeastOne = 14
    # tiny towers only: built from these, then pretrained on the synthetic world
    tiny: dict[str, Any] | None = None

    @field_validator("tiny")
    @classmethod
    def _known_pooling(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        pooling = (v or {}).get("label_pooling", "flat")
        if pooling not in LABEL_POOLINGS:
            known = ", ".join(LABEL_POOLINGS)
            raise ValueError(f"tiny.label_pooling must be one of {known}, got {pooling!r}")
        return v


class SizeSpec(Spec):
    """One model size of the study: the LLM it starts from and its width."""

    name: str
    llm: str | None = None  # hub id or local path; None for tiny LLMs built from config
    hidden_size: AtLeastOne
    params_b: PositiveFloat  # total LLM parameters in billions (cost model, reports)
    tower: str = "clip-l14"
    placeholder: bool = False  # true when no public checkpoint exists (user must override llm)
    tiny: dict[str, Any] | None = None  # tiny LLM config (layers, heads, vocab...)


class ModelSpec(Spec):
    """A LLaVA model to assemble: size + tower + resolution + projector."""

    size: SizeSpec
    tower: TowerSpec
    resolution: AtLeastOne = 224
    projector: Literal["linear", "mlp2x_gelu"] = "linear"
    # Tiny sizes: the seed of the world whose foundation models (tokenizer, tower, LLM) to use,
    # the experiment's, so that a seed-N world is read by models pretrained on its own text.
    foundation_seed: NonNegativeInt = 0

    @model_serializer(mode="wrap")
    def _omit_default_foundation_seed(self, handler: Any) -> dict[str, Any]:
        """Seed 0 is left out of the dump, so specs (and step keys) made before the field
        existed stay the same."""
        data = handler(self)
        if self.foundation_seed == 0:
            data.pop("foundation_seed", None)
        return data

    @model_validator(mode="after")
    def _resolution_known(self) -> ModelSpec:
        if self.resolution not in self.tower.resolutions:
            raise ValueError(
                f"tower {self.tower.name} has no {self.resolution}px variant "
                f"(has {self.tower.resolutions})"
            )
        return self

    @property
    def is_tiny(self) -> bool:
        """Built from the cached tiny foundation models rather than hub checkpoints."""
        return self.size.tiny is not None or self.tower.tiny is not None

    @property
    def image_tokens(self) -> int:
        return (self.resolution // self.tower.patch_size) ** 2


# --- training ------------------------------------------------------------------------------------


class QuantSpec(Spec):
    """Quantization of the base LLM (QLoRA): bitsandbytes 4-bit NF4 or 8-bit."""

    bits: Literal[4, 8] = 4
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    # LLaVA's recipe trains with the norms in fp32. The 4-bit layers return their input's dtype,
    # so fp32 norms keep the activations after them in fp32; false saves that memory.
    norms_fp32: bool = True


# TrainSpec fields added after step keys existed, and the value at which the dump omits them.
TRAIN_FIELDS_LEFT_OUT_AT = (
    ("packing", False),
    ("auto_checkpointing", True),
    ("attention", "auto"),
    ("compile", False),
    ("dataloader_workers", None),
)


class TrainSpec(Spec):
    """One training stage's hyperparameters."""

    method: str  # "projector" for stage 1; a backend name for stage 2
    lr: float = 1e-4
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    weight_decay: NonNegativeFloat = 0.0
    epochs: PositiveFloat = 1.0
    global_batch: int = 64
    micro_batch: int = 4
    max_length: AtLeastOne = 2048
    max_steps: AtLeastOne | None = None  # caps the steps (tiny runs); None = epochs decide
    lora_rank: int | None = None
    lora_alpha: PositiveFloat | None = None
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    quantization: QuantSpec | None = None
    zero_stage: Literal[0, 1, 2, 3] | None = None
    nodes: AtLeastOne | None = None  # nodes this stage trains on (None = the hardware's)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    # Recompute activations in the backward: always (true), or only on a GPU whose free memory
    # the stage would exceed without it (auto_checkpointing, harness.train.tuning).
    gradient_checkpointing: bool = False
    auto_checkpointing: bool = True
    # Device tuning (harness.train.tuning), none of which changes what trains: the attention
    # kernel (`auto`: flash attention 2 on a GPU that has it, else torch's varlen kernel for
    # packed rows where it works there, else the model's own),
    # torch.compile, and data loader workers (None: none on CPU, a few per GPU).
    attention: Literal["auto", "sdpa", "flash_attention_2", "varlen", "eager"] = "auto"
    compile: bool = False
    dataloader_workers: NonNegativeInt | None = None
    # Padding-free batches (harness.train.packing): on wherever the model's attention honours
    # packed position ids (all of transformers' own); where not, padded length-grouped batches.
    packing: bool = True
    checkpoint: str | None = None  # an existing model to evaluate (method "checkpoint")
    seed: NonNegativeInt = 0

    @model_serializer(mode="wrap")
    def _keys_from_before_new_fields(self, handler: Any) -> dict[str, Any]:
        """Fields added later are left out of the dump at the value that trains as before, so
        a step keeps the key it had before they existed: `packing = false` (a packed stage,
        the default, gets its own key) and the device tuning at its defaults."""
        data = handler(self)
        for name, default in TRAIN_FIELDS_LEFT_OUT_AT:
            if name in data and data[name] == default:
                data.pop(name)
        return data

    @field_validator("lr")
    @classmethod
    def _lr_positive(cls, v: float) -> float:
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"lr must be > 0 and finite, got {v}")
        return v

    @field_validator("lora_rank")
    @classmethod
    def _rank_positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {v}")
        return v

    @field_validator("global_batch", "micro_batch")
    @classmethod
    def _batch_positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"batch sizes must be >= 1, got {v}")
        return v


# --- data ----------------------------------------------------------------------------------------


class DataSource(Spec):
    """Where data comes from: `synthetic`, a local folder/file, or a hub dataset id."""

    kind: Literal["synthetic", "local", "hub"] = "synthetic"
    path: str | None = None  # local path or hub id
    split: str | None = None
    scale: Literal["small", "medium"] = "small"
    seed: NonNegativeInt = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> DataSource:
        """`synthetic`, `synthetic:medium`, `hub:org/name`, or a path; UserError names `text`."""
        text = text.strip()
        if text == "synthetic" or text.startswith("synthetic:"):
            scale = text.partition(":")[2] or "small"
            if scale not in ("small", "medium"):
                raise UserError(f"data source {text!r}: unknown scale {scale!r} (small, medium)")
            return cls(kind="synthetic", scale=scale, seed=seed)
        if text.startswith("hub:"):
            if not text[4:].strip():
                raise UserError(f"data source {text!r}: no dataset id after 'hub:'")
            return cls(kind="hub", path=text[4:].strip(), seed=seed)
        if not text:
            raise UserError("data source '': expected PATH, hub:ID or synthetic")
        return cls(kind="local", path=text, seed=seed)


TRAIN_ROLES = ("captions", "instructions", "language")  # stage 1; stage 2; stage 2 mixed in


class DataMixSpec(Spec):
    """Stage data: captions for stage 1, instructions (+ language-only at a ratio) for stage 2."""

    name: str = "llava"
    captions: DataSource = DataSource()
    instructions: DataSource = DataSource()
    language: DataSource | None = None
    language_ratio: NonNegativeFloat = 0.0  # language-only samples per instruction sample
    seed: NonNegativeInt = 0


# --- evaluation, judge, hardware, executor -------------------------------------------------------


class JudgeSpec(Spec):
    """Which judge plugin grades, pinned to a snapshot."""

    def for_benchmark(self, benchmark: str) -> JudgeSpec:
        """This spec with the benchmark's own snapshot, when `snapshots` names one."""
        if benchmark in self.snapshots:
            return self.model_copy(update={"snapshot": self.snapshots[benchmark]})
        return self

    name: str = "reference"
    snapshot: str | None = None  # e.g. gpt-4-0314; None = the plugin's default
    # per-benchmark snapshots, e.g. the study's {"llava-bench" = "gpt-4-0314",
    # "mm-vet" = "gpt-4-0613"}; a benchmark not named uses `snapshot`
    snapshots: dict[str, str] = Field(default_factory=dict)
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    api_key_file: str | None = None
    max_concurrency: AtLeastOne = 16
    requests_per_minute: AtLeastOne | None = None
    max_retries: NonNegativeInt = 5
    timeout_s: PositiveFloat = 120.0
    # the share of a judge step's items that may fail in the judge (server down, timeouts,
    # 5xx after retries) with the step still finished; above it the step fails and a rerun
    # asks only for the missing items. 0: a score is only ever computed from complete judging
    max_failed_share: float = Field(default=0.0, ge=0.0, le=1.0)
    options: dict[str, Any] = Field(default_factory=dict)


class EvalSpec(Spec):
    """How one benchmark is evaluated in a cell."""

    benchmark: str
    source: DataSource = DataSource()
    beam: AtLeastOne = 1
    runs: AtLeastOne = 1  # judging repeats (not generation)
    max_new_tokens: AtLeastOne | None = None  # None = the benchmark's protocol value
    batch_size: AtLeastOne = 16
    split: str | None = None
    shots: NonNegativeInt | None = None
    # "shuffled-images": each request gets another request's image (a seeded permutation):
    # the control that shows a score comes from looking at the image
    control: Literal["none", "shuffled-images"] = "none"
    # how a generation prompt is rendered: "checkpoint" (the model's own chat template) or one
    # of the study's conversation formats; None = the benchmark's protocol template (vicuna_v1)
    prompt: Literal["checkpoint", "vicuna_v1", "llava_v1"] | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _llava_is_llava_v1(cls, value: Any) -> Any:
        return "llava_v1" if value == "llava" else value

    @model_serializer(mode="wrap")
    def _omit_default_prompt(self, handler: Any) -> dict[str, Any]:
        """No prompt setting is left out of the dump: step keys made before the field stay."""
        data = handler(self)
        if self.prompt is None:
            data.pop("prompt", None)
        return data


class HardwareSpec(Spec):
    """What a node costs and can do."""

    name: str
    gpus_per_node: AtLeastOne = 8
    gpu_memory_gb: PositiveFloat = 80.0
    usd_per_node_hour: NonNegativeFloat = 13.63
    peak_tflops_bf16: PositiveFloat | None = None
    nodes: AtLeastOne = 1
    # "cpu": gpus_per_node counts CPU ranks (gloo), as on a laptop or a CPU-only cluster node
    accelerator: Literal["gpu", "cpu"] = "gpu"

    @model_serializer(mode="wrap")
    def _omit_default_accelerator(self, handler: Any) -> dict[str, Any]:
        """The default, "gpu", is left out of the dump: step keys made before the field stay."""
        data = handler(self)
        if self.accelerator == "gpu":
            data.pop("accelerator", None)
        return data


class ExecutorSpec(Spec):
    """Where steps run: `local` in process, `slurm` through submitit."""

    name: str = "local"
    partition: str | None = None
    account: str | None = None
    time_limit_min: AtLeastOne = 24 * 60
    max_parallel: AtLeastOne = 1
    options: dict[str, Any] = Field(default_factory=dict)


# --- the experiment ------------------------------------------------------------------------------


class ExperimentSpec(Spec):
    """A whole study: axes that expand into cells, and what each cell trains and evaluates."""

    name: str = "custom"
    sizes: Annotated[list[str], Field(min_length=1)]
    methods: Annotated[list[str], Field(min_length=1)] = ["lora"]
    resolutions: list[int] | None = None  # None = each tower's first resolution
    projector: Literal["linear", "mlp2x_gelu"] = "linear"
    mixes: list[str] = ["llava"]
    benchmarks: list[str] = []
    data: dict[str, str] = Field(default_factory=dict)  # benchmark -> source text
    # training data by role (captions, instructions, language) -> source text; the rest: the world
    train_data: dict[str, str] = Field(default_factory=dict)
    judge: JudgeSpec = JudgeSpec()
    hardware: str | None = None  # None: "cpu" for tiny sizes, "a100-80g" otherwise
    executor: ExecutorSpec = ExecutorSpec()
    # Overrides of the registry's defaults: TrainSpec fields apply to every cell; a key naming a
    # method or size (e.g. `lora = {lr = 2e-4}`) holds overrides for that method or size only.
    stage1: dict[str, Any] = Field(default_factory=dict)
    stage2: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)  # overrides for every EvalSpec
    axes: dict[str, list[Any]] = Field(default_factory=dict)  # extra matrix axes (rank, lr, beam..)
    budget_usd: NonNegativeFloat | None = None
    seed: NonNegativeInt = 0

    @field_validator("train_data")
    @classmethod
    def _train_roles(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(TRAIN_ROLES))
        if unknown:
            raise ValueError(
                f"train_data: unknown role {unknown[0]!r} (one of {', '.join(TRAIN_ROLES)})"
            )
        for role, text in v.items():
            try:
                DataSource.parse(text)
            except UserError as exc:
                raise ValueError(f"train_data {role}: {exc}") from None
        return v

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks_once(cls, v: list[str]) -> list[str]:
        twice = sorted({b for b in v if v.count(b) > 1})
        if twice:
            raise ValueError(f"benchmark {twice[0]!r} is named twice")
        if "" in v:
            raise ValueError("an empty benchmark name")
        return v


class CellSpec(Spec):
    """One fully resolved point of the matrix: everything its steps need."""

    id: str
    axes: dict[str, Any]
    model: ModelSpec
    mix: DataMixSpec
    stage1: TrainSpec
    stage2: TrainSpec
    evals: list[EvalSpec]
    judge: JudgeSpec
    hardware: HardwareSpec
