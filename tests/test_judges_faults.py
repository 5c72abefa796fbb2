"""Judging that cannot lie, end to end: whole runs (fake training, the real openai judge on a
loopback server) under a refused key, a server that dies half-way, and 5xx over the threshold.
A run that stored failed judging as finished fails every test here."""

from __future__ import annotations

import json
from pathlib import Path

import _core_fakes as fakes
import _judges_run as jrun
import pytest
from _judges_fixtures import KEY, KEY_ENV
from _judges_server import FakeChatServer

from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.report.build import build_tables
from harness.results import RunResults
from harness.run.orchestrate import run_command

N = jrun.N_ITEMS


@pytest.fixture
def env(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes, jrun]))
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    yield tmp_path
    reset_plugins(None)


def _run(folder: Path, out: str = "run", **kw) -> int:
    opts = Options(
        config=folder / "exp.toml", registry=folder / "registry.toml", out=folder / out, **kw
    )
    return run_command(opts)


def _steps(run_dir: Path) -> dict[str, dict]:
    """Finished steps in the run's store: step id -> manifest."""
    found = {}
    for path in (run_dir / "store" / "steps").glob("*/manifest.json"):
        manifest = json.loads(path.read_text())
        found[manifest["step"]] = manifest
    return found


def _overall(run_dir: Path) -> float | None:
    results = json.loads((run_dir / "results.json").read_text())
    bench = results["cells"][0]["benchmarks"].get("judgedbench")
    return None if bench is None else bench["metrics"]["overall"]


def _judged(run_dir: Path) -> list[str]:
    return [s for s in _steps(run_dir) if s.startswith(("judge/", "score/"))]


@pytest.mark.parametrize("status", ["401", "403"])
def test_refused_key_stops_the_step_at_once_and_says_what_to_check(env, capsys, status):
    with FakeChatServer(reply=jrun.reply) as server:
        server.plan = {f"<q{i}>": [status] * 5 for i in range(N)}
        jrun.write_config(env, server.base_url)
        assert _run(env) == 1
        sent = server.requests
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("failed judge/")]
    assert len(failed) == 1
    assert f"HTTP {status}" in failed[0] and KEY_ENV in failed[0] and "check" in failed[0]
    assert KEY not in out
    assert sent <= 4  # the requests already in flight when the first refusal came back
    assert _judged(env / "run") == []  # neither judge nor score is stored as finished
    assert _overall(env / "run") is None


def test_dead_server_leaves_the_step_unfinished_and_the_rerun_asks_only_the_rest(env, capsys):
    with FakeChatServer(reply=jrun.reply) as healthy:
        jrun.write_config(env, healthy.base_url)
        assert _run(env, out="healthy") == 0
        assert healthy.requests == N
        port = healthy.port
    healthy_score = _overall(env / "healthy")

    with FakeChatServer(reply=jrun.reply, port=port, die_after=6) as dying:
        assert _run(env) == 1  # a run of its own (its own store and judge cache)
        answered = dying.answered
    assert 6 <= answered < N  # requests already past the door when it died are answered
    out = capsys.readouterr().out
    assert f"{N - answered} of {N} judge requests failed" in out
    assert "rerun asks only for the missing" in out
    assert _judged(env / "run") == []
    assert _overall(env / "run") is None  # no score from 6 of 20 judgments

    with FakeChatServer(reply=jrun.reply, port=port) as back:  # the server is back
        assert _run(env) == 0  # the same command
        assert back.requests == N - answered  # only the missing ones
    assert _overall(env / "run") == pytest.approx(healthy_score)


@pytest.mark.parametrize(
    ("share", "failing", "finished"), [(0.0, 1, False), (0.1, 3, False), (0.1, 2, True)]
)
def test_5xx_share_over_the_threshold_fails_under_it_is_marked(env, share, failing, finished):
    with FakeChatServer(reply=jrun.reply) as server:
        server.plan = {f"<q{i}>": ["500"] * 10 for i in range(failing)}
        jrun.write_config(env, server.base_url, max_failed_share=share)
        assert _run(env) == (0 if finished else 1)
    steps = _judged(env / "run")
    results = json.loads((env / "run" / "results.json").read_text())
    if not finished:
        assert steps == []
        assert "judgedbench" not in results["cells"][0]["benchmarks"]
        return
    assert sorted(s.split("/")[0] for s in steps) == ["judge", "score"]
    bench = results["cells"][0]["benchmarks"]["judgedbench"]
    assert bench["failures"]["judge:judge_error"] == failing
    # the score is never shown as a plain number
    tables = build_tables(RunResults.read(env / "run" / "results.json"))
    texts = [v.text for t in tables for row in t.rows for v in row.values]
    score = f"{bench['metrics']['overall']:.1f}"
    assert any(t.startswith(score) and "‡" in t for t in texts)
    assert score not in texts
    assert "‡ judging incomplete" in " ".join(n for t in tables for n in t.notes)


def test_garbage_answers_stay_excluded_and_counted_not_infrastructure(env):
    """Answers that fail the protocol's parsing rule are the judge's answers: the step finishes
    (even at max_failed_share 0) and the score leaves them out, counted."""

    def reply(messages):
        return (
            "no grade here" if messages[-1]["content"].startswith("<q3>") else jrun.reply(messages)
        )

    with FakeChatServer(reply=reply) as server:
        jrun.write_config(env, server.base_url)
        assert _run(env) == 0
    bench = json.loads((env / "run" / "results.json").read_text())["cells"][0]["benchmarks"]
    assert bench["judgedbench"]["failures"] == {"judge:judge_error": 0, "judge:parse_failure": 1}
