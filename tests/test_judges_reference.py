"""The reference judge: expected answers on hand-made pairs, in GPT-4's formats."""

from __future__ import annotations

import pytest
from harness_plugins.judges.reference_judge import ReferenceJudge, correctness

from harness.protocols import Judge, JudgeRequest
from harness.specs import JudgeSpec


def ask(kind: str, **facts) -> str | None:
    request = JudgeRequest(
        id="x", kind=kind, messages=({"role": "user", "content": "?"},), facts=facts
    )
    (response,) = ReferenceJudge(JudgeSpec()).judge([request])
    return response.text if response.ok else f"FAILED {response.error}"


@pytest.mark.parametrize(
    ("reference", "answer", "first_line"),
    [
        (
            "There are three red circles on the left.",
            "There are three red circles on the left.",
            "10 10",
        ),
        ("There are three red circles on the left.", "I see 3 red circles.", "10 9"),
        ("There are three red circles on the left.", "A blue square is in the middle.", "10 1"),
        ("There are three red circles on the left.", "", "10 1"),
        ("The cat sleeps on a green sofa near the window.", "A cat is on a sofa.", "10 6"),
    ],
)
def test_pairwise_two_numbers(reference, answer, first_line):
    text = ask("pairwise", question="What is shown?", reference=reference, answer=answer)
    assert text.splitlines()[0] == first_line
    assert "not a GPT-4 judge" in text.splitlines()[1]


@pytest.mark.parametrize(
    ("reference", "answer", "score"),
    [
        ("4", "There are four cars.", "1.0"),
        ("4", "There are 5 cars.", "0.0"),
        ("red<AND>blue", "a red car and a blue bus", "1.0"),
        ("red<AND>blue", "a red car", "0.5"),
        ("red <AND> blue <AND> green", "green and red", "0.7"),
        ("cat<OR>kitten", "a small kitten", "1.0"),
        ("cat<OR>kitten", "a dog", "0.0"),
        ("yes", "No, it is not.", "0.0"),
        ("Paris<OR>France<AND>Europe", "It is in Europe, in France", "1.0"),
    ],
)
def test_correctness_respects_and_or(reference, answer, score):
    assert ask("correctness", question="q?", reference=reference, answer=answer) == score


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("I think it is the blue square.", "B"),
        ("a red circle, clearly", "A"),
        ("The shape is a triangle that is green", "C"),
        ("I cannot tell.", "Z"),
        ("red or blue", "Z"),  # fits two options equally
    ],
)
def test_choice_matching(answer, letter):
    options = {"A": "red circle", "B": "blue square", "C": "green triangle"}
    assert ask("choice", question="Which shape?", options=options, answer=answer) == letter


def test_choice_takes_a_list_of_options_and_fails_without_options():
    assert ask("choice", options=["cat", "dog"], answer="a dog") == "B"
    assert ask("choice", answer="a dog").startswith("FAILED reference judge: ")


def test_generic_and_unknown_kinds():
    assert ask("generic", reference="a red circle", answer="a red circle") == "10"
    request = JudgeRequest(id="y", kind="rank", messages=())  # type: ignore[arg-type]
    (response,) = ReferenceJudge().judge([request])
    assert not response.ok and "unknown request kind 'rank'" in response.error


def test_reads_llava_and_mmvet_prompts_when_facts_are_missing():
    llava = (
        "[Context]\ncap\n\n[Question]\nWhat?\n\n[Assistant 1]\nthree red circles\n\n"
        "[End of Assistant 1]\n\n[Assistant 2]\nthree red circles\n\n[End of Assistant 2]\n\n"
        "[System]\nrate\n\n"
    )
    mmvet = "few-shot examples\nQ | GT | P | C\nHow many dogs? | 2 | two dogs | "
    requests = [
        JudgeRequest(id="a", kind="pairwise", messages=({"role": "user", "content": llava},)),
        JudgeRequest(id="b", kind="correctness", messages=({"role": "user", "content": mmvet},)),
    ]
    texts = [r.text for r in ReferenceJudge().judge(requests)]
    assert texts[0].startswith("10 10\n") and texts[1] == "1.0"


def test_is_a_deterministic_unofficial_judge():
    judge = ReferenceJudge(JudgeSpec())
    assert isinstance(judge, Judge)
    assert judge.snapshot() == "reference-v1" and judge.official is False
    judge.check()
    assert correctness("a<AND>b", "a") == correctness("a<AND>b", "a") == 0.5


def test_benchmark_parsers_accept_its_answers():
    """The built-in benchmarks parse the reference judge's replies unchanged."""
    from harness_plugins.benchmarks import _choices, _pairwise, mm_vet

    assert _pairwise.parse_two_scores(ask("pairwise", reference="red", answer="red")) == (
        10.0,
        10.0,
    )
    assert mm_vet.parse_correctness(ask("correctness", reference="4", answer="four")) == 1.0
    options = {"A": "red circle", "B": "blue square"}
    assert _choices.parse_match(ask("choice", options=options, answer="blue"), options) == "B"
    assert _choices.parse_match(ask("choice", options=options, answer="??"), options) == "Z"
