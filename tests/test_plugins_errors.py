"""A plugin's errors are its own: named with its package and version, failing only its steps.

The fake plugins are installed as real distributions (dist-info folders on sys.path), so the
plugin manager finds them through entry points and knows their package names and versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _core_fakes as fakes
import pytest
from _plugins_fakes import install_dist

from harness.errors import UserError
from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.run.orchestrate import run_command

TESTS = Path(__file__).resolve().parent

EXPERIMENT = """
sizes = ["fake-a"]
methods = ["fake"]
benchmarks = ["fakebench", "flakybench"]
judge = { name = "fakejudge" }
stage1 = { method = "fakeproj" }
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """harness-fakes 0.1, harness-flaky 2.3.1, harness-half 0.2.0, harness-brokenjudge 0.3.0."""
    site = tmp_path / "site"
    install_dist(site, "harness-fakes", "0.1", {"fakes": "_core_fakes"})
    install_dist(site, "harness-flaky", "2.3.1", {"flaky": "_plugins_fakes:FlakyPlugin"})
    install_dist(site, "harness-half", "0.2.0", {"half": "_plugins_fakes:HalfPlugin"})
    install_dist(
        site, "harness-brokenjudge", "0.3.0", {"brokenjudge": "_plugins_fakes:BrokenJudgePlugin"}
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("FAKE_LEDGER", str(tmp_path / "ledger"))
    (tmp_path / "registry.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(EXPERIMENT)
    reset_plugins(load_plugins())
    yield tmp_path, site
    reset_plugins(None)


def _run(tmp_path: Path, **kw) -> tuple[int, dict]:
    opts = Options(
        config=tmp_path / "exp.toml",
        registry=tmp_path / "registry.toml",
        out=tmp_path / "run",
        **kw,
    )
    code = run_command(opts)
    return code, json.loads((tmp_path / "run" / "results.json").read_text())


def test_exception_in_a_benchmark_names_its_package_and_fails_only_its_steps(installed, capsys):
    tmp_path, _ = installed
    code, results = _run(tmp_path, matrix=["lr=1e-4,2e-4"])
    assert code == 1
    message = "plugin 'flakybench' from harness-flaky 2.3.1 failed: RuntimeError: flaky on purpose"
    out = capsys.readouterr().out
    assert message in out
    for cell in results["cells"]:
        # training and the other benchmark completed; only flakybench's generate step failed
        assert set(cell["train"]) == {"stage1", "stage2"}
        assert list(cell["benchmarks"]) == ["fakebench"]
        assert cell["benchmarks"]["fakebench"]["metrics"]["overall"] >= 0
        assert cell["failed_steps"] == [
            {
                "step": f"generate/{cell['id']}/flakybench",
                "error": message,
                "log": str(tmp_path / "run" / "logs" / f"generate__{cell['id']}__flakybench.log"),
            }
        ]
        log = Path(cell["failed_steps"][0]["log"]).read_text()
        assert "Traceback" in log and "in requests" in log
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "run").rglob("manifest.json")]
    kinds = sorted(m["step"].split("/")[0] for m in manifests)
    # 1 shared stage 1, 2 x (stage 2, generate, judge, score) for fakebench
    assert kinds == ["generate"] * 2 + ["judge"] * 2 + ["score"] * 2 + ["stage1"] + ["stage2"] * 2
    record = next(m["plugin"] for m in manifests if m["step"].startswith("score/"))
    assert record == {
        "kind": "benchmark",
        "name": "fakebench",
        "package": "harness-fakes",
        "version": "0.1",
    }


def test_exception_in_a_judge_fails_only_the_judged_scores(installed, capsys):
    tmp_path, _ = installed
    (tmp_path / "exp.toml").write_text(EXPERIMENT.replace("fakejudge", "brokenjudge"))
    code, results = _run(tmp_path, benchmarks="fakebench")
    assert code == 1
    (cell,) = results["cells"]
    assert cell["benchmarks"] == {}
    assert set(cell["train"]) == {"stage1", "stage2"}  # training is not the judge's to fail
    (failed,) = cell["failed_steps"]
    assert failed["step"] == f"judge/{cell['id']}/fakebench/run0"
    assert failed["error"] == (
        "plugin 'brokenjudge' from harness-brokenjudge 0.3.0 failed: "
        "ConnectionError: judge server went away"
    )
    assert "skipped 1 step" in capsys.readouterr().out


def test_a_benchmark_missing_protocol_methods_is_refused_with_what_is_missing(installed):
    plugins = load_plugins()
    assert "halfbench" not in plugins.names("benchmark")
    refusal = "benchmark 'halfbench' from harness-half 0.2.0 refused: missing retry_request, score"
    assert refusal in plugins.refused
    with pytest.raises(UserError) as info:
        plugins.get("benchmark", "halfbench")
    assert str(info.value) == refusal
    # the other plugins of the run are unaffected
    assert {"fakebench", "flakybench"} <= set(plugins.names("benchmark"))


def test_refusal_is_shown_by_the_cli_and_using_the_name_exits_2(installed):
    tmp_path, site = installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TESTS)])}
    listed = subprocess.run(
        [sys.executable, "-m", "harness", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert any(
        "'halfbench' from harness-half 0.2.0 refused: missing retry_request" in m
        for m in body["refused"]
    )
    planned = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "plan",
            "--config",
            str(tmp_path / "exp.toml"),
            "--registry",
            str(tmp_path / "registry.toml"),
            "--benchmarks",
            "halfbench",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert planned.returncode == 2
    assert planned.stderr.strip().splitlines() == [
        "error: benchmark 'halfbench' from harness-half 0.2.0 refused: missing retry_request, score"
    ]


def test_a_run_with_a_failed_step_exits_1_from_the_command_line(installed):
    tmp_path, site = installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TESTS)])}
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--config",
            str(tmp_path / "exp.toml"),
            "--registry",
            str(tmp_path / "registry.toml"),
            "--out",
            str(tmp_path / "cli-run"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ran.returncode == 1, ran.stderr
    results = json.loads((tmp_path / "cli-run" / "results.json").read_text())
    assert results["cells"], "the steps that could run still wrote their results"
