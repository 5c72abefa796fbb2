"""One step as a picklable job: everything it needs is the run folder and the step id.

The same job runs in this process (local executor), in a spawned process, or on a cluster node
(submitit), and records the same manifest in every case.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import PluginError, UserError
from harness.support.step_progress import progress_path, reporting_to


def _versions() -> dict[str, str]:
    out = {"harness": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "deepspeed", "bitsandbytes"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = str(getattr(module, "__version__", "?"))
    return out


class _IntoStepLog(logging.Handler):
    def __init__(self, log: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log(f"{record.levelname.lower()} {record.name}: {record.getMessage()}")


@contextmanager
def library_progress_bars_off() -> Iterator[None]:
    """No per-file bars from transformers and the hub ("Loading weights", "Writing model
    shards") inside a step: they would cut through the run's own progress display. Bars that
    were on come back after the step; a process whose first import of these libraries
    happens inside a step (a worker) keeps them off."""
    name = "HF_HUB_DISABLE_PROGRESS_BARS"
    before = os.environ.get(name)
    os.environ[name] = "1"  # read when huggingface_hub and transformers are first imported
    hub = sys.modules.get("huggingface_hub.utils")
    hf_logging = sys.modules.get("transformers.utils.logging")
    hub_was_on = hub is not None and not hub.are_progress_bars_disabled()
    hf_was_on = hf_logging is not None and hf_logging.is_progress_bar_enabled()
    if hub_was_on:
        hub.disable_progress_bars()
    if hf_was_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
        if hub_was_on:
            hub.enable_progress_bars()
        if hf_was_on:
            hf_logging.enable_progress_bar()


@contextmanager
def library_messages_into(log: Callable[[str], None]) -> Iterator[None]:
    """Warnings and log records of the libraries a step uses (deprecations, optional kernels
    not found) go to the step's log, each once, instead of filling the terminal."""
    handler = _IntoStepLog(log)
    root = logging.getLogger()
    root.addHandler(handler)
    seen: set[tuple[str, str]] = set()
    try:
        with library_progress_bars_off(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # once per place: a warning in a loop records once
            try:
                yield
            finally:
                for w in caught:
                    text = f"{w.category.__name__}: {w.message}"
                    if (text, w.filename) not in seen:
                        seen.add((text, w.filename))
                        log(f"warning {text} ({w.filename}:{w.lineno})")
    finally:
        root.removeHandler(handler)


def log_path(run_dir: Path, step_id: str) -> Path:
    return Path(run_dir) / "logs" / (step_id.replace("/", "__") + ".log")


@dataclass(frozen=True)
class StepJob:
    run_dir: str
    step_id: str
    key: str | None = None  # the step's key and store when submitted: a job that finds the
    store_root: str | None = None  # run folder's plan changed since refuses to run

    def __call__(self) -> dict[str, Any]:
        from harness.plan.plan_file import Plan
        from harness.plugins import get_plugins

        plan = Plan.load(Path(self.run_dir))
        step = plan.step(self.step_id)
        if (self.key, self.store_root) != (None, None) and (
            self.key != step.key or self.store_root != str(plan.store_root)
        ):
            raise UserError(
                f"{self.step_id}: {self.run_dir}/plan.json changed since this step was "
                "submitted (another run of this folder); not run"
            )
        return run_step(plan, step, get_plugins())

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On preemption submitit requeues this same job; training resumes from its work folder."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


def cluster_job() -> dict[str, str] | None:
    """The cluster job running this step (job id, log path), when there is one."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    try:
        from submitit import JobEnvironment

        env = JobEnvironment()
        return {
            "job_id": str(env.job_id),
            "log": str(env.paths.stdout),
            "executor": os.environ["SUBMITIT_EXECUTOR"],
        }
    except Exception:
        return None


def run_step(plan, step, plugins) -> dict[str, Any]:
    """Run one step into the store; return its manifest. Plugin failures name the plugin.

    The step's work folder is locked while it runs: a second process (an orphaned worker, a
    cluster job requeued twice) is refused instead of training into the same folder."""
    from harness.support import locks

    store = plan.store
    if store.done(step.key):
        return store.manifest(step.key)
    handle = store.lock_step(step.key, step.id)
    try:
        if store.done(step.key):  # another process finished it just before we locked it
            return store.manifest(step.key)
        return _run_locked(plan, step, plugins)
    finally:
        locks.release(handle)


def _run_locked(plan, step, plugins) -> dict[str, Any]:
    from harness.run.steps import RUNNERS

    store = plan.store
    # training resumes from its checkpoints, generation from its journal of answered batches
    work = store.begin(step.key, keep=step.kind in ("stage1", "stage2", "generate"))
    path = log_path(plan.run_dir, step.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    with open(path, "a") as fh:

        def log(message: str) -> None:
            fh.write(f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} {message}\n")
            fh.flush()

        log(f"start {step.id} key {step.key[:16]} pid {os.getpid()}")
        try:
            with library_messages_into(log), reporting_to(progress_path(plan.run_dir, step.id)):
                fields = RUNNERS[step.kind](plan, step, plugins, work, log)
        except UserError as exc:
            log(f"error: {exc}")
            raise
        except Exception as exc:
            log(traceback.format_exc())
            if step.plugin is not None and step.plugin[1] in plugins.objects[step.plugin[0]]:
                origin = plugins.origin(*step.plugin)
                raise PluginError(step.plugin[1], origin.package, origin.version, exc) from exc
            raise
        except BaseException as exc:  # a signal: the work folder stays for the next run
            log(f"stopped: {type(exc).__name__} {exc}")
            raise
        wall = time.perf_counter() - t0
        log(f"done in {wall:.1f}s")
    manifest = {
        "step": step.id,
        "kind": step.kind,
        "key": step.key,
        "cells": step.cells,
        "spec": step.spec,
        "deps": {d.id: d.key for d in plan.deps(step)},
        "plugin": _plugin_record(plugins, step),
        "start": started.isoformat(),
        "end": dt.datetime.now(dt.UTC).isoformat(),
        "wall_s": wall,
        "versions": _versions(),
        "seed": plan.cells[step.cell].stage2.seed,
        "cluster_job": cluster_job(),
        **fields,
    }
    store.finish(step.key, manifest)
    return manifest


def _plugin_record(plugins, step) -> dict[str, str] | None:
    if step.plugin is None:
        return None
    origin = plugins.origin(*step.plugin)
    return {
        "kind": step.plugin[0],
        "name": step.plugin[1],
        "package": origin.package,
        "version": origin.version,
    }
