"""The stage data mix (seeded ratio mixing) and LLaVA's modality-grouped length sampler."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from harness.data.conversations import ConversationSample
from harness.data.mix import build_mix, mix_language
from harness.data.sampler import ModalityLengthGroupedSampler, modality_lengths
from harness.errors import UserError
from harness.specs import DataMixSpec, DataSource


def caption_rows(n):
    return [
        {
            "id": f"cap-{i}",
            "image": f"images/{i % 3}.png",
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe briefly."},
                {"from": "gpt", "value": "word " * (1 + i % 5)},
            ],
        }
        for i in range(n)
    ]


def chat_rows(n):
    return [
        {
            "id": f"chat-{i}",
            "conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": "A"}],
        }
        for i in range(n)
    ]


@pytest.fixture
def data(tmp_path):
    (tmp_path / "images").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(tmp_path / "images" / f"{i}.png")
    (tmp_path / "stage2").mkdir()
    (tmp_path / "stage2" / "instruct.json").write_text(json.dumps(caption_rows(10)))
    (tmp_path / "stage2" / "chat.json").write_text(json.dumps(chat_rows(4)))
    return tmp_path


def mix_spec(data, ratio, seed=0):
    local = lambda name: DataSource(kind="local", path=str(data / "stage2" / name))  # noqa: E731
    return DataMixSpec(
        captions=local("instruct.json"),
        instructions=local("instruct.json"),
        language=local("chat.json"),
        language_ratio=ratio,
        seed=seed,
    )


def test_stage1_is_the_captions_shuffled_with_the_seed(data):
    first = build_mix(mix_spec(data, 0.0), 1)
    assert sorted(s.id for s in first) == sorted(f"cap-{i}" for i in range(10))
    assert [s.id for s in first] == [s.id for s in build_mix(mix_spec(data, 0.0), 1)]
    assert [s.id for s in first] != [s.id for s in build_mix(mix_spec(data, 0.0, seed=1), 1)]
    # images found in images/ one level above the JSON file
    assert first[0].image.startswith(str(data / "images"))


def test_stage2_mixes_language_only_data_at_the_ratio(data):
    mixed = build_mix(mix_spec(data, 0.3), 2)
    assert len(mixed) == 13
    assert sum(s.image is None for s in mixed) == 3
    assert len({s.id for s in mixed if s.image is None}) == 3  # without replacement first
    assert [s.id for s in mixed] == [s.id for s in build_mix(mix_spec(data, 0.3), 2)]
    assert len(build_mix(mix_spec(data, 0.0), 2)) == 10


def test_ratio_above_the_supply_cycles_through_the_language_data():
    instructions = [ConversationSample(f"i{i}", [], "x.png") for i in range(5)]
    language = [ConversationSample(f"l{i}", [], None) for i in range(3)]
    mixed = mix_language(instructions, language, 2.0, seed=0)
    drawn = [s.id for s in mixed if s.image is None]
    assert len(drawn) == 10 and {drawn.count(x) for x in set(drawn)} <= {3, 4}
    with pytest.raises(UserError, match="language_ratio must be >= 0"):
        mix_language(instructions, language, -1.0, seed=0)


def test_missing_local_file_is_named(tmp_path):
    spec = DataMixSpec(captions=DataSource(kind="local", path=str(tmp_path / "none.json")))
    with pytest.raises(UserError, match="dataset file not found: .*none.json"):
        build_mix(spec, 1)


def samples_of(lengths):
    """Positive length: image sample; negative: language-only, as LLaVA encodes modality."""
    return [
        ConversationSample(
            str(i), [{"from": "gpt", "value": "w " * abs(n)}], "x.png" if n > 0 else None
        )
        for i, n in enumerate(lengths)
    ]


def test_sampler_keeps_modalities_apart_and_sorts_by_length():
    lengths = [3, -2, 7, -9, 1, 4, -5, 8, -1, 6, 2, -4, 5, -3, 9, -7, 10, -6]
    samples = samples_of(lengths)
    assert modality_lengths(samples) == lengths
    sampler = ModalityLengthGroupedSampler(samples, batch_size=4, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths)))
    # 10 image + 8 text samples in mega-batches of 4: LLaVA keeps each modality's last
    # mega-batch (2 image, 4 text) for one sorted leftover batch at the end
    full = [order[i : i + 4] for i in range(0, 12, 4)]
    for batch in full:
        signs = {lengths[i] > 0 for i in batch}
        assert len(signs) == 1, f"mixed modalities in {batch}"
        sizes = [abs(lengths[i]) for i in batch]
        assert sizes == sorted(sizes, reverse=True)
    assert sorted(order[12:]) == order[12:]
    assert sorted(lengths[i] > 0 for i in order[12:]) == [False] * 4 + [True] * 2
    assert order == list(ModalityLengthGroupedSampler(samples, batch_size=4, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_sampler_with_one_modality_groups_by_length():
    samples = samples_of([5, 1, 9, 3, 7, 2, 8, 4])
    order = list(ModalityLengthGroupedSampler(samples, batch_size=4, world_size=1, seed=0))
    for start in (0, 4):
        sizes = [abs(modality_lengths(samples)[i]) for i in order[start : start + 4]]
        assert sizes == sorted(sizes, reverse=True)


@pytest.mark.slow
def test_synthetic_world_mix_parses_with_the_same_loaders(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    spec = DataMixSpec(language_ratio=0.5)
    stage1 = build_mix(spec, 1)
    stage2 = build_mix(spec, 2)
    assert stage1 and all(s.image for s in stage1)
    with_images = [s for s in stage2 if s.image]
    language = [s for s in stage2 if s.id.split("_")[0] in ("chat", "choice")]  # ShareGPT's
    assert with_images and len(language) == round(0.5 * (len(stage2) - len(language)))
    assert all(not s.image for s in language)
    Image.open(with_images[0].image).verify()
