"""The store checks what it holds: a deleted or resized file is caught when the step is reused, an
overwrite of the same size by `harness verify`, a truncated manifest is named; each damaged step
is set aside and run again, never trusted. Manifests from before the file list still count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _core_fakes as fakes
import pytest

from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.run.orchestrate import run_command

CELL = "fake-a_fake"
STAGE2 = f"stage2/{CELL}"


@pytest.fixture
def finished_run(tmp_path, monkeypatch):
    """One fake cell run to the end; the ledger emptied, so it shows what a rerun runs."""
    reset_plugins(load_plugins(extra=[fakes]))
    (tmp_path / "registry.toml").write_text(fakes.REGISTRY)
    (tmp_path / "exp.toml").write_text(fakes.EXPERIMENT)
    ledger = tmp_path / "ledger.txt"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))
    opts = Options(
        matrix=["sizes=fake-a", "lr=1e-4"],
        config=tmp_path / "exp.toml",
        registry=tmp_path / "registry.toml",
        out=tmp_path / "run",
    )
    assert run_command(opts) == 0
    ledger.write_text("")
    yield opts, ledger
    reset_plugins(None)


def _step_dir(run: Path, step_id: str) -> Path:
    for manifest in (run / "store" / "steps").glob("*/manifest.json"):
        if f'"step": "{step_id}"' in manifest.read_text():
            return manifest.parent
    raise AssertionError(f"{step_id} is not in the store")


def _rerun(opts: Options, capsys) -> tuple[str, list[str]]:
    """Run again; what it printed and which steps it ran (the fake plugins' ledger)."""
    assert run_command(opts) == 0
    out = capsys.readouterr().out
    return out, Path(os.environ["FAKE_LEDGER"]).read_text().splitlines()


def test_manifest_lists_every_file_with_size_and_sha256(finished_run):
    opts, _ = finished_run
    folder = _step_dir(opts.out, STAGE2)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    assert set(files) == {"model.json", "record.json"}
    body = (folder / "model.json").read_bytes()
    import hashlib

    assert files["model.json"] == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "model.json").unlink(), "model.json is missing"),
        (lambda f: (f / "model.json").write_text("{}"), "model.json is 2 bytes, its manifest"),
        (
            lambda f: (f / "manifest.json").write_text((f / "manifest.json").read_text()[:50]),
            "manifest.json is not valid JSON",
        ),
    ],
    ids=["deleted", "resized", "truncated-manifest"],
)
def test_damage_seen_at_reuse_is_named_and_the_step_reruns(finished_run, capsys, damage, reason):
    opts, _ = finished_run
    folder = _step_dir(opts.out, STAGE2)
    damage(folder)
    out, ran = _rerun(opts, capsys)
    named = [line for line in out.splitlines() if line.startswith("damaged")]
    assert len(named) == 1 and named[0].startswith(f"damaged {STAGE2}: ") and reason in named[0]
    if reason.startswith("manifest"):
        assert str(folder / "manifest.json") in named[0]  # the file is named, whole
    assert ran == [f"stage2 {CELL}"]  # only the damaged step ran again
    assert json.loads((folder / "model.json").read_text())["bias"] >= 0
    assert len(list((opts.out / "store" / "damaged").iterdir())) == 1  # kept for a look
    results = json.loads((opts.out / "results.json").read_text())
    assert results["cells"][0]["benchmarks"]["fakebench"]["metrics"]["overall"] >= 0


def test_same_size_overwrite_is_caught_by_verify_then_rerun(finished_run, capsys):
    opts, ledger = finished_run
    folder = _step_dir(opts.out, STAGE2)
    body = (folder / "model.json").read_text()
    digit = next(ch for ch in body if ch.isdigit())
    (folder / "model.json").write_text(body.replace(digit, str((int(digit) + 1) % 10), 1))
    _, ran = _rerun(opts, capsys)
    assert ran == []  # the cheap check cannot see it (same size)

    verify = [sys.executable, "-m", "harness", "verify", str(opts.out)]
    found = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    assert found.returncode == 1, found.stderr
    lines = found.stdout.strip().splitlines()
    assert lines[0].startswith(f"damaged {STAGE2}: model.json does not match its sha256")
    assert lines[1] == "verified 5 finished step(s) of 5: 1 damaged"
    _, ran = _rerun(opts, capsys)
    assert ran == [f"stage2 {CELL}"]
    again = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "all intact" in again.stdout


def test_verify_refuses_a_folder_that_is_not_a_run(tmp_path):
    found = subprocess.run(
        [sys.executable, "-m", "harness", "verify", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 2
    assert found.stderr.strip() == f"error: {tmp_path} is not a run folder (no plan.json)"


def test_manifests_from_before_the_file_list_are_still_reused(finished_run, capsys):
    opts, _ = finished_run
    for manifest in (opts.out / "store" / "steps").glob("*/manifest.json"):
        body = json.loads(manifest.read_text())
        del body["files"]
        manifest.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    out, ran = _rerun(opts, capsys)
    assert ran == [] and "damaged" not in out
    assert "0 ran, 5 reused" in out
    from harness.cli.verify import verify_run

    lines: list[str] = []
    assert verify_run(opts.out, echo=lines.append) == 0
    assert lines == [
        "verified 5 finished step(s) of 5: all intact, 5 from before file lists (not checkable)"
    ]
