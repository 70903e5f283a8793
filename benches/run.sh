#!/usr/bin/env bash
# The mcpsim benchmark: one command, Markdown tables of every case, all timed in one run.
#
#   benches/run.sh                 # full run: 1M-call cases, 10M-call Parquet, peak memory on 10M calls
#                                  # (the generated traces take about 8 GB of disk)
#   RUNS=3 benches/run.sh          # fewer repetitions
#   QUICK=1 benches/run.sh         # a smoke run: every case on 100,000 calls, one timed run each
#
# Environment:
#   BENCH_DATA  where generated traces, the Python venv and results go (default: target/bench-data)
#   CALLS       calls of the trace most cases run on (default: 1,000,000; QUICK: 100,000)
#   BIG_CALLS   calls of the Parquet cases and the peak-memory cases (default: 10,000,000;
#               QUICK: CALLS)
#   RUNS        timed runs per case, the median is reported (default: 5; QUICK: 1)
#   PY_RUNS     timed runs of the plain Python loops (default: 3; QUICK: 1; they are slow)
#   SEED        generator seed (default: 42)
#   COOLDOWN    seconds of rest before each case (default: 10; QUICK: 1), so that no case runs
#               in the wake of the one before (on shared machines a case that follows seconds
#               of load on both cores runs measurably slower)
#   EVALUATOR   0 skips the evaluator micro-benchmark (its first build in a target directory
#               compiles the dependencies again with the dev-dependencies' features: long)
#
# Every timed case runs once untimed first, so all of them read from a warm page cache.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    CALLS=${CALLS:-100000}
    RUNS=${RUNS:-1}
    PY_RUNS=${PY_RUNS:-1}
    COOLDOWN=${COOLDOWN:-1}
fi
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
CALLS=${CALLS:-1000000}
BIG_CALLS=${BIG_CALLS:-$([[ $QUICK == 1 ]] && echo "$CALLS" || echo 10000000)}
RUNS=${RUNS:-5}
PY_RUNS=${PY_RUNS:-3}
SEED=${SEED:-42}
COOLDOWN=${COOLDOWN:-10}
EVALUATOR=${EVALUATOR:-1}
REALISTIC=$ROOT/fixtures/policies/realistic.json
BENCH=$ROOT/fixtures/policies/bench.json
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/mcpsim
mkdir -p "$DATA"
LOG=$DATA/bench.log
: >"$LOG"
SCRATCH=$DATA/scratch
mkdir -p "$SCRATCH"

say() { echo "$*" >&2; }
human() { awk -v n="$1" 'BEGIN {if (n >= 1e6 && n % 1e6 == 0) printf "%dM", n / 1e6; else if (n >= 1e3 && n % 1e3 == 0) printf "%dk", n / 1e3; else printf "%d", n}'; }
N=$(human "$CALLS")
NB=$(human "$BIG_CALLS")

# --- tools -----------------------------------------------------------------------------------
say "building mcpsim (release)…"
cargo build --release --quiet --bin mcpsim
if [[ $EVALUATOR == 1 ]]; then
    say "building the evaluator micro-benchmark…"
    cargo bench --quiet --bench evaluator --no-run 2>>"$LOG"
fi

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
gen() { # gen CALLS FORMAT FILE [GENERATE OPTION…]
    if [[ ! -s $3 ]]; then
        say "generating $3…"
        "$BIN" generate --calls "$1" --seed "$SEED" --format "$2" --output "$3.tmp" "${@:4}" 2>>"$LOG"
        mv "$3.tmp" "$3"
    fi
}
J1=$DATA/calls-$N-s$SEED.jsonl
R1=$DATA/calls-$N-s$SEED.jsonrpc.jsonl
J10=$DATA/calls-$NB-s$SEED.jsonl
P10=$DATA/calls-$NB-s$SEED.parquet
R10=$DATA/calls-$NB-s$SEED.jsonrpc.jsonl
gen "$CALLS" jsonl "$J1"
gen "$CALLS" jsonrpc "$R1"
gen "$BIG_CALLS" jsonl "$J10"
gen "$BIG_CALLS" parquet "$P10"
gen "$BIG_CALLS" jsonrpc "$R10"
# Short sessions: about 10 calls each (a million sessions in 10M calls), and one per call.
PS10=$DATA/calls-$NB-s$SEED-sessions10.parquet
PS1=$DATA/calls-$NB-s$SEED-sessions1.parquet
gen "$BIG_CALLS" parquet "$PS10" --session-calls 10
gen "$BIG_CALLS" parquet "$PS1" --session-calls 1
# A JSON-RPC recording with a session per call (stateless HTTP clients): replies pair by session.
RS1=$DATA/calls-$NB-s$SEED-sessions1.jsonrpc.jsonl
gen "$BIG_CALLS" jsonrpc "$RS1" --session-calls 1

