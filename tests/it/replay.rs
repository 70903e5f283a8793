//! Replay through the library: diff causes (direct vs knock-on), per-server policies, fidelity.

use std::io::Write;
use std::sync::Arc;

use mcpsim::engine::{DecisionKind, EvalOptions};
use mcpsim::replay::{self, NoProgress, PolicySet};
use mcpsim::report::{Cause, ReportOptions};
use mcpsim::trace::{ReadOptions, Trace};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(text.as_bytes()).expect("write");
    path.to_str().expect("utf-8").to_owned()
}

fn policy(src: &str) -> PolicySet {
    let p = mcpsim::policy::parse_policy_str(src, "test.json").expect("valid policy");
    PolicySet {
        default: Some(("test.json".to_owned(), Arc::new(p))),
        ..PolicySet::default()
    }
}

const TRACE: &str = r#"{"ts":"2026-08-01T10:00:00Z","server":"s","grant":"g","tool":"a","args":{"x":1}}
{"ts":"2026-08-01T10:00:01Z","server":"s","grant":"g","tool":"b","args":{}}
{"ts":"2026-08-01T10:00:02Z","server":"s","grant":"g","tool":"b","args":{}}
{"ts":"2026-08-01T10:01:00Z","server":"s","grant":"g","tool":"b","args":{}}
"#;

const BASE: &str = r#"{"version":"1","default":"allow",
  "all_tools":{"limits":[{"counter":"all","window":"minute","max":2}]}}"#;

const CANDIDATE: &str = r#"{"version":"1","default":"allow",
  "all_tools":{"limits":[{"counter":"all","window":"minute","max":2}]},
  "tools":{"a":{"deny_if":[{"path":"args.x","op":"eq","value":1}]}}}"#;

#[test]
fn diff_separates_direct_changes_from_knock_on_effects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace_path = write(&dir, "t.jsonl", TRACE);
    let mut trace = Trace::open(&[trace_path], &ReadOptions::default()).expect("open");
    let opts = ReportOptions {
        calls_shown: mcpsim::report::CallsShown::All,
        ..ReportOptions::default()
    };
    let report = replay::diff(
        &mut trace,
        &policy(BASE),
        &policy(CANDIDATE),
        EvalOptions::default(),
        opts,
        None,
        &mut NoProgress,
    )
    .expect("diff");
    // Call 1 (`a`) is newly denied by its own rule: direct. It no longer consumes the shared
    // `all` budget, so call 3 (`b`, same rules in both policies) is no longer throttled: knock-on.
    assert_eq!(report.changed, 2);
    assert_eq!((report.direct, report.knock_on), (1, 1));
    let changes: Vec<(u64, DecisionKind, DecisionKind, Option<Cause>)> = report
        .calls
        .iter()
        .map(|c| (c.call.index, c.base.decision, c.candidate.decision, c.cause))
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                1,
                DecisionKind::Allow,
                DecisionKind::Deny,
                Some(Cause::Direct)
            ),
            (
                3,
                DecisionKind::Throttle,
                DecisionKind::Allow,
                Some(Cause::KnockOn)
            ),
        ]
    );
    // The call in the next minute is allowed under both.
    assert_eq!(report.base_totals.allow, 3);
    assert_eq!(report.candidate_totals.allow, 3);
    let b = report
        .per_tool
        .iter()
        .find(|g| g.name == "b")
        .expect("tool b changed");
    assert_eq!((b.changed, b.newly_allowed, b.knock_on), (1, 1, 1));
}

#[test]
fn simulate_lists_first_n_not_allowed_and_counts_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace_path = write(&dir, "t.jsonl", TRACE);
    let mut trace = Trace::open(&[trace_path], &ReadOptions::default()).expect("open");
    let opts = ReportOptions {
        max_calls: 1,
        fail_on: Some((vec![DecisionKind::Deny, DecisionKind::Throttle], 1)),
        ..ReportOptions::default()
    };
    let r = replay::simulate(
        &mut trace,
        &policy(CANDIDATE),
        EvalOptions::default(),
        opts,
        None,
        &mut NoProgress,
    )
    .expect("simulate");
    assert_eq!(r.totals.calls, 4);
    assert_eq!(
        (r.totals.allow, r.totals.deny, r.totals.throttle),
        (3, 1, 0)
    );
    assert_eq!(r.not_allowed, 1);
    assert_eq!(r.calls.len(), 1);
    assert_eq!(r.calls[0].outcome.rule, "/tools/a/deny_if/args.x-eq");
    let gate = r.gate.expect("gate");
    assert_eq!((gate.failures, gate.failed), (1, false));
    assert!(r.fidelity.is_none(), "no recorded decisions in this trace");
}

