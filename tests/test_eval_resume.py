"""A generation interrupted part-way resumes from its journal of finished batches: on a tiny
random LLaVA and LLM, for real, the resumed answers equal an uninterrupted run's, and only the
batches the journal lacks are computed again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _eval_fixtures import WORDS, mixed_requests, one_thread, tiny_llava, tiny_llm, write_images
from _llava_hf import build_llava_hf, call_cli

from harness.eval import engine, loglik, run_requests
from harness.eval.journal import JOURNAL, WALL, AnswerJournal, request_sha256
from harness.protocols import LoglikRequest

pytestmark = pytest.mark.slow

_threads = pytest.fixture(scope="module", autouse=True)(one_thread)
TESTS = Path(__file__).resolve().parent


class Stop(Exception):
    """The interruption: raised from the progress callback after some batches."""


@pytest.fixture(scope="module")
def llava():
    return tiny_llava()


@pytest.fixture(scope="module")
def requests(tmp_path_factory):
    # batches of 2: four of the 8-token requests, one of the 5-token one
    return mixed_requests(write_images(tmp_path_factory.mktemp("images"), 3))


def answers(outputs) -> dict:
    return {k: (v.text, v.logliks, v.n_tokens) for k, v in outputs.items()}


def interrupted(bundle, reqs, folder: Path, after: int, batch_size: int = 2) -> None:
    """Answer `reqs` with a journal in `folder`, stopped once `after` batches are done."""
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == after:
            raise Stop

    with pytest.raises(Stop):
        run_requests(bundle, reqs, batch_size, progress, journal=AnswerJournal(folder))


def resumed(bundle, reqs, folder: Path, monkeypatch, batch_size: int = 2):
    """Answer `reqs` again from the journal: (outputs, batches computed, progress, log)."""
    computed, progress, log = [], [], []
    counted = ((engine, "_generate_batch"), (loglik, "_score_shared"), (loglik, "_score_separate"))
    for module, name in counted:
        real = getattr(module, name)

        def counting(*args, _real=real):
            computed.append(1)
            return _real(*args)

        monkeypatch.setattr(module, name, counting)
    journal = AnswerJournal(folder, log.append)
    outputs = run_requests(
        bundle, reqs, batch_size, lambda d, t: progress.append((d, t)), journal=journal
    )
    monkeypatch.undo()
    return outputs, len(computed), progress, log


def test_resumed_generation_equals_an_uninterrupted_one(llava, requests, tmp_path, monkeypatch):
    whole = run_requests(llava, requests, batch_size=2)
    interrupted(llava, requests, tmp_path, after=2)
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert len(lines) == 4  # two batches of two, each line synced as its batch finished
    assert json.loads((tmp_path / WALL).read_text())["wall_s"] > 0
    journaled = {json.loads(line)["id"]: json.loads(line)["output"] for line in lines}

    outputs, computed, progress, log = resumed(llava, requests, tmp_path, monkeypatch)
    assert answers(outputs) == answers(whole)
    assert len({text for text, _, _ in answers(whole).values()}) > 5  # answers differ: teeth
    assert computed == 3  # five batches, two from the journal
    assert len(log) == 1 and log[0].startswith("resuming: 4 of 9 answers from an earlier attempt")
    assert [done for done, _ in progress] == [2, 4, 6, 8, 9]  # reused answers count as done
    for rid, body in journaled.items():  # reused as recorded, timings included
        assert outputs[rid].to_json() == body


def test_a_last_line_cut_short_is_ignored_and_its_batch_recomputed(
    llava, requests, tmp_path, monkeypatch
):
    whole = run_requests(llava, requests, batch_size=2)
    interrupted(llava, requests, tmp_path, after=2)
    path = tmp_path / JOURNAL
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the crash cut the last line short

    outputs, computed, _, log = resumed(llava, requests, tmp_path, monkeypatch)
    assert answers(outputs) == answers(whole)
    assert computed == 4  # the second batch lost an answer: answered again, whole
    assert log[0].startswith("resuming: 2 of 9 answers")
    for line in path.read_text().splitlines():  # later lines start on a line of their own
        json.loads(line)


def test_an_answer_to_another_request_is_not_reused(llava, requests, tmp_path, monkeypatch):
    whole = run_requests(llava, requests, batch_size=2)
    interrupted(llava, requests, tmp_path, after=2)
    path = tmp_path / JOURNAL
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    first = next(r for r in requests if r.id == lines[0]["id"])
    assert lines[0]["request_sha256"] == request_sha256(first)
    lines[0]["request_sha256"] = "0" * 64  # answered for a request that has changed since
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    outputs, computed, _, log = resumed(llava, requests, tmp_path, monkeypatch)
    assert answers(outputs) == answers(whole)
    assert computed == 4 and log[0].startswith("resuming: 2 of 9 answers")


def test_batches_of_another_composition_are_not_reused(llava, requests, tmp_path, monkeypatch):
    """Answers journaled in batches of 3 are not the answers batches of 2 give (padding)."""
    interrupted(llava, requests, tmp_path, after=2, batch_size=3)
    _, computed, _, log = resumed(llava, requests, tmp_path, monkeypatch)
    assert computed == 5 and log == []


def test_loglik_batches_resume(tmp_path, monkeypatch):
    llm = tiny_llm()
    contexts = [" ".join(WORDS[: 3 + i]) + "\nAnswer:" for i in range(5)]
    reqs = [LoglikRequest(f"m{i}", c, (" A", " B", " C", " D")) for i, c in enumerate(contexts)]
    reqs.append(LoglikRequest("long", "the red square ", ("sits left of", "circle")))
    whole = run_requests(llm, reqs, batch_size=2)
    interrupted(llm, reqs, tmp_path, after=2)  # two shared-context batches of two
    outputs, computed, progress, log = resumed(llm, reqs, tmp_path, monkeypatch)
    assert answers(outputs) == answers(whole)
    assert computed == 2  # the last shared batch, and the long one (it scores alone)
    assert log[0].startswith("resuming: 4 of 6 answers")
    assert [done for done, _ in progress] == [2, 4, 5, 6]


# --- a real `harness eval` killed during its generate step, then run again ------------------

KILLER = """
import os, signal
from harness.eval import journal

