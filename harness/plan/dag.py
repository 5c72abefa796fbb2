"""Cells -> a DAG of steps, each keyed by the sha256 of everything that determines its output.

A step's key covers its own inputs, the plugin (name and version) that computes it, what it reads
that the spec does not spell out (synthetic world and tiny foundation versions, local data
content, the sha256 of each protocol asset its benchmark reads), and the keys of the steps it
depends on, so any change upstream gives new keys downstream and nothing stale is reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import __version__
from harness.plugins import Plugins
from harness.protocols import ItemScoring, Stage1Choice, Versioned
from harness.specs import CellSpec, DataSource, sha256_of
from harness.support.content_versions import FOUNDATION_VERSION, SYNTHETIC_VERSION

KINDS = ("stage1", "stage2", "generate", "judge", "score")
SCORE_FILES = 2  # what a score step of an ItemScoring benchmark writes; 2 = with items.jsonl
# 2: a judge step fails rather than finish with more judge errors than judge.max_failed_share
# allows (harness/run/judge_step.py); judge steps stored before may hold failed judging, so rerun
JUDGE_RULE = 2


@dataclass
class Step:
    id: str
    kind: str
    key: str
    cell: str  # the first cell that needs it (stage-1 steps are shared)
    deps: list[str]  # step ids
    spec: dict[str, Any]  # the inputs that define it (JSON)
    plugin: tuple[str, str] | None = None  # (kind, name) of the plugin that computes it
    cells: list[str] = field(default_factory=list)  # every cell that needs it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "cell": self.cell,
            "deps": self.deps,
            "spec": self.spec,
            "plugin": self.plugin,
            "cells": self.cells,
        }


def _version(plugins: Plugins, kind: str, name: str) -> str:
    obj = plugins.get(kind, name)
    return str(obj.version if isinstance(obj, Versioned) else plugins.origin(kind, name).version)


def inputs_beyond_spec(cell: CellSpec, stage: str) -> dict[str, Any]:
    """What a stage trains on that its spec does not spell out: the versions of the synthetic
    world (synthetic sources) and of the tiny foundation models (tiny sizes), the content
    fingerprints of local data files (stage 1 reads the captions only), and an evaluated
    checkpoint's files (or hub revision)."""
    out: dict[str, Any] = {}
    sources = stage_sources(cell, stage)
    tiny = cell.model.is_tiny
    if tiny or any(src.kind == "synthetic" for src in sources.values()):
        out["synthetic"] = SYNTHETIC_VERSION  # tiny foundations are built from the world too
    if tiny:
        out["foundation"] = FOUNDATION_VERSION
    local = {role: source_content(src) for role, src in sources.items()}
    local = {role: value for role, value in local.items() if value}
    if local:
        out["data"] = local
    if stage == "stage2" and cell.stage2.checkpoint:  # `harness eval`: the model's own files
        from harness.eval.checkpoint_files import checkpoint_fingerprint

        out["checkpoint"] = checkpoint_fingerprint(cell.stage2.checkpoint)
    return out


def stage_sources(cell: CellSpec, stage: str) -> dict[str, DataSource]:
    """The training data a stage reads, by role: stage 1 the captions, stage 2 the
    instructions (and the language-only data of a mix that has it)."""
    mix = cell.mix
    if stage == "stage1":
        return {"captions": mix.captions}
    sources = {"instructions": mix.instructions}
    if mix.language is not None:
        sources["language"] = mix.language
    return sources


def trained_on(cell: CellSpec, stage: str) -> dict[str, dict[str, Any]]:
    """What a stage trained on, for its manifest and the results: each role's source and, for
    a local file or folder, its content sha256 as read now (the key's fingerprint)."""
    out = {}
    for role, source in stage_sources(cell, stage).items():
        entry: dict[str, Any] = {"kind": source.kind}
        if source.kind == "synthetic":
            entry.update(scale=source.scale, seed=source.seed, version=SYNTHETIC_VERSION)
        else:
            entry.update(path=source.path, split=source.split)
        if content := source_content(source):
            entry["sha256"] = content
        out[role] = entry
    return out


def source_content(source: DataSource) -> str | None:
    """The content fingerprint of a local source; None for other kinds or a missing path."""
    if source.kind != "local" or not source.path:
        return None
    from harness.support.fingerprint import local_fingerprint

    return local_fingerprint(source.path)


