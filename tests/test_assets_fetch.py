"""Protocol assets: mirror, download over HTTP with extraction, sha256 pins, the CLI."""

from __future__ import annotations

import hashlib
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import typer
from _paths import protocol_mirror
from typer.testing import CliRunner

from harness.cli import assets as assets_command
from harness.config import assets
from harness.errors import UserError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def upstream(tmp_path) -> str:
    """A mirror folder of the official files (skips where they cannot be had)."""
    return str(protocol_mirror(tmp_path / "upstream"))


def test_fetch_all_from_the_mirror_then_verify(tmp_path, upstream):
    paths = assets.fetch(mirror=upstream)
    assert set(paths) >= {"llava-rule", "mmvet-grader-prompt", "fastchat-vicuna-questions"}
    rule = paths["llava-rule"].read_bytes()
    assert hashlib.sha256(rule).hexdigest() == assets.asset_specs()["llava-rule"].sha256
    assert set(assets.verify().values()) == {"ok"}
    assert set(assets.verify(mirror=upstream).values()) == {"ok"}


def test_sha256_mismatch_names_file_expected_and_actual(tmp_path, upstream):
    mirror = tmp_path / "mirror"
    shutil.copytree(upstream, mirror)
    target = mirror / "llava" / "rule.json"
    target.write_text(target.read_text().replace("helpful", "useful"))
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    expected = assets.asset_specs()["llava-rule"].sha256
    with pytest.raises(UserError) as info:
        assets.fetch(["llava-rule"], mirror=mirror)
    message = str(info.value)
    assert str(target) in message and expected in message and actual in message
    # evaluation must not fall back silently either: a wrong file is an error, not "missing"
    with pytest.raises(UserError, match="sha256 mismatch"):
        assets.available(["llava-rule"], mirror=mirror)
    found, missing = assets.available(["llava-rule"], mirror=tmp_path / "empty")
    assert found == {} and "does not exist" in missing["llava-rule"]


class _Evaluator(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        return None


def test_download_extracts_the_python_string(tmp_path, upstream):
    prompt = open(f"{upstream}/mmvet/grader_prompt.txt").read()
    _Evaluator.body = (f"import os\n\nprompt = {prompt!r}\n\nother = 'x'\n").encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Evaluator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = assets.asset_specs()["mmvet-grader-prompt"]
        registry = tmp_path / "registry.toml"
        registry.write_text(
            "[assets.mmvet-grader-prompt]\n"
            f'url = "http://127.0.0.1:{server.server_port}/mm-vet_evaluator.py"\n'
            'extract = "python-string:prompt"\n'
            f'sha256 = "{spec.sha256}"\n'
            'mirror = "mmvet/grader_prompt.txt"\n'
        )
        path = assets.fetch(["mmvet-grader-prompt"], registry_file=registry)["mmvet-grader-prompt"]
        assert path.read_text() == prompt
        _Evaluator.body = b"prompt = 'tampered'\n"
        path.unlink()
        with pytest.raises(UserError, match="sha256 mismatch for http://127.0.0.1"):
            assets.fetch(["mmvet-grader-prompt"], registry_file=registry)
    finally:
        server.shutdown()


def test_unknown_asset_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown asset"):
        assets.fetch(["no-such-asset"], mirror=tmp_path)


def test_cli_fetch_and_verify(tmp_path, upstream):
    app = typer.Typer()
    assets_command.register(app)

    @app.callback()
    def _root() -> None:
        """harness"""

    runner = CliRunner()
    result = runner.invoke(app, ["assets", "verify"])
    assert result.exit_code == 1 and "llava-rule\tmissing" in result.output
    result = runner.invoke(app, ["assets", "fetch", "--mirror", upstream, "llava-rule"])
    assert result.exit_code == 0 and "llava-rule\tok" in result.output
    result = runner.invoke(app, ["assets", "verify", "--mirror", upstream])
    assert result.exit_code == 0 and result.output.count("\tok") == len(assets.asset_specs())
