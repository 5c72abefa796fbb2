"""Matrix expansion, spec hashing, the shuffled-image control and per-benchmark judges."""

from __future__ import annotations

from harness.config.matrix import expand, parse_matrix
from harness.config.registry import load_registry
from harness.plan import dag
from harness.plan.dag import build_dag
from harness.plan.step_inputs import shuffle_images
from harness.plugins import get_plugins
from harness.protocols import GenerationRequest
from harness.specs import JudgeSpec, TrainSpec


def _cells(*axes: str):
    registry = load_registry()
    exp = registry.experiment("default")
    return expand(exp, registry, get_plugins(), parse_matrix(list(axes)))


def test_paper_defaults_apply_to_real_sizes_and_tiny_overrides_to_tiny_ones():
    (big,) = _cells("sizes=33b", "methods=lora")
    assert (big.stage2.lr, big.stage2.lora_rank, big.stage2.lora_alpha) == (1e-4, 64, 128)
    assert big.stage2.global_batch == 64 and big.stage2.zero_stage == 3
    assert big.stage1.lr == 1e-4 and big.stage1.schedule == "linear"
    assert big.hardware.name == "a100-80g"
    (tiny,) = _cells("sizes=tiny-1m", "methods=lora")
    assert tiny.stage2.max_steps == 400 and tiny.hardware.name == "cpu"
    (full,) = _cells("sizes=33b", "methods=full")
    assert full.stage2.global_batch == 512 and full.hardware.nodes == 4


def test_rank_axis_keeps_alpha_at_twice_the_rank_unless_given():
    cells = _cells("sizes=33b", "methods=lora", "rank=8,64")
    assert [(c.stage2.lora_rank, c.stage2.lora_alpha) for c in cells] == [(8, 16), (64, 128)]
    assert [c.id for c in cells] == ["33b_lora_r8", "33b_lora_r64"]
    (fixed,) = _cells("sizes=33b", "methods=lora", "rank=64", "alpha=16")
    assert fixed.stage2.lora_alpha == 16


def test_qlora_is_lora_plus_quantization_and_zero2():
    (cell,) = _cells("sizes=33b", "methods=qlora")
    assert cell.stage2.quantization is not None and cell.stage2.quantization.bits == 4
    assert cell.stage2.quantization.quant_type == "nf4" and cell.stage2.quantization.double_quant
    assert cell.stage2.zero_stage == 2


def test_dag_shares_stage1_and_keys_change_downstream_only():
    cells = _cells("sizes=33b,65b", "methods=lora,qlora", "beam=1,5")
    steps = build_dag(cells, get_plugins())
    kinds = [s.kind for s in steps]
    assert kinds.count("stage1") == 2 and kinds.count("stage2") == 4  # beam shares training
    assert kinds.count("generate") == 8 * len(cells[0].evals)
    stage1 = next(s for s in steps if s.kind == "stage1")
    assert len(stage1.cells) == 4  # 2 methods x 2 beams of one size


def test_spec_sha256_is_canonical():
    a = TrainSpec(method="lora", lr=1e-4, lora_rank=8)
    b = TrainSpec.model_validate({"lora_rank": 8, "lr": 0.0001, "method": "lora"})
    assert a.sha256() == b.sha256() and len(a.sha256()) == 64
    assert a.sha256() != TrainSpec(method="lora", lr=2e-4, lora_rank=8).sha256()


def test_shuffled_image_control_is_a_derangement_of_images():
    requests = [
        GenerationRequest(id=f"q{i}", prompt="p", image=f"img{i % 4}.png") for i in range(8)
    ] + [GenerationRequest(id="text", prompt="p")]
    shuffled = shuffle_images(requests, seed=0)
    assert [r.id for r in shuffled] == [r.id for r in requests]
    for before, after in zip(requests[:8], shuffled[:8], strict=True):
        assert after.image != before.image
    mapping = {b.image: a.image for b, a in zip(requests[:8], shuffled[:8], strict=True)}
    assert sorted(mapping.values()) == sorted(mapping)  # a permutation of the images
    assert shuffled[-1].image is None
    assert shuffle_images(requests, seed=0) == shuffled


def test_per_benchmark_judge_snapshots():
    spec = JudgeSpec(name="openai", snapshot="gpt-4-0613", snapshots={"llava-bench": "gpt-4-0314"})
    assert spec.for_benchmark("llava-bench").snapshot == "gpt-4-0314"
    assert spec.for_benchmark("mm-vet").snapshot == "gpt-4-0613"


def test_keys_cover_the_generated_content_a_step_reads(monkeypatch):
    """A new synthetic world or new tiny foundations give new keys: a run folder made before
    never reuses a step trained or evaluated on the old content. Real data keeps its keys."""
    import harness.plan.dag as dag
    from harness.specs import DataSource

    (tiny,) = _cells("sizes=tiny-1m", "methods=lora")
    (real,) = _cells("sizes=33b", "methods=lora")
    local = DataSource(kind="local", path="/data/llava")
    real = real.model_copy(
        update={
            "mix": real.mix.model_copy(update={"captions": local, "instructions": local}),
            "evals": [e.model_copy(update={"source": local}) for e in real.evals],
        }
    )

    def keys():
        steps = build_dag([tiny, real], get_plugins())
        return {(s.cell, s.kind, s.id if s.kind != "stage1" else ""): s.key for s in steps}

    before = keys()
    monkeypatch.setattr(dag, "SYNTHETIC_VERSION", dag.SYNTHETIC_VERSION + 1)
    new_world = keys()
    monkeypatch.setattr(dag, "SYNTHETIC_VERSION", dag.SYNTHETIC_VERSION - 1)
    monkeypatch.setattr(dag, "FOUNDATION_VERSION", dag.FOUNDATION_VERSION + "x")
    new_foundations = keys()
    for changed in (new_world, new_foundations):
        assert all(changed[k] != v for k, v in before.items() if k[0] == tiny.id)
        assert all(changed[k] == v for k, v in before.items() if k[0] == real.id)


