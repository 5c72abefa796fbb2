"""MMBench reads its official TSVs under their release names (base64 images), local hub copies,
and the test split without answers, for which it writes the evaluation server's .xlsx; repeated
indices and folders in no layout are one line."""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

import pytest
from _bench_fixtures import context, local, mmbench_tsv, png_bytes, texts
from harness_plugins.benchmarks._sources import MAX_PROMPT_CHARS
from harness_plugins.benchmarks.mmbench import MMBench

from harness.errors import UserError
from harness.specs import DataSource

ROW = {"question": "Which?", "A": "red", "B": "green", "answer": "A", "category": "color",
       "l2-category": "coarse_perception"}  # fmt: skip
SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def rows(n, **fields):
    return [{**ROW, "index": str(i), **fields} for i in range(n)]


def load(tmp_path, source, split="dev"):
    return MMBench().load(source, context(tmp_path, "mmbench", split=split))


@pytest.mark.parametrize(
    "name", ["mmbench_dev_20230712.tsv", "MMBench_DEV_EN.tsv", "mmbench_dev_en_20231003.tsv",
             "MMBench_DEV_EN_V11.tsv"],
)  # fmt: skip
def test_official_file_names_in_a_folder(tmp_path, name):
    folder = tmp_path / "mmb"
    mmbench_tsv(folder / name, rows(2))
    mmbench_tsv(folder / name.replace("EN", "CN").replace("en", "cn"), rows(1))
    mmbench_tsv(folder / "mmbench_test_en_20231003.tsv", rows(1, answer="nan", split="test"))
    items = load(tmp_path, local(folder))
    assert [i.id for i in items] == ["0", "1"]
    assert open(items[0].image, "rb").read() == png_bytes()  # the base64 column, decoded
    assert [i.data["answer"] for i in load(tmp_path, local(folder), "test")] == [None]


def test_two_english_files_of_one_split_ask_for_the_file(tmp_path):
    folder = tmp_path / "mmb"
    mmbench_tsv(folder / "mmbench_dev_20230712.tsv", rows(1))
    mmbench_tsv(folder / "MMBench_DEV_EN.tsv", rows(1))
    with pytest.raises(UserError, match="several dev TSVs .* pass the file itself"):
        load(tmp_path, local(folder))
    assert len(load(tmp_path, local(folder / "MMBench_DEV_EN.tsv"))) == 1


def test_a_folder_in_no_layout_names_the_layouts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as err:
        MMBench().check(local(tmp_path / "empty"), context(tmp_path, "mmbench"))
    assert "none of the accepted layouts" in str(err.value) and "\n" not in str(err.value)
    assert "MMBench_DEV_EN.tsv" in str(err.value) and "hub copy" in str(err.value)


def test_rows_sharing_an_index_are_refused_naming_file_and_index(tmp_path):
    path = mmbench_tsv(tmp_path / "mmb" / "mmbench_dev_en.tsv", rows(11, index="0"))
    for call in (MMBench().load, MMBench().check):
        with pytest.raises(UserError) as err:
            call(local(path), context(tmp_path, "mmbench"))
        assert str(err.value) == (
            f"{path}: index 0 appears 11 times; ids must be unique"
        )  # fmt: skip


def test_legacy_circular_copies_are_not_duplicates(tmp_path):
    copy = {**ROW, "index": "1000000", "A": "green", "B": "red", "answer": "B"}
    path = mmbench_tsv(tmp_path / "mmbench_dev_20230712.tsv", [*rows(1), copy])
    assert [i.id for i in load(tmp_path, local(path))] == ["0"]


def test_check_validates_without_writing_images(tmp_path):
    path = mmbench_tsv(tmp_path / "mmb" / "MMBench_DEV_EN.tsv", rows(3))
    ctx = context(tmp_path, "mmbench")
    MMBench().check(local(path.parent), ctx)
    assert not ctx.work_dir.exists()
    bad = mmbench_tsv(tmp_path / "bad" / "MMBench_DEV_EN.tsv", rows(1, answer="C"))
    with pytest.raises(UserError, match="answer 'C' is not one of the 2 options"):
        MMBench().check(local(bad), ctx)


