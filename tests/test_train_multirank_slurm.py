"""Ranks that srun started: RANK, WORLD_SIZE and the master come from SLURM_* variables."""

from __future__ import annotations

import pytest

from harness.train.settings import slurm_ranks

TASK_1_OF_2 = {
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_STEP_NUM_NODES": "1",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "1",
    "SLURM_NTASKS": "2",
}


def test_a_task_of_a_two_task_step_is_rank_one_of_two_on_loopback():
    assert slurm_ranks(TASK_1_OF_2) == {
        "RANK": "1",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(20_000 + 4242),  # the same on every task of the job
    }
    assert slurm_ranks({**TASK_1_OF_2, "MASTER_PORT": "29600"})["MASTER_PORT"] == "29600"


@pytest.mark.parametrize(
    "change",
    [
        {"SLURM_STEP_NUM_TASKS": "1"},  # a one-task step: a launcher may start the ranks
        {"SLURM_STEP_NUM_TASKS": None},  # the batch script, outside any srun step
        {"RANK": "0"},  # a launcher already set the rank
    ],
    ids=["one-task", "batch-script", "launcher"],
)
def test_only_multi_task_srun_steps_take_ranks_from_slurm(change):
    env = {**TASK_1_OF_2, **change}
    assert slurm_ranks({k: v for k, v in env.items() if v is not None}) is None
