"""LLaVA-Bench (In-the-Wild) reads the hub repository's files, a LLaVA checkout (its eval
playground folder or llava/eval/table names) and a hub copy in parquet; repeated ids, oversized
texts and folders in no layout are one line, found by `check` before any step."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from _bench_fixtures import context, llava_bench_dir, local, png_bytes, write_jsonl
from harness_plugins.benchmarks._sources import MAX_PROMPT_CHARS
from harness_plugins.benchmarks.llava_bench import LlavaBench

from harness.errors import UserError


def fields(items):
    return [(i.id, i.data["question"], i.data["category"], i.data["caption"],
             i.data["reference"]) for i in items]  # fmt: skip


def load(tmp_path, source):
    return LlavaBench().load(source, context(tmp_path, "llava-bench"))


def test_llava_checkout_and_table_names_read_as_the_hub_files(tmp_path):
    hub = llava_bench_dir(tmp_path / "llava-bench-in-the-wild")
    expected = fields(load(tmp_path, local(hub)))
    assert [e[0] for e in expected] == ["0", "1", "2", "3"]
    checkout = tmp_path / "LLaVA"
    folder = checkout / "playground" / "data" / "eval" / "llava-bench-in-the-wild"
    shutil.copytree(hub, folder)
    write_jsonl(folder / "answers" / "llava-v1.5-13b.jsonl", [{"question_id": 0, "text": "x"}])
    (folder / "reviews").mkdir()
    for root in (checkout, checkout / "playground" / "data" / "eval", folder):
        items = load(tmp_path, local(root))
        assert fields(items) == expected
        assert items[0].image == str(folder.resolve() / "images" / "001.png")
    table = checkout / "llava" / "eval" / "table"
    (table / "answer").mkdir(parents=True)
    shutil.copytree(hub / "images", table / "images")
    shutil.copy(hub / "questions.jsonl", table / "question.jsonl")
    shutil.copy(hub / "context.jsonl", table / "context.jsonl")
    answers = [
        {"answer_id": f"a{r['question_id']}", "model_id": "gpt-4", "metadata": {}, **r}
        for r in map(json.loads, (hub / "answers_gpt4.jsonl").read_text().splitlines())
    ]
    write_jsonl(table / "answer" / "answer_gpt4.jsonl", answers)
    shutil.rmtree(folder)
    assert fields(load(tmp_path, local(checkout))) == expected
    LlavaBench().check(local(checkout), context(tmp_path, "llava-bench"))


def test_a_parquet_hub_copy_in_a_local_folder(tmp_path):
    import datasets
    from PIL import Image

    columns = {
        "question_id": [0, 1], "question": ["What?", "Why?"], "category": ["conv", "complex"],
        "caption": ["A red square.", "A red square."], "gpt_answer": ["ref0", "ref1"],
        "image_id": ["001", "001"], "image": [Image.open(io.BytesIO(png_bytes()))] * 2,
    }  # fmt: skip
    data = datasets.Dataset.from_dict(columns).cast_column("image", datasets.Image())
    (tmp_path / "lb" / "data").mkdir(parents=True)
    data.to_parquet(str(tmp_path / "lb" / "data" / "train-00000-of-00001.parquet"))
    ctx = context(tmp_path, "llava-bench")
    LlavaBench().check(local(tmp_path / "lb"), ctx)
    assert not ctx.work_dir.exists()  # the check wrote no image
    items = load(tmp_path, local(tmp_path / "lb"))
    assert [(i.id, i.data["reference"]) for i in items] == [("0", "ref0"), ("1", "ref1")]
    assert open(items[0].image, "rb").read(4) == b"\x89PNG"


def test_a_repeated_question_id_names_file_and_id_before_any_step(tmp_path):
    root = llava_bench_dir(tmp_path / "lb")
    lines = (root / "questions.jsonl").read_text().splitlines()
    (root / "questions.jsonl").write_text("\n".join([*lines, lines[2]]) + "\n")
    for call in (LlavaBench().check, LlavaBench().load):
        with pytest.raises(UserError) as err:
            call(local(root), context(tmp_path, "llava-bench"))
        assert str(err.value) == (
            f"{root / 'questions.jsonl'}: question_id 2 appears 2 times; ids must be unique"
        )


def test_oversized_questions_are_refused_with_a_count(tmp_path):
    root = llava_bench_dir(tmp_path / "lb")
    rows = [json.loads(line) for line in (root / "questions.jsonl").read_text().splitlines()]
    for row in rows[:3]:
        row["text"] = "word " * (MAX_PROMPT_CHARS // 5 + 1)
    write_jsonl(root / "questions.jsonl", rows)
    with pytest.raises(UserError, match=r"3 question text\(s\) longer than 65,536 characters"):
        LlavaBench().check(local(root), context(tmp_path, "llava-bench"))


def test_missing_files_and_folders_in_no_layout_are_one_line(tmp_path):
    root = llava_bench_dir(tmp_path / "lb")
    (root / "answers_gpt4.jsonl").unlink()
    with pytest.raises(UserError, match=r"has questions\.jsonl but none of .*answers_gpt4"):
        LlavaBench().check(local(root), context(tmp_path, "llava-bench"))
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError) as err:
        LlavaBench().check(local(tmp_path / "other"), context(tmp_path, "llava-bench"))
    assert "none of the accepted layouts" in str(err.value) and "\n" not in str(err.value)
    assert "llava/eval/table" in str(err.value)
    with pytest.raises(UserError, match="does not exist"):
        LlavaBench().check(local(tmp_path / "nowhere"), context(tmp_path, "llava-bench"))
