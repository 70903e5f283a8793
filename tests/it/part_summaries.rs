//! Replaying a trace in parts (not the time-order merge of inputs: see `merge.rs`):
//! `partition-key` derives the split from the policies' counter scopes, and `mcpsim merge` of
//! the parts' summaries (`simulate --part-summary`) is byte for byte the summary of one run.

use std::path::Path;

use serde_json::Value;

use crate::cli::run;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

/// Split the JSONL trace `trace` into `n` parts by the values of `key`'s fields, replay each
/// with `simulate --part-summary` and the arguments `args`, give the listed calls their place
/// in the whole trace (`index`, `origin`) and each part's files the trace's name, as whoever
/// splits a trace does, and merge. Returns merge's exit code, output and errors.
fn replay_in_parts(
    dir: &Path,
    trace: &str,
    key: &[&str],
    n: usize,
    args: &[&str],
) -> (i32, String, String) {
    let text = std::fs::read_to_string(trace).expect("trace");
    // Per part: (line in the whole trace, the line).
    let mut parts: Vec<Vec<(usize, &str)>> = vec![Vec::new(); n];
    for (i, line) in text.lines().enumerate() {
        let call: Value = serde_json::from_str(line).expect("a call record");
        let k: String = key.iter().map(|f| format!("{}\0", call[f])).collect();
        let h = k
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        parts[(h % n as u64) as usize].push((i + 1, line));
    }
    // Lines are calls here, so a call's index is its line.
    let mut summaries = Vec::new();
    for (p, lines) in parts.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
        let body: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        let part = write(dir, &format!("part-{p}.jsonl"), &body);
        let summary = dir.join(format!("part-{p}.json"));
        let summary = summary.to_str().expect("utf-8");
        let mut cmd = args.to_vec();
        cmd.extend([part.as_str(), "--format", "json", "--part-summary", summary]);
        let (code, _, err) = run(&cmd);
        assert_eq!(code, 0, "{err}");
        let mut s: Value =
            serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
        let mut place = |call: &mut Value| {
            let origin = call["origin"].as_str().expect("origin");
            let local: usize = origin.rsplit_once(':').unwrap().1.parse().unwrap();
            let line = lines[local - 1].0;
            call["index"] = line.into();
            call["origin"] = format!("{trace}:{line}").into();
        };
        s["calls"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(&mut place);
        if let Some(f) = s["fidelity"].as_object_mut() {
            f["examples"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .for_each(&mut place);
        }
        s["input"]["files"][0]["name"] = trace.into();
        std::fs::write(summary, serde_json::to_string(&s).unwrap()).unwrap();
        summaries.push(summary.to_owned());
    }
    let mut cmd = vec!["merge", "--format", "json"];
    cmd.extend(summaries.iter().map(String::as_str));
    run(&cmd)
}

const SESSIONS_ONLY: &str = r#"{"version":"1","default":"allow","tools":{
  "firewall_policy_list":{"limits":[{"counter":"l","window":"minute","max":5,"scope":"session"}]},
  "system_status_get":{"limits":[{"counter":"s","window":30,"max":2,"scope":"session","algorithm":"sliding"}]}}}"#;

