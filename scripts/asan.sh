#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs the
# jest suite against it. node itself is not instrumented, so libasan is preloaded and leak detection
# is off here (node's own allocations would drown the report; scripts/lsan-check.sh does leaks).
#   scripts/asan.sh            the whole suite
#   scripts/asan.sh --ci       the CI subset: kernels, models, trainer, isolation, numerics (~4 min)
#   scripts/asan.sh --build    build only
#   scripts/asan.sh -- ARGS    extra jest arguments (e.g. -- test/gemm.test.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build-asan
MODE=all
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) MODE=ci ;;
    --build) MODE=build ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "asan.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# node-gyp always builds into ./build, so the ASAN build runs in a mirror (sources copied, node_modules
# linked) and leaves the normal build/ alone.
SRC=$OUT/src
mkdir -p "$SRC"
# Sources are linked, not copied, so make sees their real mtimes and rebuilds only what changed.
for d in native cuda include node_modules; do ln -sfn "$ROOT/$d" "$SRC/$d"; done
cp "$ROOT/binding.gyp" "$ROOT/package.json" "$SRC/"
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"
( cd "$SRC" && CFLAGS="$SAN" CXXFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
    bash -c 'node_modules/.bin/node-gyp configure --loglevel=warn --nodedir="$(npm config get nodedir)" &&
             nice -n 10 node_modules/.bin/node-gyp build -j 2 --loglevel=warn' >"$OUT/build.log" 2>&1 ) \
  || { tail -40 "$OUT/build.log"; exit 1; }
ADDON=$SRC/build/Release/tunekit.node
nm -D "$ADDON" | grep __asan_report_load >/dev/null || { echo "asan.sh: $ADDON is not instrumented" >&2; exit 1; }
echo "asan.sh: built $ADDON"
[ "$MODE" = build ] && exit 0

LIBASAN=$(g++ -print-file-name=libasan.so)
LIBUBSAN=$(g++ -print-file-name=libubsan.so)
export TUNEKIT_ADDON=$ADDON
export TUNEKIT_SANITIZER=asan   # tests that measure RSS know the allocator quarantines freed memory
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
# detect_leaks=0: node is not instrumented. new_delete_type_mismatch and alloc_dealloc_mismatch stay on.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The documented CI subset: every kernel test, the models, the trainer, and the reliability tests.
# Sanitized code runs several times slower: the per-test timeout is raised to 15 min.
CI_TESTS=(adamw attention cross_entropy dropout elementwise embedding gemm layernorm lora memory
          models lora_model heads trainer isolation numerics)
cd "$ROOT"
nice -n 10 npx tsc -p tsconfig.json
if [ "$MODE" = ci ]; then
  ARGS=()
  for t in "${CI_TESTS[@]}"; do ARGS+=("test/$t.test.ts"); done
  nice -n 10 npx jest -w 1 --testTimeout=900000 "${ARGS[@]}" "${EXTRA[@]}"
else
  nice -n 10 npx jest -w 1 --testTimeout=900000 "${EXTRA[@]}"
fi
