#!/usr/bin/env bash
# Runs the CUDA kernels WITHOUT a GPU: cuda/*.cu compiled as C++ against a small emulator (cuda_emu.h:
# each block's threads are fibers, __syncthreads and warp collectives are barriers, WMMA is done in
# float, dynamic shared memory starts as NaN, launches are validated, AddressSanitizer watches every
# access), loaded through the real dlopen loader and compared with the CPU kernels by
# cuda_check_ops (native/cuda_check.cc). Threads are scheduled in three orders (forward, reverse, shuffled) so a
# missing barrier shows up as a wrong result. This checks indexing, masking, tiling and reductions; it
# says nothing about speed, the memory model or the real compiler. Needs g++ (with libasan), perl.
# Usage: cuda/dev/emu/check.sh   (builds into build-cuda-emu/)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
here="$root/cuda/dev/emu"
out="$root/build-cuda-emu"
"$here/build-lib.sh" "$out" --asan
cd "$out"
cpu="-std=c++17 -O2 -fno-math-errno -DTK_ISA=scalar"
cpu_objs=()
pids=()
for f in $(node -p "require('$root/native/sources.json').kernels.join(' ')") native/cpu/threadpool.cc native/cpu/dispatch.cc \
         native/cpu/backend.cc; do
  o="$out/obj/cpu_$(basename "$f" .cc).o"
  g++ $cpu -I"$root/include" -c "$root/$f" -o "$o" & pids+=($!); cpu_objs+=("$o")
done
for p in "${pids[@]}"; do wait "$p"; done
# The addon's side: the loader, the checker, and the harness (a dev tool of cuda/ that drives native/'s checker).
host="-std=c++17 -O1 -g -fsanitize=address -I$root/include -I$root/native"
g++ $host -c "$root/native/cuda_backend.cc" -o "$out/obj/cuda_backend.o"
g++ $host -c "$root/native/cuda_check.cc" -o "$out/obj/cuda_check.o"
g++ $host -c "$here/harness.cc" -o "$out/obj/harness.o"
g++ -fsanitize=address -o "$out/harness" "${cpu_objs[@]}" "$out/obj/cuda_backend.o" "$out/obj/cuda_check.o" \
  "$out/obj/harness.o" -ldl -lpthread
status=0
for order in forward reverse shuffle; do
  echo "== thread order: $order"
  TUNEKIT_CUDA_LIB="$out/libtunekit_cuda.so" EMU_ORDER=$order ASAN_OPTIONS=detect_leaks=0 "$out/harness" >"$out/$order.log" 2>&1 || status=1
  grep -E '^FAIL|^emu|ERROR' "$out/$order.log" || true
done
exit $status
