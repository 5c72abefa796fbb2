"""The world teaches what the benchmarks ask: letters balanced (a constant letter scores exactly
chance), answers that need the image, MMLU's facts in the pretraining text, and no benchmark
question leaked into training."""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import pytest
from _synth_fixtures import shared_world

from harness.data.synthetic import LABEL_CLASSES, pretrain_text, tower_samples
from harness.data.synthetic.choices import LEAVES, LETTERS, balanced_choices
from harness.data.synthetic.drills import drills
from harness.data.synthetic.facts import all_facts
from harness.data.synthetic.mmlu import render_item, splits
from harness.data.synthetic.scenes import CORNERS, REGIONS, WORDS


@pytest.fixture
def synth_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_world(tmp_path_factory)


def _mmbench(world: Path):
    import pandas as pd

    return pd.read_csv(world / "mmbench" / "mmbench_dev_en.tsv", sep="\t")


def test_mmbench_constant_letter_scores_exactly_chance(synth_world: Path) -> None:
    frame = _mmbench(synth_world)
    n_options = [sum(frame[letter].notna()) for letter in "ABCD"]
    options_per_row = frame[list("ABCD")].notna().sum(axis=1)
    chance = sum(Fraction(1, int(n)) for n in options_per_row) / len(frame)
    for letter in "ABCD":
        offered = frame[letter].notna()
        correct = sum(frame["answer"] == letter)
        # every letter is right exactly 1/n of the time among rows that offer it
        assert correct == sum(Fraction(1, int(n)) for n in options_per_row[offered])
    assert n_options[0] == n_options[1] == len(frame)
    assert Fraction(sum(frame["answer"] == "A"), len(frame)) == chance


def _practice(world: Path) -> list[tuple[str, dict[str, str], str]]:
    """(question, {letter: option}, answer) of the stage-2 MMBench-format practice."""
    rows = []
    for sample in json.loads((world / "stage2" / "llava_instruct.json").read_text()):
        if sample["id"].startswith("mc_"):
            prompt, answer = (t["value"] for t in sample["conversations"])
            lines = prompt.split("\n")[1:-1]
            options = {line[0]: line[3:] for line in lines if re.match(r"^[A-D]\. ", line)}
            question = next(line for line in lines if not re.match(r"^[A-D]\. ", line))
            if len(lines) - len(options) == 2:  # a hint line comes first
                question = lines[1]
            letter = next(k for k, v in options.items() if v == answer)
            rows.append((question, options, letter))
    return rows


def test_stage2_practice_replies_with_an_option_mmbench_maps_to_its_letter(
    synth_world: Path,
) -> None:
    """The practice replies with the right option's text; MMBench's extraction ladder (step 2)
    maps it back to the right letter, so CircularEval scores what the model saw."""
    from harness_plugins.benchmarks._choices import extract

    practice = _practice(synth_world)
    mapped = sum(extract(options[letter], options) == letter for _, options, letter in practice)
    assert mapped / len(practice) > 0.97


def test_stage2_letter_practice_is_plentiful_and_balanced(synth_world: Path) -> None:
    practice = _practice(synth_world)
    assert len(practice) == 1848
    by_count: dict[int, Counter] = defaultdict(Counter)
    for _, options, answer in practice:
        by_count[len(options)][answer] += 1
    for count, letters in by_count.items():
        assert set(letters) == set(LETTERS[:count]) and len(set(letters.values())) == 1


def test_mmbench_answers_need_the_image(synth_world: Path) -> None:
    """A text-only model (the most frequent right answer per question in the practice data)
    stays near chance: what a shuffled-image control can do, the real images must beat."""
    seen: dict[str, Counter] = defaultdict(Counter)
    for question, options, answer in _practice(synth_world):
        seen[question][options[answer]] += 1
    frame = _mmbench(synth_world)
    right, chance = 0, Fraction(0)
    for _, row in frame.iterrows():
        options = {letter: row[letter] for letter in "ABCD" if isinstance(row[letter], str)}
        guess = max(options, key=lambda letter: seen[row["question"]][options[letter]])
        right += guess == row["answer"]
        chance += Fraction(1, len(options))
    assert right / len(frame) < float(chance) / len(frame) + 0.12


