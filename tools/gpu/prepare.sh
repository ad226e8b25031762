#!/usr/bin/env bash
# Run HERE (not on the GPU machine) before tools/gpu/run_scale.sh: fills .gpu/ (ignored by git), the one folder the
# device tool's call carries (carry: [".gpu"]), with what the GPU machine lacks:
#   .gpu/data/mnist/*.gz           MNIST from data/mnist, gzipped (about 11 MB; the raw files are 53 MB and the
#                                  whole carried tree may be 64 MiB); --fashion adds .gpu/data/fashion-mnist (30 MB)
#   .gpu/wheels/zstandard-*.whl    the one pnc-pack dependency missing from that image (docs/devices.md); Python 3.12,
#                                  manylinux x86-64, the version constraints.txt pins
# Needs data/mnist (python -m tools.fetch_data) and pip with network access. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .gitignore || { echo "prepare.sh: .gitignore lacks /.gpu/" >&2; exit 1; }
mkdir -p .gpu/data .gpu/wheels
sets=(mnist)
[ "${1:-}" = "--fashion" ] && sets+=(fashion-mnist)
for d in "${sets[@]}"; do
  mkdir -p ".gpu/data/$d"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f ".gpu/data/$d/$f.gz" ]; then continue; fi
    if [ -f "data/$d/$f.gz" ]; then cp "data/$d/$f.gz" ".gpu/data/$d/$f.gz"
    elif [ -f "data/$d/$f" ]; then gzip -9 -c "data/$d/$f" > ".gpu/data/$d/$f.gz.part" && mv ".gpu/data/$d/$f.gz.part" ".gpu/data/$d/$f.gz"
    else echo "prepare.sh: data/$d/$f missing (python -m tools.fetch_data)" >&2; exit 1; fi
  done
done
zstd=$(grep -E '^zstandard==' constraints.txt | cut -d= -f3)
if ! ls .gpu/wheels/zstandard-"$zstd"-cp312-*.whl >/dev/null 2>&1; then
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/wheels "zstandard==$zstd"
fi
for w in .gpu/wheels/*.whl; do unzip -tq "$w" >/dev/null; done
du -sh .gpu
echo "prepare.sh: ready; the tree that travels is $(($(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) / 1048576)) MiB + .gpu"