#[test]
fn fidelity_counts_recorded_decisions_and_treats_recorded_deny_as_throttle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace_path = write(
        &dir,
        "t.jsonl",
        r#"{"ts":"2026-08-01T10:00:00Z","server":"s","grant":"g","tool":"b","recorded":{"decision":"allow"}}
{"ts":"2026-08-01T10:00:01Z","server":"s","grant":"g","tool":"b","recorded":{"decision":"allow"}}
{"ts":"2026-08-01T10:00:02Z","server":"s","grant":"g","tool":"b","recorded":{"decision":"deny"}}
{"ts":"2026-08-01T10:00:03Z","server":"s","grant":"g","tool":"b","recorded":{"decision":"allow"}}
{"ts":"2026-08-01T10:00:04Z","server":"s","grant":"g","tool":"b"}
"#,
    );
    let mut trace = Trace::open(&[trace_path], &ReadOptions::default()).expect("open");
    let r = replay::simulate(
        &mut trace,
        &policy(BASE),
        EvalOptions::default(),
        ReportOptions::default(),
        None,
        &mut NoProgress,
    )
    .expect("simulate");
    let f = r.fidelity.expect("recorded decisions present");
    // Calls 1–2 allowed (agree), 3 throttled vs recorded deny (agree: gateways log limits as
    // deny), 4 throttled vs recorded allow (disagree), 5 has no recorded decision.
    assert_eq!((f.compared, f.agreed, f.undecidable), (4, 3, 0));
    assert_eq!(f.disagreements.len(), 1);
    assert_eq!(f.disagreements[0].name, "allow → throttle");
    assert_eq!(f.examples[0].call.index, 4);
}

/// Issue #12 (4): with one policy.json per server, a `global` counter is kept per binding, and
/// the throttle names the key really used (`server:<server>`), not `global`.
#[test]
fn global_counters_under_several_bindings_name_the_key_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = r#"{"version":"1","default":"allow","all_tools":{"limits":[{"counter":"all","window":"minute","max":1,"scope":"global"}]}}"#;
    std::fs::write(dir.path().join("p.json"), policy).expect("write");
    let trace = [
        r#"{"ts":"2026-08-01T10:00:00Z","server":"a","tool":"t"}"#,
        r#"{"ts":"2026-08-01T10:00:01Z","server":"b","tool":"t"}"#,
        r#"{"ts":"2026-08-01T10:00:02Z","server":"a","tool":"t"}"#,
    ]
    .join("\n");
    std::fs::write(dir.path().join("t.jsonl"), trace + "\n").expect("write");
    let run = |policies: &[&str]| {
        let mut args = vec!["simulate", "t.jsonl", "--format", "json"];
        for p in policies {
            args.extend_from_slice(&["--policy", p]);
        }
        let out = std::process::Command::new(insta_cmd::get_cargo_bin("mcpsim"))
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .output()
            .expect("mcpsim runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json report")
    };
    let bound = run(&["a=p.json", "b=p.json"]);
    assert_eq!(bound["totals"]["throttle"], 1, "{bound}");
    assert_eq!(bound["calls"][0]["index"], 3);
    assert_eq!(bound["calls"][0]["throttle"]["key"], "server:a");
    let one = run(&["p.json"]);
    assert_eq!(one["totals"]["throttle"], 2, "{one}");
    assert_eq!(one["calls"][0]["throttle"]["key"], "global");
    // explain names the same key, for the decision and for the limit step.
    let out = std::process::Command::new(insta_cmd::get_cargo_bin("mcpsim"))
        .args([
            "explain", "--policy", "a=p.json", "--policy", "b=p.json", "t.jsonl", "--call", "#3",
            "--format", "json",
        ])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("mcpsim runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explained: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(explained["decision"]["throttle"]["key"], "server:a");
    assert_eq!(
        explained["steps"][1]["limit"]["key"], "server:a",
        "{explained}"
    );
}
