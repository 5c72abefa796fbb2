"""judge_all: the cache makes re-runs free, re-asks follow the benchmark, secrets stay secret."""

from __future__ import annotations

import json
import logging

import pytest
from _judges_fixtures import KEY, KEY_ENV, StubBenchmark, openai_spec, pairwise_request
from _judges_server import FakeChatServer
from harness_plugins.judges.openai_judge import OpenAIJudge
from harness_plugins.judges.reference_judge import ReferenceJudge

from harness.judging.cache import JudgeCache
from harness.judging.client import JudgeUnusable, judge_all


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeChatServer(expected_key=KEY, reply=lambda m: "8 6\nreason") as srv:
        yield srv


def test_second_run_makes_zero_requests(server, tmp_path):
    cache = JudgeCache(tmp_path / "judge_cache.sqlite")
    judge = OpenAIJudge(openai_spec(server.base_url))
    requests = [pairwise_request(i) for i in range(10)]
    first = judge_all(StubBenchmark(), judge, requests, cache)
    assert server.requests == 10 and first.usage.calls == 10 and first.usage.cache_hits == 0
    assert first.usage.prompt_tokens == 10 * 11 and first.usage.completion_tokens == 10 * 3

    server.reset_counts()
    again = judge_all(StubBenchmark(), OpenAIJudge(openai_spec(server.base_url)), requests, cache)
    assert server.requests == 0
    assert again.judgments == first.judgments == {f"q{i}": [8.0, 6.0] for i in range(10)}
    assert again.usage.calls == 0 and again.usage.cache_hits == 10
    assert again.usage.prompt_tokens == 0 and again.usage.cached_prompt_tokens == 10 * 11
    assert all(r.response.cached for r in again.records.values())


def test_distinct_run_indices_are_distinct_entries(server, tmp_path):
    cache = JudgeCache(tmp_path / "judge_cache.sqlite")
    judge = OpenAIJudge(openai_spec(server.base_url))
    for run in range(3):
        judge_all(StubBenchmark(), judge, [pairwise_request(i, run=run) for i in range(4)], cache)
    assert server.requests == 12 and len(cache) == 12
    server.reset_counts()
    for run in range(3):
        judge_all(StubBenchmark(), judge, [pairwise_request(i, run=run) for i in range(4)], cache)
    assert server.requests == 0


def test_failed_responses_are_not_cached(server, tmp_path):
    cache = JudgeCache(tmp_path / "judge_cache.sqlite")
    server.plan = {"item-0:": ["500"] * 4}
    judge = OpenAIJudge(openai_spec(server.base_url))
    out = judge_all(StubBenchmark(), judge, [pairwise_request(0), pairwise_request(1)], cache)
    assert out.failures["judge_error"] == 1 and len(cache) == 1
    server.reset_counts()
    out = judge_all(StubBenchmark(), judge, [pairwise_request(0), pairwise_request(1)], cache)
    assert server.requests == 1 and out.failures["judge_error"] == 0  # asked again, now fine


def test_parse_failures_are_reasked_then_counted(tmp_path):
    replies = {"item-0": ["8 6"], "item-1": ["bad", "8, 5"], "item-2": ["bad", "bad", "bad"]}

    def reply(messages):
        content = messages[-1]["content"]
        key = content.split(":")[0]
        return replies[key].pop(0)

    with FakeChatServer(reply=reply) as srv:
        spec = openai_spec(srv.base_url, options={"api_key_required": False})
        bench = StubBenchmark()
        requests = [pairwise_request(i) for i in range(3)]
        out = judge_all(bench, OpenAIJudge(spec), requests, JudgeCache(tmp_path / "c.sqlite"))
        assert srv.requests == 6
        assert [b["temperature"] for b in srv.bodies[-3:]] == [0.7, 0.7, 1.2]
    assert out.judgments == {"q0": [8.0, 6.0], "q1": [8.0, 5.0], "q2": None}
    assert out.failures == {"judge_error": 0, "parse_failure": 1}
    assert out.reasks == 3
    assert out.records["q1"].asks == 2 and out.records["q1"].request.attempt == 1
    assert out.records["q2"].asks == 3 and out.records["q2"].failure == "parse_failure"
    assert out.records["q2"].request.messages[-1]["content"].endswith("(digits) (digits)")


def test_records_are_samples_lines():
    out = judge_all(StubBenchmark(), ReferenceJudge(), [pairwise_request(0)], None)
    (line,) = out.sample_lines("stub-bench")
    assert line["benchmark"] == "stub-bench" and line["id"] == "q0" and line["run"] == 0
    assert line["judge"] == {"name": "reference", "snapshot": "reference-v1", "official": False}
    assert line["parsed"] == [10.0, 10.0] and line["response"]["text"].startswith("10 10\n")
    json.dumps(line)


def test_cache_shared_by_threads_and_processes(tmp_path):
    import multiprocessing

    path = tmp_path / "judge_cache.sqlite"
    JudgeCache(path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_fill_cache, args=(path, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = JudgeCache(path)
    assert len(cache) == 3 * 40
    assert cache.get("snap", pairwise_request(7, run=2)).text == "answer 7 by 2"


def _fill_cache(path, worker: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from harness.protocols import JudgeResponse

    cache = JudgeCache(path)

    def put(i: int) -> None:
        req = pairwise_request(i, run=worker)
        cache.put("snap", req, JudgeResponse(req.id, f"answer {i} by {worker}", True, None, 5, 2))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, range(40)))


def test_api_key_never_written_or_printed(server, tmp_path, capsys, caplog):
    """Every file under the run directory and everything printed or logged is free of the key."""
    run_dir = tmp_path / "run"
    log_file = run_dir / "logs" / "judge.log"
    log_file.parent.mkdir(parents=True)
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    server.stall_s = 1.0
    server.plan = {"item-0:": ["404"], "item-1:": ["500", "timeout"], "item-2:": ["429"]}
    try:
        judge = OpenAIJudge(openai_spec(server.base_url))
        cache = JudgeCache(run_dir / "judge_cache.sqlite")
        out = judge_all(StubBenchmark(), judge, [pairwise_request(i) for i in range(4)], cache)
        print(repr(judge), judge.__dict__, out)
        samples = run_dir / "samples" / "stub-bench.jsonl"
        samples.parent.mkdir()
        samples.write_text("".join(json.dumps(x) + "\n" for x in out.sample_lines("stub")))
        (run_dir / "outcome.json").write_text(json.dumps(out.usage.to_json()))
        server.plan = {"item-5:": ["401echo"]}  # a server that echoes the key it refuses
        with pytest.raises(JudgeUnusable) as refused:
            judge_all(StubBenchmark(), judge, [pairwise_request(5)], cache)
        print(refused.value)
        (run_dir / "refused.txt").write_text(str(refused.value))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert out.failures["judge_error"] == 1
    assert "invalid api key Bearer ***" in caplog.text  # the echoed key was scrubbed
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(written) >= 4
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err + caplog.text
    assert "client_error" in caplog.text  # the failure itself was logged
