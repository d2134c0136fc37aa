#!/usr/bin/env bash
# Proves the published package works without a compiler: prebuildify packs the addon into
# prebuilds/, `npm pack` makes the tarball, and an empty project installs it with every compiler
# and make replaced by a command that fails. The package must load its prebuilt binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
npm run build:prebuilds --silent
ls prebuilds/linux-x64/
tgz=$(npm pack --silent | tail -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work" "$root/$tgz"' EXIT
mkdir -p "$work/app" "$work/nocompiler"
for tool in cc gcc g++ c++ clang clang++ make cmake node-gyp; do
  printf '#!/bin/sh\necho "check-pack: %s was called, but a prebuilt binary should have been used" >&2\nexit 97\n' "$tool" > "$work/nocompiler/$tool"
  chmod +x "$work/nocompiler/$tool"
done
cp "$tgz" "$work/app/"
cd "$work/app"
npm init -y >/dev/null
# Only the tarball's own files: no build/ exists there to shadow the prebuild.
PATH="$work/nocompiler:$PATH" CC=false CXX=false npm install --no-audit --no-fund --prefer-offline "./$tgz" >/dev/null
test ! -e node_modules/tunekit/build || { echo "check-pack: build/ was shipped or compiled" >&2; exit 1; }
node -e '
const path = require("node-gyp-build").path(require.resolve("tunekit/package.json").replace(/package.json$/, ""));
if (!path.includes("prebuilds")) { console.error("check-pack: loaded " + path + ", not a prebuild"); process.exit(1); }
const { native } = require("tunekit");
const A = Float32Array.from([1, 2, 3, 4]), B = Float32Array.from([5, 6, 7, 8]), C = new Float32Array(4);
native.gemm({ M: 2, N: 2, K: 2, A, B, C });
if (C.join() !== "19,22,43,50") { console.error("check-pack: wrong gemm result " + C.join()); process.exit(1); }
console.log("check-pack: require ok, binary " + path.replace(process.cwd() + "/", ""));
'
node --input-type=module -e 'import { native } from "tunekit"; console.log("check-pack: import ok, isa " + native.isa());'
# The installed `tunekit` command runs, with the embedded model that ships in the package.
npx --no-install tunekit info --json | node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); if (!(r.parameters > 1e6)) { console.error("check-pack: tunekit info gave", r); process.exit(1); } console.log("check-pack: tunekit info ok, embedded model " + r.parameters + " parameters")'
