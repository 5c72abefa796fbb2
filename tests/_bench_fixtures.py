"""Mini benchmark sets in the official file layouts, written by tests into temp folders."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from harness.protocols import EvalContext, ModelOutput
from harness.specs import DataSource, EvalSpec


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def context(tmp: Path, benchmark: str, assets: dict | None = None, **eval_fields) -> EvalContext:
    return EvalContext(
        eval=EvalSpec(benchmark=benchmark, **eval_fields),
        assets=assets or {},
        work_dir=tmp / "work",
        judge_name="openai",
        judge_snapshot="gpt-4-0314",
    )


def local(path: Path, **fields) -> DataSource:
    return DataSource(kind="local", path=str(path), **fields)


def texts(mapping: dict[str, str | None]) -> dict[str, ModelOutput]:
    return {k: ModelOutput(id=k, text=v) for k, v in mapping.items()}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def llava_bench_dir(root: Path, skip_image: str | None = None) -> Path:
    """Two images, four questions (conv, detail, complex, conv), captions, GPT-4 answers."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    for name in ("001.png", "002.png"):
        if name != skip_image:
            (root / "images" / name).write_bytes(png_bytes())
    questions = [
        {"question_id": 0, "image": "001.png", "text": "What is red?", "category": "conv"},
        {"question_id": 1, "image": "001.png", "text": "Describe it.", "category": "detail"},
        {"question_id": 2, "image": "002.png", "text": "Why so?", "category": "complex"},
        {"question_id": 3, "image": "002.png", "text": "Any cats?", "category": "conv"},
    ]
    write_jsonl(root / "questions.jsonl", questions)
    write_jsonl(
        root / "context.jsonl",
        [
            {"id": "001", "image": "001.png", "caption": "A red square."},
            {"id": "002", "image": "002.png", "caption": ["A cat.", "On a mat."]},
        ],
    )
    write_jsonl(
        root / "answers_gpt4.jsonl",
        [{"question_id": q["question_id"], "text": f"ref {q['question_id']}"} for q in questions],
    )
    return root


def mm_vet_dir(root: Path, capabilities: list[list[str]]) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    data = {}
    for i, caps in enumerate(capabilities):
        name = f"v1_{i}.png"
        (root / "images" / name).write_bytes(png_bytes())
        data[f"v1_{i}"] = {
            "imagename": name,
            "question": f"What is shown {i}?",
            "answer": "-1<AND>-5" if i == 0 else f"thing {i}",
            "capability": caps,
        }
    (root / "mm-vet.json").write_text(json.dumps(data))
    return root


MMBENCH_COLUMNS = [
    "index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
    "l2-category", "split",
]  # fmt: skip


def mmbench_tsv(path: Path, rows: list[dict]) -> Path:
    """rows: dicts of MMBench columns; missing ones are written as pandas writes NaN."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = base64.b64encode(png_bytes()).decode()
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MMBENCH_COLUMNS, delimiter="\t")
        writer.writeheader()
        for row in rows:
            full = {c: "nan" for c in MMBENCH_COLUMNS}
            full.update(image=image, source="test", split="dev")
            full.update(row)
            writer.writerow(full)
    return path


def mmlu_dir(root: Path, subjects: dict[str, list[int]], dev_per_subject: int = 5) -> Path:
    """cais/mmlu layout: <subject>/{dev,test}-00000-of-00001.parquet; answers as given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for subject, answers in subjects.items():
        folder = root / subject
        folder.mkdir(parents=True, exist_ok=True)
        for split, rows in (
            ("dev", [(f"dev q{i} ", i % 4) for i in range(dev_per_subject)]),
            ("test", [(f"test q{i}", a) for i, a in enumerate(answers)]),
        ):
            table = pa.table(
                {
                    "question": [q for q, _ in rows],
                    "subject": [subject] * len(rows),
                    "choices": [[f"c{j}" for j in range(4)] for _ in rows],
                    "answer": [a for _, a in rows],
                }
            )
            pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
    # the dataset card's configs, as cais/mmlu declares them (so `datasets` knows "dev")
    configs = "".join(
        f"- config_name: {name}\n  data_files:\n"
        + "".join(f'  - split: {sp}\n    path: "{glob}/{sp}-*"\n' for sp in ("dev", "test"))
        for name, glob in [("all", "*"), *((s, s) for s in subjects)]
    )
    (root / "README.md").write_text(f"---\nconfigs:\n{configs}---\n")
    return root
