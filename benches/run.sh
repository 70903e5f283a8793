#!/usr/bin/env bash
# The mcpsim benchmark: one command, one Markdown table.
#
#   benches/run.sh                 # full run: 1M-call comparison + 10M-call runs + evaluator
#   RUNS=3 benches/run.sh          # fewer repetitions
#   QUICK=1 benches/run.sh         # skip the 10M-call cases (a smoke run)
#
# Environment:
#   BENCH_DATA  where generated traces, the Python venv and results go (default: target/bench-data)
#   RUNS        timed runs per case, the median is reported (default: 5; the Python loop uses PY_RUNS)
#   PY_RUNS     timed runs of the plain Python loop (default: 3; it is slow)
#   SEED        generator seed (default: 42)
#   COOLDOWN    seconds of rest before each case (default: 10), so that no case runs in the
#               wake of the one before (on shared machines a case that follows seconds of load
#               on both cores runs measurably slower)
#
# Every case runs once untimed first, so all of them read from a warm page cache.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
RUNS=${RUNS:-5}
PY_RUNS=${PY_RUNS:-3}
SEED=${SEED:-42}
COOLDOWN=${COOLDOWN:-10}
QUICK=${QUICK:-0}
POLICY=$ROOT/fixtures/policies/bench.json
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/mcpsim
mkdir -p "$DATA"
LOG=$DATA/bench.log
: >"$LOG"

say() { echo "$*" >&2; }

# --- tools -----------------------------------------------------------------------------------
say "building mcpsim (release)…"
cargo build --release --quiet --bin mcpsim

TIME_BIN=/usr/bin/time
if ! "$TIME_BIN" -f %M true >/dev/null 2>&1; then
    say "installing GNU time for peak-memory figures…"
    (apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq time >/dev/null 2>&1; }) || true
fi
if ! "$TIME_BIN" -f %M true >/dev/null 2>&1; then
    say "GNU time unavailable: peak memory is reported as n/a"
    TIME_BIN=""
fi

PY=$DATA/venv/bin/python
if ! "$PY" -c 'import duckdb' 2>/dev/null; then
    say "creating $DATA/venv with duckdb…"
    python3 -m venv "$DATA/venv"
    "$DATA/venv/bin/pip" install --quiet duckdb
fi

# --- data ------------------------------------------------------------------------------------
gen() { # gen CALLS FORMAT FILE
    if [[ ! -s $3 ]]; then
        say "generating $3…"
        "$BIN" generate --calls "$1" --seed "$SEED" --format "$2" --output "$3.tmp" 2>>"$LOG"
        mv "$3.tmp" "$3"
    fi
}
J1=$DATA/calls-1m-s$SEED.jsonl
J10=$DATA/calls-10m-s$SEED.jsonl
P10=$DATA/calls-10m-s$SEED.parquet
gen 1000000 jsonl "$J1"
if [[ $QUICK != 1 ]]; then
    gen 10000000 jsonl "$J10"
    gen 10000000 parquet "$P10"
fi

# The build and the generator keep both cores busy for a while: rest longer before the first case.
say "resting $((3 * COOLDOWN)) s after the build…"
sleep $((3 * COOLDOWN))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- measurement -----------------------------------------------------------------------------
# measure NAME RUNS CMD… : untimed warm-up, then RUNS timed runs; records median, fastest and
# slowest wall seconds and the largest peak RSS (MiB) in MEDIAN[NAME] / FASTEST[NAME] /
# SLOWEST[NAME] / RSS[NAME]; the last run's stdout in OUT[NAME].
declare -A MEDIAN FASTEST SLOWEST RSS OUT
measure() {
    local name=$1 runs=$2
    shift 2
    local out=$DATA/out-$name.txt tfile=$DATA/time-$name.txt walls=() peak=0
    say "timing $name ($runs runs)…"
    sleep "$COOLDOWN"
    "$@" >"$out" 2>>"$LOG"
    for ((i = 0; i < runs; i++)); do
        local t0 t1
        t0=$(date +%s%N)
        if [[ -n $TIME_BIN ]]; then
            "$TIME_BIN" -f %M -o "$tfile" "$@" >"$out" 2>>"$LOG"
            local kb
            kb=$(tail -n 1 "$tfile")
            ((kb > peak)) && peak=$kb
        else
            "$@" >"$out" 2>>"$LOG"
        fi
        t1=$(date +%s%N)
        walls+=($((t1 - t0)))
    done
    MEDIAN[$name]=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f", m / 1e9}')
    FASTEST[$name]=$(printf '%s\n' "${walls[@]}" | sort -n | head -n 1 | awk '{printf "%.3f", $1 / 1e9}')
    SLOWEST[$name]=$(printf '%s\n' "${walls[@]}" | sort -n | tail -n 1 | awk '{printf "%.3f", $1 / 1e9}')
    if [[ -n $TIME_BIN ]]; then RSS[$name]=$(awk -v k="$peak" 'BEGIN {printf "%.0f", k / 1024}'); else RSS[$name]="n/a"; fi
    OUT[$name]=$out
}

SIM=("$BIN" simulate --policy "$POLICY" --format json)
measure mcpsim_1m "$RUNS" "${SIM[@]}" "$J1"
measure duckdb_1m "$RUNS" "$PY" benches/baseline.py duckdb "$POLICY" "$J1"
measure python_1m "$PY_RUNS" python3 benches/baseline.py python "$POLICY" "$J1"
if [[ $QUICK != 1 ]]; then
    measure mcpsim_10m_jsonl "$RUNS" "${SIM[@]}" "$J10"
    measure mcpsim_10m_parquet "$RUNS" "${SIM[@]}" "$P10"
fi

