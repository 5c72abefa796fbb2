"""MMLU: 57 subjects, k-shot (default 5), choice = argmax log-likelihood of " A".." D".

The prompt is lm-evaluation-harness's `mmlu` task (default template): a description line, the
first k dev examples, then the test question ending in "Answer:". Micro average over questions,
macro average over subjects, and one score per subject.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.hookspecs import hookimpl
from harness.protocols import (
    EvalContext,
    Item,
    JudgeRequest,
    JudgeResponse,
    LoglikRequest,
    ModelOutput,
)

from . import _common as common
from . import _sources as sources
from ._mmlu_data import read_split

if TYPE_CHECKING:
    from harness.results import BenchmarkResult
    from harness.specs import DataSource

LETTERS = ("A", "B", "C", "D")
CONTINUATIONS = tuple(" " + letter for letter in LETTERS)
DOC_TO_TEXT = '"{{question.strip()}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}\\nD. {{choices[3]}}\\nAnswer:"'  # noqa: E501


def doc_to_text(row: dict[str, Any]) -> str:
    c = row["choices"]
    return f"{row['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"


def description(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"  # noqa: E501


def build_context(subject: str, shots: list[dict[str, Any]], row: dict[str, Any]) -> str:
    examples = "".join(doc_to_text(s) + " " + LETTERS[int(s["answer"])] + "\n\n" for s in shots)
    return description(subject) + examples + doc_to_text(row)


class MMLU:
    name = "mmlu"
    version = "1"
    modality = "language"
    judged = False
    assets = ("lm-eval-mmlu-template",)

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        path = ctx.assets.get("lm-eval-mmlu-template")
        official = path is not None and DOC_TO_TEXT in path.read_text(encoding="utf-8")
        return {
            "name": "mmlu-lm-eval" if official else "harness-own",
            "official": official,
            "source": "EleutherAI/lm-evaluation-harness lm_eval/tasks/mmlu/default",
            "template_sha256": common.sha256_text(path.read_text()) if path else None,
            "prompt_sha256": common.sha256_text(doc_to_text_template()),
            "shots": self._shots(ctx),
            "fewshot_sampler": "first_n of dev",
            "scoring": "argmax log-likelihood of ' A', ' B', ' C', ' D' after the context",
            "tokenization": "lm-eval's: no BOS; continuation = enc(context + choice) minus "
            "enc(context)",
            "aggregation": "micro = over questions; macro = mean of subjects",
        }

    def _shots(self, ctx: EvalContext) -> int:
        return 5 if ctx.eval.shots is None else ctx.eval.shots

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        split = source.split or ctx.eval.split or "test"
        test, dev = read_split(source, split), read_split(source, "dev")
        shots = self._shots(ctx)
        items = []
        for subject, rows in sorted(test.items()):
            examples = dev.get(subject, [])[:shots]
            if len(examples) < shots:
                raise UserError(
                    f"mmlu subject {subject}: {len(examples)} dev examples, need {shots}"
                )
            for number, row in enumerate(rows):
                item_id = f"{subject}/{number}"
                if len(row["choices"]) != 4 or int(row["answer"]) not in range(4):
                    raise UserError(f"mmlu item {item_id}: needs 4 choices and an answer 0..3")
                data = {
                    "subject": subject,
                    "answer": int(row["answer"]),
                    "context": build_context(subject, examples, row),
                }
                items.append(Item(id=item_id, data=data))
        sources.refuse_oversized(
            ((i.id, i.data["context"]) for i in items), f"mmlu ({split} split)", "prompt"
        )
        return items

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """Layout, columns, answers and dev shots, read without any model (MMLU is small);
        the synthetic set and remote hub ids are left to the step that fetches them."""
        if source.kind == "synthetic" or (
            source.kind == "hub" and not Path(source.path or "").expanduser().is_dir()
        ):
            return
        self.load(source, ctx)

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[LoglikRequest]:
        return [LoglikRequest(item.id, item.data["context"], CONTINUATIONS) for item in items]

    def judge_requests(self, items, outputs, run, ctx) -> list[JudgeRequest]:
        return []

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        return None

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        return None

    def item_scores(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> dict[str, list[float | None]]:
        """1.0 or 0.0 per question (None without log-likelihoods): their mean is `micro`."""
        scores: dict[str, list[float | None]] = {}
        for item in items:
            correct = correctness(item, outputs)
            scores[item.id] = [None if correct is None else float(correct)]
        return scores

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        by_subject: dict[str, list[int]] = {}
        failed = 0
        for item in items:
            correct = correctness(item, outputs)
            if correct is None:
                failed += 1
                continue
            by_subject.setdefault(item.data["subject"], []).append(correct)
        everything = [c for v in by_subject.values() for c in v]
        metrics: dict[str, float] = {}
        if everything:
            subject_scores = {s: sum(v) / len(v) * 100 for s, v in by_subject.items()}
            metrics["micro"] = sum(everything) / len(everything) * 100
            metrics["macro"] = sum(subject_scores.values()) / len(subject_scores)
            metrics.update({f"subject/{s}": v for s, v in sorted(subject_scores.items())})
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="micro",
            metrics=metrics,
            runs=[metrics],
            n_items=len(items),
            n_failed=failed,
            failures={"no_output": failed} if failed else {},
            protocol=self.protocol(ctx),
            judge=None,
        )


def correctness(item: Item, outputs: dict[str, ModelOutput]) -> int | None:
    """1 when the answer's letter has the highest log-likelihood, 0 when not, None when the
    output is missing or broken."""
    output = outputs.get(item.id)
    logliks = output.logliks if output else None
    if not logliks or len(logliks) != 4 or any(math.isnan(v) for v in logliks):
        return None
    predicted = max(range(4), key=lambda i: logliks[i])
    return int(predicted == item.data["answer"])


def doc_to_text_template() -> str:
    return DOC_TO_TEXT


@hookimpl
def register_benchmarks(register) -> None:
    register(MMLU())
