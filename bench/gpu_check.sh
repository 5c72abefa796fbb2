#!/usr/bin/env bash
# GPU check for an NVIDIA machine, in four parts, each under its own timeout:
#  1. bench/gpu_check.py: a randomly initialised real-width LLaVA (~1.3B LLaMA + CLIP ViT-L/14)
#     trained with full, LoRA and QLoRA through the harness: tokens/s, MFU (whole stage and
#     steady), peak memory, the ratio to a bare PyTorch loop over the same model and batches,
#     each method before and after the device tuning (harness.train.tuning: attention kernel,
#     loader workers, checkpointing by memory, torch.compile) with RATIO tuned_<method> lines;
#  2. tests/test_gpu.py: each backend trains on the GPU, evaluation moves there, GPU answers
#     match the CPU's;
#  3. a short end-to-end `harness run` of bench/gpu_smoke.toml (worker pool, 4-bit load, costs);
#  4. full fine-tuning, tuned, over a 200-step stage: the whole stage's MFU beside the steady one.
# Skips cleanly where there is no GPU. Logs and results go to $GPU_CHECK_OUT
# (default bench/out/gpu_check); GPU_CHECK_PARTS="1" (or "2 3", ...) runs only those parts.
# Part 3 needs tiny-1m's foundations (about 4 minutes to build on one core): where HARNESS_CACHE
# is unset and bench/out/gpu_cache exists, that folder is the cache. Fill it on a CPU machine with
#   HARNESS_CACHE=$PWD/bench/out/gpu_cache harness run --config bench/gpu_smoke.toml --out /tmp/s
# and carry its foundation/ folder (3 MB) to the GPU machine.
#   bench/gpu_check.sh [extra args for bench/gpu_check.py]
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
OUTDIR="${GPU_CHECK_OUT:-bench/out/gpu_check}"
mkdir -p "$OUTDIR"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP gpu_check: no NVIDIA GPU on this machine"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# A machine with its own Python stack but without this project installed (a bare GPU image):
# install the wheels carried in .whl/ (if any) and the project itself into a scratch folder.
if ! "$PY" -c "import harness_plugins, pydantic, bitsandbytes" >/dev/null 2>&1; then
  SITE="$(mktemp -d)"
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || exit 1
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" . || exit 1
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$SITE/bin:$PATH"
  rm -rf build
fi
"$PY" -c "import torch, transformers, peft, bitsandbytes as b; print('torch', torch.__version__, \
'transformers', transformers.__version__, 'peft', peft.__version__, 'bitsandbytes', b.__version__)"

if [ -z "${HARNESS_CACHE:-}" ] && [ -d bench/out/gpu_cache ]; then
  export HARNESS_CACHE="$PWD/bench/out/gpu_cache"
fi

status=0
PARTS=" ${GPU_CHECK_PARTS:-1 2 3 4} "
if [[ "$PARTS" == *" 1 "* ]]; then
  echo "== 1/4 training throughput per method"
  timeout 420 "$PY" bench/gpu_check.py --baseline --variants before,after \
    --json "$OUTDIR/gpu_check.json" "$@" || status=1
fi
if [[ "$PARTS" == *" 2 "* ]]; then
  echo "== 2/4 tests/test_gpu.py"
  timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [[ "$PARTS" == *" 3 "* ]]; then
  echo "== 3/4 harness run --config bench/gpu_smoke.toml"
  timeout 180 "$PY" -m harness run \
    --config bench/gpu_smoke.toml --out "$OUTDIR/smoke" 2>&1 | tail -40
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [[ "$PARTS" == *" 4 "* ]]; then
  echo "== 4/4 full fine-tuning, tuned, 200 steps: whole stage against steady"
  timeout 240 "$PY" bench/gpu_check.py --methods full --variants after --steps 200 \
    --json "$OUTDIR/gpu_check_200.json" || status=1
fi
echo "gpu_check: $([ $status -eq 0 ] && echo all parts passed || echo a part FAILED)"
exit $status
