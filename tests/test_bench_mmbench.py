"""MMBench: rotations and prompt, the extraction ladder, CircularEval, bad rows, submission."""

from __future__ import annotations

import csv

import pytest
from _bench_fixtures import context, local, mmbench_tsv, texts
from harness_plugins.benchmarks._choices import extract, parse_match
from harness_plugins.benchmarks.mmbench import MMBench

from harness.errors import UserError
from harness.protocols import JudgeResponse

ROWS = [
    {"index": "0", "question": "Which color?", "hint": "Look closely.", "A": "red", "B": "green",
     "C": "blue", "D": "black", "answer": "A", "category": "color", "l2-category":
     "finegrained_perception (instance-level)"},
    {"index": "1", "question": "Is it a cat?", "A": "yes", "B": "no", "answer": "B",
     "category": "existence", "l2-category": "coarse_perception"},
    {"index": "2", "question": "How many?", "A": "one", "B": "two", "C": "three",
     "answer": "C", "category": "count", "l2-category": "coarse_perception"},
]  # fmt: skip


def load(tmp_path, rows=ROWS, split="dev"):
    name = f"mmbench_{split}_en.tsv"
    path = mmbench_tsv(tmp_path / "mmb" / name, rows)
    ctx = context(tmp_path, "mmbench", split=split)
    return MMBench(), ctx, MMBench().load(local(path.parent), ctx)


def test_rotations_and_prompt(tmp_path):
    bench, ctx, items = load(tmp_path)
    reqs = bench.requests(items, ctx)
    assert [r.id for r in reqs] == ["0@0", "0@1", "0@2", "0@3", "1@0", "1@1", "2@0", "2@1", "2@2"]
    assert reqs[0].prompt == (
        "<image>\nLook closely.\nWhich color?\nA. red\nB. green\nC. blue\nD. black\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert "\nA. green\nB. blue\nC. black\nD. red\n" in reqs[1].prompt
    assert reqs[4].prompt.startswith("<image>\nIs it a cat?\nA. yes\nB. no\n")
    assert len({r.image for r in reqs[:4]}) == 1
    assert items[0].data["l2"] == "FP-S" and items[1].data["l2"] == "CP"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("B", "B"), ("(C) blue.", "C"), ("The answer is B.", "B"), ("It is blue", "C"),
     ("A or B", None), ("something else", None), ("red and green", None)],
)  # fmt: skip
def test_extraction_ladder_steps_one_and_two(answer, expected):
    options = {"A": "red", "B": "green", "C": "blue", "D": "black"}
    assert extract(answer, options) == expected


def test_llm_matching_only_for_unextractable_passes(tmp_path):
    bench, ctx, items = load(tmp_path)
    outputs = texts({"0@0": "A", "0@1": "the first one", "0@2": "C", "0@3": "B"})
    reqs = bench.judge_requests(items[:1], outputs, 0, ctx)
    assert [r.id for r in reqs] == ["0@1"]
    assert "Answer: the first one\nYour output: " in reqs[0].messages[0]["content"]
    assert bench.parse_judgment(reqs[0], JudgeResponse("0@1", "D")) == "D"
    assert bench.parse_judgment(reqs[0], JudgeResponse("0@1", "Z")) == "Z"
    assert bench.parse_judgment(reqs[0], JudgeResponse("0@1", "hmm")) is None  # ask again
    last = bench.retry_request(reqs[0], 2)  # no letter in the last allowed reply: unmatched
    assert bench.parse_judgment(last, JudgeResponse("0@1", "hmm")) == "unmatched"
    failed = JudgeResponse("0@1", None, ok=False, error="HTTP 503")
    assert bench.parse_judgment(last, failed) is None  # the judge failed: not the model's fault
    assert parse_match("E", reqs[0].facts["options"]) is None
    assert bench.retry_request(reqs[0], 2).attempt == 2 and bench.retry_request(reqs[0], 3) is None


