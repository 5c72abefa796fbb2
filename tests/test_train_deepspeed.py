"""DeepSpeed: generated configs for the paper's cells, and ZeRO-2/3 runs on CPU matching fp32."""

from __future__ import annotations

import pytest
from harness_plugins.backends.full import FullFineTune
from harness_plugins.backends.lora import LoRA
from harness_plugins.backends.qlora import QLoRA

from harness.errors import UserError
from harness.specs import HardwareSpec, TrainSpec
from harness.train.deepspeed_config import validate_deepspeed_config

A100 = HardwareSpec(name="a100-80g", gpus_per_node=8, peak_tflops_bf16=312)
# The study's stage-2 settings (registry.toml [methods.*]): ZeRO stage and global batch.
PAPER = {
    "full": (FullFineTune(), 3, 512, 16),
    "lora": (LoRA(), 3, 64, 8),
    "qlora": (QLoRA(), 2, 64, 8),
}


@pytest.mark.parametrize("size", ["33b", "65b"])
@pytest.mark.parametrize("method", sorted(PAPER))
@pytest.mark.parametrize("nodes", [4, 1])
def test_paper_cells_validate_with_the_papers_zero_stage_and_batch(size, method, nodes):
    backend, stage, global_batch, micro = PAPER[method]
    train = TrainSpec(method=method, global_batch=global_batch, micro_batch=micro, lora_rank=64)
    gpus = nodes * 8
    config = backend.deepspeed_config(train, A100.model_copy(update={"nodes": nodes}), gpus)
    validate_deepspeed_config(config, gpus)
    assert config["zero_optimization"]["stage"] == stage
    assert config["train_batch_size"] == global_batch
    per_gpu = config["train_micro_batch_size_per_gpu"] * config["gradient_accumulation_steps"]
    assert per_gpu * gpus == global_batch
    assert config["train_micro_batch_size_per_gpu"] <= micro
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    assert "optimizer" not in config and "scheduler" not in config


def test_configs_that_would_override_the_trainer_or_miscount_are_refused():
    config = FullFineTune().deepspeed_config(TrainSpec(method="full"), A100, 8)
    with pytest.raises(UserError, match="optimizer"):
        validate_deepspeed_config({**config, "optimizer": {"type": "AdamW"}}, 8)
    with pytest.raises(UserError, match="train_batch_size"):
        validate_deepspeed_config(config, 16)
    with pytest.raises(UserError, match="does not split over 24 devices"):
        LoRA().deepspeed_config(TrainSpec(method="lora", global_batch=64), A100, 24)
    with pytest.raises(UserError, match="ZeRO-3"):
        QLoRA().deepspeed_config(TrainSpec(method="qlora", zero_stage=3), A100, 8)


def test_cpu_configs_are_fp32_single_process():
    config = LoRA().deepspeed_config(TrainSpec(method="lora", global_batch=16), A100, 0)
    validate_deepspeed_config(config, 1)
    assert config["bf16"]["enabled"] is False and config["gradient_accumulation_steps"] == 4


@pytest.fixture(scope="module")
def ds_runs(tmp_path_factory):
    """Stage 2 (full) three times from one stage 1: plain, ZeRO-2 and ZeRO-3 in one process."""
    import torch
    from _train_fixtures import cell, open_world

    from harness.train import run_stage1, run_stage2

    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("ds")
    world = open_world(root, mp)
    run_stage1(cell(world.mix, "full", max_steps=1), root / "s1", lambda line: None)
    for name, value in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29731",
    }.items():
        mp.setenv(name, value)
    records = {}
    for zero in (None, 2, 3):
        if zero is not None:
            mp.setenv("HARNESS_DEEPSPEED", "1")
        spec = cell(world.mix, "full", max_steps=3, zero_stage=zero)
        out = root / f"zero{zero}"
        records[zero] = (run_stage2(spec, FullFineTune(), root / "s1", out, lambda line: None), out)
    yield records
    mp.undo()


