#!/usr/bin/env bash
# Builds the Gloo communication backend of data-parallel training, build-comm/libtunekit_gloo.so, from
# native/comm/ (`npm run build:comm`; shipped with the package, so an installed tunekit can build it).
# It needs Gloo's headers and library: Debian/Ubuntu's libgloo-dev (`apt-get install libgloo-dev`).
# Nothing else in tunekit needs it: without it one process trains as before, and a process group says why it is unavailable.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-build-comm}"
if [ ! -f /usr/include/gloo/allreduce.h ] && ! echo '#include <gloo/allreduce.h>' | "${CXX:-g++}" -std=c++17 -E -x c++ - >/dev/null 2>&1; then
  echo "build:comm: Gloo's headers are not installed; on Debian/Ubuntu: apt-get install libgloo-dev" >&2
  exit 1
fi
mkdir -p "$out"
"${CXX:-g++}" -std=c++17 -O2 -g -fPIC -shared -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter \
  -Iinclude native/comm/gloo.cc native/comm/store.cc -o "$out/libtunekit_gloo.so.tmp" -lgloo -lpthread
mv "$out/libtunekit_gloo.so.tmp" "$out/libtunekit_gloo.so"
echo "build:comm: $out/libtunekit_gloo.so"