def test_circular_eval_with_one_failed_rotation(tmp_path):
    bench, ctx, items = load(tmp_path)
    # item 0 (answer red): rotations put red at A, D, C, B
    # item 1 (answer no):  rotations put no at B, A
    # item 2 (answer three): rotations put three at C, B, A
    outputs = texts(
        {
            "0@0": "A", "0@1": "D", "0@2": "C", "0@3": "B",  # all right -> correct
            "1@0": "B", "1@1": "B",  # second rotation wrong -> wrong
            "2@0": "C", "2@1": "I cannot tell", "2@2": "A",  # one unmatched, none wrong
        }
    )  # fmt: skip
    judged = {"2@1": "Z"}  # the LLM could not match it either: the model's failure
    result = bench.score(items, outputs, [judged], ctx)
    assert result.metrics["overall"] == pytest.approx(100 / 3)  # unmatched = wrong, as upstream
    assert result.metrics["FP-S"] == 100.0 and result.metrics["CP"] == 0.0
    assert result.metrics["leaf/color"] == 100.0 and result.metrics["leaf/count"] == 0.0
    assert result.n_failed == 0 and result.failures == {}
    assert result.extra["unmatched_questions"] == [1] and result.extra["unmatched_passes"] == [1]
    # the diagnostic leaves out the question that is wrong only through its unmatched rotation
    assert result.metrics["diagnostic/overall_matched_only"] == pytest.approx(50.0)
    # a wrong rotation besides the unmatched one: wrong in both, and counted as plainly wrong
    outputs.update(texts({"2@2": "B"}))
    result = bench.score(items, outputs, [judged], ctx)
    assert result.metrics["overall"] == pytest.approx(100 / 3) and result.n_failed == 0
    assert result.metrics["diagnostic/overall_matched_only"] == pytest.approx(100 / 3)
    assert result.extra["unmatched_questions"] == [0] and result.extra["unmatched_passes"] == [1]
    # a judge-matched rotation counts like an extracted one
    outputs.update(texts({"2@2": "A"}))
    result = bench.score(items, outputs, [{"2@1": "B"}], ctx)
    assert result.metrics["overall"] == pytest.approx(200 / 3)
    assert result.extra["unmatched_questions"] == [0]


def test_only_a_failed_judge_excludes_a_question(tmp_path):
    bench, ctx, items = load(tmp_path)
    outputs = texts(
        {
            "0@0": "A", "0@1": "D", "0@2": "C", "0@3": "B",  # correct
            "1@0": "B", "1@1": "maybe",  # 1@1 to the judge, right otherwise
            "2@0": "C", "2@1": "I cannot tell", "2@2": "A",  # 2@1 to the judge
        }
    )  # fmt: skip
    # the judge failed on 1@1 (error or no usable reply: None) and found no option for 2@1
    result = bench.score(items, outputs, [{"1@1": None, "2@1": "Z"}], ctx)
    assert result.metrics["overall"] == pytest.approx(50.0)  # 1 right of 2 known questions
    assert result.n_failed == 1 and result.failures == {"judge_failed": 1}
    assert result.extra["unmatched_questions"] == [1]
    # an unmatched rotation decides a question whatever the judge did on another one
    outputs.update(texts({"2@2": "no idea"}))
    result = bench.score(items, outputs, [{"1@1": None, "2@1": "Z", "2@2": None}], ctx)
    assert result.metrics["overall"] == pytest.approx(50.0) and result.failures == {
        "judge_failed": 1
    }
    # a rotation with no generated answer is unknown too, and named so
    del outputs["1@1"]
    result = bench.score(items, outputs, [{"2@1": "Z"}], ctx)
    assert result.failures == {"no_output": 1} and result.n_failed == 1


class _Judge:
    """Answers every matching request with `reply` (ok), or fails every call."""

    name, official = "fixed", False

    def __init__(self, reply: str | None):
        self.reply = reply

    def snapshot(self) -> str:
        return "fixed-1"

    def judge(self, requests):
        if self.reply is None:
            return [
                JudgeResponse(r.id, None, ok=False, error="connection refused") for r in requests
            ]
        return [JudgeResponse(r.id, self.reply) for r in requests]


@pytest.mark.parametrize(
    ("reply", "overall", "failures"),
    [("Z", 100 / 3, {}), ("no idea", 100 / 3, {}), (None, 50.0, {"judge_failed": 1})],
)
def test_through_the_judge_only_an_unreachable_one_excludes(tmp_path, reply, overall, failures):
    from harness.judging.client import judge_all

    bench, ctx, items = load(tmp_path)
    outputs = texts(
        {
            "0@0": "A", "0@1": "D", "0@2": "C", "0@3": "B",  # correct
            "1@0": "B", "1@1": "B",  # wrong
            "2@0": "C", "2@1": "I cannot tell", "2@2": "A",  # 2@1 goes to the judge
        }
    )  # fmt: skip
    requests = bench.judge_requests(items, outputs, 0, ctx)
    outcome = judge_all(bench, _Judge(reply), requests, cache=None)
    result = bench.score(items, outputs, [outcome.judgments], ctx)
    # "Z", or three replies with no letter: the answer is unmatched, so the question is wrong
    assert result.metrics["overall"] == pytest.approx(overall)
    assert result.failures == failures and result.n_failed == len(failures)


