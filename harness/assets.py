"""Protocol assets: official prompt files and question sets, pinned by URL and sha256.

registry.toml's `[assets.NAME]` tables give `url`, `sha256`, `mirror` (the file's path inside an
offline mirror folder) and optionally `extract = "python-string:VAR"` (the asset is the string
VAR inside a Python source file). Verified files are cached under cache_dir("assets"); a file is
only ever handed out after its sha256 matched the pin, so an asset is the official one or absent.
"""

from __future__ import annotations

import ast
import hashlib
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import write_atomic
from harness.errors import UserError
from harness.paths import cache_dir, default_registry_file


@dataclass(frozen=True)
class AssetSpec:
    name: str
    url: str
    sha256: str
    mirror: str
    extract: str | None = None

    @property
    def cache_path(self) -> Path:
        suffix = Path(self.mirror).suffix or ".txt"
        return cache_dir("assets") / f"{self.name}-{self.sha256[:12]}{suffix}"


def asset_specs(registry_file: Path | None = None) -> dict[str, AssetSpec]:
    """The `[assets.*]` tables of the registry."""
    path = Path(registry_file) if registry_file else default_registry_file()
    try:
        tables = tomllib.loads(path.read_text()).get("assets", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"cannot read assets from registry {path}: {exc}") from exc
    specs = {}
    for name, table in tables.items():
        missing = [k for k in ("url", "sha256", "mirror") if k not in table]
        if missing:
            raise UserError(f"registry asset {name!r} lacks {', '.join(missing)}")
        specs[name] = AssetSpec(
            name=name,
            url=table["url"],
            sha256=table["sha256"].lower(),
            mirror=table["mirror"],
            extract=table.get("extract"),
        )
    return specs


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_python_string(source: bytes, variable: str, origin: str) -> bytes:
    """The value of the module-level string assignment `variable = "..."` in a Python file."""
    try:
        tree = ast.parse(source.decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise UserError(f"{origin}: not a Python source file ({exc})") from exc
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if variable in names and isinstance(node.value.value, str):
                return node.value.value.encode("utf-8")
    raise UserError(f"{origin}: no string assignment named {variable!r}")


def _checked(spec: AssetSpec, data: bytes, origin: str) -> bytes:
    actual = sha256_bytes(data)
    if actual != spec.sha256:
        raise UserError(
            f"asset {spec.name}: sha256 mismatch for {origin}: expected {spec.sha256}, got {actual}"
        )
    return data


def _download(spec: AssetSpec, timeout: float = 30.0) -> bytes:
    try:
        with urllib.request.urlopen(spec.url, timeout=timeout) as response:  # noqa: S310
            data = response.read()
    except OSError as exc:
        raise UserError(f"asset {spec.name}: cannot download {spec.url}: {exc}") from exc
    if spec.extract:
        kind, _, variable = spec.extract.partition(":")
        if kind != "python-string" or not variable:
            raise UserError(f"asset {spec.name}: unknown extract rule {spec.extract!r}")
        data = extract_python_string(data, variable, spec.url)
    return data


def fetch_one(spec: AssetSpec, mirror: Path | None = None) -> Path:
    """The verified local file of one asset: from the cache, the mirror, or its URL."""
    target = spec.cache_path
    if target.exists() and sha256_bytes(target.read_bytes()) == spec.sha256:
        return target
    if mirror is not None:
        source = Path(mirror) / spec.mirror
        if not source.is_file():
            raise UserError(f"asset {spec.name}: mirror file {source} does not exist")
        data = _checked(spec, source.read_bytes(), str(source))
    else:
        data = _checked(spec, _download(spec), spec.url)
    return write_atomic(target, data)


def fetch(
    names: list[str] | tuple[str, ...] | None = None,
    mirror: Path | None = None,
    registry_file: Path | None = None,
) -> dict[str, Path]:
    """Fetch and verify assets (all when `names` is None); any failure raises UserError."""
    specs = asset_specs(registry_file)
    wanted = list(specs) if names is None else list(names)
    unknown = [n for n in wanted if n not in specs]
    if unknown:
        raise UserError(f"unknown asset(s): {', '.join(unknown)} (known: {', '.join(specs)})")
    return {name: fetch_one(specs[name], mirror) for name in wanted}


def available(
    names: list[str] | tuple[str, ...],
    mirror: Path | None = None,
    registry_file: Path | None = None,
) -> tuple[dict[str, Path], dict[str, str]]:
    """Best effort for evaluation: verified files, and why each missing one is missing.

    A benchmark without its asset falls back to the harness's own prompt and says so; a file that
    exists but has the wrong sha256 still raises (it would silently change the protocol).
    """
    specs = asset_specs(registry_file)
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name in names:
        if name not in specs:
            missing[name] = "not in the registry"
            continue
        try:
            found[name] = fetch_one(specs[name], mirror)
        except UserError as exc:
            if "sha256 mismatch" in str(exc):
                raise
            missing[name] = str(exc)
    return found, missing


def verify(mirror: Path | None = None, registry_file: Path | None = None) -> dict[str, str]:
    """Status of every asset in the cache (or in `mirror`): "ok", "missing" or "mismatch ..."."""
    status = {}
    for name, spec in asset_specs(registry_file).items():
        path = Path(mirror) / spec.mirror if mirror is not None else spec.cache_path
        if not path.is_file():
            status[name] = f"missing ({path})"
            continue
        actual = sha256_bytes(path.read_bytes())
        status[name] = "ok" if actual == spec.sha256 else f"mismatch: {path} has sha256 {actual}"
    return status
