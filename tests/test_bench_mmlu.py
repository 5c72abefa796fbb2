"""MMLU: the lm-evaluation-harness prompt, micro vs macro averages, hub-layout loading."""

from __future__ import annotations

import pytest
from _bench_fixtures import context, local, mmlu_dir
from _paths import protocol_file
from harness_plugins.benchmarks.mmlu import MMLU

from harness.errors import UserError
from harness.protocols import ModelOutput
from harness.specs import DataSource


def template() -> dict:
    return {"lm-eval-mmlu-template": protocol_file("lm-eval-mmlu-template")}


def test_five_shot_prompt_and_continuations(tmp_path):
    root = mmlu_dir(tmp_path / "mmlu", {"abstract_algebra": [0, 1]})
    bench = MMLU()
    ctx = context(tmp_path, "mmlu", template())
    items = bench.load(local(root), ctx)
    req = bench.requests(items, ctx)[1]
    shot = "dev q{i}\nA. c0\nB. c1\nC. c2\nD. c3\nAnswer: {a}\n\n"
    expected = (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        + "".join(shot.format(i=i, a="ABCD"[i % 4]) for i in range(5))
        + "test q1\nA. c0\nB. c1\nC. c2\nD. c3\nAnswer:"
    )
    assert req.context == expected
    assert req.continuations == (" A", " B", " C", " D")
    assert bench.protocol(ctx)["official"] is True and bench.protocol(ctx)["shots"] == 5


def test_micro_vs_macro(tmp_path):
    root = mmlu_dir(tmp_path / "mmlu", {"anatomy": [0, 1, 2, 3], "astronomy": [0, 0]})
    bench = MMLU()
    ctx = context(tmp_path, "mmlu")
    items = bench.load(local(root), ctx)

    def ll(best):
        return [-1.0 if i == best else -2.0 for i in range(4)]

    outputs = {
        "anatomy/0": ModelOutput("anatomy/0", logliks=ll(0)),  # right
        "anatomy/1": ModelOutput("anatomy/1", logliks=ll(1)),  # right
        "anatomy/2": ModelOutput("anatomy/2", logliks=ll(2)),  # right
        "anatomy/3": ModelOutput("anatomy/3", logliks=ll(0)),  # wrong
        "astronomy/0": ModelOutput("astronomy/0", logliks=ll(3)),  # wrong
        "astronomy/1": ModelOutput("astronomy/1", logliks=None),  # failed: excluded
    }
    result = bench.score(items, outputs, [], ctx)
    assert result.metrics["micro"] == pytest.approx(60.0)  # 3 of 5
    assert result.metrics["macro"] == pytest.approx((75.0 + 0.0) / 2)
    assert result.metrics["subject/anatomy"] == 75.0 and result.metrics["subject/astronomy"] == 0.0
    assert result.n_failed == 1 and result.failures == {"no_output": 1}
    scores = bench.item_scores(items, outputs, [], ctx)
    assert [scores[i.id] for i in items] == [[1.0], [1.0], [1.0], [0.0], [0.0], [None]]


def test_hub_source_reads_a_local_dataset_in_hub_layout(tmp_path):
    root = mmlu_dir(tmp_path / "mmlu", {"anatomy": [2, 3], "virology": [1]})
    items = MMLU().load(DataSource(kind="hub", path=str(root)), context(tmp_path, "mmlu"))
    assert [i.id for i in items] == ["anatomy/0", "anatomy/1", "virology/0"]
    assert [i.data["answer"] for i in items] == [2, 3, 1]
    one = DataSource(kind="hub", path=f"{root}:virology", split="test")
    assert len(MMLU().load(one, context(tmp_path, "mmlu"))) == 1


def test_too_few_dev_examples_names_the_subject(tmp_path):
    root = mmlu_dir(tmp_path / "mmlu", {"virology": [0]}, dev_per_subject=3)
    with pytest.raises(UserError, match="mmlu subject virology: 3 dev examples, need 5"):
        MMLU().load(local(root), context(tmp_path, "mmlu"))
