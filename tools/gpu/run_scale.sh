#!/usr/bin/env bash
# The paper-scale benchmark on one GPU, in ONE call of the device tool (issue 17 item 4; docs/devices.md says how):
#   here, once:      bash tools/gpu/prepare.sh            (fills .gpu/: gzipped MNIST and the zstandard wheel)
#   device tool:     run  command="bash tools/gpu/run_scale.sh"  carry=[".gpu"]  timeout_s=600
#   here, dry run:   bash tools/gpu/run_scale.sh --dry-run     (the same steps on the CPU at --quick size, with the
#                    packages the GPU image lacks made unimportable; writes to $OUT or a temporary folder)
# Plan (priority order, each run's results written as soon as it ends): full-width ResNet-18 S, ResNet-50 S, then
# ResNet-18 M, all on MNIST at 3x32x32 with the builder's default schedule. The Python part stops building at
# BUDGET_S (default 400 s; a build that would run past it stops after its last finished position, its phases
# reported) and is killed at TIMEOUT_S (530 s), so the call ends inside 9 minutes; $OUT gets scale-paper.json/.md,
# log.txt, env.txt (the dry run: scale-paper-quick.*, with no budget that bites).
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-$(mktemp -d /tmp/pnc-scale-out.XXXX)}
mkdir -p "$OUT"
PLAN=${PLAN:-resnet18/mnist/S,resnet50/mnist/S,resnet18/mnist/M}
BUDGET_S=${BUDGET_S:-$([ "$DRY" = 1 ] && echo 3000 || echo 400)}
TIMEOUT_S=${TIMEOUT_S:-$([ "$DRY" = 1 ] && echo 3600 || echo 530)}
DATA_ROOT=data
[ -d .gpu/data/mnist ] && DATA_ROOT=.gpu/data
export PYTHONUNBUFFERED=1 PNC_PACK_PROGRESS_INTERVAL=30 HF_HUB_OFFLINE=1 CUBLAS_WORKSPACE_CONFIG=:4096:8
if [ "$DRY" = 1 ]; then
  PY=${PY:-.venv/bin/python}
  block=$(mktemp -d /tmp/pnc-gpu-block.XXXX)  # what the GPU image lacks (KINDS.md) must not be needed
  for m in cryptography mlxtend olah; do
    mkdir -p "$block/$m" && echo "raise ImportError('$m is not on the GPU image')" > "$block/$m/__init__.py"
  done
  export PYTHONPATH=$block${PYTHONPATH:+:$PYTHONPATH}
  for w in .gpu/wheels/*.whl; do unzip -tq "$w" >/dev/null || { echo "bad wheel $w" >&2; exit 1; }; done
  ARGS=(--quick --device cpu --threads "${THREADS:-1}")
else
  PY=${PY:-python3}
  if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .gpu/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  ARGS=(--device cuda --threads 16 --paper-epochs 1 --agree-n 1000)
fi
{
  date -u
  nvidia-smi -L 2>&1 || true
  "$PY" -c "import sys, torch, zstandard; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-', 'zstandard', \
zstandard.__version__)" 2>&1
  "$PY" -c "import peft; print('peft', peft.__version__)" 2>&1
  git log -1 --format='commit %H %s' 2>/dev/null | cut -c1-120
} > "$OUT/env.txt"
cat "$OUT/env.txt"
timeout -k 10 "$TIMEOUT_S" "$PY" -m tools.bench scale --parts paper --plan "$PLAN" --data-root "$DATA_ROOT" \
  --budget-s "$BUDGET_S" --out "$OUT" "${ARGS[@]}" 2>&1 | tee "$OUT/log.txt"
rc=${PIPESTATUS[0]}
echo "run_scale.sh: exit $rc; results in $OUT:" && ls -la "$OUT"
cat "$OUT"/scale-paper*.md 2>/dev/null
exit "$rc"
