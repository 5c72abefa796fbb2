"""A quick tiny size (its foundation builds in seconds) and short training, for the tests that
run whole cells through cluster software (tests/test_slurm.py, tests/test_train_multinode.py)."""

QUICK_REGISTRY = """
[towers.quick-clip]
hidden_size = 32
patch_size = 8
resolutions = [32]
tiny = { layers = 2, heads = 2, intermediate = 64, pretrain_steps = 3 }

[sizes.quick]
hidden_size = 64
params_b = 0.0001
tower = "quick-clip"
tiny = { layers = 1, heads = 2, intermediate = 128, vocab = 600, pretrain_steps = 3 }

[hardware.cpu-2node]   # two nodes of one CPU rank each
accelerator = "cpu"
nodes = 2
gpus_per_node = 1
gpu_memory_gb = 24
usd_per_node_hour = 0.10
"""

QUICK_TRAINING = """
[stage1.tiny]
global_batch = 8
micro_batch = 8
max_length = 128
lr = 2e-3
max_steps = 3
precision = "fp32"

[stage2.tiny]
global_batch = 16
micro_batch = 16
max_length = 128
max_steps = 5
precision = "fp32"
lora = { lr = 2e-3, lora_rank = 4, lora_alpha = 8 }
"""
