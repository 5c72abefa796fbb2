"""Nodes for the deepspeed launcher's pdsh runner, all on this machine, for the multi-node test.

With a hostfile, DeepSpeed starts every node's ranks through `pdsh`, which logs into each node
with `ssh`. There is one machine here and no second one to log into, so a stand-in `ssh` (first
on PATH) runs the command on this machine in a fresh login environment (`env -i`), as a login on
another node would: only what the command itself exports reaches the ranks. pdsh is real
(Debian's package, installed when missing, as root, with HARNESS_TEST_SLURM=1 as `.ci/run` sets).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from _slurm import ENABLE

SSH = """#!/bin/sh
# Stands in for `ssh [options] host command`: the command runs here, in a fresh environment.
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-l|-i|-F|-E) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host="$1"; shift
echo "$host" >> "{logins}"
exec env -i HOME="$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 sh -c "$*"
"""


def unavailable() -> str | None:
    """Why pdsh cannot be used here (the skip reason), or None once it is installed. The test
    runs where the Slurm tests run (with ENABLE: `.ci/run`'s second call), not in `make test`."""
    if os.environ.get(ENABLE) != "1":
        return f"multi-node launcher test: run with {ENABLE}=1 (.ci/run does; it installs pdsh)"
    if shutil.which("pdsh"):
        return None
    if os.geteuid() != 0:
        return "multi-node launcher test: pdsh is not installed (root installs it)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "pdsh"]):
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"cannot install pdsh ({' '.join(cmd[:2])}: {last})"
    return None if shutil.which("pdsh") else "pdsh installed but not found on PATH"


def stand_in_ssh(folder: Path) -> tuple[Path, Path]:
    """A folder holding the stand-in `ssh`, and the file where it writes each host logged into."""
    bin_dir, logins = folder / "bin", folder / "logins.txt"
    bin_dir.mkdir(parents=True, exist_ok=True)
    ssh = bin_dir / "ssh"
    ssh.write_text(SSH.format(logins=logins))
    ssh.chmod(0o755)
    return bin_dir, logins
