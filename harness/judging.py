"""Run a benchmark's judge requests: cache first, the judge for the rest, the protocol's re-asks.

judge_all() sends every uncached request of a round in one judge() call (so an API judge runs
them concurrently), parses each answer with the benchmark's rule, and re-asks parse failures as
the benchmark's retry_request() says until it returns None. A failed judge call (ok=False) is not
re-asked here: the judge already retried it. What comes back is everything a score and a
samples file need: parsed judgments, the final request/response per item, failure counts by
reason, and token usage split into paid and served from the cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.judge_cache import JudgeCache
from harness.judge_cost import judge_usd
from harness.protocols import Benchmark, Judge, JudgeRequest, JudgeResponse

JUDGE_ERROR = "judge_error"
PARSE_FAILURE = "parse_failure"


@dataclass
class JudgeUsage:
    """Tokens and calls: `prompt_tokens`/`completion_tokens` were paid now, `cached_*` were not."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    calls: int = 0  # requests the judge answered now (failed ones included)
    cache_hits: int = 0

    def add_response(self, response: JudgeResponse) -> None:
        if response.cached:
            self.cache_hits += 1
            self.cached_prompt_tokens += response.prompt_tokens
            self.cached_completion_tokens += response.completion_tokens
        else:
            self.calls += 1
            self.prompt_tokens += response.prompt_tokens
            self.completion_tokens += response.completion_tokens

    def __iadd__(self, other: JudgeUsage) -> JudgeUsage:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def total_prompt_tokens(self) -> int:
        return self.prompt_tokens + self.cached_prompt_tokens

    @property
    def total_completion_tokens(self) -> int:
        return self.completion_tokens + self.cached_completion_tokens

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class JudgeRecord:
    """The last exchange for one item: what was asked, what came back, how it parsed."""

    id: str
    request: JudgeRequest
    response: JudgeResponse
    parsed: Any
    asks: int  # 1 = answered the first time; more = the protocol re-asked
    failure: str | None  # None, JUDGE_ERROR or PARSE_FAILURE

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run": self.request.run,
            "kind": self.request.kind,
            "asks": self.asks,
            "failure": self.failure,
            "parsed": self.parsed,
            "request": self.request.to_json(),
            "response": self.response.to_json(),
        }


@dataclass
class JudgeOutcome:
    """What judge_all returns; `judgments[id]` is the parsed value or None (failed)."""

    judge: dict[str, Any]  # {"name", "snapshot", "official"}
    judgments: dict[str, Any] = field(default_factory=dict)
    records: dict[str, JudgeRecord] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=lambda: {JUDGE_ERROR: 0, PARSE_FAILURE: 0})
    reasks: int = 0
    usage: JudgeUsage = field(default_factory=JudgeUsage)

    def usd(self, prices: dict[str, Any], include_cached: bool = False) -> float | None:
        """Dollars paid now (or, with include_cached, what all these judgments cost at price)."""
        u = self.usage
        prompt = u.total_prompt_tokens if include_cached else u.prompt_tokens
        completion = u.total_completion_tokens if include_cached else u.completion_tokens
        return judge_usd(self.judge["snapshot"], prompt, completion, prices)

    def sample_lines(self, benchmark: str) -> list[dict[str, Any]]:
        """One JSON-able dict per item for samples/*.jsonl (judge-agreement reads these)."""
        return [
            {"benchmark": benchmark, "judge": self.judge, **r.to_json()}
            for r in self.records.values()
        ]


def judge_all(
    benchmark: Benchmark,
    judge: Judge,
    requests: Sequence[JudgeRequest],
    cache: JudgeCache | None,
    progress: Callable[[int, int], None] | None = None,
) -> JudgeOutcome:
    """Judge every request (cached, then asked, then re-asked on parse failure)."""
    snapshot = judge.snapshot()
    outcome = JudgeOutcome(
        judge={"name": judge.name, "snapshot": snapshot, "official": bool(judge.official)}
    )
    seen: set[str] = set()
    for request in requests:
        if request.id in seen:
            raise ValueError(f"{benchmark.name}: duplicate judge request id {request.id!r}")
        seen.add(request.id)
        outcome.judgments[request.id] = None

    # (original id, request, asks so far) for the current round
    pending = [(r.id, r, 1) for r in requests]
    done = 0
    while pending:
        responses = _answer(judge, snapshot, [r for _, r, _ in pending], cache, outcome.usage)
        next_round = []
        for (item_id, request, asks), response in zip(pending, responses, strict=True):
            parsed = benchmark.parse_judgment(request, response) if response.ok else None
            failure = None if response.ok else JUDGE_ERROR
            if response.ok and parsed is None:
                retry = benchmark.retry_request(request, request.attempt + 1)
                if retry is not None:
                    if retry.attempt <= request.attempt:  # keep re-asks distinct in the cache
                        retry = dataclasses.replace(retry, attempt=request.attempt + 1)
                    next_round.append((item_id, retry, asks + 1))
                    outcome.reasks += 1
                    continue
                failure = PARSE_FAILURE
            outcome.judgments[item_id] = parsed
            outcome.records[item_id] = JudgeRecord(
                item_id, request, response, parsed, asks, failure
            )
            if failure:
                outcome.failures[failure] += 1
            done += 1
            if progress:
                progress(done, len(requests))
        pending = next_round
    outcome.records = {rid: outcome.records[rid] for rid in outcome.judgments}
    return outcome


def _answer(
    judge: Judge,
    snapshot: str,
    requests: list[JudgeRequest],
    cache: JudgeCache | None,
    usage: JudgeUsage,
) -> list[JudgeResponse]:
    """Responses in order: cache hits, then one judge() call for all the misses."""
    answers: list[JudgeResponse | None] = (
        cache.get_many(snapshot, requests) if cache is not None else [None] * len(requests)
    )
    missing = [i for i, a in enumerate(answers) if a is None]
    if missing:
        asked = [requests[i] for i in missing]
        fresh = list(judge.judge(asked))
        if len(fresh) != len(asked) or any(
            f.id != a.id for f, a in zip(fresh, asked, strict=False)
        ):
            raise RuntimeError(
                f"judge {judge.name!r} answered {len(fresh)} of {len(asked)} requests "
                "or out of order"
            )
        for i, response in zip(missing, fresh, strict=True):
            answers[i] = response
        if cache is not None:
            cache.put_many(snapshot, list(zip(asked, fresh, strict=True)))
    out = [a for a in answers if a is not None]
    for response in out:
        usage.add_response(response)
    return out
