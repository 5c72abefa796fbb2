"""MMBench with CircularEval: each question is asked once per rotation of its options.

A question counts as correct only when every rotation is answered correctly. Answers go through
the extraction ladder (_choices.py); a rotation that nothing can match is counted as unmatched,
never replaced by a random letter as upstream does. The test split (no public answers) writes
the official submission file instead of a score.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl
from harness.protocols import (
    EvalContext,
    GenerationRequest,
    Item,
    JudgeRequest,
    JudgeResponse,
    ModelOutput,
)

from . import _choices as choices
from . import _common as common
from ._mmbench_data import load_rows, submission_rows

if TYPE_CHECKING:
    from harness.results import BenchmarkResult
    from harness.specs import DataSource

INSTRUCTION = "Answer with the option's letter from the given choices directly."
MAX_NEW_TOKENS = 128
MAX_REASKS = 2  # three matching tries in all


def rotation(item: Item, k: int) -> tuple[dict[str, str], str | None]:
    """Options after rotating their texts by k, and the correct letter (None on the test split)."""
    original = item.data["options"]
    texts = list(original.values())
    rotated = texts[k:] + texts[:k]
    options = dict(zip(choices.letters(len(texts)), rotated, strict=True))
    answer = item.data.get("answer")
    if answer is None:
        return options, None
    position = (list(original).index(answer) - k) % len(texts)
    return options, choices.letters(len(texts))[position]


def rotation_prompt(item: Item, options: dict[str, str]) -> str:
    """LLaVA's model_vqa_mmbench prompt: hint, question, lettered options, instruction."""
    question = item.data["question"]
    if item.data.get("hint"):
        question = item.data["hint"] + "\n" + question
    for letter, text in options.items():
        question += "\n" + letter + ". " + text
    return "<image>\n" + question + "\n" + INSTRUCTION


def request_id(item: Item, k: int) -> str:
    return f"{item.id}@{k}"


