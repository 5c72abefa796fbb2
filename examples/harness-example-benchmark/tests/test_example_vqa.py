"""example-vqa through the real plugin manager: loading, requests, exact match, the judge path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness.errors import UserError
from harness.judging.client import judge_all
from harness.plugins import load_plugins
from harness.protocols import EvalContext, JudgeResponse, ModelOutput
from harness.specs import DataSource, EvalSpec

ANSWERS = {  # item id -> the model's answer; item 12 gets no output
    "1": "Red.",
    "2": "a circle",
    "3": "blue",
    "4": "circle",  # wrong: a square
    "5": "green",
    "6": "The triangle",
    "7": "two",
    "8": "red",  # wrong: yellow
    "9": "3",
    "10": "green",
    "11": "square",
}


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


def _ctx(tmp_path, name="example-vqa"):
    return EvalContext(eval=EvalSpec(benchmark=name), assets={}, work_dir=tmp_path)


def _outputs():
    return {i: ModelOutput(id=i, text=text) for i, text in ANSWERS.items()}


def test_both_variants_come_from_the_installed_package(plugins):
    for name in ("example-vqa", "example-vqa-judged"):
        origin = plugins.origin("benchmark", name)
        assert (origin.package, origin.version, origin.plugin) == (
            "harness-example-benchmark",
            "0.1.0",
            "example_vqa",
        )
    assert plugins.get("benchmark", "example-vqa").judged is False
    assert plugins.get("benchmark", "example-vqa-judged").judged is True


def test_shipped_items_and_requests(plugins, tmp_path):
    bench = plugins.get("benchmark", "example-vqa")
    ctx = _ctx(tmp_path)
    items = bench.load(DataSource(), ctx)
    assert len(items) == 12
    assert all(item.image and item.image.endswith(".png") for item in items)
    requests = bench.requests(items, ctx)
    assert requests[0].prompt == (
        "<image>\nWhat color is the shape?\nAnswer the question using a single word or number."
    )
    assert requests[0].image == items[0].image and requests[0].max_new_tokens == 8
    assert bench.judge_requests(items, _outputs(), 0, ctx) == []
    assert bench.protocol(ctx)["official"] is False


def test_exact_match_scores(plugins, tmp_path):
    bench = plugins.get("benchmark", "example-vqa")
    ctx = _ctx(tmp_path)
    items = bench.load(DataSource(), ctx)
    result = bench.score(items, _outputs(), [], ctx)
    assert result.primary == "exact_match"
    assert result.metrics == pytest.approx(
        {
            "exact_match": 100 * 9 / 11,
            "exact_match/color": 80.0,
            "exact_match/shape": 75.0,
            "exact_match/count": 100.0,
        }
    )
    assert (result.n_items, result.n_failed, result.failures) == (12, 1, {"no_output": 1})


class ScriptedJudge:
    """Answers from a script: item id -> replies in order (the first may break the parse rule)."""

    name, official = "scripted", False

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}

    def snapshot(self):
        return "scripted-1"

    def check(self):
        pass

    def judge(self, requests):
        return [JudgeResponse(id=r.id, text=self.script[r.id].pop(0)) for r in requests]


def test_judged_variant_re_asks_once_then_scores_partial_credit(plugins, tmp_path):
    bench = plugins.get("benchmark", "example-vqa-judged")
    ctx = _ctx(tmp_path, "example-vqa-judged")
    items = bench.load(DataSource(), ctx)
    outputs = _outputs()
    requests = bench.judge_requests(items, outputs, 0, ctx)
    assert len(requests) == 11 and requests[0].facts["reference"] == "red"
    assert requests[6].facts["reference"] == "2 <OR> two"
    script = {r.id: ["1.0"] for r in requests}
    script["4"] = ["zero", "0.0"]  # parsed on the re-ask
    script["8"] = ["?", "??"]  # never parses: failed, left out of the judge score
    script["2"] = ["0.5"]
    outcome = judge_all(bench, ScriptedJudge(script), requests, cache=None)
    assert outcome.reasks == 2
    assert outcome.records["4"].request.messages[0]["content"].endswith("0.0 and 1.0.")
    result = bench.score(items, outputs, [outcome.judgments], ctx)
    assert result.primary == "judge"
    assert result.metrics["judge"] == pytest.approx(100 * (8 + 0.5) / 10)
    assert result.metrics["exact_match"] == pytest.approx(100 * 9 / 11)
    assert result.failures == {"no_output": 1, "judge_failed": 1}


def test_judged_variant_with_the_reference_judge(plugins, tmp_path):
    from harness.specs import JudgeSpec

    bench = plugins.get("benchmark", "example-vqa-judged")
    ctx = _ctx(tmp_path, "example-vqa-judged")
    items = bench.load(DataSource(), ctx)
    judge = plugins.get("judge", "reference")(JudgeSpec(name="reference"))
    runs = []
    for run in range(2):
        requests = bench.judge_requests(items, _outputs(), run, ctx)
        runs.append(judge_all(bench, judge, requests, cache=None).judgments)
    result = bench.score(items, _outputs(), runs, ctx)
    assert 0.0 <= result.metrics["judge"] <= 100.0
    assert runs[0]["1"] == 1.0  # "Red." against "red"
    assert len(result.runs) == 2 and result.std["judge"] == 0.0  # the reference is deterministic


def test_a_local_folder_and_its_errors(plugins, tmp_path):
    bench = plugins.get("benchmark", "example-vqa")
    folder = tmp_path / "vqa"
    (folder / "images").mkdir(parents=True)
    shipped = bench.load(DataSource(), _ctx(tmp_path))[0]
    (folder / "images" / "a.png").write_bytes(Path(shipped.image).read_bytes())
    row = {"id": "x", "image": "a.png", "type": "color", "question": "Colour?", "answers": ["red"]}
    (folder / "questions.jsonl").write_text(json.dumps(row) + "\n")
    items = bench.load(DataSource.parse(str(folder)), _ctx(tmp_path))
    assert [i.id for i in items] == ["x"]
    (folder / "questions.jsonl").write_text(json.dumps(row) + "\n{not json\n")
    with pytest.raises(UserError, match=r"questions.jsonl:2: bad item"):
        bench.load(DataSource.parse(str(folder)), _ctx(tmp_path))
    with pytest.raises(UserError, match="not supported"):
        bench.load(DataSource.parse("hub:org/vqa"), _ctx(tmp_path))