def _with_unspecified(body: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The key body plus what the step reads beyond its spec, when there is anything (keys of
    steps that read nothing beyond their spec keep their old value)."""
    return {**body, "generated": extra} if extra else body


def build_dag(
    cells: list[CellSpec], plugins: Plugins, assets: Mapping[str, str | None] | None = None
) -> list[Step]:
    """All steps in dependency order; shared stage-1 steps appear once.

    `assets` maps each protocol asset the benchmarks read to the sha256 the run will use (None:
    unavailable, the benchmark's own fallback); left out, it is resolved here from the project's
    registry and the assets cache (harness.config.assets.plan_assets).
    """
    if assets is None:
        from harness.config.assets import plan_assets

        assets = plan_assets(cells, plugins)
    steps: dict[str, Step] = {}  # by key: cells that differ only downstream share a step

    def add(step: Step) -> Step:
        if step.key in steps:
            steps[step.key].cells.append(step.cell)
            return steps[step.key]
        step.cells = [step.cell]
        steps[step.key] = step
        return step

    for cell in cells:
        backend = plugins.backend(cell.stage2.method)
        model_deps: list[Step] = []
        if not isinstance(backend, Stage1Choice) or backend.needs_stage1:
            s1_spec = {
                "model": cell.model.model_dump(mode="json"),
                "train": cell.stage1.model_dump(mode="json"),
                "mix": cell.mix.model_dump(mode="json", include={"captions", "seed"}),
            }
            s1_version = _version(plugins, "backend", cell.stage1.method)
            s1_key = sha256_of(
                _with_unspecified(
                    {
                        "spec": s1_spec,
                        "plugin": cell.stage1.method,
                        "version": s1_version,
                        "harness": __version__,
                    },
                    inputs_beyond_spec(cell, "stage1"),
                )
            )
            s1 = add(
                Step(
                    id=f"stage1/{cell.model.size.name}-{cell.model.resolution}"
                    f"-{cell.model.projector}-{s1_key[:8]}",
                    kind="stage1",
                    key=s1_key,
                    cell=cell.id,
                    deps=[],
                    spec=s1_spec,
                    plugin=("backend", cell.stage1.method),
                )
            )
            model_deps = [s1]
        s2_spec = {
            "model": cell.model.model_dump(mode="json"),
            "train": cell.stage2.model_dump(mode="json"),
            "mix": cell.mix.model_dump(mode="json"),
            "hardware": cell.hardware.model_dump(mode="json"),
        }
        s2_key = sha256_of(
            _with_unspecified(
                {
                    "spec": s2_spec,
                    "deps": [d.key for d in model_deps],
                    "plugin": cell.stage2.method,
                    "version": _version(plugins, "backend", cell.stage2.method),
                },
                inputs_beyond_spec(cell, "stage2"),
            )
        )
        s2 = add(
            Step(
                id=f"stage2/{cell.id}",
                kind="stage2",
                key=s2_key,
                cell=cell.id,
                deps=[d.id for d in model_deps],
                spec=s2_spec,
                plugin=("backend", cell.stage2.method),
            )
        )
        for ev in cell.evals:
            bench = ev.benchmark
            b_version = _version(plugins, "benchmark", bench)
            gen_spec = {"eval": ev.model_dump(mode="json", exclude={"runs"})}
            eval_generated: dict[str, Any] = {}
            if ev.source.kind == "synthetic":
                eval_generated["synthetic"] = SYNTHETIC_VERSION
            if content := source_content(ev.source):
                eval_generated["data"] = content
            if names := sorted(plugins.benchmark(bench).assets):
                # what the benchmark's steps read: its official files, or its own fallbacks
                eval_generated["assets"] = {name: assets.get(name) for name in names}
            g_key = sha256_of(
                _with_unspecified(
                    {"spec": gen_spec, "deps": [s2.key], "plugin": bench, "version": b_version},
                    eval_generated,
                )
            )
            gen = add(
                Step(
                    id=f"generate/{cell.id}/{bench}",
                    kind="generate",
                    key=g_key,
                    cell=cell.id,
                    deps=[s2.id],
                    spec=gen_spec,
                    plugin=("benchmark", bench),
                )
            )
            judge_steps: list[Step] = []
            if plugins.benchmark(bench).judged:
                j_version = _version(plugins, "judge", cell.judge.name)
                judge_json = cell.judge.for_benchmark(bench).model_dump(
                    mode="json", include={"name", "snapshot", "base_url", "options"}
                )
                for run in range(ev.runs):
                    j_spec = {"judge": judge_json, "run": run, "benchmark": bench}
                    j_key = sha256_of(
                        {
                            "spec": j_spec,
                            "deps": [g_key],
                            "version": j_version,
                            "benchmark_version": b_version,
                            "rule": JUDGE_RULE,
                            "max_failed_share": cell.judge.for_benchmark(bench).max_failed_share,
                        }
                    )
                    judge_steps.append(
                        add(
                            Step(
                                id=f"judge/{cell.id}/{bench}/run{run}",
                                kind="judge",
                                key=j_key,
                                cell=cell.id,
                                deps=[gen.id],
                                spec=j_spec,
                                plugin=("judge", cell.judge.name),
                            )
                        )
                    )
            sc_spec = {"eval": ev.model_dump(mode="json"), "benchmark": bench}
            sc_body: dict[str, Any] = {
                "spec": sc_spec,
                "deps": [g_key, *(j.key for j in judge_steps)],
                "version": b_version,
            }
            if isinstance(plugins.benchmark(bench), ItemScoring):
                sc_body["files"] = SCORE_FILES  # a step scored before items.jsonl existed reruns
            sc_key = sha256_of(sc_body)
            add(
                Step(
                    id=f"score/{cell.id}/{bench}",
                    kind="score",
                    key=sc_key,
                    cell=cell.id,
                    deps=[gen.id, *(j.id for j in judge_steps)],
                    spec=sc_spec,
                    plugin=("benchmark", bench),
                )
            )
    return list(steps.values())
