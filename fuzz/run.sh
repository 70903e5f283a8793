#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECONDS each, seeded from fixtures/.
#
#   fuzz/run.sh 1200                       # every target, 20 minutes each, one after the other
#   fuzz/run.sh 3600 trace_parquet trace_jsonl
#   JOBS=2 fuzz/run.sh 600                 # two targets at a time
#
# Needs cargo-fuzz and the nightly toolchain. The build instruments polars and takes long;
# give it a target directory of its own (CARGO_TARGET_DIR), and run it under `nice` on a
# shared machine. Crashes land in fuzz/artifacts/<target>/; the growing corpus in
# fuzz/corpus/<target>/ (neither is committed: a crash worth keeping becomes a regression
# test in tests/it/hostile.rs with its input under fixtures/damaged/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
all=(trace_parquet trace_jsonl trace_csv trace_jsonrpc trace_policylayer trace_intercept
     trace_claude trace_otel trace_agentgateway trace_toolhive trace_claude-code trace_opencode
     trace_codex trace_cline policy_json policy_yaml)
targets=("${@:-${all[@]}}")
[ $# -gt 0 ] || targets=("${all[@]}")

seeds() {
  case $1 in
    trace_parquet) ls fixtures/traces/*.parquet fixtures/parquet/*.parquet fixtures/damaged/*.parquet ;;
    trace_csv) ls fixtures/traces/*.csv fixtures/damaged/*.csv ;;
    trace_jsonl) ls fixtures/traces/fleet.jsonl fixtures/traces/bad.jsonl fixtures/damaged/*.jsonl ;;
    trace_jsonrpc) ls fixtures/traces/jsonrpc.jsonl ;;
    trace_policylayer) ls fixtures/traces/policylayer.jsonl ;;
    trace_intercept) ls fixtures/traces/intercept*.jsonl ;;
    trace_claude) ls fixtures/traces/*.log ;;
    trace_otel) ls fixtures/traces/otel-spans.jsonl ;;
    trace_agentgateway) ls fixtures/traces/agentgateway.jsonl fixtures/traces/agentgateway-text.log ;;
    trace_toolhive) ls fixtures/traces/toolhive-audit.jsonl ;;
    trace_claude-code) ls fixtures/traces/claude-code-session.jsonl ;;
    trace_opencode) ls fixtures/traces/opencode-run.jsonl ;;
    trace_codex) ls fixtures/traces/codex-rollout.jsonl ;;
    trace_cline) ls fixtures/traces/cline-ui-messages.json fixtures/traces/cline-sdk/*.messages.json ;;
    policy_json) ls fixtures/policies/*.json ;;
    policy_yaml) ls fixtures/policies/intercept/* ;;
  esac 2>/dev/null || true
}

cargo +nightly fuzz build -s none --codegen-units 16
run() {
  local t=$1
  mkdir -p "fuzz/corpus/$t"
  for s in $(seeds "$t"); do cp -n "$s" "fuzz/corpus/$t/" 2>/dev/null || true; done
  # 2 GiB of memory and 10 s per input: more is a finding (the readers cap both).
  cargo +nightly fuzz run -s none --codegen-units 16 "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 2>&1 | tee "fuzz/$t.log" | grep -E '^(#|==|INFO: exiting|stat::|SUMMARY)' | tail -5
}
jobs=${JOBS:-1}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run "$t" &
done
wait
