//! `explain`, `stats` and `suggest` on the shipped fixtures: what explain shows about throttled
//! and denied calls, how `--call` finds a call, hand-checked peaks, and the suggest round trip
//! (the suggested policy passes `check` and lets all of its own traffic through).

use std::collections::HashMap;
use std::io::Write;

use serde_json::{Value, json};

use super::cli::{fixture, mcpsim, run, snapshot};

const FLEET: &str = "fixtures/traces/fleet.jsonl";
const CANDIDATE: &str = "fixtures/policies/candidate.json";

/// Run and parse standard output as JSON, asserting exit 0.
fn run_json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "mcpsim {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn explain_json(policy: &str, call: &str, extra: &[&str]) -> Value {
    explain_json_on(FLEET, policy, call, extra)
}

fn explain_json_on(trace: &str, policy: &str, call: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "explain", "--policy", policy, trace, "--call", call, "--format", "json",
    ];
    args.extend_from_slice(extra);
    run_json(&args)
}

/// The fleet trace and one call to a second server, `files`, after it: a `files=FILE` binding
/// matches a call, and the fleet's calls have no policy.
fn fleet_and_files() -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .expect("temp file");
    let fleet = std::fs::read_to_string(FLEET).expect("fixture");
    let files = r#"{"ts":"2026-08-01T10:00:00Z","server":"files","tool":"read_file","args":{}}"#;
    writeln!(f, "{fleet}{files}").expect("write");
    f
}

