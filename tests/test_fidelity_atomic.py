"""Atomic writes: concurrent writers of one target never collide, and a reader sees whole files."""

from __future__ import annotations

import multiprocessing
import os
import re
import stat
import threading

import pytest

from harness.support.atomic import atomic_path, write_atomic
from harness.support.paths import project_root

SIZE = 256 * 1024  # large enough that a torn or interleaved write would show
ROUNDS = 40


def _payload(writer: int, round_: int) -> bytes:
    mark = f"{writer}:{round_};".encode()
    return (mark * (SIZE // len(mark) + 1))[:SIZE]


def _whole(data: bytes) -> bool:
    """One writer's payload from start to end, nothing else."""
    if len(data) != SIZE:
        return False
    mark = data[: data.index(b";") + 1]
    writer, round_ = (int(x) for x in mark[:-1].split(b":"))
    return data == _payload(writer, round_)


def _write_rounds(target: str, writer: int) -> None:
    for round_ in range(ROUNDS):
        write_atomic(target, _payload(writer, round_))


def test_two_processes_and_two_threads_writing_one_target_never_collide(tmp_path):
    target = tmp_path / "results.json"
    write_atomic(target, _payload(9, 0))
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_rounds, args=(str(target), w)) for w in (0, 1)]
    errors: list[BaseException] = []

    def thread_writer(writer: int) -> None:
        try:
            _write_rounds(str(target), writer)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(w,)) for w in (2, 3)]
    for worker in [*processes, *threads]:
        worker.start()
    reads = 0
    while any(p.is_alive() for p in processes) or any(t.is_alive() for t in threads):
        assert _whole(target.read_bytes())  # never torn, never two writers mixed
        reads += 1
    for process in processes:
        process.join()
        assert process.exitcode == 0  # no writer failed (a shared .tmp name makes one fail)
    for thread in threads:
        thread.join()
    assert errors == []
    assert reads > 0 and _whole(target.read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporaries left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "plan.json"
    write_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("the writer died")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_the_written_file_has_the_usual_mode_not_the_temporary_files_0600(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = write_atomic(tmp_path / "sub" / "report.md", "# Results\n")
    assert path.read_text() == "# Results\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_only_the_atomic_module_renames_files_into_place():
    """No module writes beside its target under a fixed temporary name and renames it (the
    shared `.tmp` that made concurrent writers of plan.json or results.json collide): every
    such write goes through support/atomic.py."""
    root = project_root()
    fixed = re.compile(r"""os\.(replace|rename)\(|["'][^"'\s]*\.tmp["']""")
    offenders = []
    for folder in ("harness", "plugins"):
        for path in sorted((root / folder).rglob("*.py")):
            if path == root / "harness" / "support" / "atomic.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if fixed.search(line):
                    offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []
