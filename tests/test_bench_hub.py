"""Hub sources: local datasets saved in the hub copies' layouts load through `datasets`."""

from __future__ import annotations

import io

import pytest
from _bench_fixtures import context, png_bytes
from harness_plugins.benchmarks.llava_bench import LlavaBench
from harness_plugins.benchmarks.mm_vet import MMVet
from harness_plugins.benchmarks.mmbench import MMBench

from harness.errors import UserError
from harness.specs import DataSource


def save_parquet(folder, split, columns):
    import datasets
    from PIL import Image

    image = Image.open(io.BytesIO(png_bytes()))
    n = len(next(iter(columns.values())))
    data = datasets.Dataset.from_dict({**columns, "image": [image] * n})
    data = data.cast_column("image", datasets.Image())
    folder.mkdir(parents=True, exist_ok=True)
    data.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    card = "configs:\n- config_name: default\n  data_files:\n"
    card += f'  - split: {split}\n    path: "{split}-*"\n'
    (folder / "README.md").write_text(f"---\n{card}---\n")  # as the hub copies declare splits
    return DataSource(kind="hub", path=str(folder), split=split)


def test_llava_bench_hub_layout(tmp_path):
    source = save_parquet(
        tmp_path / "lb",
        "train",
        {
            "question_id": [0, 1],
            "question": ["What?", "Why?"],
            "caption": ["A red square.", "A red square."],
            "gpt_answer": ["ref0", "ref1"],
            "category": ["conv", "complex"],
            "image_id": ["001", "001"],
        },
    )
    items = LlavaBench().load(source, context(tmp_path, "llava-bench"))
    assert [(i.id, i.data["reference"]) for i in items] == [("0", "ref0"), ("1", "ref1")]
    assert all(open(i.image, "rb").read(4) == b"\x89PNG" for i in items)


def test_mm_vet_hub_layout_and_empty_capability(tmp_path):
    columns = {
        "question_id": ["v1_0", "v1_1"],
        "question": ["q0", "q1"],
        "answer": ["a0", "a1"],
        "capability": [["rec", "ocr"], []],
    }
    source = save_parquet(tmp_path / "mv", "test", columns)
    with pytest.raises(UserError, match="mm-vet item v1_1: empty capability list"):
        MMVet().load(source, context(tmp_path, "mm-vet"))


def test_mmbench_hub_layout(tmp_path):
    source = save_parquet(
        tmp_path / "mmb",
        "dev",
        {
            "index": [5],
            "question": ["Which?"],
            "hint": [None],
            "A": ["x"],
            "B": ["y"],
            "C": [None],
            "D": [None],
            "answer": ["B"],
            "category": ["leaf"],
            "L2-category": ["logic_reasoning"],
            "split": ["dev"],
        },
    )
    (item,) = MMBench().load(source, context(tmp_path, "mmbench"))
    assert item.data["options"] == {"A": "x", "B": "y"} and item.data["l2"] == "LR"
    assert item.data["hint"] is None
