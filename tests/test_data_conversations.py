"""Conversation loaders: LLaVA JSON, ShareGPT, `datasets` folders; bad input named clearly."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from harness.data.conversations import load_llava_json, load_sharegpt
from harness.data.hub import load_hub_llava, load_hub_sharegpt
from harness.errors import UserError

ROWS = [
    {
        "id": "000001",
        "image": "red.png",
        "conversations": [
            {"from": "human", "value": "What colour is the shape?\n<image>"},
            {"from": "gpt", "value": "Red."},
            {"from": "human", "value": "Which shape?"},
            {"from": "gpt", "value": "A circle."},
        ],
    },
    {
        "id": "000002",
        "image": "blue.png",
        "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image."},
            {"from": "gpt", "value": "A blue square on a light background."},
        ],
    },
]
CHATS = [
    {
        "id": "c1",
        "conversations": [{"from": "user", "value": "Hi"}, {"from": "chatgpt", "value": "Hello!"}],
    },
    {
        "id": "c2",
        "conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}],
    },
]


@pytest.fixture
def world(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (48, 48), (220, 40, 40)).save(images / "red.png")
    Image.new("RGB", (48, 48), (50, 90, 230)).save(images / "blue.png")
    (tmp_path / "llava.json").write_text(json.dumps(ROWS))
    (tmp_path / "sharegpt.json").write_text(json.dumps(CHATS))
    return tmp_path


def write(tmp_path, rows, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return path


def test_llava_json_loads_samples_with_image_paths(world):
    samples = load_llava_json(world / "llava.json", world / "images")
    assert [s.id for s in samples] == ["000001", "000002"]
    assert samples[0].image == str(world / "images" / "red.png")
    assert samples[0].messages[1] == {"from": "gpt", "value": "Red."}
    assert samples[1].length == 11  # words, as LLaVA counts them


def test_jsonl_is_read_too(world):
    path = world / "llava.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    assert len(load_llava_json(path, world / "images")) == 2


def test_sharegpt_roles_are_normalised(world):
    samples = load_sharegpt(world / "sharegpt.json")
    assert samples[0].messages == [
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello!"},
    ]
    assert all(s.image is None for s in samples)


def test_missing_image_file_names_file_and_item(world):
    rows = [ROWS[0], {**ROWS[1], "image": "green.png"}]
    path = write(world, rows)
    with pytest.raises(UserError) as caught:
        load_llava_json(path, world / "images")
    message = str(caught.value)
    assert "data.json item 1 (id '000002')" in message
    assert "image file not found" in message and "green.png" in message


def test_malformed_turn_order_names_file_and_item(world):
    turns = [{"from": "human", "value": "<image>\nHi"}, {"from": "human", "value": "Again"}]
    path = write(world, [ROWS[0], {"id": "bad", "image": "red.png", "conversations": turns}])
    with pytest.raises(UserError, match=r"data.json item 1 \(id 'bad'\): malformed turn order"):
        load_llava_json(path, world / "images")


def test_empty_dataset_names_the_file(world):
    with pytest.raises(UserError, match=r"empty.json: the dataset is empty"):
        load_llava_json(write(world, [], "empty.json"), world / "images")
    with pytest.raises(UserError, match=r"empty.json: the dataset is empty"):
        load_sharegpt(world / "empty.json")


def test_corrupt_image_names_file_and_item(world):
    (world / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    path = write(world, [{**ROWS[1], "image": "broken.png"}])
    with pytest.raises(
        UserError, match=r"item 0 \(id '000002'\): image file .*broken.png is corrupt"
    ):
        load_llava_json(path, world / "images")


def test_other_bad_input(world):
    with pytest.raises(UserError, match="dataset file not found: .*nope.json"):
        load_llava_json(world / "nope.json", world / "images")
    (world / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="bad.json is not valid JSON"):
        load_sharegpt(world / "bad.json")
    no_token = {
        **ROWS[1],
        "conversations": [{"from": "human", "value": "Hi"}, ROWS[1]["conversations"][1]],
    }
    with pytest.raises(UserError, match=r"has an image but no <image> token"):
        load_llava_json(write(world, [no_token]), world / "images")
    with pytest.raises(UserError, match=r"turn 0 needs 'from'"):
        load_sharegpt(
            write(world, [{"id": "x", "conversations": [{"from": "bot", "value": "hi"}]}])
        )


def test_datasets_folder_loads_without_network(world):
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(world / "hub-llava"))
    samples = load_hub_llava(str(world / "hub-llava"), world / "images")
    assert [s.id for s in samples] == ["000001", "000002"]
    assert samples[1].image == str(world / "images" / "blue.png")

    datasets.DatasetDict({"train": datasets.Dataset.from_list(CHATS)}).save_to_disk(
        str(world / "hub-chat")
    )
    chats = load_hub_sharegpt(str(world / "hub-chat"), split="train")
    assert [s.messages[0]["from"] for s in chats] == ["human", "human"]
    with pytest.raises(UserError, match="has no split 'test'"):
        load_hub_sharegpt(str(world / "hub-chat"), split="test")


def test_datasets_with_embedded_images_are_written_once(world, monkeypatch):
    import datasets

    monkeypatch.setenv("HARNESS_CACHE", str(world / "cache"))
    rows = [{**ROWS[1], "image": Image.open(world / "images" / "blue.png")}]
    data = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    data.save_to_disk(str(world / "hub-embedded"))
    sample = load_hub_llava(str(world / "hub-embedded"))[0]
    assert sample.image.startswith(str(world / "cache"))
    assert Image.open(sample.image).getpixel((5, 5)) == (50, 90, 230)
