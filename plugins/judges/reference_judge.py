"""The `reference` judge: deterministic, offline grading by key-fact overlap. Not a GPT-4 judge.

It answers in GPT-4's response formats so that the benchmarks' parsing runs unchanged:

- "pairwise" (LLaVA-Bench, Vicuna-80): first line "<reference score> <model score>", then one
  line of explanation. The reference scores 10; the model 1 + 9 x F1 of its key facts against
  the reference's, rounded.
- "correctness" (MM-Vet): one number in [0, 1]. The reference splits on <OR> into alternatives
  and each alternative on <AND> into parts; score = max over alternatives of the mean over parts
  of the part's fact recall in the answer, to one decimal.
- "choice" (MMBench answer matching): the letter of the option whose facts the answer states
  most (ties and no overlap: "Z", as MMBench's matching prompt asks).
- "generic": one 1-10 score from the same F1.

It reads `JudgeRequest.facts` with these keys (strings unless said):
  question, reference (the reference/ground-truth answer), answer (the model's answer),
  options (dict letter -> option text, or a list in A, B, C order; "choice" only),
  kind (optional sub-kind, informational). Aliases accepted: prediction -> answer,
  gt / ground_truth -> reference.
Without facts it reads LLaVA's pairwise prompt layout and MM-Vet's "q | gt | pred | " line from
the messages; a "choice" request without options fails (ok=False).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl
from harness.protocols import JudgeRequest, JudgeResponse

from ._facts import f1, key_facts, recall

if TYPE_CHECKING:
    from harness.specs import JudgeSpec

SNAPSHOT = "reference-v1"
NOT_GPT4 = "reference judge (offline key-fact overlap, not a GPT-4 judge)"
_PAIRWISE = re.compile(
    r"\[Assistant 1\]\n(?P<reference>.*?)\n\n\[End of Assistant 1\]\n\n"
    r"\[Assistant 2\]\n(?P<answer>.*?)\n\n\[End of Assistant 2\]",
    re.S,
)


class ReferenceJudge:
    name = "reference"
    official = False

    def __init__(self, spec: JudgeSpec | None = None):
        from harness.specs import JudgeSpec

        self.spec = spec or JudgeSpec(name="reference")

    def snapshot(self) -> str:
        return SNAPSHOT

    def check(self) -> None:
        """Nothing to check: the reference judge needs no key, network or model."""

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResponse]:
        return [self._judge_one(r) for r in requests]

    def _judge_one(self, request: JudgeRequest) -> JudgeResponse:
        facts = request_facts(request)
        try:
            if request.kind not in ANSWERERS:
                raise ValueError(f"unknown request kind {request.kind!r}")
            text = ANSWERERS[request.kind](facts)
        except (KeyError, ValueError) as exc:
            return JudgeResponse(
                id=request.id, text=None, ok=False, error=f"reference judge: {exc}"
            )
        return JudgeResponse(id=request.id, text=text)


def request_facts(request: JudgeRequest) -> dict[str, Any]:
    """The request's facts under canonical keys, read from the messages when facts are absent."""
    facts = dict(request.facts)
    for alias, key in (
        ("prediction", "answer"),
        ("gt", "reference"),
        ("ground_truth", "reference"),
    ):
        if alias in facts and key not in facts:
            facts[key] = facts[alias]
    if "answer" in facts:
        return facts
    content = str(request.messages[-1].get("content", "")) if request.messages else ""
    match = _PAIRWISE.search(content)
    if match:
        facts.update(reference=match["reference"], answer=match["answer"])
    elif request.kind == "correctness" and content.rstrip(" ").endswith("|"):
        parts = content.rstrip(" ").rstrip("|").rsplit(" | ", 2)
        if len(parts) == 3:
            facts.update(question=parts[0].splitlines()[-1], reference=parts[1], answer=parts[2])
    return facts


def half_up(x: float) -> int:
    """Round halves up (4.5 -> 5), unlike Python's round-half-even."""
    return math.floor(x + 0.5 + 1e-9)


def _required(facts: dict[str, Any], *keys: str) -> list[str]:
    missing = [k for k in keys if k not in facts]
    if missing:
        raise KeyError(f"the request has no {', '.join(missing)} in its facts")
    return [str(facts[k] or "") for k in keys]


def answer_pairwise(facts: dict[str, Any]) -> str:
    reference, answer = _required(facts, "reference", "answer")
    ref, ans = key_facts(reference), key_facts(answer)
    quality = f1(ref, ans) if ref else float(bool(ans))
    score = 1 + half_up(9 * quality)
    return (
        f"10 {score}\n"
        f"Assistant 2 states {len(ref & ans)} of the {len(ref)} key facts of Assistant 1 "
        f"(F1 {quality:.2f}); graded by the {NOT_GPT4}."
    )


def correctness(reference: str, answer: str) -> float:
    """MM-Vet-style correctness with <OR> alternatives of <AND> parts."""
    ans = key_facts(answer)
    best = 0.0
    for alternative in reference.split("<OR>"):
        parts = [p for p in alternative.split("<AND>") if p.strip()]
        if not parts:
            continue
        scores = []
        for part in parts:
            facts = key_facts(part)
            if facts:
                scores.append(recall(facts, ans))
            else:  # a part made only of stop words: compare the text itself
                scores.append(float(part.strip().lower() in answer.lower()))
        best = max(best, sum(scores) / len(scores))
    return half_up(best * 10) / 10


def answer_correctness(facts: dict[str, Any]) -> str:
    reference, answer = _required(facts, "reference", "answer")
    return f"{correctness(reference, answer):.1f}"


def option_texts(options: Any) -> dict[str, str]:
    if isinstance(options, dict):
        return {str(k).strip().upper(): str(v) for k, v in options.items() if v is not None}
    if isinstance(options, list | tuple):
        return {chr(ord("A") + i): str(v) for i, v in enumerate(options)}
    raise ValueError("options must be a dict letter -> text or a list")


def answer_choice(facts: dict[str, Any]) -> str:
    (answer,) = _required(facts, "answer")
    options = option_texts(facts.get("options") or {})
    if not options:
        raise KeyError("the request has no options in its facts")
    ans = key_facts(answer)
    ranked = sorted(
        (
            (recall(key_facts(text), ans), f1(key_facts(text), ans), letter)
            for letter, text in options.items()
            if key_facts(text)
        ),
        reverse=True,
    )
    if not ranked or ranked[0][0] == 0.0:
        return "Z"
    if len(ranked) > 1 and ranked[0][:2] == ranked[1][:2]:
        return "Z"  # ambiguous: the answer fits two options equally
    return ranked[0][2]


def answer_generic(facts: dict[str, Any]) -> str:
    reference, answer = _required(facts, "reference", "answer")
    return str(1 + half_up(9 * f1(key_facts(reference), key_facts(answer))))


ANSWERERS = {
    "pairwise": answer_pairwise,
    "correctness": answer_correctness,
    "choice": answer_choice,
    "generic": answer_generic,
}


@hookimpl
def register_judges(register) -> None:
    register(ReferenceJudge)