@pytest.mark.slow
def test_zero2_and_zero3_on_cpu_match_plain_fp32_losses(ds_runs):
    import torch
    from safetensors.torch import load_file

    plain = ds_runs[None][0]
    for zero in (2, 3):
        record = ds_runs[zero][0]
        assert record.steps == plain.steps == 3
        assert record.first_loss == pytest.approx(plain.first_loss, abs=1e-5)
        assert record.last_loss == pytest.approx(plain.last_loss, abs=1e-4)
    # ZeRO-3 shards parameters: the saved model must hold the gathered, trained weights.
    saved = {z: load_file(str(ds_runs[z][1] / "model.safetensors")) for z in (None, 3)}
    assert saved[3].keys() == saved[None].keys()
    for name, tensor in saved[None].items():
        assert torch.allclose(saved[3][name], tensor, atol=1e-4), name


def test_launch_command_runs_every_rank_through_the_deepspeed_launcher(tmp_path):
    from harness.train.launch import launch_command, write_hostfile

    hostfile = write_hostfile(["node-a", "node-b"], 8, tmp_path / "hostfile")
    assert hostfile.read_text() == "node-a slots=8\nnode-b slots=8\n"
    cmd = launch_command(
        tmp_path / "cell.json",
        "lora",
        tmp_path / "s1",
        tmp_path / "out",
        gpus_per_node=8,
        nodes=2,
        hostfile=hostfile,
    )
    assert cmd[:7] == [
        "deepspeed",
        "--hostfile",
        str(hostfile),
        "--num_nodes",
        "2",
        "--num_gpus",
        "8",
    ]
    assert cmd[cmd.index("--module") + 1] == "harness.train.launch"
    assert cmd[cmd.index("--backend") + 1] == "lora"
    with pytest.raises(UserError, match="needs a hostfile"):
        launch_command(tmp_path / "c.json", "full", tmp_path, tmp_path, gpus_per_node=8, nodes=4)


def test_stage2_on_several_gpus_launches_and_records_the_command(tmp_path, monkeypatch):
    """With 8 GPUs visible the step runs the launcher and keeps its exact command."""
    import subprocess

    from _train_fixtures import cell, write_data

    import harness.train.launch as launch
    import harness.train.stages as stages
    from harness.results import TrainRecord
    from harness.specs import CellSpec

    seen = {}

    class FakeLauncher:
        def __init__(self, cmd, **kwargs):
            seen["cmd"] = cmd
            out = cmd[cmd.index("--out") + 1]
            seen["cell"] = CellSpec.model_validate_json(open(cmd[cmd.index("--cell") + 1]).read())
            record = TrainRecord(stage="stage2", method="lora", steps=3, gpus=8)
            (tmp_path / "out" / launch.RECORD_FILE).write_text(record.model_dump_json())
            assert out == str(tmp_path / "out")
            self.stdout, self.returncode = iter(["rank 0: step 3/3\n"]), 0
            self.pid = 2**22 + 1  # above Linux's largest pid: no process group to stop

        def wait(self):
            return self.returncode

    monkeypatch.setattr(stages, "planned_world", lambda hardware: (8, 1))
    monkeypatch.setattr(launch, "planned_world", lambda hardware: (8, 1))
    monkeypatch.setattr(subprocess, "Popen", FakeLauncher)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    (tmp_path / "s1").mkdir()
    import torch
    from safetensors.torch import save_file

    save_file(
        {"linear_1.weight": torch.zeros(2, 2)}, str(tmp_path / "s1" / "projector.safetensors")
    )
    spec = cell(write_data(tmp_path / "data"), "lora")
    lines = []
    record = stages.run_stage2(spec, LoRA(), tmp_path / "s1", tmp_path / "out", lines.append)
    assert record.launch_command == seen["cmd"] and record.gpus == 8
    assert seen["cell"] == spec
    assert "--num_gpus" in seen["cmd"] and "rank 0: step 3/3" in lines


