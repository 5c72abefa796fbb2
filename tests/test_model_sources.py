"""`harness run` checks each real model's config.json before anything is submitted, against a
real HTTP server on loopback standing in for the hub (huggingface_hub itself is not mocked)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.model.hub_sources import check_source, model_sources
from harness.plan.build import Options, build_plan
from harness.plugins import get_plugins

CONFIG = json.dumps({"model_type": "llama", "hidden_size": 8}).encode()
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# repo -> (status, X-Error-Code); any other repo is found and served CONFIG
REFUSALS = {
    "org/missing": (404, "RepoNotFound"),
    "org/gated": (401, "GatedRepo"),
    "org/noconfig": (404, "EntryNotFound"),
}


class FakeHub(BaseHTTPRequestHandler):
    """HEAD/GET /{org}/{name}/resolve/{revision}/{file}, answered as the hub answers them;
    `requests` lists those calls."""

    requests: list[str] = []

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        parts = self.path.lstrip("/").split("/", 4)
        if len(parts) < 5 or parts[2] != "resolve":  # huggingface_hub's own telemetry calls
            self.send_error(404)
            return
        FakeHub.requests.append(f"{self.command} {self.path}")
        org, name, _resolve, _revision, filename = parts
        status, code = REFUSALS.get(f"{org}/{name}", (200, None))
        if filename != "config.json":
            status, code = 404, "EntryNotFound"
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        if code:
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
        else:
            self.send_header("ETag", '"config-etag"')
            self.send_header("Content-Length", str(len(CONFIG)))
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if body and not code:
            self.wfile.write(CONFIG)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hf_env(tmp_path, monkeypatch) -> Path:
    """The hub cache inside tmp_path, online, and no token of the developer's."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    FakeHub.requests.clear()
    return tmp_path / "hf" / "hub"


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed


def _stand_in_slurm(tmp_path: Path) -> Path:
    """sinfo that answers nothing (the executor is accepted) and an sbatch that leaves a mark,
    first on PATH, so that a check that failed to stop the run is seen, not submitted."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sinfo").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ntouch {tmp_path / 'submitted'}\nexit 1\n")
    for tool in ("sinfo", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def _harness_run(tmp_path: Path, registry: str, executor: str = "slurm", **env: str):
    (tmp_path / "reg.toml").write_text(registry)
    (tmp_path / "exp.toml").write_text(
        f'sizes = ["33b"]\nmethods = ["lora"]\n'
        f'executor = {{ name = "{executor}", partition = "debug" }}\n'
    )
    bin_dir = _stand_in_slurm(tmp_path)
    argv = ["run", "--config", str(tmp_path / "exp.toml"), "--registry", str(tmp_path / "reg.toml")]
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CUDA_VISIBLE_DEVICES": "",
            **env,
        },
        timeout=120,
    )


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        (
            '[sizes.33b]\nllm = "org/missing"\n',
            "error: sizes.33b llm 'org/missing': the hub has no such model",
        ),
        (
            '[sizes.33b]\nllm = "org/gated"\n',
            "error: sizes.33b llm 'org/gated': the model is gated",
        ),
        (
            '[sizes.33b]\nllm = "org/found"\n[towers.clip-l14]\n'
            'checkpoints = { 224 = "org/noconfig", 336 = "org/noconfig" }\n',
            "error: towers.clip-l14 checkpoints.224 'org/noconfig': the hub model has no "
            "config.json",
        ),
    ],
    ids=["unknown", "gated", "no-config"],
)
def test_run_refuses_what_the_hub_refuses_before_anything(tmp_path, hub, hf_env, registry, message):
    done = _harness_run(tmp_path, registry, HF_ENDPOINT=hub)
    assert done.returncode == 2, done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert lines[0].endswith("; nothing was started")
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "submitted").exists()
    assert any("/config.json" in r for r in FakeHub.requests)
    if "org/found" in registry:  # the LLM passed, into the hub cache, before the tower failed
        assert list(hf_env.glob("models--org--found/snapshots/*/config.json"))


def test_offline_run_needs_the_model_in_the_hub_cache(tmp_path, hub, hf_env):
    done = _harness_run(tmp_path, "", HF_ENDPOINT=hub, HF_HUB_OFFLINE="1")
    assert done.returncode == 2, done.stderr + done.stdout
    assert done.stderr.strip().splitlines() == [
        "error: sizes.33b llm 'lmsys/vicuna-33b-v1.3': not in the local hub cache and "
        "HF_HUB_OFFLINE is set (fetch it once with network, into a hub cache the nodes share); "
        "nothing was started"
    ]
    assert FakeHub.requests == []
    assert not (tmp_path / "run").exists()


def test_a_cpu_only_local_run_is_refused_before_the_hub_is_asked(tmp_path, hub, hf_env):
    done = _harness_run(tmp_path, '[sizes.33b]\nllm = "org/missing"\n', "local", HF_ENDPOINT=hub)
    assert done.returncode == 2, done.stderr + done.stdout
    assert "this machine has none; nothing was started" in done.stderr
    assert FakeHub.requests == []


def test_a_found_model_is_fetched_into_the_hub_cache_then_read_offline(hub, hf_env, monkeypatch):
    check_source("sizes.33b llm", "org/found", endpoint=hub, cache_dir=hf_env)
    (cached,) = hf_env.glob("models--org--found/snapshots/*/config.json")
    assert cached.read_bytes() == CONFIG
    assert {r.split()[0] for r in FakeHub.requests} <= {"HEAD", "GET"}
    assert all(r.endswith("/org/found/resolve/main/config.json") for r in FakeHub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_source("sizes.33b llm", "org/found", endpoint=_closed_port(), cache_dir=hf_env)
    with pytest.raises(UserError, match="not in the local hub cache and HF_HUB_OFFLINE is set"):
        check_source("sizes.7b llm", "org/other", endpoint=hub, cache_dir=hf_env)


def test_an_unreachable_hub_is_a_warning_not_an_error(hf_env, capsys):
    check_source(
        "sizes.33b llm", "lmsys/vicuna-33b-v1.3", endpoint=_closed_port(), cache_dir=hf_env
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: could not reach the hub to check lmsys/vicuna-33b-v1.3 (")
    assert lines[0].endswith("); the stage-1 job will fetch it on its node")


def test_a_local_folder_must_hold_config_json(tmp_path):
    folder = tmp_path / "vicuna"
    folder.mkdir()
    with pytest.raises(
        UserError, match=f"sizes.33b llm '{folder}': the folder holds no config.json"
    ):
        check_source("sizes.33b llm", str(folder))
    (folder / "config.json").write_text("{}")
    check_source("sizes.33b llm", str(folder))
    with pytest.raises(UserError, match="'/no/such/vicuna': neither a folder here nor a hub id"):
        check_source("sizes.33b llm", "/no/such/vicuna")


def test_each_distinct_source_is_checked_once(tmp_path):
    plan = build_plan(
        Options(matrix=["sizes=tiny-1m,33b", "methods=lora,qlora"], out=tmp_path / "run"),
        get_plugins(),
    )
    models = [cell.model for cell in plan.cells.values()]
    assert len(models) == 4
    assert list(model_sources(models)) == [
        ("sizes.33b llm", "lmsys/vicuna-33b-v1.3"),
        ("towers.clip-l14 checkpoints.224", "openai/clip-vit-large-patch14"),
    ]
