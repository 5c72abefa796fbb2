"""A real one-node Slurm cluster on loopback, for the tests that run the harness through it.

Debian's `slurmctld slurmd slurm-client munge` (installed when missing, as root), a private
munged (own key and socket), and a slurm.conf with no cgroups (`proctrack/linuxproc`,
`task/none`) and no accounting database. The daemons run in the foreground as this process's
children, so that stopping the cluster ends exactly them. Clients find it through SLURM_CONF.

It starts only where it may change the machine: as root, with HARNESS_TEST_SLURM=1 (as
`.ci/run` sets); elsewhere the tests that need it skip with one reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ENABLE = "HARNESS_TEST_SLURM"
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
PROGRAMS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged")
START_TIMEOUT_S = 90


def _run(cmd: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def install() -> str | None:
    """Install the Slurm and munge packages if missing; why not, or None when they are there."""
    if all(shutil.which(p) for p in PROGRAMS):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", *PACKAGES],
    ):
        try:
            done = _run(cmd, timeout=600, env=env, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot install Slurm ({' '.join(cmd[:2])}: {exc})"
        if done.returncode != 0:
            return f"cannot install Slurm ({' '.join(cmd[:2])}: {_last_line(done.stderr)})"
    missing = [p for p in PROGRAMS if not shutil.which(p)]
    return f"Slurm installed but {', '.join(missing)} not found" if missing else None


def unavailable() -> str | None:
    """Why no test cluster can be started here (the skip reason), or None."""
    if os.environ.get(ENABLE) != "1":
        return f"real Slurm cluster tests: run as root with {ENABLE}=1 (.ci/run does)"
    if os.geteuid() != 0:
        return "real Slurm cluster tests need root (they install and start slurmctld/slurmd)"
    return install()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One node on 127.0.0.1, reconfigurable between a CPU-only node and one with `gres/gpu`."""

    def __init__(self, root: Path):
        self.root = root
        self.node = socket.gethostname().split(".")[0]
        self.cpus = max(2, os.cpu_count() or 1)
        self.gpus: int | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = root / "etc" / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}

    # --- munge ---
    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        m = key.parent
        self._spawn(
            "munged",
            ["munged", "-F", "--force", "-S", str(m / "socket"), "--key-file", str(key)]
            + ["--pid-file", str(m / "munged.pid"), "--seed-file", str(m / "seed")],
        )
        self._wait(lambda: (m / "socket").exists(), "munged did not create its socket")

    # --- slurm ---
    def write_config(self, gpus: int) -> None:
        r = self.root
        for name in ("etc", "state", "spool", "log"):
            (r / name).mkdir(parents=True, exist_ok=True)
        gres = f" Gres=gpu:{gpus}" if gpus else ""
        lines = [
            "ClusterName=harness-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge' / 'socket'}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SlurmctldTimeout=10",
            "SlurmdTimeout=10",
            "MessageTimeout=10",
            "InactiveLimit=0",
            "KillWait=2",
            "MinJobAge=300",
            "SchedulerType=sched/backfill",
            "SlurmdParameters=config_overrides",  # a 1-core machine still offers 2 CPUs
            "GresTypes=gpu",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000{gres} "
            "State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        gres_conf = "AutoDetect=off\n"
        if gpus:  # two "GPUs" that are character devices every machine has
            files = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"][:gpus]
            gres_conf += "".join(f"NodeName={self.node} Name=gpu File={f}\n" for f in files)
        (r / "etc" / "gres.conf").write_text(gres_conf)

    def start(self, gpus: int = 0) -> None:
        """(Re)start the cluster with `gpus` generic GPUs on its node; wait until it is idle."""
        if self.gpus == gpus and self._alive():
            return
        self.stop_slurm()
        if "munged" not in self.procs:
            self._start_munge()
        shutil.rmtree(self.root / "state", ignore_errors=True)
        shutil.rmtree(self.root / "spool", ignore_errors=True)
        self.write_config(gpus)
        log = self.root / "log"
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)], log)
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)], log)
        self._wait(self._idle, "the node did not become idle")
        self.gpus = gpus

    def _alive(self) -> bool:
        procs = [self.procs.get(name) for name in ("slurmctld", "slurmd")]
        return all(p is not None and p.poll() is None for p in procs)

    def _idle(self) -> bool:
        done = self.client(["sinfo", "-h", "-o", "%t"])
        return done.returncode == 0 and done.stdout.strip() == "idle"

    def client(self, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        return _run(cmd, timeout=timeout, env={**os.environ, **self.env})

    def _spawn(self, name: str, cmd: list[str], log_dir: Path | None = None) -> None:
        log_dir = log_dir or self.root / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{name}.log", "ab") as out:
            self.procs[name] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                break
            time.sleep(0.5)
        logs = {p.stem: _last_line(p.read_text(errors="replace")) for p in self.logs()}
        raise RuntimeError(f"test Slurm cluster: {what}; last log lines: {logs}")

    def logs(self) -> list[Path]:
        return sorted((self.root / "log").glob("*.log"))

    # --- teardown ---
    def stop_slurm(self) -> None:
        """Cancel every job, then end slurmd and slurmctld (the job steps end with their jobs)."""
        if self._alive():
            self.client(["scancel", "--full", "--user", "root"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not self.client(["squeue", "-h", "-t", "PD,R,CG,CF,S"]).stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld"):
            self._end(name)
        self.gpus = None

    def stop(self) -> None:
        self.stop_slurm()
        self._end("munged")

    def _end(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
