#!/usr/bin/env bash
# `mcpsim check --format sarif|github` against their public references:
#   - every SARIF log validates against the SARIF 2.1.0 JSON schema (the copy the SARIF SDK's
#     multitool ships) and passes the multitool's own validation rules without an error;
#   - the annotations equal, byte for byte, what GitHub's toolkit (@actions/core) prints for
#     the same diagnostics.
# The tools are installed into a cache directory when missing (npm and PyPI).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TOOLS=${MCPSIM_CI_TOOLS:-${HOME:-/tmp}/.cache/mcpsim-ci-tools}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MCPSIM=${MCPSIM:-$TARGET/debug/mcpsim}

[[ -x $MCPSIM ]] || cargo build --quiet
mkdir -p "$TOOLS"
if [[ ! -f $TOOLS/node_modules/@actions/core/package.json || ! -f $TOOLS/node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json ]]; then
    echo "installing @microsoft/sarif-multitool and @actions/core into $TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" \
        @microsoft/sarif-multitool@5.7.0 @actions/core@3.0.1
fi
MULTITOOL=$TOOLS/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
SCHEMA=$TOOLS/node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json
chmod u+x "$MULTITOOL"  # npm may skip the package's install script that does this
if ! python3 -c 'import jsonschema' 2>/dev/null; then
    [[ -x $TOOLS/venv/bin/python ]] || python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet jsonschema
    PY=$TOOLS/venv/bin/python
else
    PY=python3
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Policies with every kind of diagnostic: errors and warnings of both dialects, a file with
# characters annotations must escape in its name and messages, one that cannot be read, and
# clean ones (no results).
cp fixtures/policies/typo.json fixtures/policies/policylayer_typos.json \
    fixtures/policies/intercept/broken.yaml "$WORK/"
printf '{"version": "1", "tools": {"a": {"li%%m,its:\\nx": []}}}\n' > "$WORK/a,b:c%d.json"
printf 'version: "1"\ntools:\n  t:\n    rules:\n      - name: "50%%: a, b"\n        rate_limit: 0/minute\n' > "$WORK/odd.yaml"
set_a=("$WORK/typo.json" "$WORK/policylayer_typos.json" "$WORK/broken.yaml" "$WORK/a,b:c%d.json" "$WORK/odd.yaml" "$WORK/missing.json" examples/policy-repo/policies)
set_b=(examples/policy-repo/policies fixtures/policies/candidate.json)

n=0
for set in set_a set_b; do
    declare -n files=$set
    n=$((n + 1))
    sarif=$WORK/check-$n.sarif
    "$MCPSIM" check --format sarif "${files[@]}" > "$sarif" || true
    "$MCPSIM" check --format github "${files[@]}" > "$WORK/github-$n.txt" || true
    results=$("$PY" - "$SCHEMA" "$sarif" <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
log = json.load(open(sys.argv[2]))
errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(log))
for e in errors:
    print(f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message}", file=sys.stderr)
if errors:
    sys.exit(1)
print(len(log["runs"][0]["results"]))
PY
)
    rm -f "$WORK/validated.sarif"
    "$MULTITOOL" validate "$sarif" --output "$WORK/validated.sarif" --quiet > /dev/null
    "$PY" - "$WORK/validated.sarif" <<'PY'
import json, sys
bad = [r for r in json.load(open(sys.argv[1]))["runs"][0].get("results", []) if r.get("level") == "error"]
for r in bad:
    print(f"multitool: {r.get('ruleId')}: {r['message']}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
    node scripts/ci-formats/annotations.mjs "$TOOLS/node_modules/@actions/core" "$sarif" > "$WORK/expected-$n.txt"
    if ! diff -u "$WORK/expected-$n.txt" "$WORK/github-$n.txt"; then
        echo "check --format github differs from @actions/core's annotations (above)" >&2
        exit 1
    fi
    echo "ok: set $n: SARIF valid ($results results), annotations equal @actions/core's"
done
