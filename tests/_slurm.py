"""A real Slurm cluster on loopback (one node, or two slurmd on this machine), for the tests.

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


def node_names(count: int) -> list[str]:
    """Names for `count` nodes on this machine that resolve to it, as a rank finds its master by
    the first node's name: this host's, then `localhost` (two slurmd, one per name)."""
    names = list(dict.fromkeys([socket.gethostname().split(".")[0], "localhost"]))
    return names[:count]


def missing_names(count: int) -> str | None:
    """Why `count` nodes cannot be named here (the skip reason), or None."""
    names = node_names(count)
    if len(names) < count:
        return f"a {count}-node test cluster needs {count} names for this machine; it has {names}"
    for name in names:
        try:
            socket.gethostbyname(name)
        except OSError:
            return f"node name {name!r} does not resolve on this machine"
    return None


class Cluster:
    """Nodes on 127.0.0.1 (one slurmd each), reconfigurable between one CPU-only node, one with
    `gres/gpu`, and two CPU-only nodes."""

    def __init__(self, root: Path):
        self.root = root
        self.node = socket.gethostname().split(".")[0]
        self.cpus = max(2, os.cpu_count() or 1)
        self.gpus: int | None = None
        self.nodes = 1
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
    def write_config(self, gpus: int, nodes: int = 1) -> None:
        r = self.root
        for name in ("etc", "state", "spool", "log"):
            (r / name).mkdir(parents=True, exist_ok=True)
        gres = f" Gres=gpu:{gpus}" if gpus else ""
        names = node_names(nodes)
        node_lines = [
            f"NodeName={name} NodeAddr=127.0.0.1 Port={_free_port()} CPUs={self.cpus} "
            f"RealMemory=1000{gres} State=UNKNOWN"
            for name in names
        ]
        lines = [
            "ClusterName=harness-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge' / 'socket'}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}/%n",  # one slurmd per node name
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd-%n.pid'}",
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
            *node_lines,
            f"PartitionName=debug Nodes={','.join(names)} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        gres_conf = "AutoDetect=off\n"
        if gpus:  # two "GPUs" that are character devices every machine has
            files = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"][:gpus]
            gres_conf += "".join(f"NodeName={self.node} Name=gpu File={f}\n" for f in files)
        (r / "etc" / "gres.conf").write_text(gres_conf)

    def start(self, gpus: int = 0, nodes: int = 1) -> None:
        """(Re)start the cluster with `nodes` nodes, each with `gpus` generic GPUs; wait until
        every node is idle."""
        if (self.gpus, self.nodes) == (gpus, nodes) and self._alive():
            return
        self.stop_slurm()
        if "munged" not in self.procs:
            self._start_munge()
        shutil.rmtree(self.root / "state", ignore_errors=True)
        shutil.rmtree(self.root / "spool", ignore_errors=True)
        self.write_config(gpus, nodes)
        log = self.root / "log"
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)], log)
        for name in node_names(nodes):
            (self.root / "spool" / name).mkdir(parents=True, exist_ok=True)
            cmd = ["slurmd", "-D", "-N", name, "-f", str(self.conf)]
            self._spawn(self._slurmd(name), cmd, log)
        self.nodes = nodes
        self._wait(self._idle, "the nodes did not become idle")
        self.gpus = gpus

    @staticmethod
    def _slurmd(name: str) -> str:
        return f"slurmd-{name}"

    def _daemons(self) -> list[str]:
        return ["slurmctld", *(self._slurmd(n) for n in node_names(self.nodes))]

    def _alive(self) -> bool:
        procs = [self.procs.get(name) for name in self._daemons()]
        return all(p is not None and p.poll() is None for p in procs)

    def _idle(self) -> bool:
        done = self.client(["sinfo", "-h", "-N", "-o", "%t"])
        states = done.stdout.split()
        return done.returncode == 0 and states == ["idle"] * self.nodes

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
        for name in [n for n in self.procs if n.startswith("slurmd-")] + ["slurmctld"]:
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
