"""Vicuna-80: questions from both upstream formats, rule by category, reference as Assistant 1."""

from __future__ import annotations

import json
import shutil

import pytest
from _bench_fixtures import context, local, texts, write_jsonl
from _paths import protocol_file
from harness_plugins.benchmarks.vicuna80 import Vicuna80

from harness.errors import UserError


def protocol_assets() -> dict:
    names = ("llava-rule", "fastchat-vicuna-reference-gpt4")
    return {name: protocol_file(name) for name in names}


@pytest.mark.parametrize(
    "question_file",
    ["fastchat-vicuna-questions", "llava-vicuna80-questions"],
)
def test_questions_load_from_both_upstream_formats(tmp_path, question_file):
    folder = tmp_path / "v80"
    folder.mkdir()
    shutil.copy(protocol_file(question_file), folder / "question.jsonl")
    items = Vicuna80().load(local(folder), context(tmp_path, "vicuna-80", protocol_assets()))
    assert len(items) == 80
    assert items[0].data["question"] == "How can I improve my time management skills?"
    counts = {}
    for item in items:
        counts[item.data["category"]] = counts.get(item.data["category"], 0) + 1
    assert counts["coding"] == 7 and counts["math"] == 3 and counts["generic"] == 10
    # FastChat's GPT-4 reference answers (the asset) cover the coding and math questions
    with_refs = sorted(int(i.id) for i in items if i.data["reference"] is not None)
    assert with_refs == list(range(61, 71))


def test_a_question_file_path_works_too(tmp_path):
    path = protocol_file("llava-vicuna80-questions")
    items = Vicuna80().load(local(path), context(tmp_path, "vicuna-80"))
    assert len(items) == 80 and all(i.data["reference"] is None for i in items)


def test_review_uses_category_rule_and_reference_as_assistant_1(tmp_path):
    bench = Vicuna80()
    ctx = context(tmp_path, "vicuna-80", protocol_assets())
    folder = tmp_path / "v80"
    folder.mkdir()
    shutil.copy(protocol_file("fastchat-vicuna-questions"), folder / "question.jsonl")
    items = bench.load(local(folder), ctx)
    outputs = texts({i.id: f"answer {i.id}" for i in items})
    reqs = {r.id: r for r in bench.judge_requests(items, outputs, 0, ctx)}
    assert sorted(map(int, reqs)) == list(range(61, 71))
    rules = json.loads(protocol_file("llava-rule").read_text())
    question = next(i for i in items if i.id == "68").data["question"]
    references = protocol_file("fastchat-vicuna-reference-gpt4").read_text()
    reference = json.loads(references.splitlines()[7])["choices"][0]["turns"][0]
    expected = (
        f"[Question]\n{question}\n\n[Assistant 1]\n{reference}\n\n[End of Assistant 1]\n\n"
        f"[Assistant 2]\nanswer 68\n\n[End of Assistant 2]\n\n"
        f"[System]\n{rules['math']['prompt']}\n\n"
    )
    assert reqs["68"].messages[1]["content"] == expected
    assert rules["coding"]["prompt"] in reqs["61"].messages[1]["content"]
    result = bench.score(items, outputs, [{k: (8.0, 6.0) for k in reqs}], ctx)
    assert result.metrics["overall"] == pytest.approx(75.0)
    assert result.metrics["coding"] == result.metrics["math"] == pytest.approx(75.0)
    assert result.failures == {"no_reference": 70} and result.n_failed == 70


def test_synthetic_layout_with_full_references_and_default_rule(tmp_path):
    folder = tmp_path / "v80"
    write_jsonl(folder / "question.jsonl", [
        {"question_id": 1, "category": "generic", "turns": ["Hi?"]},
        {"question_id": 2, "category": "fermi", "turns": ["How many?"]},
    ])  # fmt: skip
    write_jsonl(folder / "reference_answer" / "gpt-4.jsonl", [
        {"question_id": 1, "choices": [{"index": 0, "turns": ["Hello."]}]},
        {"question_id": 2, "choices": [{"index": 0, "turns": ["Ten."]}]},
    ])  # fmt: skip
    bench = Vicuna80()
    ctx = context(tmp_path, "vicuna-80", protocol_assets())
    items = bench.load(local(folder), ctx)
    outputs = texts({"1": "Hey.", "2": None})
    reqs = bench.judge_requests(items, outputs, 0, ctx)
    rules = json.loads(protocol_file("llava-rule").read_text())
    assert [r.id for r in reqs] == ["1"]
    assert reqs[0].messages[1]["content"].endswith(rules["default"]["prompt"] + "\n\n")
    result = bench.score(items, outputs, [{"1": (10.0, 9.0)}], ctx)
    assert result.metrics == {"overall": pytest.approx(90.0), "generic": pytest.approx(90.0)}
    assert result.failures == {"no_output": 1}


def test_bad_question_line_names_file_and_line(tmp_path):
    folder = tmp_path / "v80"
    folder.mkdir()
    (folder / "question.jsonl").write_text('{"question_id": 1, "category": "generic"}\n{oops\n')
    with pytest.raises(UserError, match=r"question.jsonl:2: invalid JSON"):
        Vicuna80().load(local(folder), context(tmp_path, "vicuna-80"))
