"""Protocol assets: official prompt files and question sets, pinned by URL and sha256.

registry.toml's `[assets.NAME]` tables give `url`, `sha256`, `mirror` (the file's path inside an
offline mirror folder) and optionally `extract = "python-string:VAR"` (the asset is the string
VAR inside a Python source file). They are read from the registry as merged (the project's file
with a user's `--registry FILE` over it), so a user's file that only adds hardware keeps the
official assets. Verified files are cached under cache_dir("assets"); a file is only ever handed
out after its sha256 matched the pin, so an asset is the official one or absent.

Which assets a run uses is settled when it is planned (`resolve`): the sha256 of each one
available, or None, goes into the keys of the steps of the benchmarks that read it, and the steps
then use exactly those (`planned`), so results made with a fallback prompt are never reused once
the official file is there, and the other way round.
"""

from __future__ import annotations

import ast
import hashlib
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.support.atomic import write_atomic
from harness.support.paths import cache_dir


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
    """The `[assets.*]` tables of the registry as merged: the project's, `registry_file` over it."""
    from harness.config.registry import load_registry

    tables = load_registry(Path(registry_file) if registry_file else None).assets
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


def resolve(
    names: Iterable[str], mirror: Path | None = None, registry_file: Path | None = None
) -> dict[str, str | None]:
    """At planning: each asset's pinned sha256 when its verified file is available (cache,
    mirror or download; it is cached then), None when it is not (the benchmark falls back)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    specs = asset_specs(registry_file)
    found, _missing = available(wanted, mirror=mirror, registry_file=registry_file)
    return {name: specs[name].sha256 if name in found else None for name in wanted}


def plan_assets(
    cells: Iterable[Any],
    plugins: Any,
    mirror: Path | None = None,
    registry_file: Path | None = None,
) -> dict[str, str | None]:
    """`resolve` for every asset that a benchmark evaluated in `cells` reads."""
    names = {
        name
        for cell in cells
        for ev in cell.evals
        for name in plugins.benchmark(ev.benchmark).assets
    }
    return resolve(names, mirror=mirror, registry_file=registry_file)


def planned(
    names: Iterable[str],
    resolved: Mapping[str, str | None],
    mirror: Path | None = None,
    registry_file: Path | None = None,
) -> dict[str, Path]:
    """At run time: the verified files of the assets the plan found (and only those); one the
    plan found that cannot be had now fails the step rather than change what it computes."""
    specs = asset_specs(registry_file)
    files = {}
    for name in names:
        sha256 = resolved.get(name)
        if sha256 is None:
            continue
        spec = specs.get(name)
        if spec is None or spec.sha256 != sha256:
            raise UserError(
                f"asset {name}: the registry's pin changed since the run was planned; run again"
            )
        try:
            files[name] = fetch_one(spec, mirror)
        except UserError as exc:
            raise UserError(
                f"asset {name} was available when the run was planned but is not now: {exc}"
            ) from exc
    return files


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
