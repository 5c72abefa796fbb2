"""MM-Vet reads its release folder and hub copies; MM-Vet and Vicuna-80 refuse repeated ids
(even where JSON would silently keep the last) and files in no layout with one line."""

from __future__ import annotations

import io
import json

import pytest
from _bench_fixtures import context, local, mm_vet_dir, png_bytes, write_jsonl
from harness_plugins.benchmarks.mm_vet import MMVet
from harness_plugins.benchmarks.vicuna80 import Vicuna80

from harness.errors import UserError
from harness.specs import DataSource

CAPS = [["rec"], ["ocr", "math"]]


def fields(items):
    return [(i.id, i.data["question"], i.data["answer"], i.data["capability"]) for i in items]


def hub_dataset():
    import datasets
    from PIL import Image

    columns = {
        "question_id": ["v1_0", "v1_1"], "question": ["What is shown 0?", "What is shown 1?"],
        "answer": ["-1<AND>-5", "thing 1"], "capability": [["rec"], ["ocr", "math"]],
        "image_source": ["x", "y"], "image": [Image.open(io.BytesIO(png_bytes()))] * 2,
    }  # fmt: skip
    return datasets.Dataset.from_dict(columns).cast_column("image", datasets.Image())


def test_release_folder_its_parent_and_hub_copies_give_the_same_items(tmp_path):
    release = mm_vet_dir(tmp_path / "unpacked" / "mm-vet", CAPS)
    ctx = context(tmp_path, "mm-vet")
    expected = fields(MMVet().load(local(release), ctx))
    assert [e[0] for e in expected] == ["v1_0", "v1_1"]
    assert fields(MMVet().load(local(tmp_path / "unpacked"), ctx)) == expected
    data = hub_dataset()
    download = tmp_path / "MMVet"
    (download / "data").mkdir(parents=True)
    data.to_parquet(str(download / "data" / "test-00000-of-00001.parquet"))
    saved = tmp_path / "saved"
    data.save_to_disk(str(saved))
    for source in (local(download), local(saved), DataSource(kind="hub", path=str(saved))):
        check_ctx = context(tmp_path / "check", "mm-vet")
        MMVet().check(source, check_ctx)
        assert not check_ctx.work_dir.exists()  # no image written by the check
        items = MMVet().load(source, ctx)
        assert fields(items) == expected
        assert open(items[0].image, "rb").read(4) == b"\x89PNG"


def test_a_repeated_question_id_in_mm_vet_json_is_refused(tmp_path):
    root = mm_vet_dir(tmp_path / "mm-vet", CAPS)
    text = (root / "mm-vet.json").read_text()
    first = json.dumps({"v1_0": json.loads(text)["v1_0"]})[1:-1]
    (root / "mm-vet.json").write_text(text[:-1] + ", " + first + "}")
    for call in (MMVet().check, MMVet().load):
        with pytest.raises(UserError) as err:
            call(local(root), context(tmp_path, "mm-vet"))
        assert str(err.value) == (
            f"{root / 'mm-vet.json'}: question id v1_0 appears 2 times; ids must be unique"
        )


def test_mm_vet_missing_fields_and_folders_in_no_layout(tmp_path):
    root = mm_vet_dir(tmp_path / "mm-vet", CAPS)
    data = json.loads((root / "mm-vet.json").read_text())
    del data["v1_1"]["answer"]
    (root / "mm-vet.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"mm-vet\.json: question v1_1 lacks answer"):
        MMVet().check(local(root), context(tmp_path, "mm-vet"))
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError) as err:
        MMVet().check(local(tmp_path / "other"), context(tmp_path, "mm-vet"))
    assert "none of the accepted layouts" in str(err.value) and "mm-vet.json" in str(err.value)


def test_vicuna_repeated_ids_are_refused_and_check_reads_the_files(tmp_path):
    folder = tmp_path / "vicuna"
    questions = [{"question_id": i, "text": f"q{i}", "category": "generic"} for i in (1, 2, 2)]
    write_jsonl(folder / "question.jsonl", questions)
    with pytest.raises(UserError) as err:
        Vicuna80().check(local(folder), context(tmp_path, "vicuna-80"))
    assert str(err.value) == (
        f"{folder / 'question.jsonl'}: question_id 2 appears 2 times; ids must be unique"
    )
    write_jsonl(folder / "question.jsonl", questions[:2])
    answers = [{"question_id": 1, "text": "a"}, {"question_id": 1, "text": "b"}]
    write_jsonl(folder / "answers_gpt4.jsonl", answers)
    with pytest.raises(UserError, match=r"answers_gpt4\.jsonl: question_id 1 appears 2 times"):
        Vicuna80().check(local(folder), context(tmp_path, "vicuna-80"))
    write_jsonl(folder / "answers_gpt4.jsonl", answers[:1])
    Vicuna80().check(local(folder), context(tmp_path, "vicuna-80"))
    with pytest.raises(UserError, match="vicuna-80 has no hub copy"):
        Vicuna80().check(DataSource(kind="hub", path="x/y"), context(tmp_path, "vicuna-80"))
