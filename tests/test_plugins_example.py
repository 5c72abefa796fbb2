"""The example third-party package, installed like a user would: listed, run in a matrix, reported.

The package is copied out of the tree before installing, so building it leaves no files behind.
The fast tests run the matrix with a stand-in backend (no training); the slow one installs the
package into a fresh venv and runs a real tiny LoRA cell with it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from _plugins_fakes import install_dist
from _plugins_venv import clean_env, fresh_venv, pip_install, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "harness-example-benchmark"
TESTS = Path(__file__).resolve().parent


def _copy_example(folder: Path) -> Path:
    target = folder / "harness-example-benchmark"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    return target


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example installed (not editable) into a folder, as pip would into site-packages."""
    folder = tmp_path_factory.mktemp("example")
    site = folder / "site"
    pip_install(Path(sys.executable), "--target", site, _copy_example(folder))
    return site


def test_installed_package_ships_its_data_and_passes_its_own_tests(site):
    package = site / "harness_example_benchmark"
    assert len(list((package / "data" / "images").glob("*.png"))) == 6
    assert (package / "data" / "questions.jsonl").is_file()
    tested = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE / "tests"],
        cwd=site,
        env=clean_env(PYTHONPATH=str(site)),
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "6 passed" in tested.stdout


def _harness(*args, env, cwd, timeout=300):
    return run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, timeout=timeout)


def test_example_runs_in_a_matrix_and_reaches_results_and_report(site, tmp_path):
    stand_in = tmp_path / "stand-in"
    install_dist(stand_in, "harness-red", "0.1", {"red": "_plugins_fakes:RedPlugin"})
    path = os.pathsep.join(map(str, (site, stand_in, TESTS)))
    env = clean_env(PYTHONPATH=path, FAKE_LEDGER=str(tmp_path / "ledger"))
    listed = json.loads(_harness("plugins", "--json", env=env, cwd=tmp_path).stdout)
    rows = {(r["kind"], r["name"]): r for r in listed["registered"]}
    for name in ("example-vqa", "example-vqa-judged"):
        assert rows[("benchmark", name)]["package"] == "harness-example-benchmark"
        assert rows[("benchmark", name)]["version"] == "0.1.0"

    ran = _harness(
        "run",
        "--config",
        EXAMPLE / "ci" / "tiny.toml",
        "--matrix",
        "sizes=tiny-1m",
        "methods=red",
        "--out",
        tmp_path / "run",
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    (cell,) = results["cells"]
    plain = cell["benchmarks"]["example-vqa"]
    # the stand-in answers "red" to everything: right on 1 of the 12 items, 1 of 5 colours
    assert plain["primary"] == "exact_match"
    assert plain["metrics"] == pytest.approx(
        {
            "exact_match": 100 / 12,
            "exact_match/color": 20.0,
            "exact_match/shape": 0.0,
            "exact_match/count": 0.0,
        }
    )
    judged = cell["benchmarks"]["example-vqa-judged"]
    assert judged["primary"] == "judge" and 0 <= judged["metrics"]["judge"] <= 100
    assert judged["judge"]["name"] == "reference" and judged["judge"]["official"] is False
    assert cell["failed_steps"] == []

    report = _harness("report", tmp_path / "run", "--json", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "example-vqa" in report.stdout and "example-vqa-judged" in report.stdout


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ({}, "questions.jsonl does not exist"),
        ({"questions.jsonl": '{"id": "q1"}\n'}, "questions.jsonl:1: bad item"),
    ],
    ids=["missing", "malformed"],
)
def test_a_bad_data_folder_is_one_line_before_anything_trains(site, tmp_path, layout, expected):
    data = tmp_path / "data"
    data.mkdir()
    for name, text in layout.items():
        (data / name).write_text(text)
    env = clean_env(PYTHONPATH=str(site))
    out = tmp_path / "run"
    for command in ("plan", "run"):
        refused = _harness(
            command,
            "--matrix",
            "sizes=tiny-1m",
            "methods=lora",
            "--benchmarks",
            "example-vqa",
            "--data",
            f"example-vqa={data}",
            "--out",
            out,
            env=env,
            cwd=tmp_path,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], refused.stderr
        assert not out.exists()  # refused before stage 1: nothing trained, nothing written


@pytest.mark.slow
def test_example_in_a_fresh_venv_runs_a_real_tiny_lora_matrix(tmp_path):
    """What CI shows: pip install the example, `harness plugins` lists it, a real cell runs."""
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, _copy_example(tmp_path))
    env = clean_env()

    def harness(*args, timeout=300):
        return run([python, "-m", "harness", *args], cwd=tmp_path, env=env, timeout=timeout)

    listed = harness("plugins")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    names = {row[1] for row in rows if row and row[0] == "benchmark"}
    assert {"example-vqa", "example-vqa-judged"} <= names, listed.stdout

    ran = harness(
        "run",
        "--config",
        EXAMPLE / "ci" / "tiny.toml",
        "--registry",
        EXAMPLE / "ci" / "registry.toml",  # few pretraining steps: a cold cache builds fast
        "--matrix",
        "sizes=tiny-1m",
        "methods=lora",
        "--out",
        tmp_path / "run",
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    (cell,) = results["cells"]
    assert cell["id"] == "tiny-1m_lora" and cell["failed_steps"] == []
    assert cell["train"]["stage2"]["method"] == "lora"
    for name, primary in (("example-vqa", "exact_match"), ("example-vqa-judged", "judge")):
        result = cell["benchmarks"][name]
        assert result["primary"] == primary and result["n_items"] == 12
        assert 0 <= result["metrics"][primary] <= 100
    samples = tmp_path / "run" / "samples" / cell["id"] / "example-vqa.jsonl"
    assert len(samples.read_text().splitlines()) == 12

    report = harness("report", tmp_path / "run")
    assert report.returncode == 0, report.stderr
    assert "example-vqa" in report.stdout
