"""Shared pieces of the judge tests: a fake key, fast judge specs, a stub benchmark."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.protocols import JudgeRequest, JudgeResponse
from harness.specs import JudgeSpec

KEY_ENV = "HARNESS_TEST_JUDGE_KEY"
KEY = "sk-test-c0ffee-51d3-4b5a-9e77-secretvalue"


def openai_spec(base_url: str, **overrides: Any) -> JudgeSpec:
    """An openai judge spec with test-sized timeouts and backoffs."""
    fields: dict[str, Any] = dict(
        name="openai",
        snapshot="gpt-4-0613",
        base_url=base_url,
        api_key_env=KEY_ENV,
        max_concurrency=4,
        max_retries=3,
        timeout_s=0.5,
        options={"backoff_base_s": 0.01, "backoff_max_s": 0.05, "jitter_seed": 0},
    )
    fields.update(overrides)
    return JudgeSpec(**fields)


def pairwise_request(i: int, run: int = 0, **kw: Any) -> JudgeRequest:
    return JudgeRequest(
        id=f"q{i}",
        kind="pairwise",
        messages=(
            {"role": "system", "content": "You are a helpful and precise assistant."},
            {"role": "user", "content": f"item-{i}: rate the answers"},
        ),
        temperature=0.2,
        max_tokens=64,
        run=run,
        facts={"question": f"q{i}", "reference": "a red circle", "answer": "a red circle"},
        **kw,
    )


class StubBenchmark:
    """Parses LLaVA's two-number first line; re-asks twice with temperature +0.5, as MM-Vet."""

    name = "stub-bench"
    max_reasks = 2

    def __init__(self) -> None:
        self.parsed_calls = 0

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        self.parsed_calls += 1
        first = (response.text or "").splitlines()[0] if response.text else ""
        parts = first.replace(",", " ").split()
        try:
            return [float(p) for p in parts] if len(parts) == 2 else None
        except ValueError:
            return None

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        if attempt > self.max_reasks:
            return None
        messages = list(request.messages)
        messages[-1] = {**messages[-1], "content": messages[-1]["content"] + " (digits)"}
        return dataclasses.replace(
            request,
            messages=tuple(messages),
            temperature=request.temperature + 0.5,
            attempt=attempt,
        )
