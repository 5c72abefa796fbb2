"""The openai judge against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from _judges_fixtures import KEY, KEY_ENV, StubBenchmark, openai_spec, pairwise_request
from _judges_server import FakeChatServer
from harness_plugins.judges.openai_judge import OpenAIJudge

from harness.errors import UserError
from harness.judging.cache import JudgeCache
from harness.judging.client import JudgeUnusable, judge_all


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeChatServer(expected_key=KEY, reply=lambda m: "8 7\nfine") as srv:
        yield srv


def test_answers_in_order_with_token_usage(server):
    judge = OpenAIJudge(openai_spec(server.base_url))
    responses = judge.judge([pairwise_request(i) for i in range(5)])
    assert [r.id for r in responses] == [f"q{i}" for i in range(5)]
    assert all(r.ok and r.text == "8 7\nfine" for r in responses)
    # system 7 words + user 4 words; reply 3 words, as the server counts them
    assert {(r.prompt_tokens, r.completion_tokens) for r in responses} == {(11, 3)}
    body = server.bodies[0]
    assert body["model"] == "gpt-4-0613" and body["temperature"] == 0.2
    assert body["max_tokens"] == 64
    assert server.bad_auth == 0


@pytest.mark.parametrize("bound", [1, 4])
def test_concurrency_is_bounded(server, bound):
    server.latency_s = 0.05
    judge = OpenAIJudge(openai_spec(server.base_url, max_concurrency=bound))
    responses = judge.judge([pairwise_request(i) for i in range(12)])
    assert all(r.ok for r in responses)
    assert server.requests == 12
    assert server.max_in_flight == bound


def test_requests_per_minute_limit(server):
    judge = OpenAIJudge(openai_spec(server.base_url, max_concurrency=8, requests_per_minute=600))
    start = time.monotonic()
    judge.judge([pairwise_request(i) for i in range(6)])
    assert time.monotonic() - start >= 0.5 - 0.02  # 6 starts, 0.1 s apart


def test_429_with_retry_after_is_honoured(server):
    server.retry_after = "0.3"
    server.plan = {"item-0:": ["429", "429"]}
    judge = OpenAIJudge(openai_spec(server.base_url))
    start = time.monotonic()
    (response,) = judge.judge([pairwise_request(0)])
    assert response.ok and server.calls["item-0:"] == 3
    assert time.monotonic() - start >= 0.6 - 0.02  # two Retry-After waits, not the 10 ms backoff


@pytest.mark.parametrize("failure", ["500", "503", "timeout", "malformed", "nochoices"])
def test_transient_failures_are_retried(server, failure):
    server.plan = {"item-1:": [failure, failure]}
    server.stall_s = 1.0  # past the 0.5 s client timeout
    judge = OpenAIJudge(openai_spec(server.base_url))
    responses = judge.judge([pairwise_request(i) for i in range(3)])
    assert all(r.ok for r in responses)
    assert server.calls["item-1:"] == 3


def test_persistent_failures_come_back_failed_and_are_counted(server):
    server.stall_s = 1.0
    server.plan = {
        "item-0:": ["429"] * 4,
        "item-1:": ["500"] * 4,
        "item-2:": ["timeout"] * 4,
        "item-3:": ["malformed"] * 4,
        "item-4:": ["404"],
    }
    judge = OpenAIJudge(openai_spec(server.base_url))
    outcome = judge_all(StubBenchmark(), judge, [pairwise_request(i) for i in range(6)], None)
    assert outcome.failures == {"judge_error": 5, "parse_failure": 0}
    assert outcome.judgments["q5"] == [8.0, 7.0]
    errors = {rid: outcome.records[rid].response.error for rid in ("q0", "q1", "q2", "q3", "q4")}
    assert errors["q0"].startswith("rate_limited after 4 attempt(s)")
    assert errors["q1"].startswith("server_error after 4 attempt(s)")
    assert errors["q2"].startswith("timeout after 4 attempt(s)")
    assert errors["q3"].startswith("malformed_response after 4 attempt(s)")
    assert errors["q4"].startswith("client_error: HTTP 404") and "not retried" in errors["q4"]
    assert [server.calls[f"item-{i}:"] for i in range(5)] == [4, 4, 4, 4, 1]


@pytest.mark.parametrize("status", ["401", "403"])
def test_a_refused_key_stops_judging_at_once(server, status, tmp_path):
    """A 401/403 is about the key, not the item: nothing more is sent, and judge_all raises
    one line naming the status and the variable to check, keeping the answers it got."""
    server.plan = {"item-2:": [status] * 10, "item-3:": [status] * 10}
    cache = JudgeCache(tmp_path / "judge_cache.sqlite")
    judge = OpenAIJudge(openai_spec(server.base_url, max_concurrency=1))
    requests = [pairwise_request(i) for i in range(40)]
    with pytest.raises(JudgeUnusable) as err:
        judge_all(StubBenchmark(), judge, requests, cache, batch_size=8)
    message = str(err.value)
    assert f"HTTP {status}" in message and KEY_ENV in message and "\n" not in message
    assert KEY not in message
    assert server.requests == 3  # q0, q1 answered, q2 refused: nothing after it
    assert len(cache) == 2  # what was answered is kept


def test_missing_key_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    judge = OpenAIJudge(openai_spec("http://127.0.0.1:9/v1"))
    with pytest.raises(UserError) as err:
        judge.check()
    assert KEY_ENV in str(err.value) and "\n" not in str(err.value)


def test_key_file_is_read_when_judging_starts(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "judge.key"
    judge = OpenAIJudge(openai_spec("http://127.0.0.1:9/v1", api_key_file=str(key_file)))
    with pytest.raises(UserError, match="judge.key"):
        judge.check()  # not there yet: named in the error
    key_file.write_text(KEY + "\n")
    with FakeChatServer(expected_key=KEY) as srv:
        judge = OpenAIJudge(openai_spec(srv.base_url, api_key_file=str(key_file)))
        assert judge.judge([pairwise_request(0)])[0].ok
        assert srv.bad_auth == 0


def test_keyless_servers(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with FakeChatServer() as srv:
        spec = openai_spec(srv.base_url, options={"api_key_required": False})
        assert OpenAIJudge(spec).judge([pairwise_request(0)])[0].ok


def test_official_only_for_gpt4_on_openai():
    assert OpenAIJudge(openai_spec(None, snapshot="gpt-4-0314")).official
    assert not OpenAIJudge(openai_spec("http://127.0.0.1:8000/v1")).official
    assert not OpenAIJudge(openai_spec(None, snapshot="llama-3-70b")).official
