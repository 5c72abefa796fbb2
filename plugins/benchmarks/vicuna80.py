"""Vicuna-80: 80 language-only questions, GPT-4 pairwise review against reference answers.

Questions load from FastChat's vicuna_bench format ({question_id, category, turns}) or LLaVA's
table/question.jsonl ({question_id, text, category}). The review follows LLaVA's
eval_gpt_review.py: rule.json's "coding" and "math" prompts for those categories, "default" for
the rest; the reference answer is Assistant 1. Items without a reference answer are counted as
`no_reference` and left out (FastChat's GPT-4 reference file covers only coding and math).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from . import _common as common
from . import _pairwise as pairwise
from . import _sources as sources

if TYPE_CHECKING:
    from harness.results import BenchmarkResult
    from harness.specs import DataSource

MAX_NEW_TOKENS = 1024
RULE_CATEGORIES = ("coding", "math")


def question_text(row: dict[str, Any], origin: str) -> str:
    """The question of either upstream format (FastChat `turns`, LLaVA `text`)."""
    if "turns" in row and row["turns"]:
        return row["turns"][0]
    if "text" in row:
        return row["text"]
    raise UserError(f"{origin}: question {row.get('question_id')} has neither 'turns' nor 'text'")


def read_questions(path: Path) -> list[dict[str, Any]]:
    rows = common.read_jsonl(path)
    for row in rows:
        if "question_id" not in row or "category" not in row:
            raise UserError(f"{path}: a question lacks question_id or category: {str(row)[:80]}")
        row["text"] = question_text(row, str(path))
    sources.refuse_duplicates((row["question_id"] for row in rows), str(path), "question_id")
    sources.refuse_oversized(((row["question_id"], row["text"]) for row in rows), str(path))
    return rows


def read_references(path: Path) -> dict[str, str]:
    """FastChat answers ({question_id, choices: [{turns}]}) or LLaVA's ({question_id, text})."""
    references = {}
    rows = common.read_jsonl(path)
    sources.refuse_duplicates((row.get("question_id") for row in rows), str(path), "question_id")
    for row in rows:
        if "choices" in row:
            text = row["choices"][0]["turns"][0]
        elif "text" in row:
            text = row["text"]
        else:
            raise UserError(f"{path}: answer {row.get('question_id')} has no text")
        references[str(row["question_id"])] = text
    sources.refuse_oversized(references.items(), str(path), "reference answer")
    return references


class Vicuna80:
    name = "vicuna-80"
    version = "1"
    # the conversation format of its protocol; the `prompt` eval setting overrides it
    prompt_template = "vicuna_v1"
    modality = "language"
    judged = True
    assets = ("llava-rule", "fastchat-vicuna-questions", "fastchat-vicuna-reference-gpt4")

    def _rules(self, ctx: EvalContext) -> tuple[dict[str, dict[str, str]], bool]:
        path = ctx.assets.get("llava-rule")
        if path is None:
            own = pairwise.HARNESS_OWN_RULE
            return {"default": own, "coding": own, "math": own}, False
        return pairwise.load_rules(path), True

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        rules, official = self._rules(ctx)
        return {
            "name": "vicuna-80" if official else "harness-own",
            "official": official,
            "source": "haotian-liu/LLaVA llava/eval/eval_gpt_review.py; FastChat vicuna_bench",
            "system_prompt_sha256": common.sha256_text(pairwise.SYSTEM_PROMPT),
            "prompt_sha256": pairwise.rules_sha256(rules, ("default", *RULE_CATEGORIES)),
            "judge_snapshot": ctx.judge_snapshot,
            "temperature": pairwise.TEMPERATURE,
            "max_tokens": pairwise.MAX_TOKENS,
            "parsing": pairwise.PARSING_RULE,
            "retry": f"re-ask up to {pairwise.MAX_REASKS} times",
            "aggregation": "mean(model) / mean(reference) x 100, overall and per category",
            "generation": {
                "template": ctx.eval.prompt or self.prompt_template,
                "temperature": 0.0,
                "max_new_tokens": ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
            },
        }

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        if source.kind == "hub":
            raise UserError("vicuna-80 has no hub copy: use a local folder or the assets")
        root = common.source_dir(source, "vicuna-80")
        if root.is_file():  # a question file of either format; references sit beside it
            questions, root = read_questions(root), root.parent
        else:
            questions = read_questions(self._first(root, ("question.jsonl", "questions.jsonl")))
        reference_file = self._first(
            root, ("reference_answer/gpt-4.jsonl", "answers_gpt4.jsonl"), required=False
        )
        if reference_file is None and "fastchat-vicuna-reference-gpt4" in ctx.assets:
            reference_file = ctx.assets["fastchat-vicuna-reference-gpt4"]
        references = read_references(reference_file) if reference_file else {}
        return [
            Item(
                id=str(row["question_id"]),
                data={
                    "question": row["text"],
                    "category": row["category"],
                    "reference": references.get(str(row["question_id"])),
                },
            )
            for row in questions
        ]

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """The question and reference files read and validated (they are small); the synthetic
        set is left to the steps."""
        if source.kind != "synthetic":
            self.load(source, ctx)

    @staticmethod
    def _first(root: Path, names: Sequence[str], required: bool = True) -> Path | None:
        for name in names:
            if (root / name).is_file():
                return root / name
        if required:
            raise UserError(f"vicuna-80: none of {list(names)} in {root}")
        return None

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                id=item.id,
                prompt=item.data["question"],
                template=ctx.eval.prompt or self.prompt_template,
                max_new_tokens=ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
                num_beams=ctx.eval.beam,
            )
            for item in items
        ]

    def judge_requests(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        run: int,
        ctx: EvalContext,
    ) -> list[JudgeRequest]:
        rules, _ = self._rules(ctx)
        requests = []
        for item in items:
            output = outputs.get(item.id)
            d = item.data
            if output is None or output.text is None or d["reference"] is None:
                continue
            rule = rules[d["category"] if d["category"] in RULE_CATEGORIES else "default"]
            content = pairwise.review_content(d["question"], d["reference"], output.text, rule)
            facts = {
                "question": d["question"],
                "reference": d["reference"],
                "answer": output.text,
                "category": d["category"],
            }
            requests.append(pairwise.review_request(item.id, content, run, facts))
        return requests

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        return pairwise.parse_response(response)

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        return pairwise.reask(request, attempt)

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        with_reference = [item for item in items if item.data["reference"] is not None]
        categories = {item.id: item.data["category"] for item in with_reference}
        per_run, failures, n_failed, means = pairwise.pairwise_runs(
            with_reference, outputs, judgments, categories
        )
        missing = len(items) - len(with_reference)
        if missing:
            failures["no_reference"] = missing
        metrics, std = common.combine_runs(per_run)
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="overall",
            metrics=metrics,
            std=std,
            runs=per_run,
            n_items=len(items),
            n_failed=n_failed + missing,
            failures=failures,
            protocol=self.protocol(ctx),
            judge=common.judge_record(ctx),
            extra={"mean_scores": means},
        )


@hookimpl
def register_benchmarks(register) -> None:
    register(Vicuna80())
