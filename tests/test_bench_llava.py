"""LLaVA-Bench: the review request char for char, two-number parsing, ratio-of-means scoring."""

from __future__ import annotations

import json

import pytest
from _bench_fixtures import context, llava_bench_dir, local, texts
from _paths import protocol_file
from harness_plugins.benchmarks._pairwise import parse_two_scores
from harness_plugins.benchmarks.llava_bench import LlavaBench

from harness.errors import UserError
from harness.protocols import JudgeResponse


def rules() -> dict:
    return {"llava-rule": protocol_file("llava-rule")}


def upstream_content(question, caption, reference, answer, category):
    """eval_gpt_review_bench.py's construction, written out independently of the plugin."""
    rule = json.loads(protocol_file("llava-rule").read_text())["llava_bench_" + category]
    prompt, role = rule["prompt"], rule["role"]
    cap_str = "\n".join(caption) if isinstance(caption, list) else caption
    return (
        f"[Context]\n{cap_str}\n\n"
        f"[Question]\n{question}\n\n"
        f"[{role} 1]\n{reference}\n\n[End of {role} 1]\n\n"
        f"[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n"
        f"[System]\n{prompt}\n\n"
    )


def test_review_request_equals_upstream_construction(tmp_path):
    bench = LlavaBench()
    ctx = context(tmp_path, "llava-bench", rules())
    items = bench.load(local(llava_bench_dir(tmp_path / "lb")), ctx)
    outputs = texts({i.id: f"model says {i.id}" for i in items})
    requests = bench.judge_requests(items, outputs, run=0, ctx=ctx)
    assert [r.id for r in requests] == ["0", "1", "2", "3"]
    req = requests[2]  # complex, image with a list caption
    system = "You are a helpful and precise assistant for checking the quality of the answer."
    assert req.messages[0] == {"role": "system", "content": system}
    expected = upstream_content(
        "Why so?", ["A cat.", "On a mat."], "ref 2", "model says 2", "complex"
    )
    assert req.messages[1] == {"role": "user", "content": expected}
    assert (req.temperature, req.max_tokens, req.kind) == (0.2, 1024, "pairwise")
    for r, cat in zip(requests, ("conv", "detail", "complex", "conv"), strict=True):
        item = next(i for i in items if i.id == r.id)
        cap = item.data["caption"]
        assert r.messages[1]["content"] == upstream_content(
            item.data["question"], cap, f"ref {r.id}", f"model says {r.id}", cat
        )
    protocol = bench.protocol(ctx)
    assert protocol["official"] is True and protocol["name"] == "llava-bench-in-the-wild"
    assert set(protocol["prompt_sha256"]) == {
        "llava_bench_conv", "llava_bench_detail", "llava_bench_complex"
    }  # fmt: skip


def test_generation_requests_share_images_and_follow_beam(tmp_path):
    bench = LlavaBench()
    ctx = context(tmp_path, "llava-bench", rules(), beam=5)
    items = bench.load(local(llava_bench_dir(tmp_path / "lb")), ctx)
    reqs = bench.requests(items, ctx)
    assert reqs[0].prompt == "<image>\nWhat is red?"
    assert reqs[0].image == reqs[1].image != reqs[2].image
    assert {r.num_beams for r in reqs} == {5} and reqs[0].max_new_tokens == 1024


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        ("8 9\nbecause", (8.0, 9.0)),
        ("8,9", (8.0, 9.0)),
        ("7.5 6", (7.5, 6.0)),
        ("8, 9", None),  # upstream split(' ') gives three parts: a parse failure
        ("Assistant 1: 8", None),
        ("8", None),
        ("", None),
        (None, None),
    ],
)
def test_two_number_parsing_matches_upstream(review, expected):
    assert parse_two_scores(review) == expected


def test_relative_score_is_ratio_of_means_and_excludes_parse_failure(tmp_path):
    bench = LlavaBench()
    ctx = context(tmp_path, "llava-bench", rules())
    items = bench.load(local(llava_bench_dir(tmp_path / "lb")), ctx)
    outputs = texts({i.id: "x" for i in items})
    responses = {"0": "8 6", "1": "10 5", "2": "9 9", "3": "no numbers here"}
    reqs = bench.judge_requests(items, outputs, 0, ctx)
    judged = {r.id: bench.parse_judgment(r, JudgeResponse(r.id, responses[r.id])) for r in reqs}
    assert judged["3"] is None
    result = bench.score(items, outputs, [judged], ctx)
    # conv: only item 0 scored -> 6/8; overall pools 0,1,2: (6+5+9)/(8+10+9)
    assert result.metrics["conv"] == pytest.approx(75.0)
    assert result.metrics["detail"] == pytest.approx(50.0)
    assert result.metrics["complex"] == pytest.approx(100.0)
    assert result.metrics["overall"] == pytest.approx(20 / 27 * 100)
    assert result.n_failed == 1 and result.failures == {"judge_failed": 1}
    assert result.n_items == 4 and result.std == {}
    assert result.judge == {"name": "openai", "snapshot": "gpt-4-0314", "official": True}


def test_three_runs_give_mean_and_population_std(tmp_path):
    bench = LlavaBench()
    ctx = context(tmp_path, "llava-bench", rules(), runs=3)
    items = bench.load(local(llava_bench_dir(tmp_path / "lb")), ctx)
    outputs = texts({i.id: "x" for i in items})
    runs = [{i.id: (10.0, m) for i in items} for m in (6.0, 7.0, 8.0)]
    result = bench.score(items, outputs, runs, ctx)
    assert result.metrics["overall"] == pytest.approx(70.0)
    assert result.std["overall"] == pytest.approx((2 / 3) ** 0.5 * 10)
    assert [r["overall"] for r in result.runs] == pytest.approx([60.0, 70.0, 80.0])


def test_reask_ladder_then_stop(tmp_path):
    bench = LlavaBench()
    ctx = context(tmp_path, "llava-bench", rules())
    items = bench.load(local(llava_bench_dir(tmp_path / "lb")), ctx)
    req = bench.judge_requests(items, texts({"0": "x"}), 0, ctx)[0]
    again = bench.retry_request(req, 1)
    assert again.attempt == 1 and again.messages == req.messages
    assert bench.retry_request(req, 3) is None


def test_missing_image_names_the_item(tmp_path):
    root = llava_bench_dir(tmp_path / "lb", skip_image="002.png")
    with pytest.raises(UserError, match="llava-bench item 2: image file .*002.png does not exist"):
        LlavaBench().load(local(root), context(tmp_path, "llava-bench"))


def test_without_rule_asset_the_protocol_is_harness_own(tmp_path):
    bench = LlavaBench()
    ctx = context(tmp_path, "llava-bench")
    items = bench.load(local(llava_bench_dir(tmp_path / "lb")), ctx)
    protocol = bench.protocol(ctx)
    assert protocol["official"] is False and protocol["name"] == "harness-own"
    assert bench.judge_requests(items, texts({"0": "x"}), 0, ctx)[0].messages[1]["content"]