def test_an_oversized_question_is_refused_with_a_count(tmp_path):
    big = rows(3)
    big[1]["hint"] = "h" * MAX_PROMPT_CHARS
    path = mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv", big)
    with pytest.raises(UserError, match=r"1 question .* longer than 65,536 characters .*id 1,"):
        MMBench().check(local(path), context(tmp_path, "mmbench"))


def test_a_local_hub_copy_is_detected(tmp_path):
    import datasets
    from PIL import Image

    columns = {
        "index": [3, 4], "question": ["Which?", "Where?"], "hint": [None, "Look."],
        "A": ["x", "up"], "B": ["y", "down"], "C": [None, None], "D": [None, None],
        "answer": ["B", "A"], "category": ["leaf", "leaf"],
        "L2-category": ["logic_reasoning", "coarse_perception"], "split": ["dev", "dev"],
        "image": [Image.open(io.BytesIO(png_bytes()))] * 2,
    }  # fmt: skip
    data = datasets.Dataset.from_dict(columns).cast_column("image", datasets.Image())
    folder = tmp_path / "MMBench"
    (folder / "data").mkdir(parents=True)
    data.to_parquet(str(folder / "data" / "dev-00000-of-00001.parquet"))
    MMBench().check(local(folder), context(tmp_path, "mmbench"))
    items = load(tmp_path, local(folder))
    assert [(i.id, i.data["answer"], i.data["l2"]) for i in items] == [
        ("3", "B", "LR"), ("4", "A", "CP")
    ]  # fmt: skip
    saved = tmp_path / "saved"
    datasets.DatasetDict({"dev": data}).save_to_disk(str(saved))
    MMBench().check(DataSource(kind="hub", path=str(saved)), context(tmp_path, "mmbench"))
    assert [i.id for i in load(tmp_path, local(saved))] == ["3", "4"]


def xlsx_rows(path):
    """The sheet's rows as lists of strings, read from the Office Open XML parts."""
    with zipfile.ZipFile(path) as archive:
        assert {"[Content_Types].xml", "xl/workbook.xml"} <= set(archive.namelist())
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    table = []
    for row in sheet.iter(f"{SHEET}row"):
        cells = {}
        for cell in row.iter(f"{SHEET}c"):
            column = re.match(r"[A-Z]+", cell.get("r")).group()
            text = cell.find(f"{SHEET}is/{SHEET}t")
            cells[column] = text.text if text is not None else cell.find(f"{SHEET}v").text
        table.append([cells.get(c, "") for c in "ABCDEFGH"])
    return table


def test_test_split_without_answers_writes_the_servers_xlsx(tmp_path):
    test_rows = [{k: v for k, v in r.items() if k != "answer"} for r in rows(2, split="test")]
    path = mmbench_tsv(tmp_path / "mmb" / "mmbench_test_en_20231003.tsv", test_rows)
    bench, ctx = MMBench(), context(tmp_path, "mmbench", split="test")
    items = bench.load(local(path.parent), ctx)
    outputs = texts({"0@0": "A", "0@1": "B", "1@0": "B", "1@1": "A"})
    result = bench.score(items, outputs, [{}], ctx)
    assert result.metrics == {}
    upload = result.extra["submission_xlsx"]
    assert upload.endswith(".xlsx") and upload in result.extra["note"]
    assert "MMBench evaluation server" in result.extra["note"]
    table = xlsx_rows(upload)
    assert table[0] == ["index", "question", "A", "B", "C", "D", "prediction", "split"]
    assert table[1:] == [
        ["0", "Which?", "red", "green", "", "", "A", "test"],
        ["1000000", "Which?", "green", "red", "", "", "B", "test"],
        ["1", "Which?", "red", "green", "", "", "B", "test"],
        ["1000001", "Which?", "green", "red", "", "", "A", "test"],
    ]
