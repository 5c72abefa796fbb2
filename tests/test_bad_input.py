"""Every bad input is one line naming the culprit, exit 2, before anything is written or run.

Table-driven: each case runs the real CLI entry point in process (`plan`, and `run` where the
case concerns a run) against a run folder that already holds results, and the whole folder
must be byte-identical afterwards — a refused `run` wrote no plan, no results, no log and ran
no step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.cli import app as cli
from harness.plugins import reset_plugins

CONFIGS = {
    "lroa.toml": 'extends = "default"\n[stage2.lroa]\nlr = 1e-3\n',
    "mmlux.toml": 'extends = "default"\n[eval.mmlux]\nshots = 5\n',
    "eval-key.toml": 'extends = "default"\n[eval]\nbeems = 3\n',
    "stage1-method.toml": 'extends = "default"\n[stage1.lora]\nlr = 1e-3\n',
    "bad-subvalue.toml": 'extends = "default"\n[stage2.qlora]\nlr = -1.0\n',
    "top-key.toml": 'sizes = ["tiny-1m"]\nmethod = ["lora"]\n',
    "extends-typo.toml": 'extends = "defualt"\n',
    "no-sizes.toml": "sizes = []\n",
    "judge-key.toml": 'extends = "default"\n[judge]\nnmae = "openai"\n',
    "snapshots.toml": 'extends = "default"\n[judge.snapshots]\nllava-bnech = "gpt-4-0314"\n',
    "seed.toml": 'extends = "default"\nseed = -1\n',
    "budget.toml": 'extends = "default"\nbudget_usd = -5\n',
    "parallel.toml": 'extends = "default"\n[executor]\nmax_parallel = 0\n',
    "warmup.toml": 'extends = "default"\n[stage2.tiny]\nwarmup_ratio = 1.5\n',
    "shots.toml": 'extends = "default"\n[eval.mmlu]\nshots = -1\n',
    "extends-number.toml": "extends = 3\n",
    "reg-price.toml": "[hardware.cpu]\nusd_per_node_hour = -1.0\n",
    "reg-judge-price.toml": "[judges.gpt-4-0314]\ninput_usd_per_mtok = -0.5\n",
    "reg-table.toml": "[hardwre.x]\ngpus_per_node = 1\n",
    "reg-method-key.toml": "[methods.lora]\nlora_rnk = 8\n",
}

# (id, argv after the command, what the one line must contain). {t} is the inputs folder,
# {run} the pre-existing run folder; --out {run} is added where a case gives no --out.
RUN_CASES = [
    ("steps=0", ["--matrix", "steps=0"], ["steps=0", "must be >= 1"]),
    ("epochs=0", ["--matrix", "epochs=0"], ["epochs=0", "> 0"]),
    ("beam=0", ["--matrix", "beam=0"], ["beam=0", "must be >= 1"]),
    ("runs=0", ["--matrix", "runs=0"], ["runs=0", "must be >= 1"]),
    ("runs=-1", ["--matrix", "runs=-1"], ["runs=-1", "must be >= 1"]),
    ("seed=-1", ["--matrix", "seed=-1"], ["seed=-1", "must be >= 0"]),
    ("alpha=-2", ["--matrix", "alpha=-2"], ["alpha=-2", "> 0"]),
    ("lr=inf", ["--matrix", "lr=inf"], ["lr=inf", "finite"]),
    ("lr=nan", ["--matrix", "lr=nan"], ["lr=nan", "finite"]),
    ("lr<0", ["--matrix", "lr=-1e-4"], ["lr=-1e-4", "> 0"]),
    ("rank=0", ["--matrix", "rank=0"], ["rank=0", "must be >= 1"]),
    ("rank=abc", ["--matrix", "rank=abc"], ["rank=abc", "must be an integer"]),
    ("nodes=-1", ["--matrix", "nodes=-1"], ["nodes=-1", "must be >= 1"]),
    ("batch=0", ["--matrix", "batch=0"], ["batch=0", "must be >= 1"]),
    ("zero=5", ["--matrix", "zero=5"], ["zero=5", "0..3"]),
    ("mix<0", ["--matrix", "mix=llava+sharegpt:-1"], ["llava+sharegpt:-1", "(0, 1]"]),
    ("mix=0", ["--matrix", "mix=llava+sharegpt:0"], ["llava+sharegpt:0", "(0, 1]"]),
    ("mix=abc", ["--matrix", "mix=llava+sharegpt:abc"], ["'abc' is not a number"]),
    ("rank twice", ["--matrix", "rank=8", "--matrix", "rank=16"], ["'rank' is given twice"]),
    ("alias twice", ["--matrix", "sizes=tiny-1m", "size=tiny-2m"], ["'size' is given twice"]),
    ("value twice", ["--matrix", "rank=8,8"], ["rank", "'8' is given twice"]),
    ("unknown axis", ["--matrix", "colour=red"], ["unknown matrix axis 'colour'"]),
    ("unknown size", ["--matrix", "sizes=33x"], ["unknown size '33x'; did you mean '33b'?"]),
    ("no values", ["--matrix", "sizes"], ["malformed --matrix entry 'sizes'"]),
    ("empty value", ["--matrix", "sizes=33b,"], ["malformed --matrix entry 'sizes=33b,'"]),
    ("method", ["--matrix", "methods=lorra"], ["unknown backend 'lorra'; did you mean 'lora'?"]),
    (
        "runs=100000",
        ["--matrix", "runs=100000", "sizes=tiny-1m", "methods=lora", "--benchmarks", "llava-bench"],
        ["100,004 steps", "limit"],
    ),
    ("cells", ["--matrix", "seed=" + ",".join(map(str, range(1000)))], ["6,000 cells", "limit"]),
    ("max-parallel 0", ["--max-parallel", "0"], ["--max-parallel 0", "must be >= 1"]),
    ("max-parallel abc", ["--max-parallel", "abc"], ["--max-parallel", "integer"]),
    ("budget<0", ["--budget-usd", "-1"], ["--budget-usd -1", ">= 0"]),
    ("budget nan", ["--budget-usd", "nan"], ["--budget-usd nan", ">= 0"]),
    ("benchmarks ,", ["--benchmarks", ","], ["--benchmarks ','", "no benchmark"]),
    ("benchmarks a,,b", ["--benchmarks", "mmlu,,mm-vet"], ["'mmlu,,mm-vet'", "empty name"]),
    ("benchmark twice", ["--benchmarks", "mmlu,mmlu"], ["'mmlu' is named twice"]),
    ("benchmark typo", ["--benchmarks", "mmvet"], ["unknown benchmark 'mmvet'", "'mm-vet'"]),
    ("data malformed", ["--data", "llava-bench"], ["malformed --data 'llava-bench'"]),
    ("data missing", ["--data", "mmlu={t}/nonexistent"], ["mmlu", "nonexistent", "not exist"]),
    ("data layout", ["--data", "mmlu={t}/empty"], ["mmlu", "/empty", "layouts"]),
    ("data unknown", ["--data", "pope=/nonexistent"], ["unknown benchmark 'pope'"]),
    ("data hub:", ["--data", "mmlu=hub:"], ["mmlu=hub:", "no dataset id"]),
    ("data huge", ["--data", "mmlu=synthetic:huge"], ["synthetic:huge", "unknown scale 'huge'"]),
    (
        "data twice",
        ["--data", "mmlu=synthetic", "--data", "mmlu=synthetic:medium"],
        ["--data mmlu is given twice"],
    ),
    ("config dir", ["--config", "{t}/empty"], ["config file", "/empty is a folder"]),
    ("config binary", ["--config", "{t}/binary.toml"], ["binary.toml is not a text file"]),
    ("config missing", ["--config", "{t}/none.toml"], ["config file not found", "none.toml"]),
    ("config toml", ["--config", "{t}/broken.toml"], ["broken.toml is not valid TOML"]),
    ("stage2.lroa", ["--config", "{t}/lroa.toml"], ["[stage2.lroa]", "did you mean 'lora'?"]),
    ("eval.mmlux", ["--config", "{t}/mmlux.toml"], ["[eval.mmlux]", "did you mean 'mmlu'?"]),
    ("eval key", ["--config", "{t}/eval-key.toml"], ["[eval]", "'beems'", "'beam'"]),
    ("stage1.lora", ["--config", "{t}/stage1-method.toml"], ["[stage1.lora] unknown table"]),
    ("sub-table value", ["--config", "{t}/bad-subvalue.toml"], ["[stage2.qlora]", "lr", "-1.0"]),
    ("top key", ["--config", "{t}/top-key.toml"], ["unknown key 'method'", "'methods'"]),
    ("extends typo", ["--config", "{t}/extends-typo.toml"], ["'defualt'", "'default'"]),
    ("judge key", ["--config", "{t}/judge-key.toml"], ["'judge.nmae'", "'name'"]),
    ("snapshots", ["--config", "{t}/snapshots.toml"], ["'llava-bnech'", "'llava-bench'"]),
    ("config seed", ["--config", "{t}/seed.toml"], ["seed: must be >= 0, got -1"]),
    ("config budget", ["--config", "{t}/budget.toml"], ["budget_usd: must be >= 0, got -5"]),
    ("config parallel", ["--config", "{t}/parallel.toml"], ["executor.max_parallel", "got 0"]),
    ("config warmup", ["--config", "{t}/warmup.toml"], ["[stage2.tiny] warmup_ratio", "1.5"]),
    ("config shots", ["--config", "{t}/shots.toml"], ["[eval.mmlu] shots", "got -1"]),
    ("extends number", ["--config", "{t}/extends-number.toml"], ["extends", "got 3"]),
    ("projector", ["--matrix", "projector=foo"], ["projector", "'foo'"]),
    ("judge axis", ["--matrix", "judge=foo"], ["unknown judge 'foo'"]),
    ("mix unknown", ["--matrix", "mix=foo"], ["unknown data mix 'foo'"]),
    ("no sizes", ["--config", "{t}/no-sizes.toml"], ["sizes", "at least 1"]),
    (
        "config+experiment",
        ["--config", "{t}/lroa.toml", "--experiment", "default"],
        ["--config and --experiment"],
    ),
    (
        "judge+axis",
        ["--judge", "openai", "--matrix", "judge=reference"],
        ["--judge openai", "judge=reference"],
    ),
    ("judge empty", ["--judge", ":gpt-4"], ["--judge ':gpt-4'"]),
    ("executor", ["--executor", "k8s"], ["unknown executor 'k8s'"]),
    ("registry dir", ["--registry", "{t}/empty"], ["registry file", "/empty is a folder"]),
    ("registry binary", ["--registry", "{t}/binary.toml"], ["binary.toml is not a text file"]),
    ("hw price", ["--registry", "{t}/reg-price.toml"], ["usd_per_node_hour", "-1.0"]),
    ("judge price", ["--registry", "{t}/reg-judge-price.toml"], ["input_usd_per_mtok", "-0.5"]),
    ("registry table", ["--registry", "{t}/reg-table.toml"], ["[hardwre]", "'hardware'"]),
    ("registry key", ["--registry", "{t}/reg-method-key.toml"], ["'lora_rnk'", "'lora_rank'"]),
    ("out file", ["--out", "{t}/file.txt"], ["--out", "file.txt is a file"]),
    ("out under file", ["--out", "{t}/file.txt/run"], ["file.txt is a file"]),
    ("store file", ["--store", "{t}/file.txt"], ["--store", "file.txt is a file"]),
    ("mirror", ["--assets-mirror", "{t}/nonexistent"], ["assets mirror", "not a folder"]),
]

OTHER_CASES = [
    ("synth out file", ["data", "synth", "--out", "{t}/file.txt"], ["--out", "is a file"]),
    ("synth scale", ["data", "synth", "--out", "{t}/w", "--scale", "huge"], ["scale 'huge'"]),
    ("synth seed", ["data", "synth", "--out", "{t}/w", "--seed", "-1"], ["--seed -1"]),
    ("report pdf", ["report", "{run}", "--format", "pdf"], ["--format 'pdf'", "md, csv"]),
    ("report no run", ["report", "{t}/empty"], ["no results.json"]),
    ("eval no model", ["eval", "--model", "{t}/nonexistent"], ["no such checkpoint folder"]),
    (
        "eval data",
        ["eval", "--model", "{t}/empty", "--data", "mmlu={t}/nonexistent"],
        ["nonexistent", "not exist"],
    ),
    ("eval runs", ["eval", "--model", "{t}/empty", "--matrix", "runs=0"], ["runs=0"]),
    ("unknown command", ["bogus"], ["No such command 'bogus'"]),
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Inputs, and a run folder holding what a finished run leaves (results, plan, store)."""
    t = tmp_path_factory.mktemp("inputs")
    for name, text in CONFIGS.items():
        (t / name).write_text(text)
    (t / "binary.toml").write_bytes(b"\x00\x01\xff\xfe binary")
    (t / "broken.toml").write_text("sizes = [\n")
    (t / "file.txt").write_text("not a folder\n")
    (t / "empty").mkdir()
    run = tmp_path_factory.mktemp("run")
    (run / "results.json").write_text(json.dumps({"cells": {"tiny-1m_lora": {"mmlu": 41.5}}}))
    (run / "plan.json").write_text(json.dumps({"steps": [], "cells": {}}))
    (run / "store" / "abc123").mkdir(parents=True)
    (run / "store" / "abc123" / "manifest.json").write_text('{"step": "score"}\n')
    (run / "logs").mkdir()
    (run / "logs" / "score.log").write_text("scored\n")
    return t, run


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """The built-in plugins, whatever an earlier test installed; no asset mirror from outside."""
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    reset_plugins()
    yield
    reset_plugins()