/// The step that produced the decision (exactly one).
fn deciding_step(r: &Value) -> &Value {
    let steps: Vec<&Value> = r["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| !s["decides"].is_null())
        .collect();
    assert_eq!(steps.len(), 1, "one deciding step in {r:#}");
    steps[0]
}

#[test]
fn explain_throttled_call_shows_the_counter_that_was_full() {
    fixture(FLEET);
    let r = explain_json(CANDIDATE, "#35", &[]);
    assert_eq!(r["decision"]["decision"], "throttle");
    assert_eq!(
        r["decision"]["rule"],
        "/tools/firewall_policy_list/limits/firewall_reads"
    );
    let step = deciding_step(&r);
    assert_eq!(step["step"], "limit");
    assert_eq!(step["result"], "exceed");
    assert_eq!(step["decides"], "throttle");
    let l = &step["limit"];
    assert_eq!(l["counter"], "firewall_reads");
    assert_eq!(l["key"], "grant:fortios/audit-bot");
    assert_eq!(l["window"], "minute");
    assert_eq!(l["window_start"], "2026-08-01T09:01:00Z");
    assert_eq!(l["used"], 30.0);
    assert_eq!(l["increment"], 1.0);
    assert_eq!(l["max"], 30.0);
    // The all_tools limit comes after the tool's own and still had room.
    let all = &r["steps"][1];
    assert_eq!(all["rule"], "/all_tools/limits/all_calls");
    assert_eq!(all["result"], "pass");
    assert_eq!(all["limit"]["used"], 30.0);
    assert_eq!(all["limit"]["max"], 60.0);
}

#[test]
fn explain_the_call_before_the_limit_shows_the_last_free_slot() {
    let r = explain_json(CANDIDATE, "#34", &[]);
    assert_eq!(r["decision"]["decision"], "allow");
    let step = &r["steps"][0];
    assert_eq!(step["result"], "pass");
    assert_eq!(step["limit"]["used"], 29.0);
    assert!(step["decides"].is_null());
}

#[test]
fn explain_denied_call_names_the_failing_predicate() {
    // #3 creates a phase 2 tunnel without `pfs`: the require does not hold.
    let r = explain_json(CANDIDATE, "#3", &[]);
    assert_eq!(r["decision"]["decision"], "deny");
    assert_eq!(
        r["decision"]["message"],
        "phase 2 must enable PFS (argument absent)"
    );
    let step = deciding_step(&r);
    assert_eq!(step["step"], "require");
    assert_eq!(
        step["rule"],
        "/tools/vpn_ipsec_phase2_create/require/args.pfs-eq"
    );
    assert_eq!(step["result"], "argument_absent");
    assert_eq!(step["decides"], "deny");
    assert!(
        step.get("argument").is_none(),
        "values only with --show-args"
    );
    assert!(r["call"].get("args").is_none());
    // Nothing after the deciding require is evaluated.
    assert_eq!(r["steps"].as_array().map(Vec::len), Some(1));
}

#[test]
fn explain_show_args_prints_the_value_each_predicate_read() {
    let r = explain_json(CANDIDATE, "r-042", &["--show-args"]);
    assert_eq!(r["call"]["index"], 42);
    assert_eq!(r["decision"]["decision"], "deny");
    let step = deciding_step(&r);
    assert_eq!(step["step"], "deny_if");
    assert_eq!(step["result"], "held");
    assert_eq!(step["argument"], json!(["all"]));
    assert_eq!(r["call"]["args"]["name"], "allow-any-any");
    // An absent argument reads as null: #3 has no `pfs`.
    let r = explain_json(CANDIDATE, "#3", &["--show-args"]);
    assert_eq!(r["steps"][0]["argument"], Value::Null);
}

#[test]
fn explain_by_id_and_by_position_agree() {
    let by_id = explain_json(CANDIDATE, "r-035", &[]);
    let by_index = explain_json(CANDIDATE, "#35", &[]);
    assert_eq!(by_id, by_index);
    assert_eq!(by_id["call"]["id"], "r-035");
    assert_eq!(by_id["call"]["origin"], "fixtures/traces/fleet.jsonl:35");
}

#[test]
fn explain_agrees_with_simulate_on_every_call() {
    let (code, out, err) = run(&["simulate", "--policy", CANDIDATE, FLEET, "-f", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect();
    assert_eq!(rows.len(), 45);
    for row in &rows {
        let n = format!("#{}", row["index"]);
        let r = explain_json(CANDIDATE, &n, &[]);
        assert_eq!(r["decision"]["decision"], row["decision"], "call {n}");
        assert_eq!(r["decision"]["rule"], row["rule"], "call {n}");
    }
}

#[test]
fn explain_call_errors_exit_2() {
    let (code, _, err) = run(&["explain", "-p", CANDIDATE, FLEET, "--call", "r-999"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--call r-999: no call has this id (45 calls read)"),
        "{err}"
    );

    let (code, _, err) = run(&["explain", "-p", CANDIDATE, FLEET, "--call", "#46"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--call #46: the trace has only 45 calls"),
        "{err}"
    );

    let (code, _, err) = run(&["explain", "-p", CANDIDATE, FLEET, "--call", "#0"]);
    assert_eq!(code, 2);
    assert!(err.contains("positions start at #1"), "{err}");
}

#[test]
fn explain_ambiguous_id_lists_the_matches() {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .expect("temp file");
    let calls = [
        ("09:00:00Z", "a", "s"),
        ("09:00:01Z", "b", "s"),
        ("09:00:02Z", "a", "s"),
        ("09:00:03Z", "c", "s"),
        ("09:00:04Z", "c", "t"),
    ];
    for (ts, tool, server) in calls {
        writeln!(
            f,
            r#"{{"ts":"2026-08-01T{ts}","server":"{server}","tool":"{tool}","id":"{}"}}"#,
            match tool {
                "a" => "dup",
                "b" => "one",
                _ => "two",
            }
        )
        .expect("write");
    }
    let path = f.path().to_str().expect("utf-8 path");
    let (code, _, err) = run(&["explain", "-p", CANDIDATE, path, "--call", "dup"]);
    assert_eq!(code, 2);
    // One server: naming it would not tell the calls apart.
    assert!(
        err.contains(
            "--call dup: 2 calls have this id (#1, #3); pick one by position, e.g. --call '#1'\n"
        ),
        "{err}"
    );
    let (code, _, err) = run(&["explain", "-p", CANDIDATE, path, "--call", "two"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "--call two: 2 calls have this id (#4, #5); pick one by position, e.g. --call '#4', or name its server with --server\n"
        ),
        "{err}"
    );
    // The unique id still works and picks call #2.
    let (code, out, err) = run(&[
        "explain", "-p", CANDIDATE, path, "--call", "one", "-f", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(r["call"]["index"], 2);
    assert_eq!(r["decision"]["rule"], "(default deny)");
    assert_eq!(r["steps"][0]["step"], "default_deny");
}

#[test]
fn explain_call_without_policy_says_so() {
    let trace = fleet_and_files();
    let trace = trace.path().to_str().unwrap();
    let policy = format!("files={CANDIDATE}");
    let r = explain_json_on(trace, &policy, "#1", &[]);
    assert!(r["policy"].is_null());
    assert!(r["decision"].is_null());
    assert_eq!(r["call"]["server"], "fortios");
    let (code, out, _) = run(&["explain", "-p", &policy, trace, "--call", "#1"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("No policy applies to server fortios: its calls are not evaluated."),
        "{out}"
    );
    // A binding that matches no call of the trace is a misspelt server, as in `simulate`.
    let (code, out, err) = run(&["explain", "-p", &policy, FLEET, "--call", "#1"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        format!(
            "error: policy binding `files={CANDIDATE}` matched no call; servers in the trace (calls): fortios (45)\n"
        )
    );
}

#[test]
fn explain_snapshots() {
    snapshot!(
        "explain_throttle_table",
        mcpsim(&["explain", "-p", CANDIDATE, FLEET, "--call", "#35"])
    );
    snapshot!(
        "explain_deny_markdown_show_args",
        mcpsim(&[
            "explain",
            "-p",
            CANDIDATE,
            FLEET,
            "--call",
            "r-042",
            "--show-args",
            "-f",
            "markdown"
        ])
    );
    snapshot!(
        "explain_approval_json",
        mcpsim(&[
            "explain", "-p", CANDIDATE, FLEET, "--call", "#41", "-f", "json"
        ])
    );
}

fn group<'a>(r: &'a Value, list: &str, name: &str) -> &'a Value {
    r[list]
        .as_array()
        .expect("list")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn stats_peaks_on_the_audit_bot_burst() {
    let r = run_json(&["stats", FLEET, "--format", "json"]);
    // Hand count: r-005 … r-040 are 36 firewall_policy_list calls of audit-bot within
    // 09:01:00–09:01:35; r-044 (09:02:11) is the 37th call of the tool.
    let t = group(&r, "per_tool", "firewall_policy_list");
    assert_eq!(t["calls"], 37);
    assert_eq!(
        t["peak_minute"],
        json!({"calls": 36, "window_start": "2026-08-01T09:01:00Z"})
    );
    assert_eq!(
        t["peak_hour"],
        json!({"calls": 37, "window_start": "2026-08-01T09:00:00Z"})
    );
    assert_eq!(t["peak_day"]["calls"], 37);
    assert_eq!(t["first_seen"], "2026-08-01T09:01:00Z");
    assert_eq!(t["last_seen"], "2026-08-01T09:02:11Z");
    assert_eq!(t["sessions"], 2);
    assert_eq!(t["upstream_errors"], 1);
    let g = group(&r, "per_grant", "audit-bot");
    assert_eq!(g["calls"], 38);
    assert_eq!(g["peak_minute"]["calls"], 36);
    assert_eq!(g["sessions"], 2);
    let v = group(&r, "per_grant", "vpn-bot");
    assert_eq!(v["calls"], 4);
    // 09:00:05, 09:00:10, 09:00:12.25 share a minute; 09:02:20 is alone.
    assert_eq!(v["peak_minute"]["calls"], 3);
    assert_eq!(v["tool_errors"], 1);
    // Every grant together in 09:01: 36 audit-bot + 2 netops-bot.
    assert_eq!(r["totals"]["calls"], 45);
    assert_eq!(r["totals"]["peak_minute"]["calls"], 38);
    assert_eq!(
        r["totals"]["peak_minute"]["window_start"],
        "2026-08-01T09:01:00Z"
    );
    assert_eq!(r["input"]["calls_read"], 45);
    let tools: Vec<&str> = r["per_tool"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    let mut sorted = tools.clone();
    sorted.sort();
    assert_eq!(tools, sorted);
}

#[test]
fn stats_minute_boundary_opens_a_new_window() {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .expect("temp file");
    for ts in [
        "09:00:59.999Z",
        "09:00:59.999Z",
        "09:01:00.000Z",
        "09:01:30Z",
        "09:01:59Z",
    ] {
        writeln!(
            f,
            r#"{{"ts":"2026-08-01T{ts}","server":"s","grant":"g","tool":"t"}}"#
        )
        .expect("write");
    }
    let path = f.path().to_str().expect("utf-8 path");
    let r = run_json(&["stats", path, "-f", "json"]);
    let t = group(&r, "per_tool", "t");
    assert_eq!(
        t["peak_minute"],
        json!({"calls": 3, "window_start": "2026-08-01T09:01:00Z"})
    );
    assert_eq!(t["peak_hour"]["calls"], 5);
    assert_eq!(t["sessions"], 0);
}

#[test]
fn stats_snapshot() {
    snapshot!(
        "stats_fleet_markdown",
        mcpsim(&["stats", FLEET, "-f", "markdown"])
    );
    snapshot!("stats_fleet_table", mcpsim(&["stats", FLEET]));
    snapshot!("stats_fleet_json", mcpsim(&["stats", FLEET, "-f", "json"]));
}

/// Suggest a policy for `trace` into a temp file; return it parsed and its path.
fn suggest(trace: &str, extra: &[&str]) -> (Value, tempfile::TempPath) {
    let out = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file")
        .into_temp_path();
    let path = out.to_str().expect("utf-8 path").to_owned();
    let mut args = vec!["suggest", trace, "--output", &path];
    args.extend_from_slice(extra);
    let (code, stdout, err) = run(&args);
    assert_eq!(code, 0, "suggest {trace}: {err}");
    assert!(stdout.is_empty());
    assert!(err.contains("suggested a policy for"), "{err}");
    let text = std::fs::read_to_string(&out).expect("policy written");
    (serde_json::from_str(&text).expect("policy is JSON"), out)
}

#[test]
fn suggest_limits_come_from_the_peaks() {
    let (p, _f) = suggest(FLEET, &[]);
    assert_eq!(p["version"], "1");
    assert_eq!(p["default"], "deny");
    // audit-bot's busiest minute: 30 calls the gateway let through (its 6 throttled retries
    // are left out); 30 × 1.5 = 45. Its busiest hour: 31 → 46.5 → 47, tighter than 60 × 45,
    // so an hourly limit is added too. One day of traffic: no daily limit.
    assert_eq!(
        p["tools"]["firewall_policy_list"]["limits"],
        json!([
            {"counter": "firewall_policy_list_per_minute", "window": "minute", "max": 45, "scope": "grant"},
            {"counter": "firewall_policy_list_per_hour", "window": "hour", "max": 47, "scope": "grant"}
        ])
    );
    assert_eq!(
        p["all_tools"]["limits"],
        json!([{"counter": "all_tools_per_minute", "window": "minute", "max": 45, "scope": "grant"}])
    );
    let tools: Vec<&String> = p["tools"].as_object().expect("tools").keys().collect();
    assert_eq!(
        tools,
        [
            "firewall_policy_create",
            "firewall_policy_list",
            "system_status_get",
            "vpn_ipsec_phase1_list",
            "vpn_ipsec_phase2_create"
        ]
    );
    // Headroom 1 is exactly the peak; a global scope adds every grant together (31 in 09:01).
    let (p, _f) = suggest(FLEET, &["--headroom", "1", "--scope", "global"]);
    assert_eq!(p["tools"]["firewall_policy_list"]["limits"][0]["max"], 30);
    assert_eq!(p["all_tools"]["limits"][0]["max"], 31);
    assert_eq!(p["all_tools"]["limits"][0]["scope"], "global");
    // With the refused calls: 36 in audit-bot's busiest minute, 37 in its hour, 38 in all.
    let (p, _f) = suggest(FLEET, &["--include-refused"]);
    assert_eq!(p["tools"]["firewall_policy_list"]["limits"][0]["max"], 54);
    assert_eq!(p["tools"]["firewall_policy_list"]["limits"][1]["max"], 56);
    let (p, _f) = suggest(
        FLEET,
        &["--headroom", "1", "--scope", "global", "--include-refused"],
    );
    assert_eq!(p["all_tools"]["limits"][0]["max"], 38);
}

/// Sessions count only for `--scope session` (the other scopes read none), in every format.
#[test]
fn suggest_counts_sessions_only_for_scope_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jsonl = dir.path().join("calls.jsonl");
    // One grant, one minute: session a makes three calls, b two, and a third call of b's is
    // recorded as denied by the gateway.
    let mut text = String::new();
    for (sec, session, recorded) in [
        (1, "a", ""),
        (2, "b", ""),
        (3, "a", ""),
        (4, "b", ""),
        (5, "a", ""),
        (6, "b", r#","recorded":{"decision":"deny"}"#),
    ] {
        text.push_str(&format!(
            r#"{{"ts":"2026-08-01T09:00:0{sec}Z","server":"s","grant":"g","session":"{session}","tool":"t","args":{{}}{recorded}}}"#
        ));
        text.push('\n');
    }
    std::fs::write(&jsonl, text).expect("trace written");
    let jsonl = jsonl.to_str().expect("utf-8 path").to_owned();
    let csv = dir.path().join("calls.csv");
    let csv = csv.to_str().expect("utf-8 path").to_owned();
    let parquet = dir.path().join("calls.parquet");
    let parquet = parquet.to_str().expect("utf-8 path").to_owned();
    for (to, path) in [("csv", &csv), ("parquet", &parquet)] {
        let (code, _, err) = run(&["convert", &jsonl, "--to", to, "--output", path]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = run(&["suggest", &jsonl, "--output", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "suggested a policy for 1 tool from 5 calls (scope grant, headroom 1.5, \
             1 call recorded as refused left out)"
        ),
        "{err}"
    );
    let max = |p: &Value| p["tools"]["t"]["limits"][0]["max"].clone();
    for trace in [&jsonl, &csv, &parquet] {
        let one = ["--headroom", "1"];
        let (p, _f) = suggest(trace, &[&one[..], &["--scope", "session"]].concat());
        assert_eq!(max(&p), 3, "{trace}: session a's three calls");
        assert_eq!(p["tools"]["t"]["limits"][0]["scope"], "session");
        let (p, _f) = suggest(trace, &[&one[..], &["--scope", "grant"]].concat());
        assert_eq!(max(&p), 5, "{trace}: the grant's five calls let through");
        let (p, _f) = suggest(trace, &[&one[..], &["--include-refused"]].concat());
        assert_eq!(max(&p), 6, "{trace}: with the call recorded as denied");
        let (p, _f) = suggest(
            trace,
            &[&one[..], &["--scope", "session", "--include-refused"]].concat(),
        );
        assert_eq!(
            max(&p),
            3,
            "{trace}: b's three calls, the denied one among them"
        );
    }
}

/// Past the calls the merge reads ahead when it opens an input, sessions are read only for
/// `--scope session`: peaks per session still count each session apart.
#[test]
fn suggest_reads_sessions_past_the_read_ahead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("calls.jsonl");
    let trace = trace.to_str().expect("utf-8 path").to_owned();
    let (code, _, err) = run(&[
        "generate",
        "--calls",
        "150000",
        "--grants",
        "4",
        "--session-calls",
        "20",
        "--seed",
        "3",
        "--output",
        &trace,
    ]);
    assert_eq!(code, 0, "{err}");
    // The busiest minute of each tool per session, and per grant, counted here.
    let mut per_session: HashMap<(String, String, String, i64), u64> = HashMap::new();
    let mut per_grant: HashMap<(String, String, i64), u64> = HashMap::new();
    for line in std::fs::read_to_string(&trace).expect("trace").lines() {
        let v: Value = serde_json::from_str(line).expect("generated line");
        let ts = v["ts"].as_str().expect("ts");
        let minute = chrono::DateTime::parse_from_rfc3339(ts)
            .expect("ts")
            .timestamp()
            / 60;
        let text = |k: &str| v[k].as_str().expect(k).to_owned();
        let (tool, grant) = (text("tool"), text("grant"));
        *per_session
            .entry((tool.clone(), grant.clone(), text("session"), minute))
            .or_default() += 1;
        *per_grant.entry((tool, grant, minute)).or_default() += 1;
    }
    let peak = |tool: &str, session: bool| -> u64 {
        if session {
            (per_session.iter().filter(|(k, _)| k.0 == tool))
                .map(|(_, n)| *n)
                .max()
        } else {
            (per_grant.iter().filter(|(k, _)| k.0 == tool))
                .map(|(_, n)| *n)
                .max()
        }
        .unwrap_or(0)
    };
    let (by_session, _f) = suggest(&trace, &["--headroom", "1", "--scope", "session"]);
    let (by_grant, _g) = suggest(&trace, &["--headroom", "1"]);
    let tools = by_session["tools"].as_object().expect("tools");
    assert!(tools.len() > 3, "{tools:?}");
    let mut fewer = 0;
    for (tool, rules) in tools {
        let minute = &rules["limits"][0];
        assert_eq!(minute["window"], "minute");
        assert_eq!(minute["max"], peak(tool, true), "{tool} per session");
        let grant = &by_grant["tools"][tool]["limits"][0];
        assert_eq!(grant["max"], peak(tool, false), "{tool} per grant");
        fewer += usize::from(peak(tool, true) < peak(tool, false));
    }
    assert!(fewer > 0, "sessions split some busiest minute");
}

/// Regression: the throttled retries of a client raised the limits meant to stop them.
#[test]
fn suggest_leaves_out_calls_recorded_as_refused_and_says_so() {
    let (code, _, err) = run(&["suggest", FLEET, "--output", "/dev/null"]);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        "suggested a policy for 5 tools from 38 calls \
         (scope grant, headroom 1.5, 7 calls recorded as refused left out)\n"
    );
    let (code, _, err) = run(&[
        "suggest",
        FLEET,
        "--output",
        "/dev/null",
        "--include-refused",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        "suggested a policy for 5 tools from 45 calls \
         (scope grant, headroom 1.5, 7 calls recorded as refused included)\n"
    );
    // A trace of refused calls only has nothing to suggest from, unless they are counted.
    let dir = tempfile::tempdir().unwrap();
    let refused = dir.path().join("refused.jsonl");
    std::fs::write(
        &refused,
        "{\"ts\":\"2026-08-01T09:00:00Z\",\"tool\":\"t\",\"recorded\":{\"decision\":\"deny\"}}\n\
         {\"ts\":\"2026-08-01T09:00:01Z\",\"tool\":\"t\",\"recorded\":{\"decision\":\"throttle\"}}\n",
    )
    .unwrap();
    let refused = refused.to_str().unwrap();
    let (code, _, err) = run(&["suggest", refused]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "no calls to suggest a policy from: all 2 calls were recorded as refused by the \
             gateway; give --include-refused to count them"
        ),
        "{err}"
    );
    let (code, _, err) = run(&["suggest", refused, "--include-refused", "-o", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
}

/// Three days of traffic: each tool also gets a daily limit from its busiest day, where that
/// binds tighter than twenty-four busy hours.
#[test]
fn suggest_writes_day_limits_when_traffic_spans_days() {
    let trace = fixture("fixtures/traces/three-days.jsonl");
    let limit = |tool: &str, window: &str, max: u64| {
        json!({"counter": format!("{tool}_per_{window}"), "window": window, "max": max,
               "scope": "grant"})
    };
    // list_issues: 10 calls in 09:00 of day 1 (then 3 throttled retries) and 5 in 15:00;
    // create_issue: 2 calls in 11:00 of day 2 (then one denied).
    let (p, _f) = suggest(&trace, &["--headroom", "1"]);
    assert_eq!(
        p["tools"]["list_issues"]["limits"],
        json!([
            limit("list_issues", "minute", 10),
            limit("list_issues", "hour", 10),
            limit("list_issues", "day", 15)
        ])
    );
    assert_eq!(
        p["tools"]["create_issue"]["limits"],
        json!([
            limit("create_issue", "minute", 1),
            limit("create_issue", "hour", 2),
            limit("create_issue", "day", 2)
        ])
    );
    let (p, _f) = suggest(&trace, &["--headroom", "1.5"]);
    assert_eq!(p["tools"]["list_issues"]["limits"][2]["max"], 23);
    let (p, _f) = suggest(&trace, &["--headroom", "1", "--include-refused"]);
    assert_eq!(p["tools"]["list_issues"]["limits"][2]["max"], 18);
    assert_eq!(p["tools"]["create_issue"]["limits"][2]["max"], 3);
    // Day 1 alone: the busiest day is all of the traffic, so no daily limit.
    let dir = tempfile::tempdir().unwrap();
    let day1: String = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains("2026-08-01T"))
        .map(|l| format!("{l}\n"))
        .collect();
    let day1_path = dir.path().join("day1.jsonl");
    std::fs::write(&day1_path, day1).unwrap();
    let (p, _f) = suggest(day1_path.to_str().unwrap(), &["--headroom", "1"]);
    assert_eq!(
        p["tools"]["list_issues"]["limits"],
        json!([
            limit("list_issues", "minute", 10),
            limit("list_issues", "hour", 10)
        ])
    );
}

/// The calls of `trace` the gateway did not refuse, as mcpsim JSON lines in `dir`.
fn without_refused(trace: &str, dir: &std::path::Path) -> String {
    let (code, converted, err) = run(&["convert", trace, "--to", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    let kept: String = converted
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            !matches!(
                v["recorded"]["decision"].as_str(),
                Some("deny" | "throttle")
            )
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("kept.jsonl");
    std::fs::write(&path, kept).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn suggested_policy_passes_check_and_allows_its_own_traffic() {
    let traces = [
        "fixtures/traces/fleet.jsonl",
        "fixtures/traces/fleet.csv",
        "fixtures/traces/jsonrpc.jsonl",
        "fixtures/traces/policylayer.jsonl",
        "fixtures/traces/intercept.jsonl",
        "fixtures/traces/mcp-server-fortios.log",
        "fixtures/traces/three-days.jsonl",
    ];
    let variants: [&[&str]; 4] = [
        &[],
        &["--headroom", "1"],
        &["--headroom", "1", "--scope", "session"],
        &["--headroom", "1", "--scope", "server"],
    ];
    let allows_all = |policy: &str, trace: &str, what: &str| {
        let r = run_json(&["simulate", "--policy", policy, trace, "-f", "json"]);
        let t = &r["totals"];
        assert!(t["calls"].as_u64().unwrap_or(0) > 0, "{what}: no calls");
        assert_eq!(t["allow"], t["calls"], "{what}: {t}");
    };
    let dir = tempfile::tempdir().unwrap();
    for trace in traces {
        let trace = fixture(trace);
        for extra in variants {
            let what = format!("{trace} {extra:?}");
            let (_, policy) = suggest(&trace, extra);
            let policy = policy.to_str().expect("utf-8 path");
            let (code, out, err) = run(&["check", policy]);
            assert_eq!(code, 0, "check {what}: {out}{err}");
            assert!(
                !out.contains("warning") && !err.contains("warning"),
                "{out}{err}"
            );
            // All of the traffic it was suggested from; with --include-refused, all of it.
            allows_all(policy, &without_refused(&trace, dir.path()), &what);
            let mut with_refused = extra.to_vec();
            with_refused.push("--include-refused");
            let (_, policy) = suggest(&trace, &with_refused);
            allows_all(
                policy.to_str().unwrap(),
                &trace,
                &format!("{what} --include-refused"),
            );
        }
    }
}

#[test]
fn suggest_server_filter_and_bad_input() {
    let (p, _f) = suggest(FLEET, &["--server", "fortios"]);
    assert_eq!(p["tools"].as_object().map(|t| t.len()), Some(5));
    let (code, _, err) = run(&["suggest", FLEET, "--server", "files"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--server files: no calls to this server (servers in the trace: fortios)"),
        "{err}"
    );
    let (code, _, err) = run(&["suggest", FLEET, "--headroom", "0.5"]);
    assert_eq!(code, 2);
    assert!(err.contains("headroom must be a number from 1"), "{err}");
}

#[test]
fn suggest_snapshot() {
    snapshot!(
        "suggest_fleet",
        mcpsim(&["suggest", FLEET, "--headroom", "2"])
    );
}

/// `--format json` of explain and stats is a stable interface, like simulate's: these mirrors
/// with `deny_unknown_fields` are the documented schema (docs/commands.md).
mod schema {
    #![allow(dead_code)]

    use serde::Deserialize;

    use super::super::json_schema::{InputSummary, Outcome, PolicyRef};

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct CallInfo {
        pub index: u64,
        pub ts: String,
        pub server: String,
        pub grant: Option<String>,
        pub session: Option<String>,
        pub tool: String,
        pub id: Option<String>,
        pub origin: String,
        pub recorded: Option<String>,
        pub upstream: Option<String>,
        pub args: Option<serde_json::Value>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct LimitState {
        pub counter: String,
        pub scope: String,
        pub key: String,
        pub window: String,
        pub algorithm: String,
        pub window_start: String,
        pub used: f64,
        pub increment: Option<f64>,
        pub max: f64,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct StepInfo {
        pub step: String,
        pub rule: String,
        pub result: String,
        pub decides: Option<String>,
        pub argument: Option<serde_json::Value>,
        pub limit: Option<LimitState>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct ExplainReport {
        pub policy: Option<PolicyRef>,
        pub call: CallInfo,
        pub decision: Option<Outcome>,
        pub steps: Vec<StepInfo>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct Peak {
        pub calls: u64,
        pub window_start: String,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct TrafficStats {
        pub name: String,
        #[serde(default)]
        pub server: Option<String>,
        pub calls: u64,
        pub first_seen: String,
        pub last_seen: String,
        pub sessions: u64,
        pub peak_minute: Peak,
        pub peak_hour: Peak,
        pub peak_day: Peak,
        pub upstream_errors: u64,
        pub tool_errors: u64,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct StatsReport {
        pub input: InputSummary,
        pub totals: TrafficStats,
        pub per_server: Vec<TrafficStats>,
        pub per_tool: Vec<TrafficStats>,
        pub per_grant: Vec<TrafficStats>,
    }
}

#[test]
fn explain_and_stats_json_match_the_documented_schema() {
    let everything = "fixtures/policies/everything.json";
    let cases = [
        (CANDIDATE.to_owned(), "#35", false),
        (CANDIDATE.to_owned(), "r-042", true),
        (everything.to_owned(), "#44", true),
        (everything.to_owned(), "#1", false),
        (format!("files={CANDIDATE}"), "#1", false),
    ];
    let two = fleet_and_files();
    let two = two.path().to_str().unwrap();
    for (policy, call, show_args) in &cases {
        let extra: &[&str] = if *show_args { &["--show-args"] } else { &[] };
        let v = explain_json_on(two, policy, call, extra);
        let r: schema::ExplainReport = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("explain {policy} {call}: {e}\n{v:#}"));
        assert_eq!(r.decision.is_some(), r.policy.is_some());
    }
    // #44 under `everything`: the require cannot be decided from recorded keys; the sliding
    // limit's window is the minute before the call.
    let r: schema::ExplainReport =
        serde_json::from_value(explain_json(everything, "#44", &[])).expect("schema");
    assert_eq!(r.steps[0].result, "unknown");
    assert_eq!(r.steps[0].decides.as_deref(), Some("unknown"));
    let l = r.steps[1].limit.as_ref().expect("limit step");
    assert_eq!(
        (l.algorithm.as_str(), l.window_start.as_str(), l.used),
        ("sliding", "2026-08-01T09:01:11Z", 18.0)
    );

    let v = run_json(&["stats", FLEET, "-f", "json"]);
    let s: schema::StatsReport = serde_json::from_value(v).expect("stats schema");
    assert_eq!(s.per_grant.len(), 3);
}

#[test]
fn explain_held_call_and_assume_approved() {
    // #41 creates a firewall policy: candidate.json requires approval for that tool.
    let r = explain_json(CANDIDATE, "#41", &[]);
    assert_eq!(r["decision"]["decision"], "approval");
    let step = deciding_step(&r);
    assert_eq!(step["step"], "require_approval");
    assert_eq!(step["decides"], "approval");
    let r = explain_json(CANDIDATE, "#41", &["--assume-approved"]);
    assert_eq!(r["decision"]["decision"], "allow");
    assert_eq!(r["decision"]["approval_required"], true);
    assert_eq!(deciding_step(&r)["decides"], "allow");
}

#[test]
fn explain_intercept_rules_are_named_as_conditions_not_approve_if() {
    let r = run_json(&[
        "explain",
        "--policy",
        "fixtures/policies/intercept/stripe.yaml",
        "fixtures/traces/intercept-stripe.jsonl",
        "--call",
        "#5",
        "--format",
        "json",
    ]);
    assert_eq!(r["decision"]["decision"], "deny");
    let step = deciding_step(&r);
    assert_eq!(step["step"], "condition");
    assert_eq!(step["rule"], "create_charge/max single charge");
    assert_eq!(step["result"], "did_not_hold");
}

/// An Intercept throttle is decided by the limit step, not by the condition step of the same
/// rule that comes before it.
#[test]
fn explain_marks_the_limit_step_of_an_intercept_throttle() {
    let r = run_json(&[
        "explain",
        "--policy",
        "fixtures/policies/intercept/stripe.yaml",
        "fixtures/traces/intercept-stripe.jsonl",
        "--call",
        "#6",
        "--format",
        "json",
    ]);
    assert_eq!(r["decision"]["decision"], "throttle");
    let step = deciding_step(&r);
    assert_eq!(
        (&step["step"], &step["rule"], &step["result"]),
        (
            &json!("limit"),
            &json!("create_charge/daily spend cap"),
            &json!("exceed")
        )
    );
    let deciding = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["decides"].is_null())
        .count();
    assert_eq!(deciding, 1);
}

/// A `require` that fails because the call left its argument out says so, in the decision's
/// message and in explain; `check` warns about `require` with `neq` / `not_in`.
#[test]
fn absent_arguments_are_named_as_such() {
    let policy = "fixtures/policies/absent-arg.json";
    let trace = "fixtures/traces/absent-arg.jsonl";
    let (code, stdout, _) = run(&["simulate", "-p", policy, trace, "-f", "jsonl"]);
    assert_eq!(code, 0);
    let messages: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        messages,
        [
            "",
            "require failed: args.fullPage neq true (argument absent)",
            "require failed: args.fullPage neq true",
        ]
    );
    for (call, result) in [("#2", "argument_absent"), ("#3", "did_not_hold")] {
        let r = run_json(&["explain", "-p", policy, trace, "--call", call, "-f", "json"]);
        assert_eq!(deciding_step(&r)["result"], result, "{call}");
    }
    let (_, stdout, _) = run(&["explain", "-p", policy, trace, "--call", "#2"]);
    assert!(
        stdout.contains("│ did not hold (argument absent) │ deny"),
        "{stdout}"
    );
    let (code, _, stderr) = run(&["check", policy]);
    assert_eq!(code, 0);
    assert!(
        stderr.contains(
            "warning: a missing argument fails `neq`, so this `require` denies every call that \
             leaves `args.fullPage` out; to allow those, use `deny_if` with `eq`"
        ),
        "{stderr}"
    );
}
