"""The GPT-4 pairwise review shared by LLaVA-Bench and Vicuna-80 (LLaVA's eval_gpt_review*).

The reference answer is always Assistant 1 and the model Assistant 2; the judge's first line holds
two scores. The relative score is mean(model) / mean(reference) x 100 over the scored items.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from harness.protocols import JudgeRequest, JudgeResponse

from ._common import read_json, sha256_text

SYSTEM_PROMPT = "You are a helpful and precise assistant for checking the quality of the answer."
TEMPERATURE = 0.2
MAX_TOKENS = 1024
MAX_REASKS = 2  # upstream never re-asks; the harness re-asks twice, then counts a failure
PARSING_RULE = (
    "first line of the review, ',' -> ' ', split(' '); exactly two floats "
    "(reference, model); otherwise a parse failure (re-asked, then counted, never scored)"
)

# The harness's own rule, used only when the official rule.json is unavailable.
HARNESS_OWN_RULE = {
    "role": "Assistant",
    "prompt": (
        "Rate the helpfulness, relevance, accuracy and level of detail of the two assistants' "
        "answers to the question above, each on a scale of 1 to 10.\n"
        "Output a first line with only the two scores, for Assistant 1 and 2, separated by a "
        "space. Explain your rating from the second line on."
    ),
}


def load_rules(path: Any) -> dict[str, dict[str, str]] | None:
    return read_json(path) if path else None


def review_content(
    question: str,
    reference: str,
    answer: str,
    rule: dict[str, str],
    context: str | None = None,
) -> str:
    """The user message exactly as LLaVA builds it ([Context] only for LLaVA-Bench)."""
    role = rule["role"]
    head = f"[Context]\n{context}\n\n" if context is not None else ""
    return (
        f"{head}[Question]\n{question}\n\n"
        f"[{role} 1]\n{reference}\n\n[End of {role} 1]\n\n"
        f"[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n"
        f"[System]\n{rule['prompt']}\n\n"
    )


def review_request(request_id: str, content: str, run: int, facts: dict[str, Any]) -> JudgeRequest:
    return JudgeRequest(
        id=request_id,
        kind="pairwise",
        messages=(
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": content},
        ),
        temperature=TEMPERATURE,
        max_tokens=MAX_TOKENS,
        run=run,
        facts=facts,
    )


def parse_two_scores(review: str | None) -> tuple[float, float] | None:
    """LLaVA's parse_score, with None instead of its (-1, -1) failure value."""
    if not review:
        return None
    parts = review.split("\n")[0].replace(",", " ").split(" ")
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def parse_response(response: JudgeResponse) -> tuple[float, float] | None:
    return parse_two_scores(response.text) if response.ok else None


def reask(request: JudgeRequest, attempt: int) -> JudgeRequest | None:
    """Re-ask the identical review (a distinct attempt, hence a distinct cache entry)."""
    if attempt > MAX_REASKS:
        return None
    return dataclasses.replace(request, attempt=attempt)


def relative_score(pairs: Iterable[tuple[float, float]]) -> float | None:
    """mean(model) / mean(reference) x 100 (a ratio of means), None when nothing was scored."""
    pairs = list(pairs)
    reference = sum(p[0] for p in pairs)
    if not pairs or reference == 0:
        return None
    return sum(p[1] for p in pairs) / reference * 100


def rules_sha256(rules: dict[str, dict[str, str]], keys: Iterable[str]) -> dict[str, str]:
    return {k: sha256_text(rules[k]["prompt"]) for k in keys if k in rules}


def pairwise_runs(
    items: list[Any],
    outputs: dict[str, Any],
    judgments: list[dict[str, Any]],
    category_of: dict[str, str],
) -> tuple[list[dict[str, float]], dict[str, int], int, list[dict[str, float]]]:
    """Per-run relative scores (overall + per category), failures, excluded items, mean scores.

    An item without a model answer is excluded from every run ("no_output"); an item whose review
    failed in one run is excluded from that run only ("judge_failed"). Failure counts add up
    over runs; `n_failed` counts the items excluded from at least one run.
    """
    failures: dict[str, int] = {}
    excluded: set[str] = set()
    no_output: set[str] = set()
    per_run: list[dict[str, float]] = []
    means: list[dict[str, float]] = []
    for item in items:
        out = outputs.get(item.id)
        if out is None or out.text is None:
            failures["no_output"] = failures.get("no_output", 0) + 1
            no_output.add(item.id)
    for run_judgments in judgments or [{}]:
        by_category: dict[str, list[tuple[float, float]]] = {}
        for item in items:
            if item.id in no_output:
                continue
            pair = run_judgments.get(item.id)
            if pair is None:
                failures["judge_failed"] = failures.get("judge_failed", 0) + 1
                excluded.add(item.id)
                continue
            by_category.setdefault(category_of[item.id], []).append(tuple(pair))
        metrics: dict[str, float] = {}
        run_means: dict[str, float] = {}
        everything = [p for pairs in by_category.values() for p in pairs]
        for name, pairs in [("overall", everything), *sorted(by_category.items())]:
            score = relative_score(pairs)
            if score is not None:
                metrics[name] = score
                run_means[f"{name}/reference"] = sum(p[0] for p in pairs) / len(pairs)
                run_means[f"{name}/model"] = sum(p[1] for p in pairs) / len(pairs)
        per_run.append(metrics)
        means.append(run_means)
    return per_run, failures, len(excluded | no_output), means
