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

/// Decisions of a generated trace read as Parquet and as JSONL, whose reader threads work out
/// steps 1–5 of calls whose rules read arguments (`Trace::prescreen`; slices and chunks the
/// replay is not yet waiting for, which in a test build is nearly all), and read as CSV, whose
/// calls the replay screens itself: the same, for `simulate` and both sides of `diff` (direct
/// causes included), in time order and with calls out of order (sorted within the read-ahead).
#[test]
fn steps_worked_out_by_the_readers_decide_as_the_replay_does() {
    use mcpsim::generate::{GenConfig, Generator};

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = GenConfig {
        // Past what the merge reads ahead when it opens the file (before the replay asks for
        // screening): the later row groups are screened by the readers.
        calls: 120_000,
        grants: 5,
        seed: 17,
        ..GenConfig::default()
    };
    let ordered: Vec<_> = Generator::new(&cfg).expect("valid config").collect();
    // Every 97th call of the last part swapped with the one after it: a little out of time
    // order where the batches read are screened.
    let mut shuffled = ordered.clone();
    for i in (100_000..shuffled.len() - 1).step_by(97) {
        shuffled.swap(i, i + 1);
    }
    let realistic = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/policies/realistic.json"
    ))
    .expect("fixture");
    // Rules of every kind that the generated arguments meet: the weak-cipher rules also refuse
    // sha1, and phase 2 tunnels but to branch-12 or -13 wait for approval.
    let realistic = realistic.replace("des|md5", "des|md5|sha1").replace(
        r#""vpn_ipsec_phase2_create": {
      "require""#,
        r#""vpn_ipsec_phase2_create": {
      "approve_if": [
        { "path": "args.phase1name", "op": "not_in", "value": ["branch-12", "branch-13"] }
      ],
      "require""#,
    );
    // The candidate's firewall policies need a name, and not one of branch 3x.
    let candidate = realistic.replace(
        r#""firewall_policy_create": {
      "deny_if": ["#,
        r#""firewall_policy_create": {
      "require": [
        { "path": "args.name", "op": "exists", "value": true }
      ],
      "deny_if": [
        { "path": "args.name", "op": "regex", "value": "-3[0-9]$" },"#,
    );
    assert_ne!(candidate, realistic, "the candidate differs");
    for (name, records) in [("ordered", &ordered), ("shuffled", &shuffled)] {
        let path = |ext: &str| dir.path().join(format!("{name}.{ext}"));
        let (jsonl, parquet, csv) = (path("jsonl"), path("parquet"), path("csv"));
        let mut out = std::fs::File::create(&jsonl).expect("create");
        mcpsim::trace::write_jsonl(records, &mut out).expect("writes");
        let mut out = std::fs::File::create(&parquet).expect("create");
        mcpsim::trace::write_parquet(records, &mut out).expect("writes");
        let mut out = std::fs::File::create(&csv).expect("create");
        mcpsim::trace::write_csv(records, &mut out).expect("writes");
        let (jsonl, parquet, csv) = (
            jsonl.to_str().expect("utf-8"),
            parquet.to_str().expect("utf-8"),
            csv.to_str().expect("utf-8"),
        );
        let opts = ReportOptions {
            calls_shown: mcpsim::report::CallsShown::All,
            ..ReportOptions::default()
        };
        let open = |path: &str| Trace::open(&[path.to_owned()], &ReadOptions::default());
        let simulated = |path: &str| {
            let mut trace = open(path).expect("open");
            let report = replay::simulate(
                &mut trace,
                &policy(&realistic),
                EvalOptions::default(),
                opts.clone(),
                None,
                &mut NoProgress,
            )
            .expect("simulate");
            let calls: Vec<_> = (report.calls.iter())
                .map(|c| {
                    let o = &c.outcome;
                    (c.call.index, o.decision, o.rule.clone(), o.message.clone())
                })
                .collect();
            (report.totals, calls)
        };
        let want = simulated(csv);
        assert_eq!(simulated(parquet), want, "{name}");
        assert_eq!(simulated(jsonl), want, "{name}");
        let calls = want.1;
        // Rules that read arguments decided calls every way.
        let rules = |part: &str| calls.iter().filter(|c| c.2.contains(part)).count();
        for part in ["/require/", "/deny_if/", "/approve_if/"] {
            assert!(rules(part) > 100, "{name}: {} calls by {part}", rules(part));
        }
        let diffed = |path: &str| {
            let mut trace = open(path).expect("open");
            let report = replay::diff(
                &mut trace,
                &policy(&realistic),
                &policy(&candidate),
                EvalOptions::default(),
                opts.clone(),
                None,
                &mut NoProgress,
            )
            .expect("diff");
            let calls: Vec<_> = (report.calls.iter())
                .map(|c| {
                    let (b, k) = (&c.base, &c.candidate);
                    (
                        c.call.index,
                        b.decision,
                        k.decision,
                        k.rule.clone(),
                        c.cause,
                    )
                })
                .collect();
            (report.changed, report.direct, report.knock_on, calls)
        };
        let want = diffed(csv);
        assert_eq!(diffed(parquet), want, "{name}");
        assert_eq!(diffed(jsonl), want, "{name}");
        assert!(want.1 > 50, "{name}: {} direct changes", want.1);
    }
}
