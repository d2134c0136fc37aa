#!/usr/bin/env bash
# The GPU session's checks, prepared here and run there through the device tool in two calls (each well
# under the 10-minute limit; bench/gpu/README.md):
#   bash bench/gpu/session.sh tunekit [--quick]   op cases, the device scenarios, a fine-tuning run on
#                                                 both devices, tunekit's timings, files to and from Python
#   bash bench/gpu/session.sh torch [--quick]     PyTorch's timings of the same shapes
# Then here: node bench/gpu/report.mjs DIR (both stages' files in DIR) prints the side-by-side table.
# Results go to $OUT (the device tool's folder; /tmp/gpu-out elsewhere). Needs .gpu/bundle.tar.xz
# (bench/gpu/pack.sh). Every step has its own timeout and a failing step does not stop the next.
set -uo pipefail
cd "$(dirname "$0")/../.."
stage=${1:?usage: session.sh tunekit|torch [--quick]}
quick=${2:-}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
if [ ! -x .gpu/bin/node ] && [ ! -x bin/node ]; then tar -xJf .gpu/bundle.tar.xz; fi
export PATH="$PWD/bin:$PATH" TUNEKIT_CUDA_LIB="$PWD/libtunekit_cuda.so" PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS command...: runs it, logs its exit status and time
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  timeout "$secs" "$@"
  echo "== $name: exit $? in $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
}
case $stage in
  tunekit)
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
    node --version
    step device 150 node test/device-run.cjs > "$OUT/device.json"
    step tunekit 240 node bench/gpu/tunekit.mjs "$OUT/tunekit.json" $quick
    x=$(mktemp -d)
    step interop-save 60 node bench/gpu/interop.mjs save "$x" cuda
    step interop-python 120 python3 bench/gpu/interop.py "$x" test/fixtures/models/gpt2-tiny-random | tee "$OUT/interop.txt"
    step interop-load 60 node bench/gpu/interop.mjs load "$x" cuda | tee -a "$OUT/interop.txt"
    ;;
  torch)
    python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
    step torch 400 python3 bench/gpu/torch_side.py "$OUT/torch.json" $quick
    ;;
  *) echo "session.sh: unknown stage '$stage' (tunekit | torch)" >&2; exit 2 ;;
esac