_record, _done = journal.AnswerJournal.record, []


def record(self, batch, outputs):
    _record(self, batch, outputs)
    _done.append(1)
    if len(_done) == int(os.environ["KILL_AFTER_BATCHES"]):
        os.kill(os.getpid(), signal.SIGKILL)


journal.AnswerJournal.record = record
"""


def generate_step(out: Path) -> tuple[dict, Path]:
    for path in (out / "store" / "steps").glob("*/manifest.json"):
        manifest = json.loads(path.read_text())
        if manifest["kind"] == "generate":
            return manifest, path.parent
    raise AssertionError(f"no finished generate step in {out}")


def without_seconds(path: Path) -> list[dict]:
    return [{**json.loads(line), "seconds": None} for line in path.read_text().splitlines()]


def test_a_killed_generate_step_resumes_with_the_outputs_of_an_uninterrupted_one(
    tmp_path, monkeypatch, capsys
):
    """The kill is SIGKILL sent by the `harness eval` process to itself right after its second
    batch reached the journal (a sitecustomize in the subprocess wraps the journal's record):
    a deterministic crash mid-step, where a kill from outside would race a 2-second step."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    folder = build_llava_hf(tmp_path / "llava-tiny-hf")
    config = tmp_path / "in-process.toml"  # one step at a time, in this process
    config.write_text('extends = "default"\n[executor]\nmax_parallel = 1\n[eval]\nbatch_size = 4\n')
    argv = ["eval", "--model", str(folder), "--benchmarks", "llava-bench", "--config", str(config)]

    computed = []
    real = engine._generate_batch
    monkeypatch.setattr(engine, "_generate_batch", lambda *a: computed.append(1) or real(*a))
    code, lines = call_cli([*argv, "--out", str(tmp_path / "clean")], capsys)
    assert code == 0, lines
    n_batches, computed[:] = len(computed), []
    clean, clean_dir = generate_step(tmp_path / "clean")

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": f"{hooks}{os.pathsep}{TESTS}", "KILL_AFTER_BATCHES": "2"}
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", *argv, "--out", str(run)]
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    work = run / "store" / "work" / clean["key"]
    assert len((work / JOURNAL).read_text().splitlines()) == 8
    earlier_wall = json.loads((work / WALL).read_text())["wall_s"]

    code, lines = call_cli([*argv, "--out", str(run)], capsys)
    assert code == 0, lines
    assert len(computed) == n_batches - 2 and n_batches == 15  # 60 requests in batches of 4
    manifest, step_dir = generate_step(run)
    log = (run / "logs" / (manifest["step"].replace("/", "__") + ".log")).read_text()
    assert "resuming: 8 of 60 answers from an earlier attempt" in log
    assert without_seconds(step_dir / "outputs.jsonl") == without_seconds(
        clean_dir / "outputs.jsonl"
    )
    assert set(manifest["files"]) == set(clean["files"]) == {"outputs.jsonl"}
    assert not work.exists()  # the journal went before the folder moved into the store
    assert manifest["eval_wall_s"] > earlier_wall > 0  # the killed attempt's time is counted
