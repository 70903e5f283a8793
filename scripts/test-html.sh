#!/usr/bin/env bash
# Render the HTML reports of simulate, diff and sweep with headless Chromium and check that
# the screenshots show the charts (their colours, in enough pixels).
#
#   scripts/test-html.sh            # screenshots in a temporary directory
#   scripts/test-html.sh --docs     # also write the pictures of docs/img/
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    echo "== installing Debian's chromium"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/mcpsim-ci-target}"
cargo build --quiet --bin mcpsim
mcpsim="$CARGO_TARGET_DIR/debug/mcpsim"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

fleet=fixtures/traces/fleet.jsonl
"$mcpsim" simulate --policy fixtures/policies/candidate.json "$fleet" --format html \
    --output "$out/simulate.html"
"$mcpsim" diff --base fixtures/policies/baseline.json --candidate fixtures/policies/candidate.json \
    "$fleet" --format html --output "$out/diff.html"
"$mcpsim" sweep --policy fixtures/policies/candidate.json "$fleet" \
    --limit /all_tools/limits/all_calls --max 5..70:5 --target 20% --format html \
    --output "$out/sweep.html"

# Colours of src/report/svg.rs: allow, deny, throttle, approval; lines; limits.
allow='#2e9e5b' deny='#d64541' throttle='#f28c28' line='#3478c6'
shoot() { # name height
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
        --window-size="1000,$2" --screenshot="$out/$1.png" "file://$out/$1.html" 2>/dev/null
}
shoot simulate 1900
python3 scripts/check_screenshot.py "$out/simulate.png" "$allow:2000" "$deny:150" \
    "$throttle:2000" "$line:1500"
shoot diff 1500
python3 scripts/check_screenshot.py "$out/diff.png" "$allow:4000" "$deny:150" "$throttle:2000"
shoot sweep 420
python3 scripts/check_screenshot.py "$out/sweep.png" "$throttle:600" "$line:600" "$deny:300"

if [ "${1:-}" = "--docs" ]; then
    mkdir -p docs/img
    cp "$out/simulate.png" "$out/diff.png" "$out/sweep.png" docs/img/
    echo "== pictures written to docs/img/"
fi
echo "== HTML reports render with their charts"
