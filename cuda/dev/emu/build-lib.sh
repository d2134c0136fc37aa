#!/usr/bin/env bash
# Builds libtunekit_cuda.so from cuda/*.cu against the CPU emulator (cuda_emu.h), without a GPU.
# Usage: cuda/dev/emu/build-lib.sh OUT_DIR [--asan]
#   --asan: AddressSanitizer on every access (check.sh's harness); without it the library loads into
#   a plain node process (TUNEKIT_CUDA_LIB=OUT_DIR/libtunekit_cuda.so), which is how the tests run
#   the whole device path (model.to("cuda"), training, saving) on a machine with no GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
here="$root/cuda/dev/emu"
out="$1"
san=""
[ "${2:-}" = "--asan" ] && san="-fsanitize=address -fno-omit-frame-pointer"
mkdir -p "$out/inc" "$out/src" "$out/obj"
for h in cuda_runtime.h cuda_bf16.h cuda_fp16.h mma.h; do echo '#include "cuda_emu.h"' > "$out/inc/$h"; done
cp "$here/cuda_emu.h" "$out/inc/"
# kernel<<<grid, block[, smem]>>>(args) → tk_emu::Launch(grid, block[, smem])(kernel, args)
for f in "$root"/cuda/*.cu "$root"/cuda/*.cuh; do
  perl -0pe 's/(\b[\w:]+(?:<[^;<>]*>)?)<<<([^;]*?)>>>\(/tk_emu::Launch($2)($1, /g;
             s/extern __shared__ float smem\[\];/float* smem = tk_emu::g_dyn_smem;/g' "$f" > "$out/src/$(basename "$f")"
done
inc="-I$out/inc -I$root/include"  # cuda/ sees include/tunekit/ only, as in the real build
emu="-std=c++17 -O1 -g -fPIC $san -Wno-unknown-pragmas"
pids=()
objs=()
for f in "$out"/src/*.cu; do
  o="$out/obj/emu_$(basename "$f" .cu).o"
  g++ $emu $inc -include "$out/inc/cuda_emu.h" -x c++ -c "$f" -o "$o" & pids+=($!); objs+=("$o")
done
cp "$here/emu_rt.cc" "$out/src/"  # next to nothing: it must find the one cuda_emu.h in inc/
g++ $emu $inc -c "$out/src/emu_rt.cc" -o "$out/obj/emu_rt.o" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
g++ -shared $san -o "$out/libtunekit_cuda.so" "${objs[@]}" "$out/obj/emu_rt.o"
