"""A plan: the cells and steps of one run, saved as RUN_DIR/plan.json.

Steps run from the saved plan (in this process, a subprocess or a cluster job alike), so a step
needs nothing but the run folder and its id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.plan.dag import Step
from harness.plan.store import Store
from harness.specs import CellSpec
from harness.support.atomic import write_atomic


@dataclass
class Plan:
    run_dir: Path
    store_root: Path
    experiment: dict[str, Any]
    cells: dict[str, CellSpec]
    steps: list[Step]
    registry_file: str | None = None
    assets_mirror: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # protocol asset -> the sha256 its steps use (None: the benchmark's fallback), fixed when
    # planned and part of the step keys; None for a plan saved before assets were planned
    assets: dict[str, str | None] | None = None

    @property
    def store(self) -> Store:
        return Store(self.store_root)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def deps(self, step: Step) -> list[Step]:
        index = self.by_id()
        return [index[d] for d in step.deps]

    def cells_still_training(self) -> list[CellSpec]:
        """The cell of every stage-1 or stage-2 step still to run (a step shared by cells names
        its first), leaving out evaluations of a given checkpoint: the training a run will do."""
        store = self.store
        return [
            self.cells[step.cell]
            for step in self.steps
            if step.kind in ("stage1", "stage2")
            and self.cells[step.cell].stage2.method != "checkpoint"
            and not store.done(step.key)
        ]

    def save(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "plan.json"
        body = {
            "store_root": str(self.store_root),
            "experiment": self.experiment,
            "cells": {cid: c.model_dump(mode="json") for cid, c in self.cells.items()},
            "steps": [s.to_json() for s in self.steps],
            "registry_file": self.registry_file,
            "assets_mirror": self.assets_mirror,
            "options": self.options,
            "assets": self.assets,
        }
        write_atomic(path, json.dumps(body, indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, run_dir: Path) -> Plan:
        body = json.loads((Path(run_dir) / "plan.json").read_text())
        steps = []
        for s in body["steps"]:
            plugin = tuple(s["plugin"]) if s["plugin"] else None
            steps.append(
                Step(
                    id=s["id"],
                    kind=s["kind"],
                    key=s["key"],
                    cell=s["cell"],
                    deps=s["deps"],
                    spec=s["spec"],
                    plugin=plugin,
                    cells=s["cells"],
                )
            )
        return cls(
            run_dir=Path(run_dir),
            store_root=Path(body["store_root"]),
            experiment=body["experiment"],
            cells={cid: CellSpec.model_validate(c) for cid, c in body["cells"].items()},
            steps=steps,
            registry_file=body.get("registry_file"),
            assets_mirror=body.get("assets_mirror"),
            options=body.get("options", {}),
            assets=body.get("assets"),
        )
