#!/usr/bin/env bash
# GPU check for an NVIDIA machine (under 8 minutes): trains a randomly initialised real-width
# LLaVA (~1.3B LLaMA + CLIP ViT-L/14) with full, LoRA and QLoRA through the harness and prints
# tokens/s, MFU and peak memory per method. Skips cleanly where there is no GPU.
#   bench/gpu_check.sh [extra args for bench/gpu_check.py]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP gpu_check: no NVIDIA GPU on this machine"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec timeout 470 "$PY" bench/gpu_check.py "$@"