def test_other_nodes_are_used_only_when_a_hostfile_names_them(monkeypatch, tmp_path):
    """A 4-node cell on an 8-GPU machine trains on that machine unless HARNESS_HOSTFILE is set."""
    import harness.train.settings as settings

    monkeypatch.setattr(settings, "cuda_devices", lambda: 8)
    four_nodes = A100.model_copy(update={"nodes": 4})
    monkeypatch.delenv("HARNESS_HOSTFILE", raising=False)
    assert settings.planned_world(four_nodes) == (8, 1)
    monkeypatch.setenv("HARNESS_HOSTFILE", str(tmp_path / "hostfile"))
    assert settings.planned_world(four_nodes) == (8, 4)
    monkeypatch.setattr(settings, "cuda_devices", lambda: 2)
    assert settings.planned_world(A100) == (2, 1)
    monkeypatch.setattr(settings, "cuda_devices", lambda: 0)
    assert settings.planned_world(four_nodes) == (0, 1)


def test_other_nodes_get_the_harness_environment_but_no_secret(tmp_path, monkeypatch):
    """What the deepspeed launcher exports on every node of a hostfile (ranks there start from a
    fresh login). The run through real pdsh: tests/test_train_multinode.py."""
    from harness.train.launch import PARENT_ENV, carried_env, write_env_file

    env = {
        "HARNESS_CACHE": "/shared/cache",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "8",
        "HF_TOKEN": "hf_s3cr3t",
        "HUGGINGFACE_HUB_TOKEN": "hf_s3cr3t",
        "HARNESS_JUDGE_API_KEY": "sk-s3cr3t",
        PARENT_ENV: "4242",  # a pid of this machine: meaningless on another
        "HARNESS_HOSTFILE": "/shared/hostfile",
        "HARNESS_NOTE": 'a "quoted" value',  # DeepSpeed would export it broken
        "PATH": "/usr/bin",
        "OPENAI_API_KEY": "sk-s3cr3t",
    }
    carried, left = carried_env(env)
    assert carried == {
        "HARNESS_CACHE": "/shared/cache",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "8",
        "TOKENIZERS_PARALLELISM": "false",
    }
    assert left == ["HARNESS_JUDGE_API_KEY", "HARNESS_NOTE", "HF_TOKEN", "HUGGINGFACE_HUB_TOKEN"]
    lines = []
    monkeypatch.chdir(tmp_path)  # no DeepSpeed env file of the user's here, nor in HOME
    path = write_env_file({**env, "HOME": str(tmp_path)}, tmp_path / "launch.env", lines.append)
    assert path.read_text().splitlines()[0] == "HARNESS_CACHE=/shared/cache"
    assert path.stat().st_mode & 0o777 == 0o600
    assert "s3cr3t" not in path.read_text() + "".join(lines)


def test_the_users_own_deepspeed_env_file_still_reaches_the_other_nodes(tmp_path, monkeypatch):
    """DeepSpeed exports one env file only: the harness's takes in the user's lines."""
    from harness.train.launch import write_env_file

    home = tmp_path / "home"
    home.mkdir()
    (home / ".deepspeed_env").write_text("NCCL_IB_HCA=mlx5_0\nHARNESS_CACHE=/theirs\n")
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    env = {"HOME": str(home), "HARNESS_CACHE": "/shared/cache", "HF_HUB_OFFLINE": "1"}
    path = write_env_file(env, tmp_path / "launch.env", lines.append)
    written = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert written == {
        "HARNESS_CACHE": "/theirs",  # their file wins where both set a variable
        "HF_HUB_OFFLINE": "1",
        "NCCL_IB_HCA": "mlx5_0",
    }
    assert "and 2 from your DeepSpeed env file(s): NCCL_IB_HCA, HARNESS_CACHE" in lines
