//! The command line as a user meets it: snapshots of every subcommand and output format on the
//! shipped fixtures, exit codes of every gate, and the stability of the JSON schema.

use std::path::Path;
use std::process::Command;

use insta_cmd::get_cargo_bin;

/// `mcpsim` run from the repository root with a cleared environment, so paths in the output are
/// the relative fixture paths and nothing of the caller's environment leaks in.
pub(crate) fn mcpsim(args: &[&str]) -> Command {
    let mut cmd = Command::new(get_cargo_bin("mcpsim"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_clear();
    cmd.args(args);
    cmd
}

macro_rules! snapshot {
    ($name:expr, $cmd:expr) => {
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta_cmd::assert_cmd_snapshot!($name, $cmd);
        })
    };
}
pub(crate) use snapshot;

pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let out = mcpsim(args).output().expect("mcpsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Parquet file mcpsim wrote, read by polars: every column but `ts`, a UTC timestamp, which
/// this build of polars has no type for (`tests/it/hostile.rs` checks its type).
pub(crate) fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let mut r = ParquetReader::new(std::fs::File::open(path).expect("written"));
    let names: Vec<String> = (r.schema().expect("schema").iter_names())
        .filter(|n| n.as_str() != "ts")
        .map(|n| n.to_string())
        .collect();
    r.with_columns(Some(names)).finish().expect("parquet reads")
}

pub(crate) fn fixture(p: &str) -> String {
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(p).exists(),
        "missing fixture {p}"
    );
    p.to_owned()
}

const FLEET: &str = "fixtures/traces/fleet.jsonl";
const BASELINE: &str = "fixtures/policies/baseline.json";
const CANDIDATE: &str = "fixtures/policies/candidate.json";
const EVERYTHING: &str = "fixtures/policies/everything.json";

fn simulate(policy: &str, extra: &[&str]) -> Command {
    let mut args = vec!["simulate", "--policy", policy, FLEET];
    args.extend_from_slice(extra);
    mcpsim(&args)
}

fn diff(extra: &[&str]) -> Command {
    let mut args = vec!["diff", "--base", BASELINE, "--candidate", CANDIDATE, FLEET];
    args.extend_from_slice(extra);
    mcpsim(&args)
}

#[test]
fn help() {
    snapshot!("help", mcpsim(&["--help"]));
    snapshot!("simulate_help", mcpsim(&["simulate", "--help"]));
    snapshot!("diff_help", mcpsim(&["diff", "--help"]));
}

#[test]
fn simulate_every_summary_format() {
    snapshot!("simulate_table", simulate(CANDIDATE, &[]));
    snapshot!(
        "simulate_markdown",
        simulate(CANDIDATE, &["--format", "markdown"])
    );
    snapshot!("simulate_json", simulate(CANDIDATE, &["--format", "json"]));
    snapshot!(
        "simulate_everything_table",
        simulate(EVERYTHING, &["--calls", "all"])
    );
}

#[test]
fn simulate_per_call_formats() {
    snapshot!(
        "simulate_jsonl",
        simulate(CANDIDATE, &["--format", "jsonl"])
    );
    snapshot!("simulate_csv", simulate(CANDIDATE, &["--format", "csv"]));
}

#[test]
fn diff_every_summary_format() {
    snapshot!("diff_table", diff(&[]));
    snapshot!("diff_markdown", diff(&["--format", "markdown"]));
    snapshot!("diff_json", diff(&["--format", "json"]));
}

#[test]
fn diff_per_call_formats() {
    snapshot!("diff_jsonl", diff(&["--format", "jsonl"]));
    snapshot!("diff_csv", diff(&["--format", "csv"]));
}

#[test]
fn check_clean_and_broken_policies() {
    snapshot!(
        "check_clean",
        mcpsim(&["check", BASELINE, CANDIDATE, EVERYTHING])
    );
    snapshot!(
        "check_typos",
        mcpsim(&[
            "check",
            &fixture("fixtures/policies/policylayer_typos.json")
        ])
    );
}

#[test]
fn convert_to_jsonl_and_csv() {
    let trace = fixture("fixtures/traces/jsonrpc.jsonl");
    snapshot!(
        "convert_jsonrpc_jsonl",
        mcpsim(&["convert", &trace, "--to", "jsonl"])
    );
    snapshot!(
        "convert_jsonrpc_csv",
        mcpsim(&["convert", &trace, "--to", "csv"])
    );
}

#[test]
fn convert_reads_telemetry_and_gateway_logs_with_located_warnings() {
    let traces = [
        fixture("fixtures/traces/otel-spans.jsonl"),
        fixture("fixtures/traces/agentgateway.jsonl"),
        fixture("fixtures/traces/toolhive-audit.jsonl"),
    ];
    let mut args = vec!["convert"];
    args.extend(traces.iter().map(String::as_str));
    args.extend(["--to", "jsonl"]);
    snapshot!("convert_gateway_logs_jsonl", mcpsim(&args));
    args.push("--strict");
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "fixtures/traces/otel-spans.jsonl:2: truncated JSON: EOF while parsing an object"
        ),
        "{stderr}"
    );
}

