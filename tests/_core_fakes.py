"""Fake plugins for the core's tests: a backend, a stage-1 backend, a benchmark and a judge.

They do no ML: they write small files, count their executions in a ledger file, and can be told
to fail, so that the core's DAG, store, resume and failure isolation can be checked exactly.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from harness.hookspecs import hookimpl
from harness.protocols import GenerationRequest, Item, JudgeRequest, JudgeResponse, ModelOutput
from harness.results import BenchmarkResult, TrainRecord
from harness.support import step_progress


def _ledger(event: str) -> None:
    path = os.environ.get("FAKE_LEDGER")
    if path:
        with open(path, "a") as fh:
            fh.write(event + "\n")


def _maybe_sleep() -> None:
    if os.environ.get("FAKE_SLEEP"):
        import time

        time.sleep(float(os.environ["FAKE_SLEEP"]))


def _maybe_fail(step: str) -> None:
    if os.environ.get("FAKE_FAIL") and os.environ["FAKE_FAIL"] in step:
        raise RuntimeError(f"injected failure in {step}")


def _train_with_checkpoints(cell_id: str, out_dir: Path) -> None:
    """With FAKE_CHECKPOINTS=N: N steps of FAKE_STEP_S seconds, a checkpoint after each, and a
    resume from the last checkpoint in the work folder (as real training does)."""
    total = int(os.environ.get("FAKE_CHECKPOINTS", "0"))
    checkpoint = out_dir / "checkpoint.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.is_file() else 0
    if start:
        _ledger(f"resume {cell_id} from {start}")
    for step in range(start, total):
        import time

        time.sleep(float(os.environ.get("FAKE_STEP_S", "0")))
        tmp = out_dir / "checkpoint.tmp"
        tmp.write_text(json.dumps({"step": step + 1}))
        tmp.replace(checkpoint)
        _ledger(f"checkpoint {cell_id} {step + 1}")
        step_progress.report(step + 1, total, "step")  # as the training loop does


class FakeModel:
    def __init__(self, bias: int):
        self.bias = bias

    def run_requests(self, requests, batch_size):
        return {
            r.id: ModelOutput(id=r.id, text=f"answer {len(r.prompt) % 7 + self.bias}")
            for r in requests
        }


class FakeBackend:
    name = "fake"
    version = "1"

    def defaults(self, size):
        return {"lr": 3e-4}

    def train(self, cell, stage, inputs, out_dir, log):
        _maybe_fail(f"{stage}/{cell.id}")
        _maybe_sleep()
        _ledger(f"{stage} {cell.id}")
        _train_with_checkpoints(cell.id, out_dir)
        bias = int(cell.stage2.lr * 1e4) % 5 + cell.model.size.hidden_size % 3
        (out_dir / "model.json").write_text(json.dumps({"bias": bias}))
        return TrainRecord(
            stage=stage,
            method=self.name,
            steps=3,
            wall_s=1.0,
            gpus=1,
            gpu_hours_per_node=0.5,
            trainable_params=10,
            total_params=100,
        )

    def load_model(self, model, train, stage1_dir):
        return None

    def prepare(self, bundle, train):
        return bundle

    def deepspeed_config(self, train, hardware, gpus):
        return {}

    def save(self, bundle, out_dir):
        pass

    def load(self, model, out_dir):
        return FakeModel(json.loads((Path(out_dir) / "model.json").read_text())["bias"])


class FakeProjector(FakeBackend):
    name = "fakeproj"
    needs_stage1 = False

    def train(self, cell, stage, inputs, out_dir, log):
        _maybe_fail(f"stage1/{cell.model.size.name}")
        _ledger(f"stage1 {cell.model.size.name}")
        (out_dir / "projector.json").write_text("{}")
        return TrainRecord(stage=stage, method=self.name, gpu_hours_per_node=0.25)


class FakeBench:
    name = "fakebench"
    version = "1"
    modality = "multimodal"
    judged = True
    assets = ()

    def protocol(self, ctx):
        return {"official": False, "name": "fake"}

    def load(self, source, ctx):
        return [
            Item(id=f"q{i}", data={"question": "?" * (i + 1), "reference": "ref"}) for i in range(4)
        ]

    def requests(self, items, ctx):
        return [GenerationRequest(id=i.id, prompt=i.data["question"]) for i in items]

    def judge_requests(self, items, outputs, run, ctx):
        _ledger(f"judge_requests run{run}")
        return [
            JudgeRequest(
                id=i.id,
                kind="generic",
                messages=({"role": "user", "content": outputs[i.id].text},),
                run=run,
                facts={"answer": outputs[i.id].text},
            )
            for i in items
        ]

    def parse_judgment(self, request, response):
        try:
            return float(response.text)
        except (TypeError, ValueError):
            return None

    def retry_request(self, request, attempt):
        return None

    def score(self, items, outputs, judgments, ctx):
        runs = []
        for parsed in judgments:
            values = [v for v in parsed.values() if v is not None]
            runs.append({"overall": 10 * statistics.fmean(values)})
        overall = statistics.fmean(r["overall"] for r in runs)
        extra = {}
        if os.environ.get("FAKE_SCORE_FILE"):  # a file for the user, as MMBench's submission
            upload = Path(ctx.work_dir) / "upload.xlsx"
            upload.write_text("predictions")
            extra = {"submission_xlsx": str(upload), "note": f"upload {upload} to the server"}
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="overall",
            metrics={"overall": overall},
            runs=runs,
            n_items=len(items),
            protocol=self.protocol(ctx),
            extra=extra,
        )


class FakeJudge:
    name = "fakejudge"
    official = False

    def __init__(self, spec):
        self.spec = spec

    def snapshot(self):
        return "fake-judge-1"

    def check(self):
        pass

    def judge(self, requests):
        _ledger(f"judge {len(requests)}")
        return [
            JudgeResponse(
                id=r.id,
                text=str(int(r.facts["answer"].split()[-1]) % 10),
                prompt_tokens=100,
                completion_tokens=2,
            )
            for r in requests
        ]


@hookimpl
def register_backends(register):
    register(FakeBackend())
    register(FakeProjector())


@hookimpl
def register_benchmarks(register):
    register(FakeBench())


@hookimpl
def register_judges(register):
    register(FakeJudge)


REGISTRY = """
[sizes.fake-a]
hidden_size = 8
params_b = 0.001
tower = "tiny-clip"
tiny = {}

[sizes.fake-b]
hidden_size = 10
params_b = 0.002
tower = "tiny-clip"
tiny = {}

[judges.fake-judge-1]
input_usd_per_mtok = 10.0
output_usd_per_mtok = 20.0
"""

EXPERIMENT = """
sizes = ["fake-a", "fake-b"]
methods = ["fake"]
benchmarks = ["fakebench"]
judge = { name = "fakejudge" }
stage1 = { method = "fakeproj" }
"""