#[test]
fn merged_parts_split_by_the_key_are_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trace = d.join("trace.jsonl");
    let trace = trace.to_str().unwrap();
    let (code, _, err) = run(&[
        "generate",
        "--calls",
        "20000",
        "--grants",
        "30",
        "--servers",
        "edge-a,edge-b",
        "--output",
        trace,
    ]);
    assert_eq!(code, 0, "{err}");
    let sessions = write(d, "sessions.json", SESSIONS_ONLY);
    let spark = "fixtures/policies/spark.json";
    let edge_a = format!("edge-a={spark}");
    let fleet = "fixtures/traces/fleet.jsonl";
    // (policies and options, trace, key, parts)
    let rows: Vec<(Vec<&str>, &str, &[&str], usize)> = vec![
        (vec!["--policy", spark], trace, &["server", "grant"], 3),
        (
            vec!["--policy", spark, "--calls", "all"],
            trace,
            &["server", "grant"],
            4,
        ),
        (
            vec!["--policy", spark, "--calls", "none"],
            trace,
            &["server", "grant"],
            2,
        ),
        (
            vec!["--policy", spark, "--max-calls", "3", "--show-args"],
            trace,
            &["server", "grant"],
            5,
        ),
        // Two bindings (tools and rules kept apart by server), and a gate that fails: merge
        // decides it on the whole run's counts and exits 1 like one run.
        (
            vec![
                "--policy",
                &edge_a,
                "--policy",
                "edge-b=fixtures/policies/bench.json",
                "--fail-on",
                "deny,throttle",
                "--max-failures",
                "100",
            ],
            trace,
            &["server", "grant"],
            3,
        ),
        // A policy for one server: the other's calls are not evaluated, and counted.
        (vec!["--policy", &edge_a], trace, &["server", "grant"], 3),
        (
            vec!["--policy", &sessions, "--assume-approved"],
            trace,
            &["server", "grant", "session"],
            6,
        ),
        // Recorded decisions: fidelity and its examples.
        (
            vec!["--policy", "fixtures/policies/candidate.json"],
            fleet,
            &["server", "grant"],
            3,
        ),
    ];
    for (args, trace, key, n) in rows {
        let mut one = vec!["simulate"];
        one.extend(&args);
        one.extend([trace, "--format", "json"]);
        let (one_code, one_out, one_err) = run(&one);
        assert!(one_code <= 1, "{one_err}");
        let mut part = vec!["simulate"];
        part.extend(&args);
        let (code, out, err) = replay_in_parts(d, trace, key, n, &part);
        assert_eq!(
            (code, out),
            (one_code, one_out),
            "{args:?} in {n} parts: {err}"
        );
    }
}

#[test]
fn merge_refuses_parts_of_other_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fleet = "fixtures/traces/fleet.jsonl";
    let candidate = "fixtures/policies/candidate.json";
    let part = |name: &str, extra: &[&str]| {
        let out = d.join(name);
        let out = out.to_str().unwrap().to_owned();
        let mut args = vec![
            "simulate",
            "--policy",
            candidate,
            fleet,
            "--part-summary",
            &out,
        ];
        args.extend(extra);
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        out
    };
    let a = part("a.json", &[]);
    let rows: Vec<(String, &str)> = vec![
        (
            part("b.json", &["--max-calls", "5"]),
            "replayed with other --calls, --max-calls or --show-args",
        ),
        (
            part("c.json", &["--assume-approved"]),
            "replayed with other evaluation switches",
        ),
        (
            part("d.json", &["--fail-on", "deny"]),
            "replayed with other --fail-on or --max-failures",
        ),
        (
            {
                let other = write(
                    d,
                    "other.json",
                    &std::fs::read_to_string(candidate)
                        .unwrap()
                        .replace("\"max\": 30", "\"max\": 31"),
                );
                let out = d.join("e.json");
                let out = out.to_str().unwrap().to_owned();
                let (code, _, err) = run(&[
                    "simulate",
                    "--policy",
                    &other,
                    fleet,
                    "--part-summary",
                    &out,
                ]);
                assert_eq!(code, 0, "{err}");
                out
            },
            "replayed with other policies",
        ),
        (
            {
                let out = d.join("plain.json");
                let out = out.to_str().unwrap().to_owned();
                run(&[
                    "simulate", "--policy", candidate, fleet, "--format", "json", "--output", &out,
                ]);
                out
            },
            "not a part summary",
        ),
        (
            write(d, "broken.json", "{\"policies\": [\n  oops"),
            "broken.json:2:3: not a simulate summary",
        ),
    ];
    for (other, want) in rows {
        let (code, _, err) = run(&["merge", &a, &other]);
        assert_eq!(code, 2, "{other}: {err}");
        assert!(err.contains(want), "{other}: {err}");
    }
}

