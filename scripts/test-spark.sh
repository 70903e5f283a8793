#!/usr/bin/env bash
# The Spark job (contrib/spark/replay.py) against one machine: on a generated trace of
# MCPSIM_SPARK_CALLS calls (1,000,000 by default) under a policy with grant- and
# session-scoped counters, in local[2], the job's summary.json must be byte-equal to
# `simulate --format json` and its per-call decisions equal to `simulate --format parquet`'s.
# Then a Parquet input with `--calls all`, and the refusals (a global counter, a bad record).
#
# Installs what is missing: Java (Debian's default-jre-headless) and, in a virtualenv under
# ~/.cache (MCPSIM_SPARK_VENV), pyspark with pyarrow and pandas. The binary is $MCPSIM, else
# the dev build ($CARGO_TARGET_DIR/debug/mcpsim, built here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

calls="${MCPSIM_SPARK_CALLS:-1000000}"
venv="${MCPSIM_SPARK_VENV:-${HOME:-/tmp}/.cache/mcpsim-spark-venv}"
started=$SECONDS
step() { echo "== [$((SECONDS - started))s] $*"; }

if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
    step "installing Java (default-jre-headless)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
fi
if ! "$venv/bin/python" -c 'import pyspark, pyarrow, pandas' 2>/dev/null; then
    step "installing pyspark into $venv"
    if ! python3 -m venv "$venv"; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q 'pyspark==4.3.0' 'pyarrow==26.0.1' 'pandas>=2.2,<3'
fi
py="$venv/bin/python"

if [[ -z "${MCPSIM:-}" ]]; then
    target="${CARGO_TARGET_DIR:-target}"
    MCPSIM="$target/debug/mcpsim"
    [[ -x "$MCPSIM" ]] || cargo build --quiet
fi
export MCPSIM="$(cd "$(dirname "$MCPSIM")" && pwd)/$(basename "$MCPSIM")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The job's own scratch folders go here, to check that none is left behind.
mkdir "$work/tmp"
export TMPDIR="$work/tmp"
policy=fixtures/policies/spark.json

# Per-call decisions of the job (Parquet dataset) against one machine's (`ts` as int64 ns).
compare_calls() {
    "$py" - "$1" "$2" <<'PY'
import sys
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq
one = pq.read_table(sys.argv[1])
spark = ds.dataset(sys.argv[2]).to_table().sort_by("index").replace_schema_metadata(None)
one = one.set_column(0, "index", one.column("index").cast(pa.int64()))
one = one.set_column(1, "ts", one.column("ts").cast(pa.int64()))
one = one.cast(spark.schema)
if one.num_rows != spark.num_rows:
    sys.exit(f"per-call decisions: {spark.num_rows} rows, one machine has {one.num_rows}")
if not one.equals(spark):
    for name in one.column_names:
        if not one.column(name).equals(spark.column(name)):
            sys.exit(f"per-call decisions differ in column {name}")
print(f"per-call decisions equal: {one.num_rows} rows")
PY
}

step "generating $calls calls"
"$MCPSIM" generate --calls "$calls" --grants 200 --servers edge-a,edge-b,edge-c \
    --output "$work/trace.jsonl"
key="$("$MCPSIM" partition-key --policy "$policy")"
[[ "$key" == "server,grant" ]] || { echo "partition key: $key, expected server,grant"; exit 1; }

step "one machine: simulate (summary, per-call decisions)"
"$MCPSIM" simulate --policy "$policy" "$work/trace.jsonl" --format json --output "$work/one.json"
"$MCPSIM" simulate --policy "$policy" "$work/trace.jsonl" --format parquet --output "$work/one.parquet"

step "Spark local[2]: contrib/spark/replay.py"
"$py" contrib/spark/replay.py --policy "$policy" --input "$work/trace.jsonl" \
    --output "$work/spark" --master 'local[2]'
cmp "$work/one.json" "$work/spark/summary.json"
echo "summary.json byte-equal to simulate --format json"
compare_calls "$work/one.parquet" "$work/spark/calls"

step "Parquet input, --calls all, two policies bound by server"
"$MCPSIM" generate --calls 30000 --grants 20 --servers edge-a,edge-b --format parquet \
    --seed 7 --output "$work/small.parquet"
two=(--policy "edge-a=$policy" --policy edge-b=fixtures/policies/bench.json)
"$MCPSIM" simulate "${two[@]}" "$work/small.parquet" --format json --calls all \
    --output "$work/small.json"
"$MCPSIM" simulate "${two[@]}" "$work/small.parquet" --format parquet --output "$work/small-rows.parquet"
"$py" contrib/spark/replay.py "${two[@]}" --input "$work/small.parquet" --calls all \
    --output "$work/spark-small" --master 'local[2]' --partitions 3
cmp "$work/small.json" "$work/spark-small/summary.json"
echo "summary.json byte-equal to simulate --format json --calls all"
compare_calls "$work/small-rows.parquet" "$work/spark-small/calls"

step "refusals"
set +e
"$py" contrib/spark/replay.py --policy fixtures/policies/everything.json \
    --input "$work/small.parquet" --output "$work/refused" --master 'local[2]' 2>"$work/err"
code=$?
set -e
[[ $code == 2 ]] && grep -q 'no exact split: .*fleet_calls.* global' "$work/err" \
    || { cat "$work/err"; echo "a global counter: expected exit 2 and the reason"; exit 1; }
head -100 "$work/trace.jsonl" > "$work/bad.jsonl"
sed -i '57s/"tool":"[a-z0-9_]*",//' "$work/bad.jsonl"
set +e
"$py" contrib/spark/replay.py --policy "$policy" --input "$work/bad.jsonl" \
    --output "$work/refused" --master 'local[2]' 2>"$work/err"
code=$?
set -e
[[ $code == 2 ]] && grep -q "bad.jsonl:57: .*tool" "$work/err" \
    || { cat "$work/err"; echo "a bad record: expected exit 2 naming bad.jsonl:57"; exit 1; }
echo "refusals: exit 2 with the reason"
left="$(ls "$TMPDIR" | grep '^mcpsim-' || true)"
[[ -z "$left" ]] || { echo "scratch folders left behind: $left"; exit 1; }

step "done"
echo "spark: 3 passed, 0 failed"
