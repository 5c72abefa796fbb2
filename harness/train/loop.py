"""One training stage on the HF Trainer: arguments from a TrainSpec, measurement, checkpoints.

The Trainer runs the optimizer (torch AdamW, also under DeepSpeed ZeRO), the paper's schedule
(linear warm-up over warmup_ratio, then linear decay), gradient accumulation and checkpointing;
this module adds LLaVA's modality-grouped sampling, the meter (which counts a packed batch's
samples, not its rows), resume from the last checkpoint of the same folder, and a consolidated
model after ZeRO-3.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.specs import TrainSpec
from harness.support import step_progress
from harness.train.measure import Meter
from harness.train.settings import (
    batch_plan,
    check_train,
    inside_launcher,
    planned_steps,
    resolve_precision,
    warmup_steps,
)
from harness.train.tuning import LOADER_PREFETCH, Tuning, checkpointing_for, loader_workers

CHECKPOINTS = "checkpoints"
CHECKPOINTS_PER_STAGE = 5  # saves spread over the stage; only the last one is kept
MIN_SAVE_STEPS = 25  # short runs are cheaper to redo than to checkpoint every few steps


@dataclass
class StageRun:
    """Everything one stage needs besides the model's own code."""

    model: Any
    samples: Sequence[Any]
    collator: Callable[[Sequence[Any]], dict]
    train: TrainSpec
    out_dir: Path
    log: Callable[[str], None]
    gpus: int = 0  # devices per process group; 0 = CPU
    deepspeed: dict | None = None
    group_by_modality: bool = False


@dataclass
class Outcome:
    trainer: Any
    meter: Meter
    steps: int
    resumed_from: str | None
    tuning: Tuning


class _Samples:
    """The stage's samples as a map-style dataset (the collator encodes them)."""

    def __init__(self, samples: Sequence[Any]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        return self.samples[index]


def _trainer_class() -> type:
    from transformers import Trainer, TrainerCallback

    class MeteredTrainer(Trainer):
        """The HF Trainer, counting every micro batch and optionally LLaVA's sampler."""

        def __init__(self, *args: Any, meter: Meter, sampler: Any = None, **kwargs: Any):
            self.meter, self._sampler = meter, sampler
            super().__init__(*args, **kwargs)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return self._sampler or super()._get_train_sampler(train_dataset)

        def training_step(self, model: Any, inputs: dict, num_items_in_batch: Any = None) -> Any:
            from harness.model.collate import PACKED_LENGTHS, model_inputs

            self.meter.count(inputs, inputs.get(PACKED_LENGTHS))
            return super().training_step(model, model_inputs(inputs), num_items_in_batch)

    class MeterCallback(TrainerCallback):
        """Losses per optimizer step, progress lines, meter totals saved with checkpoints."""

        def __init__(self, meter: Meter, log: Callable[[str], None], every: int):
            self.meter, self.log, self.every = meter, log, every

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any):
            if logs and "loss" in logs:
                self.meter.totals.losses.append(float(logs["loss"]))
                step = state.global_step
                self.meter.mark(step)  # the loss is on the host: the step's work is done
                if step == 1 or step % self.every == 0 or step == state.max_steps:
                    self.log(f"step {step}/{state.max_steps} loss {float(logs['loss']):.4f}")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any):
            step_progress.report(state.global_step, state.max_steps, "step")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any):
            step_progress.report(state.global_step, state.max_steps, "step")
            # The Trainer checkpoints the last step too (optimizer state included: 16 bytes a
            # parameter for full fine-tuning); the stage writes its model next and deletes the
            # checkpoints, so that save would only cost time and disk.
            if state.global_step >= state.max_steps:
                control.should_save = False

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir() and state.is_world_process_zero:
                self.meter.save(folder)

    MeteredTrainer.MeterCallback = MeterCallback
    return MeteredTrainer


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest checkpoint written to the end (the Trainer writes trainer_state.json after
    the weights, optimizer and RNG states): a save cut short by a signal or a crash is passed
    over for the one before it."""
    folder = Path(out_dir) / CHECKPOINTS
    complete = [
        path
        for path in (folder.glob("checkpoint-*") if folder.is_dir() else ())
        if path.name.removeprefix("checkpoint-").isdigit()
        and (path / "trainer_state.json").is_file()
    ]
    if not complete:
        return None
    return str(max(complete, key=lambda path: int(path.name.removeprefix("checkpoint-"))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process_env() -> None:
    """DeepSpeed outside a launcher needs a one-process world described in the environment."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))


def tuning_for(run: StageRun) -> Tuning:
    """The stage's device tuning (harness.train.tuning), logged once."""
    from harness.train.packing import attention_implementation

    world = int(os.environ.get("WORLD_SIZE", "1"))
    plan = batch_plan(run.train, world)
    checkpointing, why = checkpointing_for(run.model, run.train, plan.micro, world, run.gpus)
    tuning = Tuning(
        attention=attention_implementation(run.model),
        loader_workers=loader_workers(run.train, run.gpus),
        gradient_checkpointing=checkpointing,
        compiled=run.train.compile,
    )
    if tuning.loader_workers:
        # The tokenizer's own threads are off in forked workers anyway; saying so up front
        # spares each worker's warning about it.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run.log(
        f"tuning: attention {tuning.attention}, {tuning.loader_workers} loader workers, "
        f"gradient checkpointing {'on' if checkpointing else 'off'} ({why}), "
        f"torch.compile {'on' if tuning.compiled else 'off'}"
    )
    return tuning


