#!/usr/bin/env bash
# Screenshots a report written by writeReport with headless Chromium, to look at it before shipping a change
# to lib/report (Chromium is for looking only: no test or package depends on it; `apt-get install chromium`).
#   scripts/render-report-screenshot.sh out/report.html [out.png] [width] [height]
set -euo pipefail
html=${1:?usage: $0 report.html [out.png] [width] [height]}
png=${2:-${html%.html}.png}
width=${3:-1280}
height=${4:-2600}
[ -f "$html" ] || { echo "$0: no such file: $html" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "$0: no chromium on the PATH (apt-get install -y chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# Offline and quiet: no GPU, no sync/update/network services, a throwaway profile.
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$(realpath -m "$png")" --window-size="$width,$height" "file://$(realpath "$html")" 2>/dev/null
[ -s "$png" ] || { echo "$0: chromium wrote no screenshot" >&2; exit 1; }
echo "$png"
