#!/usr/bin/env bash
# Prepares, here, what a GPU session carries: .gpu/bundle.tar.xz (ignored by git) with the node binary,
# the production node_modules (+ tinybench), dist/, the CPU addon and libtunekit_cuda.so for sm_80/sm_90
# (scripts/check-cuda-build.sh), so the device's minutes go to running, not building. The device image
# has CUDA, PyTorch, transformers and peft, but no Node. Then, with the device tool:
#   run(command: "bash bench/gpu/session.sh tunekit", carry: [".gpu"], timeout_s: 420)
#   run(command: "bash bench/gpu/session.sh torch",   carry: [".gpu"], timeout_s: 420)
# (bench/gpu/README.md says what each stage does and how long it takes.)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
npm run build >/dev/null
[ -f build/Release/tunekit.node ] || npx node-gyp rebuild >/dev/null
[ -f build-cuda-check/libtunekit_cuda.so ] && [ -z "$(find cuda include -newer build-cuda-check/libtunekit_cuda.so -type f | head -1)" ] ||
  bash scripts/check-cuda-build.sh
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/build/Release" "$stage/node_modules"
cp "$(readlink -f "$(command -v node)")" "$stage/bin/node"
cp build/Release/tunekit.node "$stage/build/Release/"
cp build-cuda-check/libtunekit_cuda.so "$stage/"
cp -r dist "$stage/"
# The production dependency tree, as npm resolved it here, plus tinybench; tokenizers' binary for linux-x64-gnu only.
{ npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2; echo "$root/node_modules/tinybench"; } | sort -u | while read -r p; do
  rel=${p#"$root"/}
  mkdir -p "$stage/$(dirname "$rel")"
  cp -r "$p" "$stage/$rel"
done
find "$stage/node_modules/tokenizers" -name 'tokenizers.*.node' ! -name 'tokenizers.linux-x64-gnu.node' -delete
mkdir -p .gpu
tar -C "$stage" -cf - . | xz -T0 -6 > .gpu/bundle.tar.xz.tmp
mv .gpu/bundle.tar.xz.tmp .gpu/bundle.tar.xz
echo "bench/gpu/pack.sh: .gpu/bundle.tar.xz $(du -h .gpu/bundle.tar.xz | cut -f1) (the working tree travels beside it: keep the two under 64 MiB)"