def training_arguments(run: StageRun, steps: int, tuning: Tuning) -> Any:
    from transformers import TrainingArguments

    train = run.train
    world = int(os.environ.get("WORLD_SIZE", "1"))
    plan = batch_plan(train, world)
    precision = resolve_precision(train, run.gpus)
    on_cpu = run.gpus == 0
    workers = tuning.loader_workers
    if run.deepspeed is not None:
        single_process_env()
    return TrainingArguments(
        output_dir=str(Path(run.out_dir) / CHECKPOINTS),
        per_device_train_batch_size=plan.micro,
        gradient_accumulation_steps=plan.accumulation,
        max_steps=steps,
        learning_rate=train.lr,
        lr_scheduler_type=train.schedule,
        warmup_steps=warmup_steps(train, steps),
        weight_decay=train.weight_decay,
        max_grad_norm=1.0,
        optim="adamw_torch" if on_cpu else "adamw_torch_fused",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=tuning.gradient_checkpointing,
        # Non-reentrant: inputs that need no gradient (frozen embeddings under LoRA) still get
        # the adapters' gradients through recomputed layers.
        activation_checkpointing_kwargs={"use_reentrant": False},
        torch_compile=tuning.compiled,
        logging_steps=1,
        save_strategy="steps",
        save_steps=max(MIN_SAVE_STEPS, -(-steps // CHECKPOINTS_PER_STAGE)),
        save_total_limit=1,
        seed=train.seed,
        data_seed=train.seed,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=workers,
        dataloader_prefetch_factor=LOADER_PREFETCH if workers else None,
        dataloader_persistent_workers=workers > 0,
        dataloader_pin_memory=not on_cpu,
        use_cpu=on_cpu and run.deepspeed is None,
        deepspeed=copy.deepcopy(run.deepspeed) if run.deepspeed is not None else None,
        accelerator_config={"use_configured_state": _world_configured(run)},
    )


def _world_configured(run: StageRun) -> bool:
    """True where the process set up its distributed world itself before the Trainer
    (launched CPU ranks: `harness.train.stage2.join_cpu_world`)."""
    if run.deepspeed is None or not inside_launcher():
        return False
    from accelerate.state import PartialState

    return PartialState._shared_state != {}


def run_stage(run: StageRun) -> Outcome:
    """Train `run.model` in place; resume from the last checkpoint under out_dir/checkpoints."""
    check_train(run.train)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    plan = batch_plan(run.train, world)
    steps = planned_steps(run.train, len(run.samples), plan)
    tuning = tuning_for(run)
    args = training_arguments(run, steps, tuning)
    meter = Meter()
    sampler = None
    if run.group_by_modality:
        from harness.data.sampler import ModalityLengthGroupedSampler

        # LLaVA's trainer (llava_trainer.py) groups over world x accumulation: a mega-batch
        # is one optimizer step's samples whatever the number of devices, so one rank with
        # accumulation 2 and two ranks without it train on the same micro batches.
        sampler = ModalityLengthGroupedSampler(
            run.samples, plan.micro, world_size=world * plan.accumulation, seed=run.train.seed
        )
    cls = _trainer_class()
    trainer = cls(
        model=run.model,
        args=args,
        train_dataset=_Samples(run.samples),
        data_collator=run.collator,
        callbacks=[cls.MeterCallback(meter, run.log, max(1, steps // 10))],
        meter=meter,
        sampler=sampler,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes through `log`, not stdout
    resume = last_checkpoint(run.out_dir)
    if resume:
        meter.restore(Path(resume))
        run.log(f"resuming from {resume}")
    packing = getattr(run.collator, "packing", "off")
    run.log(
        f"{len(run.samples)} samples, {steps} steps of {plan.global_batch} "
        f"({plan.world} x {plan.micro} x {plan.accumulation}), lr {run.train.lr}, "
        + (f"packed batches ({packing})" if packing != "off" else "padded batches")
    )
    meter.start()
    try:
        with _threads_for(run.model):
            trainer.train(resume_from_checkpoint=resume)
    finally:
        meter.stop()
    engine = trainer.model_wrapped
    if trainer.is_deepspeed_enabled and hasattr(engine, "zero_optimization_stage"):
        run.log(
            f"DeepSpeed engine: ZeRO-{engine.zero_optimization_stage()} over "
            f"{engine.dp_world_size} rank(s)"
        )
    return Outcome(trainer, meter, trainer.state.global_step, resume, tuning)


def _threads_for(model: Any):
    """One intra-op thread for small models on CPU (as evaluation and foundation builds do):
    their matrices gain nothing from more, and on a busy machine threads cost several-fold."""
    from contextlib import nullcontext

    from harness.eval.engine import SMALL_MODEL
    from harness.model.pretrain import one_thread

    on_cpu = next(model.parameters()).device.type == "cpu"
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL
    return one_thread() if on_cpu and small else nullcontext()


def consolidate(outcome: Outcome) -> None:
    """Under ZeRO-3 the module's parameters are shards: gather them back into the module."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    trainer = outcome.trainer
    if not (trainer.is_deepspeed_enabled and is_deepspeed_zero3_enabled()):
        return
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if state is None:  # ranks other than 0 take part in the gather but receive nothing
        return
    for name, param in trainer.model.named_parameters():
        if name in state:
            param.data = state[name].to(param.device)


def finish(outcome: Outcome, out_dir: Path) -> None:
    """Forget DeepSpeed's process-wide settings and drop the checkpoints of a finished stage."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    if outcome.trainer.is_deepspeed_enabled and not inside_launcher():
        # In-process DeepSpeed leaves accelerate's DeepSpeed state behind; the next stage in
        # this process (maybe without DeepSpeed) must not inherit it.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
        os.environ.pop("ACCELERATE_USE_DEEPSPEED", None)  # set for good by accelerate
    shutil.rmtree(Path(out_dir) / CHECKPOINTS, ignore_errors=True)
