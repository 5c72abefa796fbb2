"""Run a benchmark's judge requests: cache first, the judge for the rest, the protocol's re-asks.

judge_all() sends the uncached requests of a round in judge() calls of `batch_size` (so an API
judge runs each batch concurrently), parses each answer with the benchmark's rule, and re-asks
parse failures as the benchmark's retry_request() says until it returns None. A failed judge
call (ok=False) is not re-asked here: the judge already retried it. Every batch's good answers
go into the cache at once, so a judging that stops half-way (the budget, a dead server, a
revoked key) keeps what it paid for and a rerun asks only for the rest. What comes back is
everything a score and a samples file need: parsed judgments, the final request/response per
item, failure counts by reason, and token usage split into paid and served from the cache.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UserError
from harness.judging.cache import JudgeCache
from harness.judging.prices import judge_usd
from harness.protocols import Benchmark, Judge, JudgeRequest, JudgeResponse
from harness.support import step_progress

JUDGE_ERROR = "judge_error"
PARSE_FAILURE = "parse_failure"
NOT_ASKED = "not asked: judging stopped after too many judge errors"


class JudgeUnusable(UserError):
    """The judge cannot answer anything (a rejected key, no permission): stop judging now.

    A judge raises it from judge() instead of failing every item one by one; `answered` holds
    the responses it did get before it stopped, so that judge_all can keep them in the cache.
    """

    def __init__(self, message: str, answered: Sequence[JudgeResponse] = ()):
        super().__init__(message)
        self.answered = list(answered)

    def __reduce__(self):
        """Picklable (message only), so it crosses from a worker process to the runner."""
        return (JudgeUnusable, (str(self),))


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
    *,
    batch_size: int | None = None,
    before_batch: Callable[[JudgeUsage, list[JudgeRequest]], None] | None = None,
    max_judge_errors: int | None = None,
) -> JudgeOutcome:
    """Judge every request (cached, then asked, then re-asked on parse failure).

    `before_batch(usage so far, next batch)` runs before each judge() call and may raise to
    stop (the budget). Once more than `max_judge_errors` items failed in the judge, the rest
    are not asked (they come back as judge errors): the step fails anyway, and a dead server
    is not sent every remaining request with its retries.
    """
    snapshot = judge.snapshot()
    outcome = JudgeOutcome(
        judge={"name": judge.name, "snapshot": snapshot, "official": bool(judge.official)}
    )
    asker = _Asker(judge, snapshot, cache, outcome, batch_size, before_batch, max_judge_errors)
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
        responses = asker.answer([r for _, r, _ in pending])
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
                asker.judge_errors += failure == JUDGE_ERROR
            done += 1
            if progress:
                progress(done, len(requests))
        pending = next_round
    outcome.records = {rid: outcome.records[rid] for rid in outcome.judgments}
    return outcome


@dataclass
class _Asker:
    """Answers one round: cache hits, then the misses in batches, caching each batch at once."""

    judge: Judge
    snapshot: str
    cache: JudgeCache | None
    outcome: JudgeOutcome
    batch_size: int | None
    before_batch: Callable[[JudgeUsage, list[JudgeRequest]], None] | None
    max_judge_errors: int | None
    judge_errors: int = 0  # items finished as judge errors in earlier rounds

    def answer(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        answers: list[JudgeResponse | None] = (
            self.cache.get_many(self.snapshot, requests)
            if self.cache is not None
            else [None] * len(requests)
        )
        missing = [i for i, a in enumerate(answers) if a is None]
        size = self.batch_size or len(missing) or 1
        errors = self.judge_errors
        for start in range(0, len(missing), size):
            chunk = missing[start : start + size]
            asked = [requests[i] for i in chunk]
            if self.max_judge_errors is not None and errors > self.max_judge_errors:
                fresh = [JudgeResponse(r.id, None, ok=False, error=NOT_ASKED) for r in asked]
            else:
                if self.before_batch is not None:
                    self.before_batch(self.outcome.usage, asked)
                fresh = self._ask(asked)
            errors += sum(not f.ok for f in fresh)
            for i, response in zip(chunk, fresh, strict=True):
                answers[i] = response
            if not self.outcome.records:  # the first round (re-asks are few): items judged
                done = len(requests) - len(missing) + start + len(chunk)
                step_progress.report(done, len(requests), "items")
        out = [a for a in answers if a is not None]
        for response in out:
            if response.cached:
                self.outcome.usage.add_response(response)
        return out

    def _ask(self, asked: list[JudgeRequest]) -> list[JudgeResponse]:
        """One judge() call; its good answers are cached and its usage counted before return."""
        try:
            fresh = list(self.judge.judge(asked))
        except JudgeUnusable as exc:
            self._keep([r for r in exc.answered if r.ok], asked)
            raise
        if len(fresh) != len(asked) or any(
            f.id != a.id for f, a in zip(fresh, asked, strict=False)
        ):
            raise RuntimeError(
                f"judge {self.judge.name!r} answered {len(fresh)} of {len(asked)} requests "
                "or out of order"
            )
        self._keep(fresh, asked)
        return fresh

    def _keep(self, fresh: list[JudgeResponse], asked: list[JudgeRequest]) -> None:
        by_id = {r.id: r for r in asked}
        for response in fresh:
            self.outcome.usage.add_response(response)
        if self.cache is not None:
            pairs = [(by_id[f.id], f) for f in fresh if f.id in by_id]
            self.cache.put_many(self.snapshot, pairs)
