"""MMLU 5-shot: the harness against lm-evaluation-harness on the same model and the same files.

A tiny causal LM (the tiny-1m foundation LLM, saved with its tokenizer to a folder) and the
synthetic world's MMLU set in cais/mmlu's hub layout are scored by the harness's MMLU path (the
mmlu plugin's requests, harness.eval's log-likelihood scoring) and by lm-eval (`--model hf`,
a local task per subject that includes lm-eval's own mmlu template and reads the same folder).
Accuracy must be identical and every per-choice log-likelihood equal within 1e-4; the last line
is `RATIO mmlu_vs_lm_eval <lm-eval seconds / harness seconds>` at the same batch size (32), both
timed from model load to scores with imports excluded; the full run also times lm-eval at its
own default batch size (1).

lm-eval[hf] is installed on first use into bench/.venv-lm-eval, a venv that sees the project
venv's packages (torch and transformers are not downloaded again).

    .venv/bin/python bench/mmlu_vs_lm_eval.py [--quick] [--batch-size 32] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
LM_EVAL_VENV = BENCH / ".venv-lm-eval"
LM_EVAL_PYTHON = LM_EVAL_VENV / "bin" / "python"
TOLERANCE = 1e-4
SHOTS = 5

DRIVER = """
import json, sys, time
started = time.perf_counter()
import lm_eval
from lm_eval.tasks import TaskManager
imported = time.perf_counter()
args = json.loads(sys.argv[1])
manager = TaskManager(include_path=args["include_path"])
indexed = time.perf_counter()
results = lm_eval.simple_evaluate(
    model="hf",
    model_args=args["model_args"],
    tasks=[args["task"]],
    num_fewshot=args["shots"],
    batch_size=args["batch_size"],
    device="cpu",
    log_samples=True,
    task_manager=manager,
)
done = time.perf_counter()
samples = {
    task: {str(s["doc_id"]): [float(r[0]) for r in s["filtered_resps"]] for s in rows}
    for task, rows in results["samples"].items()
}
out = {"import_s": imported - started, "index_s": indexed - imported, "eval_s": done - indexed,
       "samples": samples, "version": lm_eval.__version__}
open(args["out"], "w").write(json.dumps(out))
"""


def ensure_lm_eval() -> None:
    """bench/.venv-lm-eval with lm-eval[hf], seeing this venv's torch and transformers."""
    if LM_EVAL_PYTHON.exists() and _imports_lm_eval():
        return
    print(f"installing lm-eval[hf] into {LM_EVAL_VENV} (first run only) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(LM_EVAL_VENV)], check=True
    )
    # --system-site-packages reaches the base interpreter; a .pth adds this venv's packages.
    purelib = subprocess.run(
        [str(LM_EVAL_PYTHON), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(LM_EVAL_PYTHON), "-m", "pip", "install", "-q", "lm-eval[hf]==0.4.13"],
        check=True,
    )
    if not _imports_lm_eval():
        sys.exit(f"lm-eval did not install into {LM_EVAL_VENV}")


