"""Several GPUs or nodes: stage 2 through the `deepspeed` launcher, one process per GPU.

`launch_command` builds the exact command (recorded in the TrainRecord); `run_launched` runs it
and streams its output; `python -m harness.train.launch` is what every rank runs: it loads the
backend plugin by name and calls run_stage2 inside the launched world. Rank 0 writes the
TrainRecord to out_dir/train_record.json for the launching process to read.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness.errors import UserError
from harness.results import TrainRecord
from harness.specs import CellSpec
from harness.train.settings import planned_world

RECORD_FILE = "train_record.json"
CELL_FILE = "cell.json"


def write_hostfile(hosts: list[str], slots: int, path: Path) -> Path:
    """DeepSpeed's hostfile: one `host slots=N` line per node."""
    path = Path(path)
    path.write_text("".join(f"{host} slots={slots}\n" for host in hosts))
    return path


def launch_command(
    cell_file: Path,
    backend: str,
    stage1_dir: Path,
    out_dir: Path,
    *,
    gpus_per_node: int,
    nodes: int = 1,
    hostfile: Path | None = None,
    master_port: int = 29500,
) -> list[str]:
    """The `deepspeed` launcher command that runs stage 2 on nodes x gpus_per_node GPUs."""
    if nodes > 1 and hostfile is None:
        raise UserError(
            f"training on {nodes} nodes needs a hostfile: set HARNESS_HOSTFILE to a DeepSpeed "
            "hostfile (`host slots=N` per line)"
        )
    cmd = ["deepspeed"]
    if hostfile is not None:
        cmd += ["--hostfile", str(hostfile)]
    cmd += ["--num_nodes", str(nodes), "--num_gpus", str(gpus_per_node)]
    cmd += ["--master_port", str(master_port), "--module", "harness.train.launch"]
    cmd += ["--cell", str(cell_file), "--backend", backend]
    cmd += ["--stage1", str(stage1_dir), "--out", str(out_dir)]
    return cmd


def run_launched(
    cell: CellSpec, backend: str, stage1_dir: Path, out_dir: Path, log: Callable[[str], None]
) -> TrainRecord:
    """Launch stage 2 over this machine's GPUs (and the hostfile's nodes); wait; read the record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cell_file = out_dir / CELL_FILE
    cell_file.write_text(cell.model_dump_json())
    gpus_per_node, nodes = planned_world(cell.hardware)
    hostfile = os.environ.get("HARNESS_HOSTFILE")
    cmd = launch_command(
        cell_file,
        backend,
        stage1_dir,
        out_dir,
        gpus_per_node=gpus_per_node,
        nodes=nodes,
        hostfile=Path(hostfile) if hostfile else None,
    )
    log("launching: " + shlex.join(cmd))
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        for line in proc.stdout or []:
            log(line.rstrip())
    if proc.returncode:
        raise RuntimeError(f"launched training failed with exit code {proc.returncode}")
    record = TrainRecord.model_validate_json((out_dir / RECORD_FILE).read_text())
    return record.model_copy(update={"launch_command": cmd})


def _backend(name: str):
    from harness.plugins import get_plugins

    return get_plugins().get("backend", name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one rank of a launched stage-2 training")
    parser.add_argument("--cell", required=True, type=Path)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--stage1", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--local_rank", type=int, default=None)  # passed by older launchers
    args = parser.parse_args(argv)
    from harness.train.stages import _train_stage2

    cell = CellSpec.model_validate_json(args.cell.read_text())
    rank = int(os.environ.get("RANK", "0"))

    def log(line: str) -> None:
        if rank == 0:
            print(line, flush=True)

    record = _train_stage2(cell, _backend(args.backend), args.stage1, args.out, log)
    if rank == 0:
        (args.out / RECORD_FILE).write_text(record.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
