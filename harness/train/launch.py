"""Several devices or nodes: stage 2 through the `deepspeed` launcher, one process per device.

`launch_command` builds the exact command (recorded in the TrainRecord); `run_launched` runs it
in a process group of its own, streams its output, and ends that whole group when the step fails
or is interrupted; `python -m harness.train.launch` is what every rank runs: it loads the
backend plugin by name and trains stage 2 inside the launched world. Rank 0 writes the
TrainRecord to out_dir/train_record.json for the launching process to read.

With a hostfile (several nodes) DeepSpeed starts every node's ranks through pdsh and ssh, and a
login starts with a fresh environment: DeepSpeed carries only a few prefixes (PYTHON*, NCCL*), so
`carried_env` writes what the ranks also need (the harness's cache and settings, the hub's
offline mode and cache paths) into a file DeepSpeed exports on every node. Secrets stay behind.

CPU hardware (`accelerator = "cpu"`) runs its ranks through the same launcher: DeepSpeed's CPU
accelerator counts `--num_gpus` as CPU ranks and joins them over gloo. Inside a Slurm step of
several tasks, srun has started the ranks already: each runs `main` (or `run_stage2`) directly,
with RANK and WORLD_SIZE taken from SLURM_* (`harness.train.settings.slurm_ranks`).
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import UserError
from harness.results import TrainRecord
from harness.specs import CellSpec
from harness.train.settings import adopt_slurm_ranks, planned_world
from harness.train.stage2 import train_stage2

RECORD_FILE = "train_record.json"
CELL_FILE = "cell.json"
PARENT_ENV = "HARNESS_LAUNCH_PARENT"  # the pid whose death ends every rank
ORPHANED = 75  # a rank's exit code when the process that launched it is gone
STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL for what is still there
ENV_FILE = "launch.env"  # DeepSpeed's `.deepspeed_env`: exported on every node of a hostfile
CARRIED_PREFIXES = ("HARNESS_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH_", "PYTORCH_")
CARRIED_PREFIXES += ("DS_", "OMP_", "MKL_", "GLOO_", "TP_SOCKET_IFNAME", "TOKENIZERS_")
NOT_CARRIED = {PARENT_ENV, "HARNESS_HOSTFILE", "DS_ENV_FILE"}  # a pid means nothing elsewhere
SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")


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
    """The `deepspeed` launcher command that runs stage 2 on nodes x gpus_per_node devices."""
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


def launch_env(cell: CellSpec) -> dict[str, str]:
    """The launcher's environment: this interpreter's scripts first on PATH (the `deepspeed`
    script of the environment the harness runs in), the pid the ranks watch, and for CPU
    hardware DeepSpeed's CPU accelerator with no CUDA device visible."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env[PARENT_ENV] = str(os.getpid())
    if cell.hardware.accelerator == "cpu":
        env["DS_ACCELERATOR"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def carried_env(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """What ranks on other nodes need of `env`, and the names left behind: secrets (each node
    keeps its own login's credentials) and values DeepSpeed cannot export unquoted."""
    carried, left = {}, []
    for name, value in sorted(env.items()):
        if name in NOT_CARRIED or not name.startswith(CARRIED_PREFIXES):
            continue
        secret = any(word in name.upper().removeprefix("TOKENIZERS_") for word in SECRET_WORDS)
        if secret or any(c in value for c in '"$`\\\n'):
            left.append(name)
        else:
            carried[name] = value
    return carried, left


def write_env_file(env: dict[str, str], path: Path, log: Callable[[str], None]) -> Path:
    """DeepSpeed's environment file (`KEY=VALUE` lines, exported on every node), readable by
    this user only; the log names what goes and what stays. DeepSpeed reads one such file only,
    so the user's own (`~/.deepspeed_env` or `./.deepspeed_env`, often NCCL settings) is copied
    in first, and its lines win over the harness's."""
    carried, left = carried_env(env)
    own = users_env_lines(env)
    lines = {**carried, **own}
    path.touch(mode=0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    log(f"other nodes get {len(carried)} variable(s): {', '.join(carried) or 'none'}")
    if own:
        log(f"and {len(own)} from your DeepSpeed env file(s): {', '.join(own)}")
    if left:
        log(f"not carried to other nodes (secrets, or unexportable values): {', '.join(left)}")
    return path


def users_env_lines(env: dict[str, str]) -> dict[str, str]:
    """The `KEY=VALUE` lines DeepSpeed would have exported without the harness's file: its
    environment file name (DS_ENV_FILE, `.deepspeed_env`) in the home folder, then here."""
    name = env.get("DS_ENV_FILE") or ".deepspeed_env"
    lines: dict[str, str] = {}
    for folder in (Path(env.get("HOME") or Path.home()), Path.cwd()):
        try:
            text = (folder / name).read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                lines[key.strip()] = value.strip()
    return lines


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(pgid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to every process of the group, SIGKILL to what is left after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def run_launched(
    cell: CellSpec, backend: str, stage1_dir: Path, out_dir: Path, log: Callable[[str], None]
) -> TrainRecord:
    """Launch stage 2 over this machine's devices (and the hostfile's nodes); wait; read the
    record. The launched processes form one group, ended whatever way this call is left."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cell_file = out_dir / CELL_FILE
    cell_file.write_text(cell.model_dump_json())
    (out_dir / RECORD_FILE).unlink(missing_ok=True)  # an earlier attempt's is no answer
    devices, nodes = planned_world(cell.hardware)
    hostfile = os.environ.get("HARNESS_HOSTFILE")
    cmd = launch_command(
        cell_file,
        backend,
        stage1_dir,
        out_dir,
        gpus_per_node=devices,
        nodes=nodes,
        hostfile=Path(hostfile) if hostfile else None,
        master_port=_free_port(),
    )
    env = launch_env(cell)
    if nodes > 1:  # pdsh logs into each node: a fresh environment there
        env["DS_ENV_FILE"] = str(write_env_file(env, out_dir / ENV_FILE, log))
    log("launching: " + shlex.join(cmd))
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
        process_group=0,
    )
    reader = threading.Thread(target=_stream, args=(proc, log), daemon=True)
    try:  # an interrupt that lands while the reader starts must still end the group
        reader.start()
        code = proc.wait()
    finally:
        stop_group(proc.pid)  # a failed, interrupted or finished launch leaves nothing behind
        (out_dir / ENV_FILE).unlink(missing_ok=True)
        if reader.is_alive():
            reader.join(timeout=STOP_GRACE_S)
        if isinstance(proc.stdout, io.IOBase) and not reader.is_alive():
            proc.stdout.close()  # the pipe, once read to its end
    record_file = out_dir / RECORD_FILE
    if code or not record_file.is_file():
        raise RuntimeError(
            f"launched training failed with exit code {code}"
            + ("" if code else " and wrote no train record")
            + " (the ranks' output is in this step's log)"
        )
    record = TrainRecord.model_validate_json(record_file.read_text())
    return record.model_copy(update={"launch_command": cmd})


def _stream(proc: subprocess.Popen, log: Callable[[str], None]) -> None:
    for line in proc.stdout or []:
        log(line.rstrip())


def exit_with_parent(pid: int, every_s: float = 1.0) -> None:
    """End this rank when the process that launched the world is gone (killed with -9, say):
    nothing else would stop ranks whose launcher's parent died, and they would train on."""
    import psutil

    def gone(process: psutil.Process) -> bool:
        try:
            return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    try:
        parent = psutil.Process(pid)
    except psutil.Error:
        os._exit(ORPHANED)

    def watch() -> None:
        while not gone(parent):
            time.sleep(every_s)
        try:  # the output went to the dead process: writing may fail
            print(f"harness: process {pid} that launched this rank is gone; exiting", flush=True)
        except OSError:
            pass
        finally:
            os._exit(ORPHANED)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _backend(name: str):
    from harness.plugins import get_plugins

    return get_plugins().backend(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one rank of a launched stage-2 training")
    parser.add_argument("--cell", required=True, type=Path)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--stage1", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--local_rank", type=int, default=None)  # passed by older launchers
    args = parser.parse_args(argv)
    adopt_slurm_ranks()  # a task of a multi-task srun step: its rank comes from SLURM_*
    if os.environ.get(PARENT_ENV):
        exit_with_parent(int(os.environ[PARENT_ENV]))
    cell = CellSpec.model_validate_json(args.cell.read_text())
    if cell.hardware.accelerator == "cpu":  # CPU ranks, even on a machine with GPUs
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    rank = int(os.environ.get("RANK", "0"))

    def log(line: str) -> None:
        if rank == 0:  # one write per line: other ranks' output shares the pipe
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    record = train_stage2(cell, _backend(args.backend), args.stage1, args.out, log)
    if rank == 0:
        (args.out / RECORD_FILE).write_text(record.model_dump_json(indent=2))
    leave_world()
    return 0


def leave_world() -> None:
    """Leave the process group together and on purpose: a rank that exits while its gloo
    threads still run can abort in their destructors ("terminate called without an active
    exception"), and the launcher then kills the whole world after the training succeeded."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _exit_now(code: int) -> None:
    """Flush and end the rank without running native destructors at interpreter exit, the
    other place where a library's background thread can abort a finished rank."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
