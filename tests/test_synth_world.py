"""The synthetic world's files: deterministic, and readable by the standard readers exactly as
the official files are (JSON, JSONL, TSV with base64 PNGs, parquet through `datasets`)."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from _paths import protocol_file
from _synth_fixtures import shared_world, tree_digest
from PIL import Image

from harness.data.synthetic import write_world


@pytest.fixture
def synth_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_world(tmp_path_factory)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_seed_gives_byte_identical_files(synth_world: Path, tmp_path: Path) -> None:
    again = write_world(tmp_path / "again", seed=0, scale="small")
    first, second = tree_digest(synth_world), tree_digest(again)
    assert len(first) > 2500
    assert first == second


def test_world_counts_are_pinned(synth_world: Path) -> None:
    manifest = json.loads((synth_world / "world.json").read_text())
    assert manifest["counts"] == {
        "captions": 2400, "images": 2400, "instruct": 4588, "sharegpt": 1440,
        "llava-bench": 60, "mm-vet": 218, "mmbench": 132, "vicuna-80": 80, "mmlu": 200,
    }  # fmt: skip


def _check_conversations(samples: list[dict], images: Path | None) -> None:
    for sample in samples:
        turns = sample["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2), sample["id"]
        assert all(t["value"].strip() for t in turns), sample["id"]
        tokens = sum(t["value"].count("<image>") for t in turns)
        if images is None:
            assert "image" not in sample and tokens == 0, sample["id"]
        else:
            assert tokens == 1 and turns[0]["value"].count("<image>") == 1, sample["id"]
            assert (images / sample["image"]).is_file(), sample["id"]


def test_training_files_are_llava_and_sharegpt_json(synth_world: Path) -> None:
    images = synth_world / "images"
    captions = json.loads((synth_world / "stage1" / "captions.json").read_text())
    _check_conversations(captions, images)
    assert all(c["conversations"][0]["value"] == "<image>" for c in captions)
    instruct = json.loads((synth_world / "stage2" / "llava_instruct.json").read_text())
    with_image = [sample for sample in instruct if "image" in sample]
    _check_conversations(with_image, images)
    _check_conversations([sample for sample in instruct if "image" not in sample], None)
    kinds = Counter(sample["id"].split("_")[0] for sample in instruct)
    assert kinds == {"conv": 1000, "detail": 600, "complex": 900, "mc": 1848, "mmlu": 240}
    assert {sample["id"].split("_")[0] for sample in instruct if "image" not in sample} == {"mmlu"}
    _check_conversations(json.loads((synth_world / "stage2" / "sharegpt.json").read_text()), None)
    with Image.open(images / captions[0]["image"]) as image:
        assert image.format == "PNG" and image.size == (48, 48) and image.mode == "RGB"


def test_llava_bench_layout(synth_world: Path) -> None:
    root = synth_world / "llava-bench"
    questions = jsonl(root / "questions.jsonl")
    context = {row["image"]: row for row in jsonl(root / "context.jsonl")}
    answers = {row["question_id"]: row for row in jsonl(root / "answers_gpt4.jsonl")}
    assert Counter(q["category"] for q in questions) == {"conv": 17, "detail": 15, "complex": 28}
    assert len(context) == 24 and sorted(answers) == [q["question_id"] for q in questions]
    for q in questions:
        assert set(q) == {"image", "text", "category", "question_id"}
        assert q["image"] in context and (root / "images" / q["image"]).is_file()
        assert answers[q["question_id"]]["text"]
    assert all(row["caption"] for row in context.values())


def test_mm_vet_layout(synth_world: Path) -> None:
    data = json.loads((synth_world / "mm-vet" / "mm-vet.json").read_text())
    assert list(data) == [f"v1_{i}" for i in range(218)]  # the official set's 218 questions
    assert len({row["imagename"] for row in data.values()}) == 200
    capabilities = Counter(c for row in data.values() for c in row["capability"])
    assert set(capabilities) == {"rec", "ocr", "know", "gen", "spat", "math"}
    assert min(capabilities.values()) >= 36
    assert any("<AND>" in row["answer"] for row in data.values())
    for row in data.values():
        assert set(row) == {"imagename", "capability", "question", "answer"}
        assert (synth_world / "mm-vet" / "images" / row["imagename"]).is_file()


def test_mmbench_tsv_reads_with_pandas_and_images_decode(synth_world: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(synth_world / "mmbench" / "mmbench_dev_en.tsv", sep="\t")
    assert list(frame.columns) == [
        "index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image",
        "source", "l2-category", "split",
    ]  # fmt: skip
    assert list(frame["index"]) == list(range(len(frame)))
    assert set(frame["l2-category"]) == {"LR", "AR", "RR", "FP-S", "FP-C", "CP"}
    assert frame["category"].nunique() == 11
    assert frame["hint"].notna().any() and frame["hint"].isna().any()
    assert frame["C"].isna().sum() > 0 and frame["D"].isna().sum() > frame["C"].isna().sum()
    for _, row in frame.iterrows():
        options = [letter for letter in "ABCD" if pd.notna(row[letter])]
        assert options == list("ABCD"[: len(options)]) and row["answer"] in options
        image = Image.open(io.BytesIO(base64.b64decode(row["image"])))
        assert image.format == "PNG" and image.size == (48, 48)


def test_vicuna_layout_matches_fastchat(synth_world: Path) -> None:
    root = synth_world / "vicuna-80"
    questions = jsonl(root / "question.jsonl")
    official = jsonl(protocol_file("fastchat-vicuna-questions"))
    assert Counter(q["category"] for q in questions) == Counter(q["category"] for q in official)
    assert [set(q) for q in questions] == [set(q) for q in official]
    references = jsonl(root / "reference_answer" / "gpt-4.jsonl")
    assert [r["question_id"] for r in references] == [q["question_id"] for q in questions]
    assert all(r["choices"][0]["turns"][0] for r in references)
    assert {"coding", "math"} <= {q["category"] for q in questions}


def test_mmlu_reads_with_datasets(synth_world: Path) -> None:
    datasets = pytest.importorskip("datasets")
    root = synth_world / "mmlu"
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert subjects == ["animals", "elementary_mathematics", "geography", "shapes_and_colors"]
    total = 0
    for subject in subjects:
        files = {s: str(root / subject / f"{s}-00000-of-00001.parquet") for s in ("dev", "test")}
        data = datasets.load_dataset("parquet", data_files=files)
        assert data["test"].features["answer"].names == ["A", "B", "C", "D"]
        assert len(data["dev"]) == 5
        for row in data["test"]:
            assert row["subject"] == subject and len(set(row["choices"])) == 4
            assert all(choice.strip() for choice in row["choices"]), row["question"]
        total += len(data["test"])
    assert total == 200
    card = datasets.load_dataset(str(root), "geography")  # the dataset card's configs
    assert sorted(card) == ["dev", "test", "validation"]
