#!/usr/bin/env bash
# Builds ONLY the CUDA backend (libtunekit_cuda.so, sm_80 + sm_90) with cmake directly, no cmake-js and
# no GPU, into build-cuda-check/, and fails on any warning (nvcc's -Werror=all-warnings and the host
# compiler's -Werror are set in CMakeLists.txt; the log is also scanned as a second guard). Then checks
# that the library exports the C entry points the addon's loader looks up, and nothing C++.
# Usage: scripts/check-cuda-build.sh [jobs]   (default: the number of cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${1:-$(nproc)}
out=build-cuda-check
nvcc=$(command -v nvcc || true)
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc; fi
if [ -z "$nvcc" ]; then
  echo "check-cuda-build: nvcc not found (PATH or /usr/local/cuda/bin); install the CUDA toolkit" >&2
  exit 1
fi
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release -DTK_REQUIRE_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" >"$log" 2>&1 ||
  { cat "$log" >&2; echo "check-cuda-build: configure failed" >&2; exit 1; }
if ! cmake --build "$out" --target tunekit_cuda -j "$jobs" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "check-cuda-build: build failed" >&2
  exit 1
fi
if grep -iE '(^|[^-])warning' "$log" >&2; then
  echo "check-cuda-build: the build printed warnings (above)" >&2
  exit 1
fi
lib="$out/libtunekit_cuda.so"
[ -f "$lib" ] || { echo "check-cuda-build: $lib was not produced" >&2; exit 1; }
# The C entry points of include/tunekit/backend.h, the only names the loader looks up.
for sym in tk_cuda_abi tk_cuda_init tk_cuda_device_name tk_cuda_supports tk_cuda_run tk_cuda_alloc tk_cuda_free \
           tk_cuda_copy tk_cuda_synchronize tk_cuda_gemm_half tk_cuda_convert_f32 tk_cuda_peak_gflops; do
  nm -D --defined-only "$lib" | grep -qw "$sym" || { echo "check-cuda-build: $lib does not export $sym" >&2; exit 1; }
done
# Only C names cross the dlopen boundary: every exported function is a tk_cuda_* C function (no mangled
# C++ symbol, which would mean a C++ type or exception could leak through the interface).
extra=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | grep -v '^tk_cuda_' || true)
if [ -n "$extra" ]; then
  echo "check-cuda-build: $lib exports functions other than tk_cuda_*: $extra" >&2
  exit 1
fi
# The CUDA runtime is linked statically: nothing from CUDA may be needed to load the library.
if readelf -d "$lib" | grep NEEDED | grep -iE 'libcuda|libcudart|libcublas'; then
  echo "check-cuda-build: $lib needs a CUDA library at load time (expected the static runtime)" >&2
  exit 1
fi
echo "check-cuda-build: $lib built without warnings in $(($(date +%s) - start)) s ($jobs jobs, sm_80 + sm_90)"
