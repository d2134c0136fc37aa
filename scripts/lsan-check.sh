#!/usr/bin/env bash
# LeakSanitizer over a short training workload (scripts/lsan-train.cjs) with the ASAN build of the
# addon (scripts/asan.sh --build). node is not instrumented, so its own allocations are reported
# too: the check counts the leak reports whose stack passes through tunekit.node. As a positive
# control a tiny preloaded library leaks 55 bytes on purpose; the check fails if LSan does not
# report it (then it was not running, and "no leaks" would mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/asan.sh --build
OUT=$PWD/build-asan
ADDON=$OUT/src/build/Release/tunekit.node
printf '#include <stdlib.h>\nvoid* volatile tk_canary_sink;\n__attribute__((constructor)) static void tk_lsan_canary(void) { tk_canary_sink = malloc(55); tk_canary_sink = 0; }\n' > "$OUT/canary.c"
gcc -shared -fPIC -g -fno-omit-frame-pointer "$OUT/canary.c" -o "$OUT/canary.so"
[ -f dist/native.js ] || npx tsc -p tsconfig.json
rm -f "$OUT"/lsan.*
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so) $OUT/canary.so" \
  TUNEKIT_ADDON=$ADDON TUNEKIT_THREADS=2 \
  ASAN_OPTIONS="detect_leaks=1:exitcode=0:log_path=$OUT/lsan:fast_unwind_on_malloc=0:malloc_context_size=30" \
  LSAN_OPTIONS="report_objects=0" \
  nice -n 10 node scripts/lsan-train.cjs
shopt -s nullglob
reports=("$OUT"/lsan.*)
[ ${#reports[@]} -gt 0 ] || { echo "lsan-check: no LeakSanitizer report at all (the canary must leak): LSan is not running" >&2; exit 1; }
# One block per leak: from "Direct/Indirect leak" to the blank line after its stack.
awk '/^(Direct|Indirect) leak/{b=$0; next} b!=""{b=b"\n"$0} /^$/{if(b!=""){print b; print "----"}; b=""}' "${reports[@]}" > "$OUT/lsan-blocks.txt"
total=$(grep -c '^\(Direct\|Indirect\) leak' "$OUT/lsan-blocks.txt" || true)
canary=$(grep -c 'tk_lsan_canary' "$OUT/lsan-blocks.txt" || true)
addon=$(awk 'BEGIN{RS="----\n"} /tunekit\.node|\/native\/(binding|cpu)\//{n++} END{print n+0}' "$OUT/lsan-blocks.txt")
echo "lsan-check: $total leak reports in all ($canary from the deliberate canary), $addon with tunekit.node on the stack"
[ "$canary" -ge 1 ] || { echo "lsan-check: the canary leak was not reported: LSan is not working" >&2; exit 1; }
if [ "$addon" -gt 0 ]; then
  awk 'BEGIN{RS="----\n"} /tunekit\.node|\/native\/(binding|cpu)\//{print; print "----"}' "$OUT/lsan-blocks.txt" | head -80
  exit 1
fi
echo "lsan-check: PASS (no leak attributed to the addon)"
