#!/usr/bin/env bash
# Compare two commands on a noisy machine: run them in turn (A B A B …), each with its output
# thrown away, and give the ratio A/B pair by pair (lowest, median, highest) for wall
# time, CPU time and peak memory. Alternating keeps slow drifts of the machine out of the
# ratio; pairing them keeps one slow moment from counting against one side only.
#
#   benches/ab.sh [-n PAIRS] "COMMAND A" "COMMAND B"
#   benches/ab.sh -n 10 "target/release/mcpsim simulate --policy P T" "mcpsim-before simulate --policy P T"
#
# A ratio below 1 means A is faster. One untimed run of each comes first (a warm page cache).
# Needs GNU time (/usr/bin/time) and bash 5.
set -euo pipefail

pairs=6
if [[ ${1:-} == -n ]]; then
    pairs=${2:?usage: benches/ab.sh [-n PAIRS] "COMMAND A" "COMMAND B"}
    shift 2
fi
a=${1:?usage: benches/ab.sh [-n PAIRS] "COMMAND A" "COMMAND B"}
b=${2:?usage: benches/ab.sh [-n PAIRS] "COMMAND A" "COMMAND B"}
[[ -x /usr/bin/time ]] || { echo "benches/ab.sh: needs GNU time (/usr/bin/time)" >&2; exit 2; }
[[ -n ${EPOCHREALTIME:-} ]] || { echo "benches/ab.sh: needs bash 5 (EPOCHREALTIME)" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# One run: "wall cpu peak-KiB" on stdout. Wall time from the shell's clock (microseconds; GNU
# time gives hundredths), CPU time (hundredths) and peak memory from GNU time.
run() {
    local start=$EPOCHREALTIME
    if ! /usr/bin/time -f '%U %S %M' -o "$out" bash -c "$1" >/dev/null 2>&1; then
        echo "benches/ab.sh: this command failed: $1" >&2
        exit 2
    fi
    local end=$EPOCHREALTIME
    awk -v s="$start" -v e="$end" '{ printf "%.4f %.3f %s\n", e - s, $1 + $2, $3 }' "$out"
}

run "$a" >/dev/null
run "$b" >/dev/null
rows=()
for ((i = 1; i <= pairs; i++)); do
    rows+=("$(run "$a") $(run "$b")")
    echo "pair $i of $pairs: ${rows[-1]}" >&2
done

printf '%s\n' "${rows[@]}" | awk -v pairs="$pairs" '
    function median(v, n,   i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function sorted_ends(v, n,   i, lo, hi) {
        lo = v[1]; hi = v[1]
        for (i = 2; i <= n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
        return sprintf("%.4f   %.4f", lo, hi)
    }
    { for (k = 1; k <= 3; k++) { av[k, NR] = $k; bv[k, NR] = $(k + 3); r[k, NR] = $(k + 3) > 0 ? $k / $(k + 3) : 0 } }
    END {
        split("wall s,cpu s,peak MiB", name, ",")
        printf "%-12s %10s %10s %28s\n", "", "A median", "B median", "A/B lowest median highest"
        for (k = 1; k <= 3; k++) {
            for (i = 1; i <= NR; i++) { x[i] = av[k, i]; y[i] = bv[k, i]; z[i] = r[k, i] }
            scale = k == 3 ? 1024 : 1
            ends = sorted_ends(z, NR); split(ends, e, " ")
            printf "%-12s %10.3f %10.3f %10.4f %8.4f %8.4f\n", name[k], median(x, NR) / scale, median(y, NR) / scale, e[1], median(z, NR), e[2]
        }
    }'
