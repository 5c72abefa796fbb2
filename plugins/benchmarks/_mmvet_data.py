"""MM-Vet's data in the layouts users have: the release folder and the hub dataset.

The release (mm-vet.zip) unpacks to mm-vet/ with mm-vet.json (question id -> imagename,
question, answer, capability) and images/; the hub copy (lmms-lab/MMVet) is parquet with the
images inside, downloaded by id or kept in a local folder. Either becomes (id, row, image)
triples, `image` a file path or the hub's embedded image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError

from . import _common as common
from . import _sources as sources

if TYPE_CHECKING:
    from harness.specs import DataSource

LAYOUTS = (
    "the release folder (mm-vet.json and images/, or a folder holding mm-vet/)",
    "a hub copy in parquet (lmms-lab/MMVet) or saved with save_to_disk",
)
HUB_COLUMNS = ("question_id", "question", "answer", "capability")
Triple = tuple[str, dict[str, Any], Any]


def release_root(root: Path) -> Path | None:
    for candidate in (root, root / "mm-vet"):
        if (candidate / "mm-vet.json").is_file():
            return candidate
    return None


def read_release_json(path: Path) -> dict[str, Any]:
    """mm-vet.json, refusing a repeated question id (JSON would keep only the last)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        sources.refuse_duplicates((key for key, _ in pairs), str(path), "question id")
        return dict(pairs)

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an object of question id -> question")
    return data


def release_rows(root: Path) -> list[Triple]:
    base = release_root(root)
    if base is None:
        raise sources.no_layout("mm-vet", root, LAYOUTS)
    path = base / "mm-vet.json"
    triples = []
    for qid, row in read_release_json(path).items():
        missing = [k for k in ("imagename", "question", "answer") if k not in row]
        if missing:
            raise UserError(f"{path}: question {qid} lacks {', '.join(missing)}")
        image = common.require_image(base / "images" / row["imagename"], "mm-vet", qid)
        triples.append((qid, row, image))
    refuse_oversized(triples, str(path))
    return triples


def hub_triples(rows: list[dict[str, Any]], origin: str) -> list[Triple]:
    sources.refuse_duplicates((row.get("question_id") for row in rows), origin, "question_id")
    triples = [(str(row["question_id"]), row, row.get("image")) for row in rows]
    refuse_oversized(triples, origin)
    return triples


def refuse_oversized(triples: list[Triple], origin: str) -> None:
    for field in ("question", "answer"):
        texts = ((qid, row.get(field)) for qid, row, _ in triples)
        sources.refuse_oversized(texts, origin, field)


def read(source: DataSource, with_images: bool = True) -> list[Triple]:
    """(id, row, image) from the release folder, a hub id, or a local hub copy; images of a
    hub copy are not read when `with_images` is False (a check)."""
    if source.kind in ("local", "synthetic"):
        root = common.source_dir(source, "mm-vet")
        if release_root(root) is not None or not sources.is_hub_copy(root):
            return release_rows(root)
        source = source.model_copy(update={"kind": "hub"})
    if not with_images and sources.local_copy(source):
        root = Path(str(source.path)).expanduser()
        rows = sources.hub_columns(root, source.split or "test", HUB_COLUMNS)
        return hub_triples(rows, str(root))
    return hub_triples(common.hub_rows(source, "test"), f"hub:{source.path}")