class MMBench:
    name = "mmbench"
    version = "1"
    modality = "multimodal"
    judged = True
    assets = ()

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        return {
            "name": "mmbench-circular",
            "official": True,
            "source": "open-compass/MMBench CircularEval; LLaVA model_vqa_mmbench.py prompt",
            "prompt_sha256": common.sha256_text(INSTRUCTION),
            "matching_prompt_sha256": common.sha256_text(choices.MATCHING_PROMPT),
            "judge_snapshot": ctx.judge_snapshot,
            "temperature": 0.0,
            "max_tokens": 16,
            "parsing": "letter token, else option text, else LLM matching (Z = none), "
            "else unmatched (counted, never guessed)",
            "retry": f"matching re-asked up to {MAX_REASKS} times",
            "aggregation": "a question is correct only if every rotation is; a question with "
            "an unmatched rotation and no wrong one is excluded and counted",
            "split": self._split(ctx),
            "generation": {
                "template": "vicuna_v1",
                "temperature": 0.0,
                "num_beams": ctx.eval.beam,
                "max_new_tokens": ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
            },
        }

    def _split(self, ctx: EvalContext, source: DataSource | None = None) -> str:
        return (source.split if source else None) or ctx.eval.split or "dev"

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        split = self._split(ctx, source)
        return load_rows(source, split, ctx.work_dir)

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[GenerationRequest]:
        requests = []
        for item in items:
            for k in range(len(item.data["options"])):
                options, _ = rotation(item, k)
                requests.append(
                    GenerationRequest(
                        id=request_id(item, k),
                        prompt=rotation_prompt(item, options),
                        image=item.image,
                        template="vicuna_v1",
                        max_new_tokens=ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
                        num_beams=ctx.eval.beam,
                    )
                )
        return requests

    def judge_requests(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        run: int,
        ctx: EvalContext,
    ) -> list[JudgeRequest]:
        requests = []
        for item in items:
            for k in range(len(item.data["options"])):
                output = outputs.get(request_id(item, k))
                if output is None or output.text is None:
                    continue
                options, _ = rotation(item, k)
                if choices.extract(output.text, options) is not None:
                    continue
                query = choices.matching_query(item.data["question"], options, output.text)
                requests.append(
                    JudgeRequest(
                        id=request_id(item, k),
                        kind="choice",
                        messages=({"role": "user", "content": query},),
                        temperature=0.0,
                        max_tokens=16,
                        run=run,
                        facts={
                            "question": item.data["question"],
                            "options": options,
                            "answer": output.text,
                        },
                    )
                )
        return requests

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        if not response.ok:
            return None
        return choices.parse_match(response.text, request.facts.get("options", {}))

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        if attempt > MAX_REASKS:
            return None
        return JudgeRequest(**{**request.__dict__, "attempt": attempt})

    def predictions(
        self, item: Item, outputs: dict[str, ModelOutput], run_judgments: dict[str, Any]
    ) -> list[str | None]:
        """The extracted letter of every rotation; None = unmatched or no output."""
        letters = []
        for k in range(len(item.data["options"])):
            output = outputs.get(request_id(item, k))
            if output is None or output.text is None:
                letters.append(None)
                continue
            options, _ = rotation(item, k)
            letter = choices.extract(output.text, options)
            if letter is None:
                letter = run_judgments.get(request_id(item, k))
            letters.append(letter if letter in options else None)
        return letters

    def outcome(
        self, item: Item, outputs: dict[str, ModelOutput], run_judgments: dict[str, Any]
    ) -> tuple[int | None, str, int]:
        """(1 or 0, "", unmatched rotations), or (None, why, unmatched) for an excluded question.

        One wrong rotation makes the question wrong; an unmatched rotation with no wrong one
        leaves it out (never guessed)."""
        predicted = self.predictions(item, outputs, run_judgments)
        truth = [rotation(item, k)[1] for k in range(len(predicted))]
        unmatched = sum(p is None for p in predicted)
        if any(p is not None and p != t for p, t in zip(predicted, truth, strict=True)):
            return 0, "", unmatched
        if unmatched:
            ids = [request_id(item, k) for k in range(len(predicted))]
            no_output = any(outputs.get(i) is None for i in ids)
            return None, "no_output" if no_output else "unmatched", unmatched
        return 1, "", unmatched

    def item_scores(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> dict[str, list[float | None]]:
        """Each question's CircularEval result per judging run (None = excluded); the test
        split has no answers, so no scores."""
        if any(item.data.get("answer") is None for item in items):
            return {}
        scores: dict[str, list[float | None]] = {}
        for item in items:
            for run_judgments in judgments or [{}]:
                correct = self.outcome(item, outputs, run_judgments)[0]
                scores.setdefault(item.id, []).append(None if correct is None else float(correct))
        return scores

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        if any(item.data.get("answer") is None for item in items):
            return self._submission(items, outputs, judgments, ctx)
        failures: dict[str, int] = {}
        excluded: set[str] = set()
        per_run = []
        unmatched_passes = 0
        for run_judgments in judgments or [{}]:
            groups: dict[str, list[int]] = {}
            for item in items:
                correct, reason, unmatched = self.outcome(item, outputs, run_judgments)
                unmatched_passes += unmatched
                if correct is None:
                    failures[reason] = failures.get(reason, 0) + 1
                    excluded.add(item.id)
                    continue
                for group in ("overall", item.data["l2"], "leaf/" + item.data["category"]):
                    groups.setdefault(group, []).append(correct)
            per_run.append({g: sum(v) / len(v) * 100 for g, v in groups.items()})
        metrics, std = common.combine_runs(per_run)
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="overall",
            metrics=metrics,
            std=std,
            runs=per_run,
            n_items=len(items),
            n_failed=len(excluded),
            failures=failures,
            protocol=self.protocol(ctx),
            judge=common.judge_record(ctx),
            extra={"unmatched_passes": unmatched_passes},
        )

    def _submission(self, items, outputs, judgments, ctx: EvalContext) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        run_judgments = judgments[0] if judgments else {}
        rows = []
        for item in items:
            predicted = self.predictions(item, outputs, run_judgments)
            rows.extend(submission_rows(item, predicted, rotation))
        target = Path(ctx.work_dir) / "mmbench_test_en_submission.tsv"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
        unmatched = sum(1 for r in rows if not r["prediction"])
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="overall",
            metrics={},
            n_items=len(items),
            failures={"unmatched_passes": unmatched} if unmatched else {},
            protocol=self.protocol(ctx),
            judge=common.judge_record(ctx),
            extra={"submission": str(target)},
        )


@hookimpl
def register_benchmarks(register) -> None:
    register(MMBench())