def tree_digest(*folders: Path) -> str:
    """Names (files and folders) and bytes of everything under the folders."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            digest.update(str(path.relative_to(folder)).encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def call_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """The `harness` console script in this process: its exit code and its output lines."""
    old = sys.argv
    sys.argv = ["harness", *argv]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]


def check_refused(argv: list[str], expected: list[str], folders, capsys) -> None:
    t, run = folders
    argv = [a.replace("{t}", str(t)).replace("{run}", str(run)) for a in argv]
    before = tree_digest(t, run)
    code, lines = call_cli(argv, capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for text in expected:
        assert text.replace("{t}", str(t)) in lines[0], lines[0]
    assert tree_digest(t, run) == before, "a refused command changed files"


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize(("case", "args", "expected"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_refused_before_anything(command, case, args, expected, folders, capsys):
    if "--out" not in args:
        args = [*args, "--out", "{run}"]
    check_refused([command, *args], expected, folders, capsys)


@pytest.mark.parametrize(("case", "args", "expected"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
def test_other_commands_refuse_in_one_line(case, args, expected, folders, capsys):
    if args[0] == "eval":
        args = [*args, "--out", "{run}"]
    check_refused(args, expected, folders, capsys)


def test_a_read_only_out_is_refused_before_anything():
    """In a real process as an unprivileged user (root writes anywhere, so it is demoted)."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    base = Path(tempfile.mkdtemp(prefix="harness-ro-"))
    run = base / "run"
    try:
        base.chmod(0o755)
        run.mkdir()
        (run / "results.json").write_text('{"cells": {}}\n')
        run.chmod(0o555)
        before = tree_digest(run)
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "harness", "run", "--out", str(run)],
            capture_output=True,
            text=True,
            cwd=base,
            env={**os.environ, "HOME": str(base)},
            timeout=120,
        )
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == 2, lines
        assert lines == [f"error: --out {run}: {run} is not writable"]
        assert tree_digest(run) == before
    finally:
        run.chmod(0o755)
        shutil.rmtree(base)