#[test]
fn merge_checks_the_whole_run() {
    // A SERVER=FILE binding that matched a call in no part is an error of the whole run, as
    // of one run; in one part alone it is not.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("p.json");
    let out = out.to_str().unwrap();
    let (code, _, err) = run(&[
        "simulate",
        "--policy",
        "fortios=fixtures/policies/candidate.json",
        "--policy",
        "fortlos=fixtures/policies/candidate.json",
        "fixtures/traces/fleet.jsonl",
        "--part-summary",
        out,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["merge", out]);
    assert_eq!(code, 2);
    assert!(
        err.contains("policy binding `fortlos=fixtures/policies/candidate.json` matched no call"),
        "{err}"
    );
    // A partial merge written as a table could not be merged again: refused at once.
    for format in ["table", "markdown"] {
        let (code, text, err) = run(&["merge", out, "--partial", "--format", format]);
        assert_eq!((code, text.as_str()), (2, ""), "{format}: {err}");
        assert!(
            err.contains("`--partial` writes a part summary to merge again, which is JSON: add `--format json`"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["merge", out, "--partial"]);
    assert_eq!(code, 2, "the default format is a table: {err}");
    let (code, text, err) = run(&["merge", out, "--partial", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("\"part\""),
        "a partial merge is a part summary again"
    );
}

#[test]
fn partition_key_follows_the_coarsest_counter_scope() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let limit = |scope: &str| {
        format!(
            r#"{{"version":"1","default":"allow","tools":{{"t":{{"limits":[{{"counter":"c","window":"minute","max":1,"scope":"{scope}"}}]}}}}}}"#
        )
    };
    let grant_and_session = r#"{"version":"1","default":"allow",
      "all_tools":{"limits":[{"counter":"a","window":"minute","max":9,"scope":"grant"}]},
      "tools":{"t":{"limits":[{"counter":"c","window":"minute","max":1,"scope":"session"}]}}}"#;
    let none = write(
        d,
        "none.json",
        r#"{"version":"1","default":"allow","tools":{"t":{}}}"#,
    );
    let session = write(d, "session.json", &limit("session"));
    let grant = write(d, "grant.json", &limit("grant"));
    let both = write(d, "both.json", grant_and_session);
    let server = write(d, "server.json", &limit("server"));
    let global = write(d, "global.json", &limit("global"));
    let one_server_global = format!("s={global}");
    let (x_grant, x_server, y_global) = (
        format!("x={grant}"),
        format!("x={server}"),
        format!("y={global}"),
    );
    let intercept = "fixtures/policies/intercept/github.yaml";
    let broken = write(
        d,
        "broken.json",
        r#"{"version":"1","default":"allow","tools":{"t":{"limts":[]}}}"#,
    );
    // (arguments, exit code, standard output, a part of standard error)
    let rows: Vec<(Vec<&str>, i32, &str, &str)> = vec![
        (vec!["--policy", &none], 0, "server,grant,session\n", ""),
        (vec!["--policy", &session], 0, "server,grant,session\n", ""),
        (vec!["--policy", &grant], 0, "server,grant\n", ""),
        (vec!["--policy", &both], 0, "server,grant\n", ""),
        (
            vec!["--policy", &session, "--policy", &x_grant],
            0,
            "server,grant\n",
            "",
        ),
        (vec!["--policy", &server], 0, "server\n", ""),
        // A global counter of a policy bound to one server is that server's.
        (vec!["--policy", &one_server_global], 0, "server\n", ""),
        (vec!["--policy", &global], 1, "", "no exact split: "),
        (
            vec![
                "--policy", &grant, "--policy", &x_server, "--policy", &y_global,
            ],
            0,
            "server\n",
            "",
        ),
        (
            vec!["--policy", intercept],
            1,
            "",
            "lives in the store every server shares",
        ),
        (
            vec!["--policy", intercept, "--intercept-counters", "per-server"],
            0,
            "server\n",
            "",
        ),
        (vec!["--policy", &broken], 2, "", "unknown field"),
    ];
    for (args, code, out, err_part) in rows {
        let mut cmd = vec!["partition-key"];
        cmd.extend(&args);
        let (c, o, e) = run(&cmd);
        assert_eq!((c, o.as_str()), (code, out), "{args:?}: {e}");
        assert!(e.contains(err_part), "{args:?}: {e}");
    }
    let (c, _, e) = run(&["partition-key", "--policy", &global]);
    assert_eq!(c, 1);
    assert!(e.contains("counter `c` has scope global"), "{e}");
}