def test_item_scores_are_the_circular_results_behind_overall(tmp_path):
    bench, ctx, items = load(tmp_path)
    outputs = texts(
        {
            "0@0": "A", "0@1": "D", "0@2": "C", "0@3": "B",  # right in every rotation
            "1@0": "B", "1@1": "B",  # second rotation wrong
            "2@0": "C", "2@1": "I cannot tell", "2@2": "A",  # 2@1 left to the judge
        }
    )  # fmt: skip
    # run 0: unmatched (wrong); run 1: matched, right; run 2: the judge failed (excluded)
    runs = [{"2@1": "Z"}, {"2@1": "B"}, {"2@1": None}]
    scores = bench.item_scores(items, outputs, runs, ctx)
    assert scores == {"0": [1.0, 1.0, 1.0], "1": [0.0, 0.0, 0.0], "2": [0.0, 1.0, None]}
    for run, judged in enumerate(runs):  # each run's mean is that run's headline metric
        kept = [s[run] for s in scores.values() if s[run] is not None]
        overall = bench.score(items, outputs, [judged], ctx).metrics["overall"]
        assert 100 * sum(kept) / len(kept) == pytest.approx(overall)
    result = bench.score(items, outputs, runs, ctx)
    assert result.runs[0]["overall"] == pytest.approx(100 / 3)
    assert result.extra["unmatched_questions"] == [1, 0, 0]
    assert result.metrics["overall"] == pytest.approx((100 / 3 + 200 / 3 + 50) / 3)


def test_the_report_shows_unmatched_questions_beside_the_score(tmp_path):
    from harness.report.entries import from_cell
    from harness.report.layouts import table3b
    from harness.results import CellResult

    bench, ctx, items = load(tmp_path)
    outputs = texts(
        {
            "0@0": "A", "0@1": "D", "0@2": "C", "0@3": "B",
            "1@0": "B", "1@1": "B",
            "2@0": "C", "2@1": "I cannot tell", "2@2": "A",
        }
    )  # fmt: skip

    def row(judged):
        result = bench.score(items, outputs, [judged], ctx)
        cell = CellResult(id="c", axes={"size": "7b", "method": "lora"}, spec_sha256="0",
                          benchmarks={"mmbench": result})  # fmt: skip
        return table3b([from_cell(cell)], [])

    table = row({"2@1": "Z"})
    assert table.columns[-1] == "Unmatched" and table.rows[0].values[-1].raw == 1
    assert table.rows[0].values[3].raw == pytest.approx(100 / 3)  # the official overall
    assert any(note.startswith("Unmatched: questions wrong only") for note in table.notes)
    assert "Unmatched" not in row({"2@1": "B"}).columns  # no column when none was unmatched


def test_two_option_row_with_answer_c_names_the_item(tmp_path):
    bad = [{"index": "7", "question": "?", "A": "yes", "B": "no", "answer": "C",
            "category": "x", "l2-category": "coarse_perception"}]  # fmt: skip
    with pytest.raises(UserError, match=r"mmbench item 7 .*answer 'C' is not one of the 2 options"):
        load(tmp_path, bad)


def test_row_with_a_gap_in_options_names_the_item(tmp_path):
    bad = [{"index": "8", "question": "?", "A": "yes", "C": "no", "answer": "A",
            "category": "x", "l2-category": "coarse_perception"}]  # fmt: skip
    with pytest.raises(UserError, match="mmbench item 8 .*skip a letter"):
        load(tmp_path, bad)


def test_legacy_circular_copies_are_dropped(tmp_path):
    copy = {**ROWS[1], "index": "1000001", "A": "no", "B": "yes", "answer": "A"}
    _, _, items = load(tmp_path, [*ROWS, copy])
    assert [i.id for i in items] == ["0", "1", "2"]


def test_test_split_writes_submission_instead_of_score(tmp_path):
    rows = [{**r, "answer": "nan", "split": "test"} for r in ROWS[:2]]
    bench, ctx, items = load(tmp_path, rows, split="test")
    outputs = texts({"0@0": "A", "0@1": "B", "0@2": "C", "0@3": "???", "1@0": "A", "1@1": "B"})
    result = bench.score(items, outputs, [{}], ctx)
    assert result.metrics == {} and result.failures == {"unmatched_passes": 1}
    with open(result.extra["submission"], newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["index"] for r in rows] == ["0", "1000000", "2000000", "3000000", "1", "1000001"]
    assert [r["prediction"] for r in rows] == ["A", "B", "C", "", "A", "B"]
    assert rows[1]["A"] == "green"
    assert bench.item_scores(items, outputs, [{}], ctx) == {}  # no answers, nothing to pair
