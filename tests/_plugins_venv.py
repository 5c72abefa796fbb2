"""Fresh virtual environments that see this environment's packages (torch, harness, ...).

`python -m venv --system-site-packages` alone only sees the *base* interpreter's packages; when
the tests themselves run inside a venv, a .pth file also adds this venv's site-packages (with
its own .pth files, so the editable harness install resolves). No pip is copied in: the parent
environment's pip, run by the new interpreter, installs into the new environment.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path


def fresh_venv(folder: Path) -> Path:
    """Create a venv in `folder`; return its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
        check=True,
        timeout=120,
    )
    python = folder / "bin" / "python"
    if sys.prefix != sys.base_prefix:
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
        (Path(purelib) / "_parent_environment.pth").write_text(lines)
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without PYTHONPATH or plugin blocking, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "HARNESS_BLOCK_PLUGINS", "VIRTUAL_ENV")
    }
    return {**env, **extra}


def run(args: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run a command; on failure the assertion shows its output."""
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        timeout=timeout,
    )
    return result


def pip_install(python: Path, *args: str | Path, cwd: Path | None = None):
    """pip install without build isolation or dependencies: nothing is downloaded."""
    result = run(
        [python, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", *args],
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result
