"""MMBench with CircularEval: each question is asked once per rotation of its options.

A question counts as correct only when every rotation is answered correctly. Answers go through
the extraction ladder (_choices.py). A rotation that nothing can match (no letter, no option
text, and the matching LLM answers Z) is the model's failure and counts as a wrong answer, as in
upstream's CircularEval; only a failure of the matching judge itself leaves the question
unknown, and it is then excluded and counted, never guessed. The test split (no public answers)
writes the official submission file instead of a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
from ._mmbench_data import load_rows, local_copy, submission_rows, write_submission

if TYPE_CHECKING:
    from harness.results import BenchmarkResult
    from harness.specs import DataSource

INSTRUCTION = "Answer with the option's letter from the given choices directly."
MAX_NEW_TOKENS = 128
MAX_REASKS = 2  # three matching tries in all
SUBMISSION_NOTE = "test split: no answers to score; upload {path} to the MMBench evaluation server"
# What a rotation came to when no option letter was read from it
UNMATCHED = "unmatched"  # nothing matched: the model's failure, a wrong answer
NO_OUTPUT = "no_output"  # generation gave no answer: unknown
JUDGE_FAILED = "judge_failed"  # the matching judge could not be asked (error): unknown
UNREAD = (UNMATCHED, NO_OUTPUT, JUDGE_FAILED)
# The score over questions decided by matched rotations alone: a diagnostic, not the official one
MATCHED_ONLY = "diagnostic/overall_matched_only"


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


@dataclass(frozen=True)
class Outcome:
    """One question under CircularEval in one judging run."""

    correct: int | None  # 1 or 0 (official); None = unknown, excluded for `reason`
    reason: str = ""
    unmatched: int = 0  # rotations nothing could match
    matched_only: int | None = None  # the diagnostic's value (None = left out of it)


class MMBench:
    name = "mmbench"
    version = "2"  # 2: unmatched rotations count as wrong answers (1 excluded them)
    # the conversation format of its protocol; the `prompt` eval setting overrides it
    prompt_template = "vicuna_v1"
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
            "else unmatched",
            "retry": f"matching re-asked up to {MAX_REASKS} times",
            "aggregation": "a question is correct only if every rotation is; an unmatched "
            "rotation is a wrong answer (upstream CircularEval); a question whose matching "
            "judge failed (unreachable, an error) and that is not already wrong is "
            "excluded and counted",
            "diagnostic": f"{MATCHED_ONLY}: the score with questions that are wrong only "
            "through unmatched rotations left out (not the official score); "
            "extra.unmatched_questions counts them per judging run",
            "split": self._split(ctx),
            "generation": {
                "template": ctx.eval.prompt or self.prompt_template,
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

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """Every row validated (options, answers, ids, sizes, an image present), no image
        decoded or written; the synthetic set and remote hub ids are left to the steps."""
        if source.kind == "synthetic" or source.kind == "hub" and not local_copy(source):
            return
        load_rows(source, self._split(ctx, source), None)

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
                        template=ctx.eval.prompt or self.prompt_template,
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
        """The judge's letter, or Z; UNMATCHED when its last allowed reply still names no
        letter (the answer could not be mapped, ladder step 4); None = ask again, or the judge
        failed."""
        if not response.ok:
            return None
        letter = choices.parse_match(response.text, request.facts.get("options", {}))
        if letter is None and request.attempt >= MAX_REASKS:
            return UNMATCHED
        return letter

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        if attempt > MAX_REASKS:
            return None
        return JudgeRequest(**{**request.__dict__, "attempt": attempt})

    def rotation_states(
        self, item: Item, outputs: dict[str, ModelOutput], run_judgments: dict[str, Any]
    ) -> list[str]:
        """Per rotation: the option letter read from the answer, or UNMATCHED, NO_OUTPUT or
        JUDGE_FAILED. A judgment that is None (or missing) is a judge failure; "Z" (or
        UNMATCHED after the re-asks) says that no option matches."""
        states = []
        for k in range(len(item.data["options"])):
            output = outputs.get(request_id(item, k))
            if output is None or output.text is None:
                states.append(NO_OUTPUT)
                continue
            options, _ = rotation(item, k)
            letter = choices.extract(output.text, options)
            if letter is None:
                judged = run_judgments.get(request_id(item, k))
                if judged is None:
                    states.append(JUDGE_FAILED)
                    continue
                letter = judged if judged in options else UNMATCHED
            states.append(letter)
        return states

    def predictions(
        self, item: Item, outputs: dict[str, ModelOutput], run_judgments: dict[str, Any]
    ) -> list[str | None]:
        """The letter of every rotation; None = unmatched, no output or judge failure."""
        states = self.rotation_states(item, outputs, run_judgments)
        return [None if s in UNREAD else s for s in states]

    def outcome(
        self, item: Item, outputs: dict[str, ModelOutput], run_judgments: dict[str, Any]
    ) -> Outcome:
        """CircularEval: one wrong or unmatched rotation makes the question wrong; otherwise a
        rotation with no output or a failed judge leaves it unknown (excluded)."""
        states = self.rotation_states(item, outputs, run_judgments)
        truth = [rotation(item, k)[1] for k in range(len(states))]
        unmatched = states.count(UNMATCHED)
        letters = [(s, t) for s, t in zip(states, truth, strict=True) if s not in UNREAD]
        if any(s != t for s, t in letters):
            return Outcome(0, unmatched=unmatched, matched_only=0)
        if unmatched:
            return Outcome(0, unmatched=unmatched)
        if len(letters) < len(states):
            return Outcome(None, NO_OUTPUT if NO_OUTPUT in states else JUDGE_FAILED)
        return Outcome(1, matched_only=1)

    def item_scores(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> dict[str, list[float | None]]:
        """Each question's CircularEval result per judging run, as in the official score
        (None = excluded); the test split has no answers, so no scores."""
        if any(item.data.get("answer") is None for item in items):
            return {}
        scores: dict[str, list[float | None]] = {}
        for item in items:
            for run_judgments in judgments or [{}]:
                correct = self.outcome(item, outputs, run_judgments).correct
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
        unmatched_questions: list[int] = []
        unmatched_passes: list[int] = []
        for run_judgments in judgments or [{}]:
            groups: dict[str, list[int]] = {}
            matched_only: list[int] = []
            questions = passes = 0
            for item in items:
                outcome = self.outcome(item, outputs, run_judgments)
                passes += outcome.unmatched
                if outcome.correct is None:
                    failures[outcome.reason] = failures.get(outcome.reason, 0) + 1
                    excluded.add(item.id)
                    continue
                for group in ("overall", item.data["l2"], "leaf/" + item.data["category"]):
                    groups.setdefault(group, []).append(outcome.correct)
                if outcome.matched_only is None:
                    questions += 1  # wrong only because a rotation matched no option
                else:
                    matched_only.append(outcome.matched_only)
            run = {g: sum(v) / len(v) * 100 for g, v in groups.items()}
            if matched_only:
                run[MATCHED_ONLY] = sum(matched_only) / len(matched_only) * 100
            per_run.append(run)
            unmatched_questions.append(questions)
            unmatched_passes.append(passes)
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
            extra={
                "unmatched_questions": unmatched_questions,  # per judging run, counted wrong
                "unmatched_passes": unmatched_passes,  # rotations, per judging run
            },
        )

    def _submission(self, items, outputs, judgments, ctx: EvalContext) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        run_judgments = judgments[0] if judgments else {}
        rows = []
        for item in items:
            predicted = self.predictions(item, outputs, run_judgments)
            rows.extend(submission_rows(item, predicted, rotation))
        files = write_submission(rows, Path(ctx.work_dir))
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
            extra={**files, "note": SUBMISSION_NOTE.format(path=files["submission_xlsx"])},
        )


@hookimpl
def register_benchmarks(register) -> None:
    register(MMBench())
