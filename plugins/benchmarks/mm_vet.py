"""MM-Vet: 218 open-ended questions graded 0..1 by GPT-4 with a few-shot prompt.

Follows yuweihao/MM-Vet's mm-vet_evaluator.py: the query construction, max_tokens 3, and the
re-ask rule ("Predict the correctness of the answer (digit): ", temperature + 0.5 per re-ask).
Where upstream scores a sample 0.0 after its tries run out, the harness counts it as failed and
leaves it out of the score.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from . import _mmvet_data as data
from . import _sources as sources

CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")
REASK_SUFFIX = "\nPredict the correctness of the answer (digit): "
MAX_REASKS = 4  # upstream: five parsed tries in all (its sixth call is never parsed)
MAX_NEW_TOKENS = 1024

HARNESS_OWN_PROMPT = (
    "Compare the ground truth with the prediction of an AI model and give the prediction a "
    "correctness score from 0.0 (wrong) to 1.0 (right) in steps of 0.1. In the ground truth, "
    "<AND> means every element must be present and <OR> means any one suffices. Complete the "
    "last column only.\n\n"
    "Question | Ground truth | Prediction | Correctness\n--- | --- | --- | ---\n"
    "What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0\n"
)

if TYPE_CHECKING:
    from harness.results import BenchmarkResult
    from harness.specs import DataSource


def grader_query(prompt: str, question: str, answer: str, prediction: str) -> str:
    """The grader's user message exactly as mm-vet_evaluator.py builds it."""
    ground_truth = answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return prompt + "\n" + " | ".join([question, ground_truth, prediction, ""])


def parse_correctness(content: str | None) -> float | None:
    """First space-separated token as a float in [0, 1] (upstream's rule), else None."""
    if content is None:
        return None
    try:
        score = float(content.split(" ")[0].strip())
    except ValueError:
        return None
    return score if 0.0 <= score <= 1.0 else None


class MMVet:
    name = "mm-vet"
    version = "1"
    # the conversation format of its protocol; the `prompt` eval setting overrides it
    prompt_template = "vicuna_v1"
    modality = "multimodal"
    judged = True
    assets = ("mmvet-grader-prompt",)

    def _prompt(self, ctx: EvalContext) -> tuple[str, bool]:
        path = ctx.assets.get("mmvet-grader-prompt")
        if path is None:
            return HARNESS_OWN_PROMPT, False
        return path.read_text(encoding="utf-8"), True

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        prompt, official = self._prompt(ctx)
        return {
            "name": "mm-vet" if official else "harness-own",
            "official": official,
            "source": "yuweihao/MM-Vet mm-vet_evaluator.py",
            "prompt_sha256": common.sha256_text(prompt),
            "judge_snapshot": ctx.judge_snapshot,
            "temperature": 0.0,
            "max_tokens": 3,
            "parsing": "first ' '-separated token as a float in [0, 1]",
            "retry": f"re-ask with {REASK_SUFFIX!r} up to {MAX_REASKS} times, temperature "
            "0.0, 0.5, 1.0, 1.5; then counted as failed (upstream: scored 0.0)",
            "aggregation": "capability = sum of scores / graded samples with it x 100; "
            "total = sum / graded samples x 100; mean and population std over runs",
            "generation": {
                "prompt": "<image>\\n{question}",
                "template": ctx.eval.prompt or self.prompt_template,
                "temperature": 0.0,
                "num_beams": ctx.eval.beam,
                "max_new_tokens": ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
            },
        }

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        items = []
        for qid, row, image in data.read(source):
            if not isinstance(image, str):  # a hub copy's embedded image
                image = common.save_hub_image(image, ctx.work_dir, self.name, qid)
            items.append(self._item(qid, row, image))
        return items

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """Layout, fields, ids, sizes and capabilities, with images found but not opened; the
        synthetic set and remote hub ids are left to the steps."""
        if source.kind == "synthetic" or source.kind == "hub" and not sources.local_copy(source):
            return
        for qid, row, _ in data.read(source, with_images=False):
            self._item(qid, row, None)

    def _item(self, qid: str, row: dict[str, Any], image: str | None) -> Item:
        capability = row.get("capability")
        if isinstance(capability, str):  # some hub copies store "rec,ocr"
            capability = [c.strip() for c in capability.split(",") if c.strip()]
        if not capability:
            raise UserError(f"mm-vet item {qid}: empty capability list")
        unknown = [c for c in capability if c not in CAPABILITIES]
        if unknown:
            raise UserError(f"mm-vet item {qid}: unknown capabilities {unknown}")
        data = {"question": row["question"], "answer": row["answer"], "capability": capability}
        return Item(id=qid, data=data, image=image)

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                id=item.id,
                prompt="<image>\n" + item.data["question"],
                image=item.image,
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
        prompt, _ = self._prompt(ctx)
        requests = []
        for item in items:
            output = outputs.get(item.id)
            if output is None or output.text is None:
                continue
            d = item.data
            query = grader_query(prompt, d["question"], d["answer"], output.text)
            requests.append(
                JudgeRequest(
                    id=item.id,
                    kind="correctness",
                    messages=({"role": "user", "content": query},),
                    temperature=0.0,
                    max_tokens=3,
                    run=run,
                    facts={
                        "question": d["question"],
                        "reference": d["answer"],
                        "answer": output.text,
                    },
                )
            )
        return requests

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        return parse_correctness(response.text) if response.ok else None

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        """Re-ask `attempt` (1-based): the suffixed query, at temperature 0.5 x (attempt - 1)."""
        if attempt > MAX_REASKS:
            return None
        query = request.messages[0]["content"]
        if not query.endswith(REASK_SUFFIX):
            query += REASK_SUFFIX
        return JudgeRequest(
            id=request.id,
            kind=request.kind,
            messages=({"role": "user", "content": query},),
            temperature=0.5 * (attempt - 1),
            max_tokens=request.max_tokens,
            run=request.run,
            attempt=attempt,
            facts=request.facts,
        )

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        failures: dict[str, int] = {}
        excluded: set[str] = set()
        answered = []
        for item in items:
            output = outputs.get(item.id)
            if output is None or output.text is None:
                failures["no_output"] = failures.get("no_output", 0) + 1
                excluded.add(item.id)
            else:
                answered.append(item)
        per_run = []
        for run_judgments in judgments or [{}]:
            sums = dict.fromkeys(CAPABILITIES, 0.0)
            counts = dict.fromkeys(CAPABILITIES, 0)
            total, graded = 0.0, 0
            for item in answered:
                value = run_judgments.get(item.id)
                if value is None:
                    failures["judge_failed"] = failures.get("judge_failed", 0) + 1
                    excluded.add(item.id)
                    continue
                total += value
                graded += 1
                for capability in set(item.data["capability"]):
                    sums[capability] += value
                    counts[capability] += 1
            metrics = {c: sums[c] / counts[c] * 100 for c in CAPABILITIES if counts[c]}
            if graded:
                metrics["total"] = total / graded * 100
            per_run.append(metrics)
        metrics, std = common.combine_runs(per_run)
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="total",
            metrics=metrics,
            std=std,
            runs=per_run,
            n_items=len(items),
            n_failed=len(excluded),
            failures=failures,
            protocol=self.protocol(ctx),
            judge=common.judge_record(ctx),
        )


@hookimpl
def register_benchmarks(register) -> None:
    register(MMVet())
