"""CLI start-up: `harness --help` and `harness plugins` against `python -c pass`.

Each command runs several times in turn (interleaved, so a busy machine slows all alike); the
table shows the fastest and the median run and the time above Python's own start. The goal is
under 0.5 s above `python -c pass`; the last line is `RATIO cli_startup <worst excess, s>` from
the fastest runs (the least disturbed measure of what start-up itself costs). The commands run
with bytecode caching on, as in an ordinary install, even where PYTHONDONTWRITEBYTECODE is set
(--no-bytecode-cache keeps it).

    .venv/bin/python bench/cli_startup.py [--quick] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.5


def harness_command() -> list[str]:
    """The installed `harness` script beside this interpreter, else `python -m harness`."""
    script = Path(sys.executable).parent / "harness"
    if script.exists():
        return [str(script)]
    found = shutil.which("harness")
    return [found] if found else [sys.executable, "-m", "harness"]


def time_once(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {proc.stderr.decode()[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of each command")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as set (every start compiles the sources again)",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an ordinary install: .pyc files are kept
    runs = 3 if args.quick else args.runs
    harness = harness_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "harness --help": [*harness, "--help"],
        "harness plugins": [*harness, "plugins"],
    }
    for command in commands.values():  # warm the file cache; not timed
        time_once(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(time_once(command, env))
    base_min = min(times["python -c pass"])
    base_median = statistics.median(times["python -c pass"])
    cache = "without" if env.get("PYTHONDONTWRITEBYTECODE") else "with"
    print(
        f"{runs} runs each, interleaved, {cache} bytecode caching; excess = time above "
        "`python -c pass`"
    )
    print(
        f"{'command':<18}{'fastest s':>11}{'median s':>10}{'excess (fastest)':>18}"
        f"{'excess (median)':>17}"
    )
    worst = 0.0
    for name, values in times.items():
        fastest, median = min(values), statistics.median(values)
        print(
            f"{name:<18}{fastest:>11.3f}{median:>10.3f}{fastest - base_min:>18.3f}"
            f"{median - base_median:>17.3f}"
        )
        worst = max(worst, fastest - base_min)
    verdict = "met" if worst < GOAL_S else "NOT met"
    print(f"largest excess over Python's start: {worst:.3f} s (goal < {GOAL_S} s: {verdict})")
    print(f"RATIO cli_startup {worst:.3f}")


if __name__ == "__main__":
    main()