def test_keys_follow_the_content_of_local_data_not_its_timestamps(tmp_path, monkeypatch):
    """Editing a local data file gives its steps new keys; rewriting the same bytes (a copy,
    a touch) keeps them, and the file is read again only after it changed."""
    import os

    import harness.support.hashing as hashing  # where data files are read to be hashed
    from harness.specs import DataSource

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "llava.json"
    data.write_text('[{"id": "1"}]')
    bench = tmp_path / "bench"
    (bench / "images").mkdir(parents=True)
    (bench / "questions.jsonl").write_text('{"question_id": 1}\n')
    (bench / "images" / "a.jpg").write_bytes(b"\xff\xd8 image")
    (cell,) = _cells("sizes=33b", "methods=lora")
    on_disk = DataSource(kind="local", path=str(bench))
    cell = cell.model_copy(
        update={
            "mix": cell.mix.model_copy(
                update={"instructions": DataSource(kind="local", path=str(data))}
            ),
            "evals": [cell.evals[0].model_copy(update={"source": on_disk})],
        }
    )
    reads = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        reads.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "open", counting_open, raising=False)

    def keys():
        return {s.kind: s.key for s in build_dag([cell], get_plugins())}

    first = keys()
    assert sorted(reads) == sorted([str(data), str(bench / "questions.jsonl")])
    assert keys() == first and len(reads) == 2  # remembered: nothing read again
    os.utime(data, ns=(1, 1))
    (bench / "images" / "a.jpg").write_bytes(b"\xff\xd8 another image")  # images: not read
    assert keys() == first
    data.write_text('[{"id": "2"}]')  # same size, new content
    edited = keys()
    assert edited["stage2"] != first["stage2"] and edited["stage1"] == first["stage1"]
    assert edited["generate"] != first["generate"]  # downstream of stage 2
    (bench / "questions.jsonl").write_text('{"question_id": 2}\n')
    assert keys()["score"] != edited["score"]


def test_tiny_cells_read_their_worlds_foundations_and_seed_zero_keeps_old_keys():
    registry = load_registry()
    exp = registry.experiment("default").model_copy(update={"seed": 2})
    tiny, big = expand(exp, registry, get_plugins(), parse_matrix(["sizes=tiny-1m,33b"]))[::3]
    assert (tiny.model.size.name, tiny.model.foundation_seed) == ("tiny-1m", 2)
    assert tiny.mix.captions.seed == 2  # the world the foundation was pretrained on
    assert (big.model.size.name, big.model.foundation_seed) == ("33b", 0)
    (plain,) = _cells("sizes=tiny-1m", "methods=lora")
    assert plain.model.foundation_seed == 0
    assert "foundation_seed" not in plain.model.model_dump()  # spec hashes as before the field
    assert "foundation_seed" in tiny.model.canonical()


def test_only_score_steps_of_item_scoring_benchmarks_follow_what_score_writes(monkeypatch):
    """Adding items.jsonl to what a score step writes reruns those score steps, nothing else."""
    (cell,) = _cells("sizes=tiny-1m", "methods=lora")

    def keys():
        return {s.id: s.key for s in build_dag([cell], get_plugins())}

    before = keys()
    monkeypatch.setattr(dag, "SCORE_FILES", dag.SCORE_FILES + 1)
    changed = {sid for sid, key in keys().items() if before[sid] != key}
    assert changed == {f"score/{cell.id}/mmbench", f"score/{cell.id}/mmlu"}


def test_extends_merges_table_by_table_and_replaces_lists(tmp_path):
    """A config that extends `default` and sets one stage-2 value keeps the rest of the table."""
    from harness.plan.build import Options, build_plan

    config = tmp_path / "exp.toml"
    config.write_text(
        'extends = "default"\nbenchmarks = ["mmlu"]\n[stage2.tiny]\nmax_steps = 7\n'
        "[stage2.tiny.lora]\nlr = 5e-3\n[eval]\nbeam = 2\n"
    )
    opts = Options(config=config, matrix=["sizes=tiny-1m", "methods=lora,full"], out=tmp_path)
    lora, full = build_plan(opts, get_plugins()).cells.values()
    assert lora.stage2.max_steps == 7 and full.stage2.max_steps == 7  # the value set
    assert lora.stage2.lr == 5e-3 and lora.stage2.lora_rank == 16  # a sub-table merged too
    assert full.stage2.lr == 1e-3  # a sibling sub-table kept
    tiny = (lora.stage2.global_batch, lora.stage2.max_length, lora.stage2.precision)
    assert tiny == (16, 256, "fp32")  # the rest of [stage2.tiny] kept
    assert lora.stage1.max_steps == 240  # other tables untouched
    assert [e.benchmark for e in lora.evals] == ["mmlu"]  # a list replaces whole
    assert (lora.evals[0].beam, lora.evals[0].batch_size) == (2, 32)  # [eval] merged
    assert not list(tmp_path.glob("*/"))  # planning writes nothing
