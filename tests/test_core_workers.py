"""What crosses from a worker process to the runner survives the trip."""

from __future__ import annotations

import multiprocessing
import pickle

from harness.errors import PluginError, UserError
from harness.judging.cache import JudgeCache


def test_plugin_error_pickles_with_its_origin():
    error = PluginError("mm-vet", "lmm-harness", "0.1.0", RuntimeError("grader timed out"))
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error)
    assert (again.plugin, again.package, again.version) == ("mm-vet", "lmm-harness", "0.1.0")
    assert str(pickle.loads(pickle.dumps(UserError("bad input")))) == "bad input"


def _open_cache(path: str, barrier) -> None:
    barrier.wait()
    JudgeCache(path)


def test_processes_opening_a_new_judge_cache_at_once_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    path = str(tmp_path / "judge_cache.sqlite")
    workers = [ctx.Process(target=_open_cache, args=(path, barrier)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * 6
