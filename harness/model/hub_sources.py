"""Check a real model's sources before anything is submitted.

A real size loads its LLM and tower with `from_pretrained` inside the stage-1 job, which under
Slurm starts on a compute node hours after `harness run`. A mistyped hub id, a gated model
without a token, or a model missing from the cache of an offline node would only show there.
So `harness run` fetches each source's config.json first (a few kB, into the normal hub
cache): what the hub refuses is one line and nothing starts; a hub that cannot be reached is a
warning, since the nodes may reach what this machine does not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.errors import UserError, warn
from harness.specs import ModelSpec

CONFIG = "config.json"
HUB_TIMEOUT_S = 10  # one HEAD call, no retries: huggingface_hub's own retry waits minutes
NOTHING_STARTED = "nothing was started"


def model_sources(models: Iterable[ModelSpec]) -> Iterator[tuple[str, str]]:
    """(registry key, source) of each distinct LLM and tower checkpoint the models load."""
    seen: set[str] = set()
    for model in models:
        if model.is_tiny:  # built from the synthetic world, nothing to fetch
            continue
        size, tower, px = model.size, model.tower, model.resolution
        named = [
            (f"sizes.{size.name} llm", size.llm),
            (f"towers.{tower.name} checkpoints.{px}", tower.checkpoints.get(px)),
        ]
        for key, source in named:
            if source and source not in seen:
                seen.add(source)
                yield key, source


def check_model_sources(models: Iterable[ModelSpec]) -> None:
    """Check each distinct source once (see check_source)."""
    for key, source in model_sources(models):
        check_source(key, source)


def check_source(
    key: str, source: str, *, endpoint: str | None = None, cache_dir: Path | None = None
) -> None:
    """A local folder must hold config.json; a hub id's config.json is fetched into the hub
    cache. Raises UserError for what the hub or the offline cache refuses, warns when the
    hub cannot be reached."""
    label = f"{key} {source!r}"
    if Path(source).is_dir() or not _is_hub_id(source):
        if not Path(source).is_dir():
            raise UserError(f"{label}: neither a folder here nor a hub id; {NOTHING_STARTED}")
        if not (Path(source) / CONFIG).is_file():
            raise UserError(f"{label}: the folder holds no config.json; {NOTHING_STARTED}")
        return
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = hub_offline()
    try:
        _fetch_config(source, offline=offline, endpoint=endpoint, cache_dir=cache_dir)
    except GatedRepoError:  # before RepositoryNotFoundError, its base class
        raise UserError(
            f"{label}: the model is gated: accept its license on the hub and log in (HF_TOKEN) "
            f"with an account that has access; {NOTHING_STARTED}"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise UserError(
            f"{label}: the hub has no such model (or it is private: log in with HF_TOKEN); "
            f"{NOTHING_STARTED}"
        ) from None
    except RemoteEntryNotFoundError:
        raise UserError(f"{label}: the hub model has no config.json; {NOTHING_STARTED}") from None
    except LocalEntryNotFoundError as exc:
        if offline:
            raise UserError(
                f"{label}: not in the local hub cache and HF_HUB_OFFLINE is set (fetch it once "
                f"with network, into a hub cache the nodes share); {NOTHING_STARTED}"
            ) from None
        _unreachable(source, exc)
    except Exception as exc:  # noqa: BLE001 - network down, timeout, hub error: the node may do
        _unreachable(source, exc)


def _unreachable(source: str, exc: BaseException) -> None:
    warn(
        f"could not reach the hub to check {source} ({_reason(exc)}); the stage-1 job will "
        "fetch it on its node"
    )


def _fetch_config(
    repo: str, *, offline: bool, endpoint: str | None, cache_dir: Path | None
) -> None:
    """config.json into the hub cache. Online, one quick HEAD call first, so that an
    unreachable hub costs HUB_TIMEOUT_S, not hf_hub_download's retries (six, a minute each)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    if not offline:
        url = hf_hub_url(repo, CONFIG, endpoint=endpoint)
        get_hf_file_metadata(url, timeout=HUB_TIMEOUT_S, endpoint=endpoint)
    hf_hub_download(
        repo,
        CONFIG,
        cache_dir=cache_dir,
        endpoint=endpoint,
        etag_timeout=HUB_TIMEOUT_S,
        local_files_only=offline,
    )


def _is_hub_id(source: str) -> bool:
    """What from_pretrained would look up on the hub (it takes an existing folder first)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub reads it."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in {"1", "ON", "YES", "TRUE"}


def _reason(exc: BaseException) -> str:
    """The root cause's first line (a refused connection, not huggingface_hub's advice)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