def _imports_lm_eval() -> bool:
    probe = [str(LM_EVAL_PYTHON), "-c", "import lm_eval, torch, transformers"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def lm_eval_template() -> str:
    """lm-eval's own mmlu default template, from the installed package."""
    code = "import lm_eval, pathlib; print(pathlib.Path(lm_eval.__file__).parent)"
    root = subprocess.run(
        [str(LM_EVAL_PYTHON), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(root, "tasks", "mmlu", "default", "_default_template_yaml").read_text()


def write_tasks(folder: Path, mmlu_root: Path, subjects: list[str]) -> str:
    """One task per subject (lm-eval's template, dataset_path = our folder) under one tag."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_default_template_yaml").write_text(lm_eval_template())
    for subject in subjects:
        topic = subject.replace("_", " ")
        task = {
            "include": "_default_template_yaml",
            "task": f"mmlu_bench_{subject}",
            "tag": "mmlu_bench",
            "dataset_path": str(mmlu_root),
            "dataset_name": subject,
            "description": f"The following are multiple choice questions (with answers) about {topic}.\n\n",  # noqa: E501
        }
        (folder / f"mmlu_bench_{subject}.yaml").write_text(json.dumps(task, indent=1) + "\n")
    return "mmlu_bench"


def prepare(work: Path, scale: str) -> tuple[Path, Path, list[str]]:
    """The MMLU set in hub layout and the tiny LLM with its tokenizer, both under `work`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config.registry import load_registry
    from harness.data.synthetic.mmlu import write_mmlu
    from harness.model.foundation import llm_dir, tokenizer_dir

    mmlu_root = work / "mmlu"
    write_mmlu(mmlu_root, seed=0, scale=scale)
    subjects = sorted(p.name for p in mmlu_root.iterdir() if p.is_dir())
    size = load_registry().size("tiny-1m")
    model_dir = work / "model"
    AutoModelForCausalLM.from_pretrained(str(llm_dir(size, seed=0))).save_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(int(size.tiny["vocab"]), 0)))
    tokenizer.save_pretrained(model_dir)
    return mmlu_root, model_dir, subjects


def run_harness(model_dir: Path, mmlu_root: Path, work: Path, batch_size: int) -> dict:
    """The harness's MMLU path, timed from model load to the scored result."""
    from harness_plugins.benchmarks.mmlu import MMLU

    from harness.eval import load_model, run_requests
    from harness.protocols import EvalContext
    from harness.specs import DataSource, EvalSpec

    started = time.perf_counter()
    bundle = load_model(str(model_dir))
    loaded = time.perf_counter()
    bench = MMLU()
    spec = EvalSpec(benchmark="mmlu", batch_size=batch_size, shots=SHOTS)
    ctx = EvalContext(eval=spec, assets={}, work_dir=work)
    items = bench.load(DataSource(kind="local", path=str(mmlu_root)), ctx)
    requests = bench.requests(items, ctx)
    built = time.perf_counter()
    outputs = run_requests(bundle, requests, batch_size=batch_size)
    scored = time.perf_counter()
    result = bench.score(items, outputs, [], ctx)
    done = time.perf_counter()
    return {
        "load_s": loaded - started,
        "requests_s": built - loaded,
        "eval_s": done - started,
        "score_s": scored - built,
        "logliks": {item.id: outputs[item.id].logliks for item in items},
        "answers": {item.id: item.data["answer"] for item in items},
        "micro": result.metrics["micro"],
    }


def run_lm_eval(
    model_dir: Path, task_dir: Path, tag: str, work: Path, batch_size: int, extra: str = ""
) -> dict:
    """lm-eval's Python API in its own venv; datasets' cache kept under `work`."""
    driver = work / "lm_eval_driver.py"
    driver.write_text(DRIVER)
    out = work / f"lm_eval_b{batch_size}.json"
    args = {
        "include_path": str(task_dir),
        "task": tag,
        "shots": SHOTS,
        "batch_size": batch_size,
        "model_args": ",".join(
            [f"pretrained={model_dir}", "dtype=float32", *filter(None, [extra])]
        ),
        "out": str(out),
    }
    env = dict(os.environ, HF_DATASETS_CACHE=str(work / "hf-datasets"), HF_HUB_OFFLINE="1")
    env.update(HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(LM_EVAL_PYTHON), str(driver), json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"lm-eval failed:\n{proc.stderr[-4000:]}")
    body = json.loads(out.read_text())
    body["process_s"] = time.perf_counter() - started
    body["logliks"] = {
        f"{task.removeprefix('mmlu_bench_')}/{doc}": values
        for task, docs in body.pop("samples").items()
        for doc, values in docs.items()
    }
    return body


def compare(harness: dict, lm_eval: dict) -> tuple[int, int, float]:
    """(harness correct, lm-eval correct, largest per-choice |difference|); same item set."""
    ours, theirs = harness["logliks"], lm_eval["logliks"]
    if set(ours) != set(theirs):
        sys.exit(f"item sets differ: {len(ours)} vs {len(theirs)} items")
    worst, ours_right, theirs_right = 0.0, 0, 0
    for item_id, values in ours.items():
        answer = harness["answers"][item_id]
        other = theirs[item_id]
        worst = max(worst, *(abs(a - b) for a, b in zip(values, other, strict=True)))
        ours_right += max(range(4), key=lambda i: values[i]) == answer
        theirs_right += max(range(4), key=lambda i: other[i]) == answer
    return ours_right, theirs_right, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 questions; same batch only")
    parser.add_argument("--batch-size", type=int, default=32, help="both sides' batch size")
    parser.add_argument(
        "--lm-eval-default-batch",
        type=int,
        default=1,
        help="lm-eval's own default batch size, also timed in the full run",
    )
    parser.add_argument(
        "--lm-eval-model-args",
        default="",
        help="extra lm-eval model_args, e.g. add_bos_token=False",
    )
    parser.add_argument("--keep", action="store_true", help="keep bench/out/mmlu_vs_lm_eval")
    args = parser.parse_args()
    work = BENCH / "out" / "mmlu_vs_lm_eval"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        ensure_lm_eval()
        mmlu_root, model_dir, subjects = prepare(work, "small" if args.quick else "medium")
        tasks = work / "tasks"
        tag = write_tasks(tasks, mmlu_root, subjects)
        extra = args.lm_eval_model_args
        runs = [("lm-eval", args.batch_size)]
        if not args.quick and args.lm_eval_default_batch != args.batch_size:
            runs.append(("lm-eval, its default batch", args.lm_eval_default_batch))
        theirs = [(name, b, run_lm_eval(model_dir, tasks, tag, work, b, extra)) for name, b in runs]
        ours = run_harness(model_dir, mmlu_root, work, args.batch_size)
        report(ours, theirs, args, len(subjects))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(ours: dict, theirs: list[tuple[str, int, dict]], args, n_subjects: int) -> None:
    n = len(ours["logliks"])
    first = theirs[0][2]
    print(f"MMLU {SHOTS}-shot, {n} questions over {n_subjects} subjects, tiny-1m foundation LLM")
    print(
        f"lm-eval {first['version']} --model hf {args.lm_eval_model_args or '(defaults)'}; "
        "times from model load to scores, imports excluded"
    )
    print(f"{'run':<28}{'batch':>6}{'eval s':>9}{'accuracy':>10}{'max |dlogL|':>13}{'ratio':>7}")
    ours_right, _, _ = compare(ours, first)
    print(
        f"{'harness':<28}{args.batch_size:>6}{ours['eval_s']:>9.2f}"
        f"{ours_right / n * 100:>9.2f}%{'':>13}{1:>7.2f}"
    )
    worst, same = 0.0, True
    for name, batch, body in theirs:
        _, right, diff = compare(ours, body)
        worst, same = max(worst, diff), same and right == ours_right
        print(
            f"{name:<28}{batch:>6}{body['eval_s']:>9.2f}{right / n * 100:>9.2f}%"
            f"{diff:>13.2e}{body['eval_s'] / ours['eval_s']:>7.2f}"
        )
    print(
        f"harness phases: load {ours['load_s']:.2f} s, "
        f"items+requests {ours['requests_s']:.2f} s, scoring {ours['score_s']:.2f} s; "
        f"lm-eval outside its timing: import {first['import_s']:.2f} s, "
        f"task index {first['index_s']:.2f} s"
    )
    print(f"largest per-choice log-likelihood difference: {worst:.2e} (limit {TOLERANCE:g})")
    print(f"accuracy identical: {'yes' if same else 'NO'}")
    if not same or worst > TOLERANCE:
        print(
            "lm-eval 0.4.13 encodes with the tokenizer's special tokens (a leading BOS for "
            "LLaMA tokenizers) unless add_bos_token is set; rerun with --lm-eval-model-args "
            "add_bos_token=False to compare against encoding without special tokens"
        )
        sys.exit("FAIL: the harness and lm-eval disagree")
    print(f"RATIO mmlu_vs_lm_eval {first['eval_s'] / ours['eval_s']:.2f}")


if __name__ == "__main__":
    main()
