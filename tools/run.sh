#!/usr/bin/env bash
# One entry point for the README's commands. Sets up .venv on first use (torch==2.13.0; set PNC_PACK_TORCH_INDEX for
# the CPU build, see the README's Quickstart), then runs
#   bash tools/run.sh demo [ARGS]   the main job: pnc-pack demo
#   bash tools/run.sh test [ARGS]   the whole test suite
#   bash tools/run.sh lint [ARGS]   ruff over the package, tests and tools (settings in pyproject.toml)
#   bash tools/run.sh bench [ARGS]  the benchmarks (python -m tools.bench ...)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PNC_PACK_VENV:-.venv}
stamp="$VENV/.pnc-pack-installed"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "run.sh: setting up $VENV (torch 2.13.0 and pnc-pack's dependencies; about 100 s, once)..." >&2
  # PNC_PACK_TORCH_INDEX=https://download.pytorch.org/whl/cpu takes torch from there: the CPU build, where a plain
  # PyPI install of torch==2.13.0 on Linux x86-64 resolves to the CUDA build and its gigabytes of nvidia-* packages.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
    ${PNC_PACK_TORCH_INDEX:+--index-url "$PNC_PACK_TORCH_INDEX"} "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,bench,lint,onnx,hf]"
  echo "$want" > "$stamp"
fi
cmd=${1:-test}; shift || true
# Tiny models run fastest on one thread, and a busy machine does not slow them down 4x; override by setting it.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
case "$cmd" in
  demo)  exec "$VENV/bin/pnc-pack" demo "$@" ;;
  test)  exec timeout 3600 "$VENV/bin/python" -m pytest "$@" ;;  # a hang fails in an hour, with tracebacks
  lint)  [ $# -gt 0 ] || set -- pnc_pack tests tools
         exec "$VENV/bin/ruff" check "$@" ;;
  bench) exec "$VENV/bin/python" -m tools.bench "$@" ;;
  *) echo "usage: bash tools/run.sh {demo|test|lint|bench} [ARGS]" >&2; exit 2 ;;
esac
