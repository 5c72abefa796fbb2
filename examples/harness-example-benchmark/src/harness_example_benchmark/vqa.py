"""example-vqa: short questions about small images, scored by exact match, optionally judged.

Each item has an image, a question, a type (color, shape, count) and the accepted answers. The
model answers one word or number; after VQA-style normalisation (lower case, no punctuation, no
articles, number words as digits) an answer is right when it equals an accepted answer.

Two variants are registered: `example-vqa` (exact match only, no judge step) and
`example-vqa-judged`, which also asks the cell's judge for a 0..1 correctness per answer, so
that near misses ("a red one") get partial credit and the judge's cost shows in the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import statistics
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.protocols import (
    EvalContext,
    GenerationRequest,
    Item,
    JudgeRequest,
    JudgeResponse,
    ModelOutput,
)
from harness.results import BenchmarkResult
from harness.specs import DataSource

SUFFIX = "\nAnswer the question using a single word or number."
MAX_NEW_TOKENS = 8
TYPES = ("color", "shape", "count")
NUMBERS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}
GRADER = (
    "Compare the ground truth with the prediction of an AI model and give the prediction a "
    "correctness score from 0.0 (wrong) to 1.0 (right). <OR> separates accepted answers. "
    "Reply with the score only.\n\nQuestion | Ground truth | Prediction | Correctness\n"
)
REASK = "\nReply with one number between 0.0 and 1.0."
MAX_REASKS = 1


def normalise(text: str) -> str:
    """VQA-style: lower case, punctuation dropped, articles dropped, number words as digits."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(NUMBERS.get(w, w) for w in words if w not in ("a", "an", "the"))


def parse_score(text: str | None) -> float | None:
    """The first token as a number in [0, 1], else None (a parse failure: re-asked once)."""
    try:
        value = float((text or "").split()[0])
    except (IndexError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def _data_root(source: DataSource) -> Path:
    if source.kind == "synthetic":  # the default source: the small set shipped with the package
        return Path(str(files("harness_example_benchmark") / "data"))
    if source.kind == "local" and source.path:
        root = Path(source.path).expanduser()
        if not (root / "questions.jsonl").is_file():
            raise UserError(f"example-vqa: {root / 'questions.jsonl'} does not exist")
        return root
    raise UserError(f"example-vqa: data source {source.kind!r} is not supported (use a folder)")


class ExampleVQA:
    version = "1"  # bump when prompts, parsing or scoring change: stored steps are recomputed
    modality = "multimodal"
    assets: tuple[str, ...] = ()  # no protocol files to fetch: everything ships in the package

    def __init__(self, judged: bool = False):
        self.judged = judged
        self.name = "example-vqa-judged" if judged else "example-vqa"

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "official": False,
            "prompt": "<image>\\n{question}" + SUFFIX.replace("\n", "\\n"),
            "normalisation": "lower case, punctuation and articles dropped, number words as digits",
            "scoring": "exact_match = % of items whose answer equals an accepted answer",
            "generation": {
                "template": "vicuna_v1",
                "temperature": 0.0,
                "num_beams": ctx.eval.beam,
                "max_new_tokens": ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
            },
        }
        if self.judged:
            record["judge"] = {
                "prompt_sha256": hashlib.sha256(GRADER.encode()).hexdigest(),
                "parsing": "first token as a number in [0, 1]",
                "retry": f"re-ask once with {REASK!r} at temperature 0.5",
                "aggregation": "judge = mean correctness x 100 over graded items; runs averaged",
            }
        return record

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """Before anything trains: a --data folder is loaded once (a few small files, no image
        decoded), so a missing or malformed one is one line, not a failed generate step."""
        if source.kind != "synthetic":  # the shipped set is known to be good
            self.load(source, ctx)

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        root = _data_root(source)
        items = []
        lines = (root / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{root / 'questions.jsonl'}:{number}"
            try:
                row = json.loads(line)
                item = Item(id=str(row["id"]), data=row, image=str(root / "images" / row["image"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UserError(f"{where}: bad item ({type(exc).__name__}: {exc})") from None
            if row.get("type") not in TYPES or not row.get("answers"):
                raise UserError(f"{where}: needs a type in {TYPES} and a non-empty answers list")
            if not Path(item.image).is_file():
                raise UserError(f"{where}: image {item.image} does not exist")
            items.append(item)
        return items

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                id=item.id,
                prompt="<image>\n" + item.data["question"] + SUFFIX,
                image=item.image,
                template="vicuna_v1",
                max_new_tokens=ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
                num_beams=ctx.eval.beam,
            )
            for item in items
        ]

    def judge_requests(
        self, items: Sequence[Item], outputs: dict[str, ModelOutput], run: int, ctx: EvalContext
    ) -> list[JudgeRequest]:
        if not self.judged:
            return []
        requests = []
        for item in items:
            output = outputs.get(item.id)
            if output is None or output.text is None:
                continue  # counted as no_output by score, never sent to the judge
            reference = " <OR> ".join(item.data["answers"])
            line = " | ".join([item.data["question"], reference, output.text, ""])
            requests.append(
                JudgeRequest(
                    id=item.id,
                    kind="correctness",
                    messages=({"role": "user", "content": GRADER + line},),
                    max_tokens=3,
                    run=run,
                    facts={
                        "question": item.data["question"],
                        "reference": reference,
                        "answer": output.text,
                    },
                )
            )
        return requests

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        return parse_score(response.text) if response.ok else None

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        if attempt > MAX_REASKS:
            return None
        content = request.messages[0]["content"] + REASK
        return dataclasses.replace(
            request,
            messages=({"role": "user", "content": content},),
            temperature=0.5,
            attempt=attempt,
        )

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        answered = [i for i in items if outputs.get(i.id) and outputs[i.id].text is not None]
        failures: dict[str, int] = {}
        if len(answered) < len(items):
            failures["no_output"] = len(items) - len(answered)
        right = {
            i.id: normalise(outputs[i.id].text) in {normalise(a) for a in i.data["answers"]}
            for i in answered
        }
        exact: dict[str, float] = {}
        if answered:
            exact["exact_match"] = 100.0 * sum(right.values()) / len(answered)
            for kind in TYPES:
                of_kind = [right[i.id] for i in answered if i.data["type"] == kind]
                if of_kind:
                    exact[f"exact_match/{kind}"] = 100.0 * sum(of_kind) / len(of_kind)
        unjudged: set[str] = set()
        runs = []
        for parsed in judgments if self.judged else [None]:
            run = dict(exact)
            if parsed is not None:
                values = [parsed.get(i.id) for i in answered]
                unjudged |= {i.id for i, v in zip(answered, values, strict=True) if v is None}
                graded = [v for v in values if v is not None]
                if graded:
                    run["judge"] = 100.0 * statistics.fmean(graded)
            runs.append(run)
        if unjudged:
            failures["judge_failed"] = len(unjudged)
        keys = sorted({k for run in runs for k in run})
        metrics = {k: statistics.fmean(run[k] for run in runs if k in run) for k in keys}
        std = {}
        if len(runs) > 1:
            std = {k: statistics.pstdev([run[k] for run in runs if k in run]) for k in keys}
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="judge" if self.judged else "exact_match",
            metrics=metrics,
            std=std,
            runs=runs,
            n_items=len(items),
            n_failed=len(items) - len(answered) + len(unjudged),
            failures=failures,
            protocol=self.protocol(ctx),
            judge=_judge_record(ctx) if self.judged else None,
        )


def _judge_record(ctx: EvalContext) -> dict[str, Any]:
    return {"name": ctx.judge_name, "snapshot": ctx.judge_snapshot, "official": False}
