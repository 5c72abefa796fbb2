"""`harness new` writes packages that install and pass their own generated tests at once."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from _plugins_venv import fresh_venv, pip_install, run

from harness.cli.scaffold import package_files
from harness.errors import UserError


def harness(*args, cwd: Path):
    return run([sys.executable, "-m", "harness", *args], cwd=cwd)


def test_new_packages_install_editable_in_a_fresh_venv_and_pass_their_tests(tmp_path):
    made = harness("new", "benchmark", "foo", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("wrote harness-foo (benchmark 'foo') in harness-foo")
    for kind, name in (("backend", "head-tune"), ("judge", "exact-match")):
        made = harness("new", kind, name, "--dir", kind, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, "-e", "harness-foo", "-e", "backend", "-e", "judge", cwd=tmp_path)
    tested = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "harness-foo", "backend", "judge"],
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "6 passed" in tested.stdout
    listed = run([python, "-m", "harness", "plugins"], cwd=tmp_path)
    rows = [line.split()[:4] for line in listed.stdout.splitlines()]
    assert ["benchmark", "foo", "harness-foo", "0.1.0"] in rows
    assert ["backend", "head-tune", "harness-head-tune", "0.1.0"] in rows
    assert ["judge", "exact-match", "harness-exact-match", "0.1.0"] in rows


def test_skeleton_layout_and_entry_point():
    files = package_files("benchmark", "my-bench")
    assert sorted(files) == [
        "README.md",
        "pyproject.toml",
        "src/harness_my_bench/__init__.py",
        "src/harness_my_bench/data/items.jsonl",
        "src/harness_my_bench/plugin.py",
        "tests/test_harness_my_bench.py",
    ]
    assert (
        '[project.entry-points.harness]\nharness_my_bench = "harness_my_bench.plugin"'
        in (files["pyproject.toml"])
    )
    assert 'name = "my-bench"' in files["src/harness_my_bench/plugin.py"]
    assert "class MyBench:" in files["src/harness_my_bench/plugin.py"]
    assert (
        "class HeadTuneBackend:"
        in package_files("backend", "head-tune")["src/harness_head_tune/plugin.py"]
    )


RUFF = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
@pytest.mark.parametrize("kind", ["benchmark", "backend", "judge"])
def test_skeletons_are_lint_clean(tmp_path, kind):
    for relative, text in package_files(kind, "lint-me").items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    checked = run([RUFF, "check", "--select", "E,F,W,I,B,UP", "."], cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    formatted = run([RUFF, "format", "--check", "."], cwd=tmp_path)
    assert formatted.returncode == 0, formatted.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["benchmark", "Foo_x"], "error: invalid plugin name 'Foo_x': use lower-case letters"),
        (["widget", "foo"], "error: unknown plugin kind 'widget': expected one of benchmark"),
        (["judge", "foo", "--dir", "."], "error: . already exists and is not an empty folder"),
        (["backend", "lora"], "error: a backend named 'lora' is already registered by lmm-harness"),
        (["benchmark", "mmlu"], "error: a benchmark named 'mmlu' is already registered by"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "something").write_text("")
    result = harness("new", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


def test_package_files_refuses_bad_names():
    with pytest.raises(UserError, match="invalid plugin name 'a--b'"):
        package_files("judge", "a--b")