# The build and the generator keep both cores busy for a while: rest longer before the first case.
say "resting $((3 * COOLDOWN)) s after the build…"
sleep $((3 * COOLDOWN))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- measurement -----------------------------------------------------------------------------
# measure NAME RUNS CMD… : untimed warm-up, then RUNS timed runs; records median, fastest and
# slowest wall seconds and the largest peak RSS (MiB) in MEDIAN[NAME] / FASTEST[NAME] /
# SLOWEST[NAME] / RSS[NAME]. Standard output goes to OUT[NAME] (a file), or to /dev/null when
# SINK=null (per-call reports, whose size would only measure the disk).
declare -A MEDIAN FASTEST SLOWEST RSS OUT
SINK=file
measure() {
    local name=$1 runs=$2
    shift 2
    local out=$DATA/out-$name.txt tfile=$DATA/time-$name.txt walls=() peak=0
    [[ $SINK == null ]] && out=/dev/null
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

SIM=("$BIN" simulate --policy)

# The cases of the targets table, each against the summary simulate of the same run.
measure sim_real "$RUNS" "${SIM[@]}" "$REALISTIC" --format json "$J1"
measure sim_bench "$RUNS" "${SIM[@]}" "$BENCH" --format json "$J1"
measure duck_real "$RUNS" "$PY" benches/baseline.py duckdb "$REALISTIC" "$J1"
measure duck_bench "$RUNS" "$PY" benches/baseline.py duckdb "$BENCH" "$J1"
SINK=null measure percall "$RUNS" "${SIM[@]}" "$REALISTIC" --format jsonl --calls all "$J1"
SINK=null measure stats "$RUNS" "$BIN" stats "$J1"
SINK=null measure convert "$RUNS" "$BIN" convert --to parquet --output "$SCRATCH/convert.parquet" "$J1"
measure jsonrpc "$RUNS" "${SIM[@]}" "$REALISTIC" --format json "$R1"
measure pq_real "$RUNS" "${SIM[@]}" "$REALISTIC" --format json "$P10"
measure pq_bench "$RUNS" "${SIM[@]}" "$BENCH" --format json "$P10"
# Not a baseline to beat: DuckDB reading the Parquet file's call columns, deciding nothing.
measure duck_read "$RUNS" "$PY" benches/baseline.py read "$P10"
measure py_real "$PY_RUNS" python3 benches/baseline.py python "$REALISTIC" "$J1"
measure py_bench "$PY_RUNS" python3 benches/baseline.py python "$BENCH" "$J1"

# Peak resident memory on the large traces: every command and every output format, one run each.
declare -A MEM_WALL MEM_RSS
MEM_CASES=()
memory() { # memory LABEL CMD…
    local label=$1 tfile=$DATA/time-memory.txt t0 t1
    shift
    say "peak memory: $label…"
    sleep "$COOLDOWN"
    t0=$(date +%s%N)
    if [[ -n $TIME_BIN ]]; then
        "$TIME_BIN" -f %M -o "$tfile" "$@" >/dev/null 2>>"$LOG"
        MEM_RSS[$label]=$(awk -v k="$(tail -n 1 "$tfile")" 'BEGIN {printf "%.0f", k / 1024}')
    else
        "$@" >/dev/null 2>>"$LOG"
        MEM_RSS[$label]="n/a"
    fi
    t1=$(date +%s%N)
    MEM_WALL[$label]=$(awk -v t=$((t1 - t0)) 'BEGIN {printf "%.2f", t / 1e9}')
    MEM_CASES+=("$label")
    rm -f "$SCRATCH"/out.*
}
for f in table markdown json; do
    memory "simulate --format $f, JSONL" "${SIM[@]}" "$REALISTIC" --format "$f" "$J10"
done
memory "simulate --format json, Parquet" "${SIM[@]}" "$REALISTIC" --format json "$P10"
memory "simulate --format json, JSON-RPC recording" "${SIM[@]}" "$REALISTIC" --format json "$R10"
memory "simulate --format json, Parquet, sessions of ~10 calls" "${SIM[@]}" "$REALISTIC" --format json "$PS10"
memory "simulate --format json, Parquet, a session per call" "${SIM[@]}" "$REALISTIC" --format json "$PS1"
memory "simulate --format json, Parquet, a session per call, bench.json" "${SIM[@]}" "$BENCH" --format json "$PS1"
memory "simulate --format json, JSON-RPC recording, a session per call" "${SIM[@]}" "$REALISTIC" --format json "$RS1"
for f in jsonl csv parquet; do
    memory "simulate --format $f --calls all, JSONL" "${SIM[@]}" "$REALISTIC" --format "$f" --calls all --output "$SCRATCH/out.$f" "$J10"
done
memory "diff --format json, JSONL" "$BIN" diff --base "$BENCH" --candidate "$REALISTIC" --format json "$J10"
memory "diff --format jsonl --calls all, JSONL" "$BIN" diff --base "$BENCH" --candidate "$REALISTIC" --format jsonl --calls all --output "$SCRATCH/out.jsonl" "$J10"
memory "stats, JSONL" "$BIN" stats "$J10"
memory "suggest, JSONL" "$BIN" suggest "$J10"
memory "explain, JSONL" "$BIN" explain --policy "$REALISTIC" --call "#$((BIG_CALLS / 2))" "$J10"
for f in jsonl csv parquet; do
    memory "convert --to $f, JSONL" "$BIN" convert --to "$f" --output "$SCRATCH/out.$f" "$J10"
done

EVAL_OUT=$DATA/out-evaluator.txt
: >"$EVAL_OUT"
if [[ $EVALUATOR == 1 ]]; then
    say "running the evaluator micro-benchmark…"
    cargo bench --quiet --bench evaluator >"$EVAL_OUT" 2>>"$LOG"
fi
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
# Python and DuckDB print only the decisions they saw; spell all three out.
all_three() { python3 -c 'import sys; c = dict(kv.split("=") for kv in sys.argv[1].split()); print(" ".join(f"{k}={c.get(k, 0)}" for k in ("allow", "deny", "throttle")))' "$1"; }
declare -A COUNTS
for c in sim_real sim_bench jsonrpc; do COUNTS[$c]=$(counts_of_json "${OUT[$c]}"); done
for c in py_real py_bench duck_real duck_bench; do COUNTS[$c]=$(all_three "$(cat "${OUT[$c]}")"); done
agree() { [[ $1 == "$2" ]] && echo "equal" || echo "DIFFERENT"; }

# --- tables ----------------------------------------------------------------------------------
BYTES=$(stat -c %s "$J1")
# row LABEL TARGET NAME CALLS RATIO-TEXT
row() {
    awk -v label="$1" -v target="$2" -v t="${MEDIAN[$3]}" -v lo="${FASTEST[$3]}" -v hi="${SLOWEST[$3]}" -v calls="$4" -v rss="${RSS[$3]}" -v ratio="$5" 'BEGIN {
        printf "| %s | %s | %.3f s | %.3f–%.3f s | %.2f M calls/s | %s MiB | %s |\n", label, target, t, lo, hi, calls / t / 1e6, rss, ratio
    }'
}
faster() { awk -v a="${MEDIAN[$1]}" -v b="${MEDIAN[$2]}" 'BEGIN {printf "%.2f× faster than DuckDB (%.3f s)", b / a, b}'; }
times() { awk -v a="${MEDIAN[$1]}" -v b="${MEDIAN[$2]}" -v what="$3" 'BEGIN {printf "%.2f× %s", a / b, what}'; }
rate() { awk -v t="${MEDIAN[$1]}" -v n="$BIG_CALLS" 'BEGIN {printf "%.1f M calls/s", n / t / 1e6}'; }
{
    echo "| case ($N calls unless noted) | target | median wall time | fastest–slowest | throughput | peak RSS | measured |"
    echo "|---|---|---|---|---|---|---|"
    row "JSONL simulate summary, realistic policy" "≥ 6× faster than DuckDB" sim_real "$CALLS" "$(faster sim_real duck_real)"
    row "JSONL simulate summary, bench.json" "≥ 8× faster than DuckDB" sim_bench "$CALLS" "$(faster sim_bench duck_bench)"
    row "per-call output, \`--format jsonl --calls all\`, realistic" "≤ 3× the summary time" percall "$CALLS" "$(times percall sim_real "the summary time")"
    row "\`stats\`" "≤ 2× the summary time" stats "$CALLS" "$(times stats sim_real "the summary time")"
    row "\`convert --to parquet\` from JSONL" "≤ 3× the summary time" convert "$CALLS" "$(times convert sim_real "the summary time")"
    row "MCP JSON-RPC recording of the same calls, realistic" "≤ 3× mcpsim JSONL input" jsonrpc "$CALLS" "$(times jsonrpc sim_real "the JSONL input's time")"
    row "Parquet, $NB calls, realistic policy" "≥ 10M calls/s" pq_real "$BIG_CALLS" "$(rate pq_real)"
    row "Parquet, $NB calls, bench.json" "≥ 25M calls/s" pq_bench "$BIG_CALLS" "$(rate pq_bench)"
    echo
    echo "Reading alone, the floor of the Parquet cases: DuckDB reads the $NB-call Parquet file's time, server, grant, tool and arguments (their first character) and decides nothing, in a median of ${MEDIAN[duck_read]} s ($(rate duck_read); ${FASTEST[duck_read]}–${SLOWEST[duck_read]} s, peak RSS ${RSS[duck_read]} MiB), its query alone $(sed -n 's/.*query_seconds=//p' "${OUT[duck_read]}") s in the last run; $(awk -v n="$BIG_CALLS" 'BEGIN {printf "%.3f", n / 25e6}') s would be 25M calls/s."
    echo
    echo "Baselines on the same $N-call JSONL file ($(awk -v b="$BYTES" 'BEGIN {printf "%.0f MB", b / 1e6}')):"
    echo
    echo "| baseline | median wall time | fastest–slowest | throughput | peak RSS |"
    echo "|---|---|---|---|---|"
    for c in duck_real:"DuckDB query, realistic policy" duck_bench:"DuckDB query, bench.json" py_real:"exact Python replay, realistic policy" py_bench:"exact Python replay, bench.json"; do
        name=${c%%:*}
        awk -v label="${c#*:}" -v t="${MEDIAN[$name]}" -v lo="${FASTEST[$name]}" -v hi="${SLOWEST[$name]}" -v calls="$CALLS" -v rss="${RSS[$name]}" 'BEGIN {
            printf "| %s | %.3f s | %.3f–%.3f s | %.2f M calls/s | %s MiB |\n", label, t, lo, hi, calls / t / 1e6, rss
        }'
    done
    echo
    echo "Peak resident memory on $NB calls (target: under 200 MB), one run each:"
    echo
    echo "| command, input | peak RSS | wall time |"
    echo "|---|---|---|"
    for label in "${MEM_CASES[@]}"; do
        echo "| \`$label\` | ${MEM_RSS[$label]} MiB | ${MEM_WALL[$label]} s |"
    done
    echo
    echo "Decision counts on the $N-call file:"
    echo "- realistic policy: mcpsim ${COUNTS[sim_real]}; exact Python replay ${COUNTS[py_real]} ($(agree "${COUNTS[sim_real]}" "${COUNTS[py_real]}")); the JSON-RPC recording ${COUNTS[jsonrpc]} ($(agree "${COUNTS[sim_real]}" "${COUNTS[jsonrpc]}")); DuckDB query ${COUNTS[duck_real]} (stateless approximation)"
    echo "- bench.json: mcpsim ${COUNTS[sim_bench]}; exact Python replay ${COUNTS[py_bench]} ($(agree "${COUNTS[sim_bench]}" "${COUNTS[py_bench]}")); DuckDB query ${COUNTS[duck_bench]} (stateless approximation)"
    echo
    if [[ $EVALUATOR == 1 ]]; then
        echo "Evaluator alone (divan, \`cargo bench --bench evaluator\`), median per 200,000 decisions:"
        echo "- names interned to ids by the reader (the fast lane's input): ${EVAL_MEDIAN:-n/a}, ${EVAL_RATE:-n/a} (decisions per second);"
        echo "- names as strings (records of the other readers): ${EVAL_NAMES_MEDIAN:-n/a}, ${EVAL_NAMES_RATE:-n/a}."
    else
        echo "Evaluator micro-benchmark skipped (EVALUATOR=0)."
    fi
    echo
    echo "Commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' with uncommitted changes'); timed runs per case: $RUNS (Python loops: $PY_RUNS), after $COOLDOWN s of rest and one untimed warm-up run; seed $SEED."
    echo "Input sizes: $N JSONL $(awk -v b="$BYTES" 'BEGIN {printf "%.0f MB", b / 1e6}'), $N JSON-RPC $(awk -v b="$(stat -c %s "$R1")" 'BEGIN {printf "%.0f MB", b / 1e6}'), $NB JSONL $(awk -v b="$(stat -c %s "$J10")" 'BEGIN {printf "%.0f MB", b / 1e6}'), $NB Parquet $(awk -v b="$(stat -c %s "$P10")" 'BEGIN {printf "%.0f MB", b / 1e6}'), $NB JSON-RPC $(awk -v b="$(stat -c %s "$R10")" 'BEGIN {printf "%.0f MB", b / 1e6}')."
    echo
    echo "Machine: $(nproc) CPUs ($(lscpu | awk -F': *' '/^Model name/ {print $2; exit}')), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, $(uname -sr);"
    echo "$(rustc --version), $(python3 --version), DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)');"
    echo "load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$DATA/results.md"
rm -rf "$SCRATCH"
