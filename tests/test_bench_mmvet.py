"""MM-Vet: the grader query as mm-vet_evaluator.py builds it, the re-ask ladder, the scores."""

from __future__ import annotations

import pytest
from _bench_fixtures import context, local, mm_vet_dir, texts
from _paths import protocol_file
from harness_plugins.benchmarks.mm_vet import MMVet, parse_correctness

from harness.errors import UserError
from harness.protocols import JudgeResponse


def grader_prompt() -> dict:
    return {"mmvet-grader-prompt": protocol_file("mmvet-grader-prompt")}


def test_grader_query_equals_official_construction(tmp_path):
    bench = MMVet()
    ctx = context(tmp_path, "mm-vet", grader_prompt())
    items = bench.load(local(mm_vet_dir(tmp_path / "mv", [["ocr", "math"]])), ctx)
    (req,) = bench.judge_requests(items, texts({"v1_0": "x = -1"}), 0, ctx)
    prompt = protocol_file("mmvet-grader-prompt").read_text()
    # mm-vet_evaluator.py: prompt + "\n" + " | ".join([question, gt spaced, prediction, ""])
    expected = prompt + "\n" + " | ".join(["What is shown 0?", "-1 <AND> -5", "x = -1", ""])
    assert req.messages == ({"role": "user", "content": expected},)
    assert expected.endswith("| 1.0\n\nWhat is shown 0? | -1 <AND> -5 | x = -1 | ")
    assert (req.temperature, req.max_tokens, req.kind) == (0.0, 3, "correctness")
    assert bench.protocol(ctx)["official"] is True


def test_reask_rule_appends_suffix_and_raises_temperature(tmp_path):
    bench = MMVet()
    ctx = context(tmp_path, "mm-vet", grader_prompt())
    items = bench.load(local(mm_vet_dir(tmp_path / "mv", [["rec"]])), ctx)
    (req,) = bench.judge_requests(items, texts({"v1_0": "a cat"}), 2, ctx)
    ladder = [bench.retry_request(req, attempt) for attempt in range(1, 6)]
    assert ladder[-1] is None
    suffixed = req.messages[0]["content"] + "\nPredict the correctness of the answer (digit): "
    assert all(r.messages[0]["content"] == suffixed for r in ladder[:-1])
    assert [r.temperature for r in ladder[:-1]] == [0.0, 0.5, 1.0, 1.5]
    assert [(r.run, r.attempt) for r in ladder[:-1]] == [(2, 1), (2, 2), (2, 3), (2, 4)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0.4", 0.4),
        ("1.0", 1.0),
        ("0.0 because", 0.0),
        ("1.5", None),
        ("Correct", None),
        (None, None),
    ],
)
def test_correctness_parsing(content, expected):
    assert parse_correctness(content) == expected


def test_capability_scores_and_std_over_three_runs(tmp_path):
    bench = MMVet()
    ctx = context(tmp_path, "mm-vet", grader_prompt(), runs=3)
    caps = [["rec"], ["rec", "ocr"], ["ocr", "math"], ["know"]]
    items = bench.load(local(mm_vet_dir(tmp_path / "mv", caps)), ctx)
    outputs = texts({i.id: "answer" for i in items})
    runs = [
        {"v1_0": 1.0, "v1_1": 0.5, "v1_2": 0.0, "v1_3": 1.0},  # total 62.5
        {"v1_0": 1.0, "v1_1": 0.5, "v1_2": 0.5, "v1_3": 1.0},  # total 75.0
        {"v1_0": 0.0, "v1_1": 0.5, "v1_2": None, "v1_3": 1.0},  # v1_2 failed: total 50.0
    ]
    result = bench.score(items, outputs, runs, ctx)
    assert [r["total"] for r in result.runs] == pytest.approx([62.5, 75.0, 50.0])
    assert result.metrics["total"] == pytest.approx(62.5)
    assert result.std["total"] == pytest.approx((312.5 / 3) ** 0.5)  # population std
    # rec: (1+.5)/2, (1+.5)/2, (0+.5)/2 -> 75, 75, 25
    assert result.metrics["rec"] == pytest.approx((75 + 75 + 25) / 3)
    # ocr: (.5+0)/2, (.5+.5)/2, .5/1 -> 25, 50, 50
    assert result.metrics["ocr"] == pytest.approx(125 / 3)
    assert [r.get("math") for r in result.runs] == [0.0, 50.0, None]
    assert result.metrics["math"] == pytest.approx(25.0)
    assert result.n_failed == 1 and result.failures == {"judge_failed": 1}


def test_judge_failure_is_counted_not_scored(tmp_path):
    bench = MMVet()
    ctx = context(tmp_path, "mm-vet", grader_prompt())
    items = bench.load(local(mm_vet_dir(tmp_path / "mv", [["rec"], ["rec"]])), ctx)
    outputs = texts({"v1_0": "a", "v1_1": "b"})
    reqs = bench.judge_requests(items, outputs, 0, ctx)
    parsed = {
        reqs[0].id: bench.parse_judgment(reqs[0], JudgeResponse(reqs[0].id, "1.0")),
        reqs[1].id: bench.parse_judgment(reqs[1], JudgeResponse(reqs[1].id, None, ok=False)),
    }
    result = bench.score(items, outputs, [parsed], ctx)
    assert result.metrics["total"] == 100.0 and result.n_failed == 1


def test_empty_capability_list_names_the_item(tmp_path):
    root = mm_vet_dir(tmp_path / "mv", [["rec"], []])
    with pytest.raises(UserError, match="mm-vet item v1_1: empty capability list"):
        MMVet().load(local(root), context(tmp_path, "mm-vet"))


def test_missing_image_names_the_item(tmp_path):
    root = mm_vet_dir(tmp_path / "mv", [["rec"]])
    (root / "images" / "v1_0.png").unlink()
    with pytest.raises(UserError, match="mm-vet item v1_0: image file"):
        MMVet().load(local(root), context(tmp_path, "mm-vet"))