def test_choices_match_their_scene() -> None:
    rng = random.Random(5)
    leaves = {leaf.name: leaf for leaf in LEAVES}
    for scene, choice in balanced_choices(leaves["object_counting"], 8, rng):
        assert choice.options[LETTERS.index(choice.answer)] == str(len(scene.things))
    for scene, choice in balanced_choices(leaves["ocr"], 8, rng):
        assert choice.options[LETTERS.index(choice.answer)] == scene.text
        assert set(choice.options) <= set(WORDS)
    for scene, choice in balanced_choices(leaves["physical_property_reasoning"], 8, rng):
        region = REGIONS.index(choice.question.split("at the ")[1].removesuffix(" have?"))
        right = choice.options[LETTERS.index(choice.answer)]
        assert right == str(CORNERS[scene.at(region).shape])


def test_mmlu_balanced_and_its_facts_are_in_the_pretraining_text() -> None:
    text = "\n".join(pretrain_text(0))
    statements = {fact.question: fact.statements for fact in all_facts(0)}
    for subject, split in splits(0).items():
        small = split["test"][: {"animals": 36, "shapes_and_colors": 36}.get(subject, 64)]
        for items in (small, split["test"]):
            letters = Counter(answer for _, _, answer in items)
            assert len(set(letters.values())) == 1 and len(letters) == 4, subject
        for question, choices, answer in split["test"]:
            assert any(s in text for s in statements[question]), question
            assert render_item((question, choices, answer), with_answer=False) not in text


def test_mmlu_answers_are_right(synth_world: Path) -> None:
    for question, choices, answer in splits(0)["elementary_mathematics"]["test"]:
        a, op, b = re.match(r"What is (\d) (\+|times) (\d)\?", question).groups()
        expected = int(a) + int(b) if op == "+" else int(a) * int(b)
        assert choices[answer] == str(expected)


def test_instruction_data_practises_mmlu_layout_with_balanced_letters(synth_world: Path) -> None:
    """Text-only items in MMLU's layout keep its letter format alive through instruction tuning;
    a constant-letter reply scores exactly chance and no held-out item is practised."""
    instruct = json.loads((synth_world / "stage2" / "llava_instruct.json").read_text())
    items = [s["conversations"] for s in instruct if s["id"].startswith("mmlu_")]
    held_out = {
        render_item(item, with_answer=False)
        for split in splits(0).values()
        for items_of_split in split.values()
        for item in items_of_split
    }
    letters = Counter(reply["value"] for _, reply in items)
    assert len(items) == 240 and letters == {letter: 60 for letter in LETTERS}
    for prompt, _ in items:
        text = prompt["value"]
        assert text.startswith("The following are multiple choice questions (with answers) about ")
        last = text.split("\n\n")[-1]
        assert last.endswith("\nAnswer:") and last not in held_out
        solved = re.findall(r"\nAnswer: [A-D]\n", text)
        assert len(solved) == text.count("Answer:") - 1 <= 2  # 0-2 solved items before it


def test_no_vicuna_question_in_training(synth_world: Path) -> None:
    questions = {
        json.loads(line)["turns"][0]
        for line in (synth_world / "vicuna-80" / "question.jsonl").read_text().splitlines()
    }
    chats = json.loads((synth_world / "stage2" / "sharegpt.json").read_text())
    asked = {t["value"] for c in chats for t in c["conversations"] if t["from"] == "human"}
    assert not questions & asked
    text = "\n".join(pretrain_text(0))
    assert not [q for q in questions if f"USER: {q} ASSISTANT:" in text]
    # ...but the same templates are practised, with the same answer phrasing
    assert sum("How many legs do" in q for q in asked) > 10


def test_pretrain_text_is_deterministic_and_seeded() -> None:
    first, again, other = pretrain_text(0), pretrain_text(0), pretrain_text(1)
    assert first == again and first != other
    assert len(first) > 4000 and sum(map(len, first)) > 1_000_000
    assert any(doc.startswith("The following are multiple choice questions") for doc in first)


def test_tower_samples_have_labels_for_every_key() -> None:
    images, labels = tower_samples(64, 32, seed=3)
    assert len(images) == 64 and {im.size for im in images} == {(32, 32)}
    assert set(labels) == set(LABEL_CLASSES)
    for key, values in labels.items():
        assert len(values) == 64 and all(0 <= v < LABEL_CLASSES[key] for v in values), key
    assert len(set(labels["kind"])) == 3 and len(set(labels["count"])) >= 4
    again, labels_again = tower_samples(64, 32, seed=3)
    assert labels_again == labels and again[5].tobytes() == images[5].tobytes()


def test_letter_lookup_drills_point_at_their_target() -> None:
    items = drills(0, 40, "test")
    assert Counter(answer for _, _, answer in items) == {0: 10, 1: 10, 2: 10, 3: 10}
    for question, options, answer in items:
        assert question == f"Which option says {options[answer]}?"
        assert len(set(options)) == 4