say "running the evaluator micro-benchmark…"
EVAL_OUT=$DATA/out-evaluator.txt
cargo bench --quiet --bench evaluator >"$EVAL_OUT" 2>>"$LOG"
# divan prints, per benchmark, the time per iteration (200,000 decisions) as fastest │ slowest │
# median │ mean, and below it the same as throughput; keep the medians.
eval_median() {
    awk -v b="$1" '$0 ~ b"( |$)" {n = 0; for (i = 2; i <= NF; i++) if ($i == "│") {n++; if (n == 2) {print $(i+1), $(i+2); exit}}}' "$EVAL_OUT"
}
eval_rate() {
    awk -v b="$1" 'found && /item\/s/ {n = 0; for (i = 1; i <= NF; i++) if ($i ~ /item\/s$/) {n++; if (n == 3) {print $(i-1), $i; exit}}} $0 ~ b"( |$)" {found = 1}' "$EVAL_OUT"
}
EVAL_MEDIAN=$(eval_median evaluate_bench_policy_interned)
EVAL_RATE=$(eval_rate evaluate_bench_policy_interned)
EVAL_NAMES_MEDIAN=$(eval_median evaluate_bench_policy_names)
EVAL_NAMES_RATE=$(eval_rate evaluate_bench_policy_names)

# --- decision counts: mcpsim against the exact Python replay ---------------------------------
counts_of_json() {
    python3 - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
def find(d):
    # The summary lists per-decision counts; accept {"decisions": {"allow": n, …}} or a list of {kind, count}.
    if isinstance(d, dict):
        if all(k in d for k in ("allow", "throttle")) and all(isinstance(d[k], int) for k in ("allow", "throttle")):
            return d
        for v in d.values():
            r = find(v)
            if r: return r
    if isinstance(d, list):
        if d and all(isinstance(x, dict) and "count" in x and ("kind" in x or "decision" in x) for x in d):
            return {x.get("kind", x.get("decision")): x["count"] for x in d}
        for v in d:
            r = find(v)
            if r: return r
    return None
c = find(doc) or {}
print(" ".join(f"{k}={c.get(k, 0)}" for k in ("allow", "deny", "throttle")))
PY
}
MCPSIM_COUNTS=$(counts_of_json "${OUT[mcpsim_1m]}")
PY_COUNTS=$(cat "${OUT[python_1m]}")
DUCK_COUNTS=$(cat "${OUT[duckdb_1m]}")

# --- table -----------------------------------------------------------------------------------
MB1=$(stat -c %s "$J1")
row() { # row LABEL NAME CALLS BYTES : ratio to DuckDB only for the 1M-call file it ran on
    local name=$2
    awk -v label="$1" -v t="${MEDIAN[$name]}" -v lo="${FASTEST[$name]}" -v hi="${SLOWEST[$name]}" -v d="${MEDIAN[duckdb_1m]}" -v calls="$3" -v bytes="$4" -v rss="${RSS[$name]}" 'BEGIN {
        mbs = (bytes > 0) ? sprintf("%.0f MB/s", bytes / t / 1e6) : "";
        ratio = (calls == 1000000) ? sprintf("%.2f×", d / t) : "";
        printf "| %s | %.3f s | %.3f–%.3f s | %.2f M calls/s | %s | %s MiB | %s |\n", label, t, lo, hi, calls / t / 1e6, mbs, rss, ratio
    }'
}
{
    echo "| case | median wall time | fastest–slowest | throughput | input read | peak RSS | speed vs DuckDB |"
    echo "|---|---|---|---|---|---|---|"
    row "mcpsim simulate, 1M calls, JSONL" mcpsim_1m 1000000 "$MB1"
    row "DuckDB row_number() query, 1M calls, JSONL" duckdb_1m 1000000 "$MB1"
    row "plain Python replay loop, 1M calls, JSONL" python_1m 1000000 "$MB1"
    if [[ $QUICK != 1 ]]; then
        row "mcpsim simulate, 10M calls, JSONL" mcpsim_10m_jsonl 10000000 "$(stat -c %s "$J10")"
        row "mcpsim simulate, 10M calls, Parquet" mcpsim_10m_parquet 10000000 0
    fi
    echo
    echo "Evaluator alone (divan, \`cargo bench --bench evaluator\`), median per 200,000 decisions:"
    echo "- names interned to ids by the reader (the fast lane's input): ${EVAL_MEDIAN:-n/a}, ${EVAL_RATE:-n/a} (decisions per second);"
    echo "- names as strings (records of the other readers): ${EVAL_NAMES_MEDIAN:-n/a}, ${EVAL_NAMES_RATE:-n/a}."
    echo
    echo "Decision counts on the 1M-call file:"
    echo "- mcpsim:        $MCPSIM_COUNTS"
    echo "- Python replay: $PY_COUNTS"
    echo "- DuckDB query:  $DUCK_COUNTS (stateless approximation)"
    echo
    echo "Timed runs per case: $RUNS (Python loop: $PY_RUNS), after $COOLDOWN s of rest and one untimed warm-up run; seed $SEED."
    echo "Input sizes: 1M JSONL $(awk -v b="$MB1" 'BEGIN {printf "%.0f MB", b / 1e6}')$([[ $QUICK != 1 ]] && awk -v b="$(stat -c %s "$J10")" -v p="$(stat -c %s "$P10")" 'BEGIN {printf ", 10M JSONL %.0f MB, 10M Parquet %.0f MB", b / 1e6, p / 1e6}')."
    echo
    echo "Machine: $(nproc) CPUs ($(lscpu | awk -F': *' '/^Model name/ {print $2; exit}')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr);"
    echo "$(rustc --version), $(python3 --version), DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)');"
    echo "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$DATA/results.md"
