"""MMLU reads the original release, cais/mmlu's hub layout and JSON lines into the same prompts;
a folder in none of them, a malformed row or an oversized question is one line."""

from __future__ import annotations

import csv
import json

import pytest
from _bench_fixtures import context, local, mmlu_dir
from harness_plugins.benchmarks._sources import MAX_PROMPT_CHARS
from harness_plugins.benchmarks.mmlu import MMLU

from harness.errors import UserError

SUBJECTS = {"anatomy": [2, 3], "virology": [1]}


def hub_rows(subject_answers):
    """The questions mmlu_dir writes, as (split, subject, question, choices, answer)."""
    for subject, answers in subject_answers.items():
        for i in range(5):
            yield "dev", subject, f"dev q{i} ", [f"c{j}" for j in range(4)], i % 4
        for i, a in enumerate(answers):
            yield "test", subject, f"test q{i}", [f"c{j}" for j in range(4)], a


def release_dir(root, subject_answers):
    """The original release: data/<split>/<subject>_<split>.csv, no header, answer letters."""
    for split, subject, question, choices, answer in hub_rows(subject_answers):
        path = root / "data" / split / f"{subject}_{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", newline="") as handle:
            csv.writer(handle).writerow([question, *choices, "ABCD"[answer]])
    return root


def jsonl_rows(subject_answers):
    return [
        {"split": s, "subject": subj, "question": q, "choices": c, "answer": a}
        for s, subj, q, c, a in hub_rows(subject_answers)
    ]


def contexts(tmp_path, source):
    items = MMLU().load(source, context(tmp_path, "mmlu"))
    return [(i.id, i.data["answer"], i.data["context"]) for i in items]


def test_release_hub_and_jsonl_layouts_give_the_same_prompts(tmp_path):
    expected = contexts(tmp_path, local(mmlu_dir(tmp_path / "hub", SUBJECTS)))
    assert [e[0] for e in expected] == ["anatomy/0", "anatomy/1", "virology/0"]
    release = release_dir(tmp_path / "release", SUBJECTS)
    assert contexts(tmp_path, local(release)) == expected
    assert contexts(tmp_path, local(release / "data")) == expected  # the data/ folder itself
    folder = tmp_path / "jsonl"
    folder.mkdir()
    for split in ("dev", "test"):
        rows = [{**r, "answer": "ABCD"[r["answer"]]} for r in jsonl_rows(SUBJECTS)]
        lines = [json.dumps(r) for r in rows if r.pop("split") == split]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    assert contexts(tmp_path, local(folder)) == expected
    one_file = tmp_path / "mmlu.jsonl"
    one_file.write_text("".join(json.dumps(r) + "\n" for r in jsonl_rows(SUBJECTS)))
    assert contexts(tmp_path, local(one_file)) == expected


def test_a_folder_in_no_layout_names_the_layouts_accepted(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    for call in (MMLU().load, MMLU().check):
        with pytest.raises(UserError) as err:
            call(local(tmp_path / "stuff"), context(tmp_path, "mmlu"))
        message = str(err.value)
        assert "\n" not in message and "none of the accepted layouts" in message
        assert "data/test/<subject>_test.csv" in message and "<split>-*.parquet" in message
        assert "test.jsonl" in message


def test_a_release_row_with_five_columns_names_file_and_line(tmp_path):
    root = release_dir(tmp_path / "release", {"anatomy": [0]})
    path = root / "data" / "test" / "anatomy_test.csv"
    path.write_text(path.read_text() + '"short row",a,b,c,A\n')
    with pytest.raises(UserError, match=r"anatomy_test\.csv:2: 5 columns, the release has 6"):
        MMLU().check(local(root), context(tmp_path, "mmlu"))


def test_an_answer_outside_a_to_d_is_refused(tmp_path):
    folder = tmp_path / "jsonl"
    folder.mkdir()
    rows = jsonl_rows({"anatomy": [0]})
    rows[-1]["answer"] = "E"
    for split in ("dev", "test"):
        lines = [json.dumps(r) for r in rows if r["split"] == split]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"test\.jsonl row 1: answer 'E' is neither"):
        MMLU().check(local(folder), context(tmp_path, "mmlu"))


def test_an_oversized_question_is_refused_with_a_count(tmp_path):
    rows = jsonl_rows({"anatomy": [0, 1, 2]})
    for row in rows[-2:]:
        row["question"] = "x" * (MAX_PROMPT_CHARS + 10)
    path = tmp_path / "mmlu.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"2 prompt text\(s\) longer than 65,536 characters"):
        MMLU().load(local(path), context(tmp_path, "mmlu"))