#[test]
fn convert_reads_agent_logs_with_their_servers_and_grants() {
    let traces = [
        fixture("fixtures/traces/claude-code-session.jsonl"),
        fixture("fixtures/traces/opencode-run.jsonl"),
        fixture("fixtures/traces/codex-rollout.jsonl"),
    ];
    let mut args = vec!["convert"];
    args.extend(traces.iter().map(String::as_str));
    args.extend([
        "--to",
        "jsonl",
        "--mcp-server",
        "billing_db",
        "--mcp-server",
        "github",
        "--agent-grant",
        "model",
    ]);
    snapshot!("convert_agent_logs_jsonl", mcpsim(&args));
    snapshot!("stats_claude_code", mcpsim(&["stats", &traces[0]]));

    let (code, stdout, stderr) = run(&["stats", &traces[0], "--agent-grant", "cwd"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.contains(
            "invalid value 'cwd' for '--agent-grant <GRANT>': expected project, model, none or fixed:NAME, found \"cwd\""
        ),
        "{stderr}"
    );
}

#[test]
fn simulate_compares_gateway_log_decisions() {
    snapshot!(
        "simulate_gateway_logs",
        mcpsim(&[
            "simulate",
            "--policy",
            CANDIDATE,
            &fixture("fixtures/traces/agentgateway.jsonl"),
            &fixture("fixtures/traces/toolhive-audit.jsonl"),
        ])
    );
}

#[test]
fn simulate_reports_unknown_and_fidelity_on_keys_only_logs() {
    // PolicyLayer logs keep argument keys, never values: predicates on values are unknown.
    snapshot!(
        "simulate_policylayer_log",
        mcpsim(&[
            "simulate",
            "--policy",
            CANDIDATE,
            &fixture("fixtures/traces/policylayer.jsonl"),
        ])
    );
}

#[test]
fn simulate_counts_skipped_records() {
    snapshot!(
        "simulate_bad_input",
        mcpsim(&[
            "simulate",
            "--policy",
            BASELINE,
            &fixture("fixtures/traces/bad.jsonl")
        ])
    );
}

#[test]
fn strict_stops_at_the_first_bad_record_with_exit_2() {
    let (code, stdout, stderr) = run(&[
        "simulate",
        "--policy",
        BASELINE,
        "fixtures/traces/bad.jsonl",
        "--strict",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("error: fixtures/traces/bad.jsonl:2:"),
        "error names file and line: {stderr}"
    );
}

#[test]
fn invalid_policy_exits_2_with_located_diagnostics() {
    let (code, stdout, stderr) = run(&[
        "simulate",
        "--policy",
        "fixtures/policies/policylayer_typos.json",
        FLEET,
    ]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("--> fixtures/policies/policylayer_typos.json:"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean"), "{stderr}");
}

#[test]
fn missing_files_exit_2() {
    let (code, _, stderr) = run(&["simulate", "--policy", "nope.json", FLEET]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nope.json"), "{stderr}");
    let (code, _, stderr) = run(&["simulate", "--policy", BASELINE, "missing-trace.jsonl"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing-trace.jsonl"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = run(&["simulate", FLEET]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--policy"), "{stderr}");
    let (code, _, stderr) = run(&[
        "simulate",
        "--policy",
        BASELINE,
        FLEET,
        "--fail-on",
        "maybe",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown decision `maybe`"), "{stderr}");
}

#[test]
fn simulate_gate_exit_codes() {
    // The candidate policy refuses 9 calls of the fleet trace: 3 denied, 6 throttled.
    let gate = |extra: &[&str]| {
        let mut args = vec!["simulate", "--policy", CANDIDATE, FLEET, "--format", "json"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, _, stderr) = gate(&["--fail-on", "deny,throttle"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "gate failed: 9 calls deny/throttle (at most 0 allowed)\n"
    );
    assert_eq!(
        gate(&["--fail-on", "deny,throttle", "--max-failures", "9"]).0,
        0
    );
    assert_eq!(
        gate(&["--fail-on", "deny,throttle", "--max-failures", "8"]).0,
        1
    );
    assert_eq!(gate(&["--fail-on", "throttle", "--max-failures", "6"]).0, 0);
    assert_eq!(gate(&["--fail-on", "unknown"]).0, 0);
    assert_eq!(gate(&["--fail-on", "approval"]).0, 1);
    assert_eq!(gate(&[]).0, 0);
}

/// A server bound on one side of a diff only: its calls are compared with nothing. Under a
/// gate that is an error (a candidate denying them would pass unseen); without one, a warning.
#[test]
fn diff_with_a_server_bound_on_one_side_only() {
    let policy = |extra: &[&str]| {
        let mut args = vec![
            "diff",
            "--base",
            "fortios=fixtures/policies/candidate.json",
            "--candidate",
            "fortios=fixtures/policies/candidate.json",
            "--candidate",
            "playwright=fixtures/policies/absent-arg.json",
            FLEET,
            "fixtures/traces/absent-arg.jsonl",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, out, stderr) = policy(&["--fail-on-new", "deny"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(out.is_empty());
    assert_eq!(
        stderr,
        "error: 3 calls of server `playwright` have a policy in the candidate only and were not \
         compared; the gate cannot judge them: bind a policy for that server on both sides (one \
         that allows every tool stands for none)\n"
    );
    let (code, out, stderr) = policy(&["--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            == "3 calls of server `playwright` have a policy in the candidate only and were not \
                compared: bind a policy for that server on both sides to compare them (one that \
                allows every tool stands for none)"),
        "{warnings:?}"
    );
}

#[test]
fn diff_gate_exit_codes() {
    // baseline → candidate: 3 calls newly denied, 6 newly throttled, 1 newly held.
    let gate = |extra: &[&str]| {
        let mut args = vec![
            "diff",
            "--base",
            BASELINE,
            "--candidate",
            CANDIDATE,
            FLEET,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, _, stderr) = gate(&["--fail-on-new", "deny,throttle"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "gate failed: 9 calls newly deny/throttle (at most 0 allowed)\n"
    );
    assert_eq!(gate(&["--fail-on-new", "deny", "--max-new", "3"]).0, 0);
    assert_eq!(gate(&["--fail-on-new", "deny", "--max-new", "2"]).0, 1);
    assert_eq!(gate(&["--fail-on-new", "unknown"]).0, 0);
    // The reverse direction only allows more: nothing is newly refused.
    let (code, _, _) = run(&[
        "diff",
        "--base",
        CANDIDATE,
        "--candidate",
        BASELINE,
        FLEET,
        "--fail-on-new",
        "deny,throttle,approval",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn json_output_matches_the_documented_schema() {
    use super::json_schema::{DiffReport, SimulateReport};
    let (code, stdout, _) = run(&[
        "simulate",
        "--policy",
        CANDIDATE,
        FLEET,
        "--format",
        "json",
        "--show-args",
    ]);
    assert_eq!(code, 0);
    let r: SimulateReport = serde_json::from_str(&stdout).expect("simulate JSON matches schema");
    assert_eq!(r.totals.calls, 45);
    assert_eq!(
        (
            r.totals.allow,
            r.totals.deny,
            r.totals.throttle,
            r.totals.approval,
            r.totals.unknown
        ),
        (35, 3, 6, 1, 0)
    );
    assert_eq!(r.not_allowed, 10);
    assert!(r.calls.iter().all(|c| c.args.is_some()));
    let throttled = r
        .calls
        .iter()
        .find(|c| c.decision == "throttle")
        .expect("a throttle");
    let t = throttled.throttle.as_ref().expect("throttle details");
    assert_eq!(
        (t.counter.as_str(), t.used, t.max),
        ("firewall_reads", 30.0, 30.0)
    );
    assert_eq!(t.key, "grant:fortios/audit-bot");

    let (code, stdout, _) = run(&[
        "diff",
        "--base",
        BASELINE,
        "--candidate",
        CANDIDATE,
        FLEET,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let d: DiffReport = serde_json::from_str(&stdout).expect("diff JSON matches schema");
    assert_eq!(d.changed, 10);
    assert_eq!(d.calls.len(), 10);
}

#[test]
fn arguments_are_hidden_unless_asked_for() {
    let (_, stdout, _) = run(&[
        "simulate", "--policy", CANDIDATE, FLEET, "--format", "jsonl",
    ]);
    assert!(!stdout.contains("branch-12-p2"), "argument values leaked");
    let (_, stdout, _) = run(&[
        "simulate",
        "--policy",
        CANDIDATE,
        FLEET,
        "--format",
        "jsonl",
        "--show-args",
    ]);
    assert!(stdout.contains("branch-12-p2"));
}

/// Shown arguments are the JSON of the value they parse into, whatever the recording's layout:
/// compact, keys sorted, a repeated key's last value, numbers and escapes as serde_json writes
/// them; a pretty document lays the value out.
#[test]
fn shown_arguments_are_compact_with_keys_sorted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("args.jsonl");
    let line = |n: u32, args: &str| {
        format!(
            r#"{{"ts":"2026-08-01T09:00:0{n}.000Z","server":"fortios","grant":"g","tool":"nope_tool","args":{args}}}"#
        )
    };
    let shown = [
        (
            r#"{ "b" : 1, "a": {"d": [1, 2], "c": "x y"}, "a ": 0 }"#,
            r#"{"a":{"c":"x y","d":[1,2]},"a ":0,"b":1}"#,
        ),
        (
            r#"{"a":1.50,"s":"q\"t\u00e9\/"}"#,
            r#"{"a":1.5,"s":"q\"té/"}"#,
        ),
        (
            r#"{"k":1,"k":{"z":-0,"y":12345678901234567890}}"#,
            r#"{"k":{"y":12345678901234567890,"z":-0.0}}"#,
        ),
        ("{}", "{}"),
    ];
    let lines: Vec<String> = (shown.iter().enumerate())
        .map(|(n, (args, _))| line(n as u32 + 1, args))
        .collect();
    std::fs::write(&trace, lines.join("\n") + "\n").expect("write trace");
    let trace = trace.to_str().expect("utf-8 path");
    let args = |format: &str| {
        let (code, stdout, stderr) = run(&[
            "simulate",
            "--policy",
            CANDIDATE,
            trace,
            "--format",
            format,
            "--calls",
            "all",
            "--show-args",
        ]);
        assert_eq!(code, 0, "{stderr}");
        stdout
    };
    let jsonl = args("jsonl");
    let got: Vec<String> = (jsonl.lines())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let start = l.find(r#""args":"#).expect("args") + 7;
            let end = start + v["args"].to_string().len();
            l[start..end].to_owned()
        })
        .collect();
    let want: Vec<&str> = shown.iter().map(|(_, s)| *s).collect();
    assert_eq!(got, want);
    let csv = args("csv");
    for (_, s) in &shown {
        let cell = match s.contains(['"', ',']) {
            true => format!("\"{}\"", s.replace('"', "\"\"")),
            false => s.to_string(),
        };
        assert!(csv.contains(&format!(",{cell},")), "{cell} not in {csv}");
    }
    // A tool the policy does not name: denied, so that the document lists the calls.
    let json = args("json");
    assert!(json.contains("\"args\": {\n"), "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let from_doc: Vec<String> = (doc["calls"].as_array().expect("calls").iter())
        .map(|c| c["args"].to_string())
        .collect();
    assert_eq!(from_doc, want);
}

#[test]
fn output_is_deterministic() {
    for format in ["table", "json", "jsonl", "csv"] {
        let a = run(&[
            "diff",
            "--base",
            BASELINE,
            "--candidate",
            CANDIDATE,
            FLEET,
            "-f",
            format,
        ]);
        let b = run(&[
            "diff",
            "--base",
            BASELINE,
            "--candidate",
            CANDIDATE,
            FLEET,
            "-f",
            format,
        ]);
        assert_eq!(a, b, "{format}");
    }
}

#[test]
fn per_server_policies_count_calls_of_other_servers() {
    let policy = |server: &str| format!("{server}={CANDIDATE}");
    // A binding that matches no call fails the run, gate or not: a misspelt server name would
    // otherwise check nothing and pass.
    let typo = policy("fortio");
    for gate in [&[][..], &["--fail-on", "deny,throttle"][..]] {
        let mut args = vec!["simulate", "--policy", &typo, FLEET, "-f", "json"];
        args.extend_from_slice(gate);
        let (code, stdout, stderr) = run(&args);
        assert_eq!((code, stdout.as_str()), (2, ""));
        assert_eq!(
            stderr,
            format!(
                "error: policy binding `fortio={CANDIDATE}` matched no call; servers in the \
                 trace (calls): fortios (45); `fortio`: did you mean `fortios`?\n"
            )
        );
    }
    // With a policy for every server as well, the other servers' calls are counted apart.
    let (code, stdout, stderr) = run(&[
        "simulate",
        "--policy",
        &policy("fortios"),
        "--policy",
        BASELINE,
        FLEET,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let r: super::json_schema::SimulateReport = serde_json::from_str(&stdout).expect("json");
    assert_eq!(r.input.calls_read, 45);
    assert_eq!(r.input.calls_evaluated, 45);

    let (_, stdout, _) = run(&[
        "simulate",
        "--policy",
        BASELINE,
        "--policy",
        &format!("fortios={CANDIDATE}"),
        FLEET,
        "--format",
        "json",
    ]);
    let r: super::json_schema::SimulateReport = serde_json::from_str(&stdout).expect("json");
    // The server's own policy wins over the one for every server.
    assert_eq!(r.totals.throttle, 6);
}

#[test]
fn parquet_output_round_trips_through_polars() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("decisions.parquet");
    let out_s = out.to_str().expect("utf-8 path");
    let (code, _, stderr) = run(&[
        "simulate", "--policy", CANDIDATE, FLEET, "--format", "parquet", "--output", out_s,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let df = read_parquet(&out);
    assert_eq!(df.height(), 45);
    let decisions = df.column("decision").expect("decision column");
    let decisions = decisions.str().expect("strings");
    let throttles = (0..decisions.len())
        .filter(|&i| decisions.get(i) == Some("throttle"))
        .count();
    assert_eq!(throttles, 6);
}

#[test]
fn diff_parquet_output_has_both_decisions_and_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("diff.parquet");
    let out_s = out.to_str().expect("utf-8 path");
    let (code, _, stderr) = run(&[
        "diff",
        "--base",
        BASELINE,
        "--candidate",
        CANDIDATE,
        FLEET,
        "-f",
        "parquet",
        "-o",
        out_s,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let df = read_parquet(&out);
    assert_eq!(df.height(), 45);
    let base = df
        .column("base_decision")
        .expect("base")
        .str()
        .expect("str")
        .clone();
    let cand = df
        .column("candidate_decision")
        .expect("cand")
        .str()
        .expect("str")
        .clone();
    let cause = df
        .column("cause")
        .expect("cause")
        .str()
        .expect("str")
        .clone();
    let changed: Vec<usize> = (0..df.height())
        .filter(|&i| base.get(i) != cand.get(i))
        .collect();
    assert_eq!(changed.len(), 10);
    assert!(changed.iter().all(|&i| cause.get(i) == Some("direct")));
    assert_eq!(cause.null_count(), 35);
}

#[test]
fn broken_pipe_exits_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    for args in [
        &[
            "simulate", "--policy", CANDIDATE, FLEET, "--format", "jsonl",
        ][..],
        &["simulate", "--policy", CANDIDATE, FLEET, "--format", "csv"],
        // The record writers of `convert` write on a thread of their own.
        &["convert", "--to", "jsonl", FLEET],
        &["convert", "--to", "csv", FLEET],
        &["convert", "--to", "parquet", FLEET],
    ] {
        let mut child = mcpsim(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close our end of stdout at once.
        drop(child.stdout.take());
        let status = child.wait().expect("wait");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read");
        assert!(status.success(), "{args:?}: exit {status:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// Every fenced block of the README that starts with `$ mcpsim …` shows that command's real
/// output (standard output, then standard error).
#[test]
fn readme_examples_are_real_output() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut checked = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("```") {
            continue;
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let Some(cmd) = body.first().and_then(|l| l.strip_prefix("$ mcpsim ")) else {
            continue;
        };
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let (_, stdout, stderr) = run(&args);
        let expected = body[1..].join("\n");
        let actual = format!("{stdout}{stderr}");
        assert_eq!(
            actual.trim_end(),
            expected.trim_end(),
            "README example `{cmd}`"
        );
        checked += 1;
    }
    assert_eq!(checked, 4, "README examples found");
}

#[test]
fn binary_trace_is_reported_as_not_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.bin");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, bytes).expect("write");
    let (code, stdout, stderr) = run(&["stats", junk.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("cannot detect the trace format (the input is not text"),
        "{stderr}"
    );
    assert!(
        stderr.lines().count() == 1,
        "one clear line, no binary dump: {stderr}"
    );
}

#[test]
fn policy_starting_like_a_json_array_is_read_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.json");
    std::fs::write(&p, "[1,2\n").expect("write");
    let (code, _, stderr) = run(&["check", p.to_str().expect("utf-8")]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: invalid JSON"), "{stderr}");
}

/// A run that evaluates no call checked nothing: it fails (exit 2) in every format, with or
/// without a gate, and says why.
#[test]
fn a_replay_that_evaluates_no_call_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").expect("write");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"ts\": 1}\nnot json\n").expect("write");
    let (empty, bad) = (empty.to_str().unwrap(), bad.to_str().unwrap());
    for format in ["table", "json", "csv"] {
        let (code, stdout, stderr) = run(&["simulate", "-p", BASELINE, empty, "-f", format]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{format}");
        assert_eq!(
            stderr,
            "error: no call was evaluated, so nothing was checked: the input holds no tools/call\n"
        );
        let (code, _, stderr) = run(&[
            "diff",
            "--base",
            BASELINE,
            "--candidate",
            CANDIDATE,
            bad,
            "--from",
            "jsonl",
            "-f",
            format,
            "--fail-on-new",
            "deny",
        ]);
        assert_eq!(code, 2, "{format}");
        assert_eq!(
            stderr,
            format!(
                "error: no call was evaluated, so nothing was checked: every record was skipped \
                 (2 skipped; the first at {bad}:1: field `tool`: missing)\n"
            )
        );
    }
}

/// A policy's tools that no call used are named in every report, with the nearest tool seen.
#[test]
fn policies_naming_tools_no_call_used_are_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.json");
    std::fs::write(
        &p,
        r#"{"version":"1","default":"allow","tools":{
            "firewall_policy_lsit":{"deny_if":[{"path":"args.vdom","op":"eq","value":"x"}]},
            "backup_everything":{}}}"#,
    )
    .expect("write");
    let p = p.to_str().unwrap();
    let want = format!(
        "policy {p} names 2 tools that no call used: `backup_everything`, `firewall_policy_lsit` \
         (nearest tool seen: `firewall_policy_list`)"
    );
    let (code, stdout, _) = run(&["simulate", "-p", p, FLEET, "-f", "json"]);
    assert_eq!(code, 0);
    let r: super::json_schema::SimulateReport = serde_json::from_str(&stdout).expect("json");
    assert_eq!(r.warnings, std::slice::from_ref(&want));
    let (_, stdout, _) = run(&["simulate", "-p", p, FLEET, "-f", "table"]);
    assert!(stdout.contains(&format!("warning: {want}")), "{stdout}");
    let (_, stdout, _) = run(&["simulate", "-p", p, FLEET, "-f", "markdown"]);
    let escaped = want.replace('`', "\\`");
    assert!(stdout.contains(&format!("warning: {escaped}")), "{stdout}");
    let (_, _, stderr) = run(&["simulate", "-p", p, FLEET, "-f", "jsonl"]);
    assert!(stderr.contains(&format!("warning: {want}")), "{stderr}");
    let (_, stdout, _) = run(&[
        "diff",
        "--base",
        BASELINE,
        "--candidate",
        p,
        FLEET,
        "-f",
        "json",
    ]);
    let r: super::json_schema::DiffReport = serde_json::from_str(&stdout).expect("json");
    assert_eq!(r.warnings, [want]);
}

/// Two servers with a same-named tool under two bindings: per-tool and per-rule rows are kept
/// apart by server, and a per-server table is shown (simulate and diff).
#[test]
fn several_policies_keep_servers_apart() {
    let trace = "fixtures/traces/jsonrpc-concatenated.jsonl";
    let pa = "postgres-a=fixtures/policies/postgres.json";
    let pb = "postgres-b=fixtures/policies/postgres.json";
    let (code, stdout, stderr) = run(&["simulate", "-p", pa, "-p", pb, trace, "-f", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let r: super::json_schema::SimulateReport = serde_json::from_str(&stdout).expect("json");
    let servers: Vec<(&str, u64, u64)> = (r.per_server.iter())
        .map(|g| (g.name.as_str(), g.calls, g.deny))
        .collect();
    assert_eq!(servers, [("postgres-a", 7, 2), ("postgres-b", 1, 1)]);
    let tools: Vec<(Option<&str>, &str, u64)> = (r.per_tool.iter())
        .map(|g| (g.server.as_deref(), g.name.as_str(), g.calls))
        .collect();
    assert_eq!(
        tools,
        [
            (Some("postgres-a"), "execute_sql", 3),
            (Some("postgres-a"), "list_tables", 4),
            (Some("postgres-b"), "execute_sql", 1),
        ]
    );
    let rules: Vec<(Option<&str>, &str, u64)> = (r.per_rule.iter())
        .map(|c| (c.server.as_deref(), c.rule.as_str(), c.calls))
        .collect();
    let rule = "/tools/execute_sql/deny_if/args.sql-regex";
    assert_eq!(
        rules,
        [(Some("postgres-a"), rule, 2), (Some("postgres-b"), rule, 1)]
    );
    let (_, table, _) = run(&["simulate", "-p", pa, "-p", pb, trace]);
    assert!(table.contains("Per server"), "{table}");
    // Listed calls name their server too.
    assert!(
        table.contains("│ #2 │ 2026-08-01T09:00:01Z │ bot   │ postgres-b │ execute_sql │ deny "),
        "{table}"
    );
    assert!(
        table.contains("│ postgres-b │ execute_sql │ 1     │ 0     │ 1    │"),
        "{table}"
    );

    // One policy for every server: tools add up across servers, no server column.
    let all = "fixtures/policies/postgres.json";
    let (_, stdout, _) = run(&["simulate", "-p", all, trace, "-f", "json"]);
    let r: super::json_schema::SimulateReport = serde_json::from_str(&stdout).expect("json");
    let tools: Vec<(Option<&str>, &str, u64)> = (r.per_tool.iter())
        .map(|g| (g.server.as_deref(), g.name.as_str(), g.calls))
        .collect();
    assert_eq!(tools, [(None, "execute_sql", 4), (None, "list_tables", 4)]);
    assert_eq!(r.per_server.len(), 2);

    // diff: the candidate drops postgres-b's rule; its server's row shows the change.
    let (code, stdout, stderr) = run(&[
        "diff",
        "--base",
        pa,
        "--base",
        pb,
        "--candidate",
        pa,
        "--candidate",
        "postgres-b=fixtures/policies/baseline.json",
        trace,
        "-f",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let r: super::json_schema::DiffReport = serde_json::from_str(&stdout).expect("json");
    let servers: Vec<(&str, u64, u64)> = (r.per_server.iter())
        .map(|g| (g.name.as_str(), g.calls, g.newly_allowed))
        .collect();
    assert_eq!(servers, [("postgres-b", 1, 1)]);
    let tools: Vec<(Option<&str>, &str)> = (r.per_tool.iter())
        .map(|g| (g.server.as_deref(), g.name.as_str()))
        .collect();
    assert_eq!(tools, [(Some("postgres-b"), "execute_sql")]);
}

/// `stats` keeps servers apart and `--server` narrows stats and explain to one server.
#[test]
fn stats_and_explain_by_server() {
    let trace = "fixtures/traces/jsonrpc-concatenated.jsonl";
    let (code, stdout, _) = run(&["stats", trace, "-f", "json"]);
    assert_eq!(code, 0);
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let rows = |key: &str| -> Vec<(String, String, u64)> {
        (r[key].as_array().unwrap().iter())
            .map(|g| {
                let server = g["server"].as_str().unwrap_or("-").to_owned();
                (
                    server,
                    g["name"].as_str().unwrap().to_owned(),
                    g["calls"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let row = |s: &str, n: &str, c| (s.to_owned(), n.to_owned(), c);
    assert_eq!(
        rows("per_server"),
        [row("-", "postgres-a", 7), row("-", "postgres-b", 1)]
    );
    assert_eq!(
        rows("per_tool"),
        [
            row("postgres-a", "execute_sql", 3),
            row("postgres-a", "list_tables", 4),
            row("postgres-b", "execute_sql", 1)
        ]
    );
    let (code, stdout, _) = run(&["stats", trace, "--server", "postgres-b", "-f", "json"]);
    assert_eq!(code, 0);
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        (
            r["totals"]["calls"].as_u64(),
            r["input"]["left_out"].as_u64(),
            r["input"]["calls_read"].as_u64(),
            r["input"]["calls_evaluated"].as_u64(),
        ),
        (Some(1), Some(7), Some(8), Some(1))
    );
    assert_eq!(r["per_tool"][0]["server"], serde_json::Value::Null);
    let (code, _, stderr) = run(&["stats", trace, "--server", "postgres-x"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with(
            "error: --server postgres-x: no call has this server (servers in the trace: \
             postgres-a, postgres-b); did you mean `postgres-a`?"
        ),
        "{stderr}"
    );

    let p = "fixtures/policies/postgres.json";
    let (code, _, stderr) = run(&["explain", "-p", p, trace, "--call", "1"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--call 1: 3 calls have this id (#1, #2, #3)"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(&[
        "explain",
        "-p",
        p,
        trace,
        "--call",
        "1",
        "--server",
        "postgres-b",
        "-f",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        (r["call"]["index"].as_u64(), r["call"]["server"].as_str()),
        (Some(2), Some("postgres-b"))
    );
}

/// Timestamps without an offset are skipped with an error that names `--assume-tz`, and read
/// at the given offset with it.
#[test]
fn assume_tz_reads_timestamps_without_an_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let naive = dir.path().join("naive.jsonl");
    std::fs::write(
        &naive,
        "{\"ts\":\"2026-08-01 09:00:00\",\"server\":\"s\",\"tool\":\"t\",\"args\":{}}\n\
         {\"ts\":\"2026-08-01T10:00:00.5\",\"server\":\"s\",\"tool\":\"t\",\"args\":{}}\n",
    )
    .expect("write");
    let naive = naive.to_str().unwrap();
    let (code, _, stderr) = run(&["convert", naive, "--to", "jsonl", "--strict"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            ":1: field `ts`: timestamp \"2026-08-01 09:00:00\" has no UTC offset; say which one \
             it is in with --assume-tz (e.g. --assume-tz UTC or --assume-tz +02:00)"
        ),
        "{stderr}"
    );
    let ts = |offset: &str| -> Vec<String> {
        let (code, stdout, stderr) =
            run(&["convert", naive, "--to", "jsonl", "--assume-tz", offset]);
        assert_eq!(code, 0, "{stderr}");
        stdout
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        ts("UTC"),
        ["2026-08-01T09:00:00Z", "2026-08-01T10:00:00.500Z"]
    );
    assert_eq!(
        ts("+02:00"),
        ["2026-08-01T07:00:00Z", "2026-08-01T08:00:00.500Z"]
    );
    assert_eq!(
        ts("-0530"),
        ["2026-08-01T14:30:00Z", "2026-08-01T15:30:00.500Z"]
    );
    let (code, _, stderr) = run(&["stats", naive, "--assume-tz", "Europe/Paris"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`Europe/Paris` is not an offset: give UTC or ±HH:MM (e.g. +02:00)"),
        "{stderr}"
    );
}

/// In `table` format long messages wrap, so rows stay readable; other formats keep them whole.
#[test]
fn table_cells_wrap_long_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("p.json");
    let long = "this tool is not allowed for agents because ".repeat(8);
    let long = long.trim_end();
    std::fs::write(
        &p,
        format!(
            r#"{{"version":"1","default":"allow","tools":{{"firewall_policy_list":{{"deny_if":[{{"path":"args.vdom","op":"exists","value":true,"on_deny":"{long}"}}]}}}}}}"#
        ),
    )
    .expect("write");
    let p = p.to_str().unwrap();
    let (code, stdout, _) = run(&["simulate", "-p", p, FLEET]);
    assert_eq!(code, 0);
    let widest = stdout.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 240, "a line of {widest} characters:\n{stdout}");
    assert!(
        stdout.contains("│ this tool is not allowed for agents because this tool is not │"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["simulate", "-p", p, FLEET, "-f", "markdown"]);
    assert!(stdout.contains(long), "markdown keeps it whole");
    let (_, stdout, _) = run(&["simulate", "-p", p, FLEET, "-f", "jsonl"]);
    assert!(stdout.contains(long), "jsonl keeps it whole");
}

/// `--policy-dir` binds each `<server>.json|yaml` of a directory to its server, as
/// `--policy SERVER=FILE` would; `--base-dir` / `--candidate-dir` do the same for diff.
#[test]
fn policy_dirs_bind_files_by_server_name() {
    let trace = "fixtures/traces/jsonrpc-concatenated.jsonl";
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, cand) = (dir.path().join("base"), dir.path().join("cand"));
    for d in [&base, &cand] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let strict = std::fs::read_to_string("fixtures/policies/postgres.json").unwrap();
    let open = std::fs::read_to_string("fixtures/policies/baseline.json").unwrap();
    for server in ["postgres-a", "postgres-b"] {
        std::fs::write(base.join(format!("{server}.json")), &strict).unwrap();
    }
    std::fs::write(cand.join("postgres-a.json"), &strict).unwrap();
    std::fs::write(cand.join("postgres-b.json"), &open).unwrap();
    std::fs::write(cand.join("README.txt"), "not a policy").unwrap();
    let (b, c) = (base.to_str().unwrap(), cand.to_str().unwrap());

    let by_dir = run(&["simulate", "--policy-dir", b, trace, "-f", "json"]);
    let by_flags = run(&[
        "simulate",
        "-p",
        &format!("postgres-a={b}/postgres-a.json"),
        "-p",
        &format!("postgres-b={b}/postgres-b.json"),
        trace,
        "-f",
        "json",
    ]);
    assert_eq!(by_dir.0, 0, "{}", by_dir.2);
    assert_eq!(by_dir.1, by_flags.1);
    let r: super::json_schema::SimulateReport = serde_json::from_str(&by_dir.1).expect("json");
    let servers: Vec<Option<&str>> = r.policies.iter().map(|p| p.server.as_deref()).collect();
    assert_eq!(servers, [Some("postgres-a"), Some("postgres-b")]);

    let (code, stdout, stderr) = run(&[
        "diff",
        "--base-dir",
        b,
        "--candidate-dir",
        c,
        trace,
        "-f",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let r: super::json_schema::DiffReport = serde_json::from_str(&stdout).expect("json");
    assert_eq!(r.changed, 1);
    assert_eq!(r.per_server[0].name, "postgres-b");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = run(&["simulate", "--policy-dir", empty.to_str().unwrap(), trace]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no policy files (<server>.json, .yaml or .yml) in this directory"),
        "{stderr}"
    );
}

/// `--fail-on 'deny, throttle'`: a space after a comma is not part of the decision's name.
#[test]
fn fail_on_accepts_spaces_after_commas() {
    let spaced = run(&[
        "simulate",
        "-p",
        CANDIDATE,
        FLEET,
        "--fail-on",
        "deny, throttle",
    ]);
    let tight = run(&[
        "simulate",
        "-p",
        CANDIDATE,
        FLEET,
        "--fail-on",
        "deny,throttle",
    ]);
    assert_eq!(spaced.0, 1, "{}", spaced.2);
    assert_eq!(spaced, tight);
    assert!(
        spaced.2.contains("gate failed: 9 calls deny/throttle"),
        "{}",
        spaced.2
    );
}

/// A decision named twice in a gate counts its calls once (it counted them twice: a gate
/// could fail with fewer failing calls than it tolerates).
#[test]
fn a_decision_named_twice_in_a_gate_counts_once() {
    let simulate = |gate: &str, max: &str| {
        run(&[
            "simulate",
            "-p",
            CANDIDATE,
            FLEET,
            "-f",
            "json",
            "--fail-on",
            gate,
            "--max-failures",
            max,
        ])
    };
    let (code, twice, stderr) = simulate("deny,throttle,deny", "9");
    assert_eq!(code, 0, "{stderr}");
    let once = simulate("deny,throttle", "9");
    assert_eq!((code, &twice), (once.0, &once.1));
    let gate = &serde_json::from_str::<serde_json::Value>(&twice).expect("json")["gate"];
    assert_eq!(gate["fail_on"], serde_json::json!(["deny", "throttle"]));
    assert_eq!(gate["failures"], 9);
    let (code, _, stderr) = simulate("deny,deny,throttle", "8");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("gate failed: 9 calls deny/throttle"),
        "{stderr}"
    );
    let diff = |gate: &str| {
        run(&[
            "diff",
            "--base",
            BASELINE,
            "--candidate",
            CANDIDATE,
            FLEET,
            "-f",
            "json",
            "--fail-on-new",
            gate,
            "--max-new",
            "100",
        ])
    };
    let (twice, once) = (diff("deny,deny"), diff("deny"));
    assert_eq!(twice.0, 0, "{}", twice.2);
    assert_eq!(twice, once);
}

/// `diff --show-args` lists the changed calls' arguments in table and Markdown too (only the
/// row formats had them), and a call the candidate lets through by no rule names the base's
/// rule as the base's.
#[test]
fn diff_text_reports_show_arguments_when_asked() {
    for format in ["markdown", "table"] {
        let diff = |show: bool| {
            let mut argv = vec![
                "diff",
                "--base",
                BASELINE,
                "--candidate",
                CANDIDATE,
                FLEET,
                "-f",
                format,
            ];
            if show {
                argv.push("--show-args");
            }
            run(&argv)
        };
        let (code, hidden, stderr) = diff(false);
        assert_eq!(code, 0, "{stderr}");
        assert!(!hidden.contains("\"vdom\""), "{hidden}");
        let (code, shown, stderr) = diff(true);
        assert_eq!(code, 0, "{stderr}");
        assert!(shown.contains("args"), "{shown}");
        assert!(shown.contains(r#"{"vdom":"#), "{shown}");
    }
}

/// A tolerance without its gate is a usage error (it was ignored: a CI step meant to gate
/// passed whatever the decisions).
#[test]
fn a_tolerance_without_its_gate_is_a_usage_error() {
    let (code, stdout, stderr) = run(&["simulate", "-p", CANDIDATE, FLEET, "--max-failures", "3"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(stderr.contains("--fail-on <DECISIONS>"), "{stderr}");
    let (code, stdout, stderr) = run(&[
        "diff",
        "--base",
        BASELINE,
        "--candidate",
        CANDIDATE,
        FLEET,
        "--max-new",
        "3",
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(stderr.contains("--fail-on-new <DECISIONS>"), "{stderr}");
    let (code, _, stderr) = run(&["simulate", "-p", CANDIDATE, FLEET]);
    assert_eq!(code, 0, "{stderr}");
}

/// An error whose text quotes its cause says the cause once (`Is a directory (os error 21)`
/// came twice).
#[cfg(target_os = "linux")]
#[test]
fn an_error_says_its_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().unwrap();
    let (code, stdout, stderr) = run(&["stats", d]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        format!("error: {d}: Is a directory (os error 21)\n")
    );
}

/// `diff` whose base binds one server and candidate another evaluates nothing: the message
/// says that a call needs a policy on both sides (it said no call had a policy at all).
#[test]
fn diff_without_a_server_bound_on_both_sides_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("t.jsonl");
    std::fs::write(
        &trace,
        "{\"ts\":\"2026-08-01T09:00:00Z\",\"server\":\"db\",\"tool\":\"t\"}\n\
         {\"ts\":\"2026-08-01T09:00:01Z\",\"server\":\"files\",\"tool\":\"t\"}\n",
    )
    .expect("write");
    let (base, candidate) = (format!("db={BASELINE}"), format!("files={CANDIDATE}"));
    let (code, stdout, stderr) = run(&[
        "diff",
        "--base",
        &base,
        "--candidate",
        &candidate,
        trace.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        "error: no call was evaluated, so nothing was checked: none of the 2 calls read has a \
         policy for its server in both the base and the candidate; servers in the trace (calls): \
         db (1), files (1)\n"
    );
}

/// `check --format github` prints workflow annotations, `--format sarif` a SARIF 2.1.0 log;
/// both on standard output, with the same exit codes as the human format.
#[test]
fn check_prints_github_annotations_and_sarif() {
    let typo = "fixtures/policies/typo.json";
    let (code, stdout, stderr) = run(&["check", typo, "--format", "github"]);
    assert_eq!((code, stderr.as_str()), (2, ""));
    assert_eq!(
        stdout,
        "::error title=mcpsim check,file=fixtures/policies/typo.json,line=7,col=7::unknown field \
         `limts`, did you mean `limits`? (at tools.vpn_ipsec_phase2_create.limts)\n\
         ::error title=mcpsim check,file=fixtures/policies/typo.json,line=10,col=49::unknown op \
         `equals`, expected one of `eq`, `neq`, `in`, `not_in`, `lt`, `lte`, `gt`, `gte`, \
         `regex`, `contains`, `exists` (at tools.firewall_policy_list.deny_if[0].op)\n"
    );
    let (code, stdout, _) = run(&["check", BASELINE, "--format", "github"]);
    assert_eq!((code, stdout.as_str()), (0, ""));

    let (code, stdout, _) = run(&["check", typo, EVERYTHING, "--format", "sarif"]);
    assert_eq!(code, 2);
    let log: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(log["version"], "2.1.0");
    let run0 = &log["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "mcpsim");
    let results: Vec<(String, String, u64, u64)> = (run0["results"].as_array().unwrap().iter())
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            (
                r["level"].as_str().unwrap().to_owned(),
                loc["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                loc["region"]["startLine"].as_u64().unwrap(),
                loc["region"]["startColumn"].as_u64().unwrap(),
            )
        })
        .collect();
    let r = |level: &str, file: &str, line, col| (level.to_owned(), file.to_owned(), line, col);
    assert_eq!(
        results,
        [
            r("error", typo, 7, 7),
            r("error", typo, 10, 49),
            r("warning", EVERYTHING, 36, 20),
            r("warning", EVERYTHING, 48, 116),
        ]
    );
    let rules: Vec<&str> = (run0["results"].as_array().unwrap().iter())
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "policy-error",
            "policy-error",
            "policy-warning",
            "policy-warning"
        ]
    );
}

/// `diff` opens with what changed in the policies: limits matched by counter (a changed max
/// is one change), added and removed tools and bindings; the same in JSON.
#[test]
fn diff_opens_with_the_structural_policy_diff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let base = write(
        "base.json",
        r#"{"version":"1","default":"allow","tools":{"firewall_policy_list":{"limits":[
            {"counter":"reads","window":"minute","max":30,"scope":"grant"},
            {"counter":"hourly","window":"hour","max":600,"scope":"grant"}]},
            "system_status_get":{}}}"#,
    );
    let cand = write(
        "cand.json",
        r#"{"version":"1","default":"allow","tools":{"firewall_policy_list":{"limits":[
            {"counter":"burst","window":"second","max":5,"scope":"grant"},
            {"counter":"reads","window":"minute","max":12,"scope":"grant"},
            {"counter":"hourly","window":"hour","max":600,"scope":"grant"}]}}}"#,
    );
    let (code, stdout, stderr) = run(&[
        "diff",
        "--base",
        &base,
        "--candidate",
        &cand,
        FLEET,
        "-f",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let changes: Vec<(String, String, String, String)> =
        (r["policy_changes"].as_array().unwrap().iter())
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
                (s("path"), s("change"), s("base"), s("candidate"))
            })
            .collect();
    let c = |p: &str, k: &str, b: &str, n: &str| {
        (p.to_owned(), k.to_owned(), b.to_owned(), n.to_owned())
    };
    assert_eq!(
        changes,
        [
            c(
                "/tools/firewall_policy_list/limits/burst",
                "added",
                "",
                r#"{"counter":"burst","max":5,"scope":"grant","window":"second"}"#
            ),
            c(
                "/tools/firewall_policy_list/limits/reads/max",
                "changed",
                "30",
                "12"
            ),
            c("/tools/system_status_get", "removed", "{}", ""),
        ]
    );
    let (_, table, _) = run(&["diff", "--base", &base, "--candidate", &cand, FLEET]);
    assert!(table.contains("Policy changes (3)"), "{table}");
    let (_, same, _) = run(&["diff", "--base", &base, "--candidate", &base, FLEET]);
    assert!(
        same.contains("Policy changes: none (the policies read the same)"),
        "{same}"
    );
    // Intercept YAML compares the same way.
    let (_, stdout, _) = run(&[
        "diff",
        "--base",
        "fixtures/policies/intercept/github.yaml",
        "--candidate",
        "fixtures/policies/intercept/github.flow.yaml",
        "fixtures/traces/intercept-github.jsonl",
        "-f",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    // The flow form of the same policy differs in its description only.
    let paths: Vec<&str> = (r["policy_changes"].as_array().unwrap().iter())
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/description"]);
}

/// SARIF artifact locations are RFC 3986 URIs: a relative path stays relative with reserved
/// characters percent-encoded, an absolute one becomes a `file:` URI.
#[test]
fn sarif_locations_are_uris() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("a b:c%d,e.json");
    std::fs::write(
        &odd,
        "{\"version\": \"1\", \"tools\": {\"t\": {\"limts\": []}}}\n",
    )
    .unwrap();
    let (code, stdout, _) = run(&["check", "--format", "sarif", odd.to_str().unwrap()]);
    assert_eq!(code, 2);
    let log: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"]
        .as_str()
        .unwrap();
    assert_eq!(
        uri,
        format!("file://{}/a%20b%3Ac%25d,e.json", dir.path().display())
    );
    let (_, stdout, _) = run(&["check", "--format", "sarif", "fixtures/policies/typo.json"]);
    assert!(
        stdout.contains("\"uri\": \"fixtures/policies/typo.json\""),
        "{stdout}"
    );
}

/// `mcpsim … | head` ends quietly with the command's own exit code: standard output is a pipe
/// whose reader is gone before the first byte. `check --format sarif` writes through
/// serde_json, whose errors hide the broken pipe they wrap.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let policy = "fixtures/policies/candidate.json";
    let trace = "fixtures/traces/fleet.jsonl";
    let commands: [&[&str]; 7] = [
        &[
            "check",
            "--format",
            "sarif",
            "fixtures/policies/everything.json",
        ],
        &[
            "check",
            "--format",
            "github",
            "fixtures/policies/everything.json",
        ],
        &["simulate", "--policy", policy, trace],
        &["simulate", "--policy", policy, "--format", "json", trace],
        &[
            "simulate", "--policy", policy, "--format", "jsonl", "--calls", "all", trace,
        ],
        &["convert", "--to", "jsonl", trace],
        &["stats", "--format", "json", trace],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = mcpsim(args).stdout(writer).output().expect("mcpsim runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
