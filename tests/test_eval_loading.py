"""`harness.eval.load_model`: our saved format, the llava-hf layout, and a plain causal LM."""

from __future__ import annotations

import pytest
from _eval_fixtures import one_thread, save, tiny_llava, tiny_llm, write_images

from harness.errors import UserError
from harness.eval import load_model, run_requests
from harness.eval.engine import image_processor_for
from harness.protocols import GenerationRequest, LoglikRequest

pytestmark = pytest.mark.slow

_threads = pytest.fixture(scope="module", autouse=True)(one_thread)


def answers(bundle, image):
    reqs = [
        GenerationRequest("img", "<image>\nthe red", image=image, max_new_tokens=4),
        GenerationRequest("txt", "two green", max_new_tokens=4),
    ]
    return {k: v.text for k, v in run_requests(bundle, reqs, batch_size=2).items()}


def test_llava_hf_folder_round_trip(tmp_path):
    (image,) = write_images(tmp_path / "img", 1)
    original = tiny_llava()
    loaded = load_model(str(save(original, tmp_path / "llava-hf")))
    assert loaded.image_processor is None  # loaded when an image first needs it
    assert image_processor_for(loaded) is not None
    assert answers(loaded, image) == answers(original, image)


def test_our_saved_format_comes_back_as_a_llava_bundle(tmp_path):
    from harness.model.assemble import LlavaBundle
    from harness.model.persist import save_bundle
    from harness.specs import ModelSpec, SizeSpec, TowerSpec

    (image,) = write_images(tmp_path / "img", 1)
    tiny = tiny_llava()
    spec = ModelSpec(
        size=SizeSpec(name="t", hidden_size=32, params_b=1e-5, tiny={"layers": 2}),
        tower=TowerSpec(name="tt", hidden_size=24, resolutions=[16], patch_size=8, tiny={}),
        resolution=16,
        projector="mlp2x_gelu",
    )
    bundle = LlavaBundle(tiny.model, tiny.tokenizer, tiny.image_processor, spec)
    loaded = load_model(str(save_bundle(bundle, tmp_path / "ours")))
    assert isinstance(loaded, LlavaBundle) and loaded.spec == spec
    assert answers(loaded, image) == answers(tiny, image)


def test_plain_causal_lm_folder(tmp_path):
    original = tiny_llm()
    loaded = load_model(str(save(original, tmp_path / "llm")))
    assert loaded.image_processor is None
    req = LoglikRequest("m", "two green\nAnswer:", (" A", " B", " C", " D"))
    ours = run_requests(loaded, [req])["m"].logliks
    assert ours == pytest.approx(run_requests(original, [req])["m"].logliks, abs=1e-6)


def test_missing_or_wrong_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint folder"):
        load_model(str(tmp_path / "nothing-here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
