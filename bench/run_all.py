"""Run every bench/*.py that ends with a `RATIO <name> <value>` line; write bench/RESULTS.md.

A script takes part when its source prints a RATIO line (run_all.py itself and modules starting
with `_` do not). Each runs in its own process with this interpreter, `--quick` passed on when
asked and the script accepts it. RESULTS.md gets the date, the machine (CPU model, cores,
memory, load, torch and Python versions), every ratio with its goal and pass/fail, and each
script's own table. On a machine with an NVIDIA GPU, bench/gpu_check.sh's table is added too.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import operator
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RATIO_LINE = re.compile(r"^RATIO\s+(\S+)\s+(\S+)\s*$")
PRINTS_RATIO = re.compile(r"""["']RATIO \w+""")  # a string literal that starts a RATIO line
# HF Trainer's log dicts, logging lines ("[date time] [WARNING] ..."), progress bars, blank lines
NOISE = re.compile(r"^\{'|^\[\d{4}-\d\d-\d\d [^]]*\] \[[A-Z]+\]|\d+(\.\d+)?(it|s)/(s|it)\]|^\s*$")
# name -> (comparison, threshold, unit) from the performance issue; names absent have no goal
GOALS = {
    "mmlu_vs_lm_eval": (">=", 2.0, "x"),
    "generation": (">=", 3.0, "x"),
    "train_overhead": (">=", 0.95, "x"),
    "cli_startup": ("<", 0.5, " s above python"),
}
COMPARE = {">=": operator.ge, "<": operator.lt, "<=": operator.le, ">": operator.gt}
SCRIPT_TIMEOUT_S = 3600


@dataclass
class Outcome:
    script: str
    seconds: float
    output: str  # stdout
    returncode: int
    name: str | None = None
    value: float | None = None
    errors: str = ""  # stderr

    def table(self) -> str:
        """What the script printed, without training logs; with stderr's tail if it failed."""
        lines = [line for line in self.output.splitlines() if not NOISE.search(line)]
        if self.value is None and self.errors.strip():
            errors = [line for line in self.errors.splitlines() if not NOISE.search(line)]
            lines += ["--- stderr (last lines) ---", *errors[-25:]]
        return "\n".join(lines)

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "ERROR"
        goal = GOALS.get(self.name or "")
        if goal is None:
            return "no goal"
        return "pass" if COMPARE[goal[0]](self.value, goal[1]) else "FAIL"


def parse_ratio(output: str) -> tuple[str, float] | None:
    """The last `RATIO <name> <value>` line of a script's output, if any."""
    for line in reversed(output.splitlines()):
        match = RATIO_LINE.match(line.strip())
        if match:
            try:
                return match.group(1), float(match.group(2))
            except ValueError:
                return None
    return None


def ratio_scripts(only: list[str] | None = None) -> list[Path]:
    scripts = []
    for path in sorted(BENCH.glob("*.py")):
        if path.name == Path(__file__).name or path.name.startswith("_"):
            continue
        if not PRINTS_RATIO.search(path.read_text(encoding="utf-8")):
            continue
        if only and path.stem not in only:
            continue
        scripts.append(path)
    return scripts


def run_script(path: Path, quick: bool) -> Outcome:
    command = [sys.executable, str(path)]
    if quick and "--quick" in path.read_text(encoding="utf-8"):
        command.append("--quick")
    print(f"== {path.name} {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
        )
        output, errors, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or b""
        output = partial.decode() if isinstance(partial, bytes) else partial
        errors, code = f"(timed out after {SCRIPT_TIMEOUT_S} s)", -1
    outcome = Outcome(path.name, time.perf_counter() - started, output, code, errors=errors)
    found = parse_ratio(output) if code == 0 else None
    if found:
        outcome.name, outcome.value = found
    print(outcome.table(), flush=True)
    return outcome


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # PackageNotFoundError
        torch_version = "not installed"
    gpu = "none"
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        proc = subprocess.run(query, capture_output=True, text=True)
        gpu = ", ".join(proc.stdout.split("\n")).strip(", ") or "?"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "GPU": gpu,
        "load average (1/5/15 min) at start": load,
        "torch": torch_version,
        "Python": platform.python_version(),
        "OS": platform.platform(),
    }


def goal_text(name: str | None) -> str:
    goal = GOALS.get(name or "")
    return f"{goal[0]} {goal[1]:g}{goal[2]}" if goal else "-"


def gpu_check() -> str | None:
    """bench/gpu_check.sh's output where an NVIDIA GPU is present, else None."""
    script = BENCH / "gpu_check.sh"
    if not script.exists() or shutil.which("nvidia-smi") is None:
        return None
    proc = subprocess.run(["bash", str(script)], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout + proc.stderr


def write_results(path: Path, outcomes: list[Outcome], info: dict, quick: bool, gpu: str | None):
    lines = [
        "# Benchmark results",
        "",
        f"Written by `bench/run_all.py{' --quick' if quick else ''}` on "
        f"{dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}. "
        "Each ratio compares the harness with the alternative in the same script on the same "
        "machine; see bench/README.md for what each measures.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        "",
        "## Ratios",
        "",
        "| script | ratio | value | goal | result | wall s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in outcomes:
        value = f"{o.value:g}" if o.value is not None else "-"
        lines.append(
            f"| {o.script} | {o.name or '-'} | {value} | {goal_text(o.name)} | {o.verdict} "
            f"| {o.seconds:.0f} |"
        )
    for o in outcomes:
        lines += ["", f"## {o.script}", "", "```", o.table()[-6000:], "```"]
    if gpu is not None:
        lines += ["", "## bench/gpu_check.sh", "", "```", gpu.strip(), "```"]
    written = {line[3:] for line in lines if line.startswith("## ")}
    if gpu is None:
        written.add("bench/gpu_check.sh")  # an old run's output is not today's figure
    lines += earlier_sections(path, written)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def earlier_sections(path: Path, written: set[str]) -> list[str]:
    """The previous file's `## ...` sections that this run does not write again: figures
    recorded by hand or elsewhere (a GPU machine's check, the tiny study, scripts left out by
    --only), which a run on this machine must not erase."""
    if not path.is_file():
        return []
    kept: list[str] = []
    keeping = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            keeping = line[3:] not in written
            while keeping and kept and not kept[-1].strip():
                kept.pop()
            if keeping:
                kept.append("")
        if keeping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--only", nargs="*", help="script names without .py")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    info = machine()
    outcomes = [run_script(path, args.quick) for path in ratio_scripts(args.only)]
    write_results(args.out, outcomes, info, args.quick, gpu_check())
    print(f"\n{'script':<24}{'ratio':<20}{'value':>9}  {'goal':<22}result")
    for o in outcomes:
        value = f"{o.value:.3g}" if o.value is not None else "-"
        print(f"{o.script:<24}{o.name or '-':<20}{value:>9}  {goal_text(o.name):<22}{o.verdict}")
    print(f"wrote {args.out}")
    return 1 if any(o.value is None for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
