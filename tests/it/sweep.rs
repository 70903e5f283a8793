//! `mcpsim sweep`: every value's counts are those of a separate `simulate` with the policy
//! file edited to that value, for both dialects; the recommendation, window sweeps, errors,
//! and the report in every format.

use serde_json::Value;

use crate::cli::{fixture, mcpsim, run, snapshot};

const FLEET: &str = "fixtures/traces/fleet.jsonl";
const CANDIDATE: &str = "fixtures/policies/candidate.json";
const GITHUB: &str = "fixtures/policies/intercept/github.yaml";
const GITHUB_TRACE: &str = "fixtures/traces/intercept-github.jsonl";
const READS: &str = "/tools/firewall_policy_list/limits/firewall_reads";

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    if args[0] == "sweep" {
        // The documented schema, field for field.
        let _: crate::json_schema::SweepReport = serde_json::from_str(&out).expect("schema");
    }
    serde_json::from_str(&out).expect("JSON report")
}

fn sweep(policy: &str, trace: &str, limit: &str, flag: &str, range: &str) -> Value {
    json(&[
        "sweep", "--policy", policy, trace, "--limit", limit, flag, range, "-f", "json",
    ])
}

/// The counts `simulate` reports for a policy written to a temporary file.
fn simulate(dir: &tempfile::TempDir, name: &str, text: &str, trace: &str) -> Value {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    json(&[
        "simulate",
        "--policy",
        path.to_str().unwrap(),
        trace,
        "-f",
        "json",
    ])
}

/// Every value of a sweep against a separate simulate of `edit(value)`.
fn assert_each_value_simulates(
    sweep: &Value,
    file: &str,
    trace: &str,
    edit: impl Fn(f64) -> String,
) {
    let dir = tempfile::tempdir().unwrap();
    let values = sweep["values"].as_array().unwrap();
    assert!(values.len() > 1, "{sweep}");
    for v in values {
        let value = v["value"].as_f64().unwrap();
        let sim = simulate(&dir, file, &edit(value), trace);
        assert_eq!(v["totals"], sim["totals"], "value {value}");
        assert_eq!(v["throttled"], sim["totals"]["throttle"], "value {value}");
        let grants = (sim["per_grant"].as_array().unwrap().iter())
            .filter(|g| g["throttle"].as_u64() > Some(0))
            .count();
        assert_eq!(
            v["grants_affected"].as_u64(),
            Some(grants as u64),
            "value {value}"
        );
        let first = (sim["calls"].as_array().unwrap().iter())
            .find(|c| c["decision"] == "throttle")
            .map(|c| c["ts"].clone());
        if let Some(first) = first {
            assert_eq!(v["first_throttle"], first, "value {value}");
        }
    }
}

/// `candidate.json` with every limit of `counter` set to `field: value`.
fn policylayer_with(counter: &str, field: &str, value: Value) -> String {
    let mut p: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(CANDIDATE)).unwrap()).unwrap();
    let Value::Object(top) = &mut p else {
        unreachable!("an object")
    };
    let mut limits: Vec<&mut Value> = Vec::new();
    for (key, v) in top.iter_mut() {
        match key.as_str() {
            "all_tools" => limits.extend(v["limits"].as_array_mut().unwrap().iter_mut()),
            "tools" => {
                for tool in v.as_object_mut().unwrap().values_mut() {
                    if let Some(l) = tool.get_mut("limits").and_then(Value::as_array_mut) {
                        limits.extend(l.iter_mut());
                    }
                }
            }
            _ => {}
        }
    }
    for l in limits.into_iter().filter(|l| l["counter"] == counter) {
        l[field] = value.clone();
    }
    p.to_string()
}

#[test]
fn sweep_values_equal_separate_simulations_policylayer() {
    let r = sweep(CANDIDATE, FLEET, READS, "--max", "1..40:3");
    assert_each_value_simulates(&r, "p.json", FLEET, |v| {
        policylayer_with("firewall_reads", "max", Value::from(v as u64))
    });
    let r = sweep(
        CANDIDATE,
        FLEET,
        "/all_tools/limits/all_calls",
        "--max",
        "2..12:2.5",
    );
    assert_eq!(r["values"][1]["value"], 4.5);
    assert_each_value_simulates(&r, "p.json", FLEET, |v| {
        policylayer_with("all_calls", "max", Value::from(v))
    });
}

#[test]
fn sweep_values_equal_separate_simulations_intercept() {
    let text = std::fs::read_to_string(fixture(GITHUB)).unwrap();
    // `rate_limit: 5/hour`, rewritten.
    let r = sweep(
        GITHUB,
        GITHUB_TRACE,
        "create_issue/issues per hour",
        "--max",
        "1..8",
    );
    assert_each_value_simulates(&r, "p.yaml", GITHUB_TRACE, |v| {
        text.replace("rate_limit: 5/hour", &format!("rate_limit: {v}/hour"))
    });
    // `lt 3` caps at 2: max N is written `lt N+1`.
    let rule = "create_pull_request/pull requests per hour";
    let r = sweep(GITHUB, GITHUB_TRACE, rule, "--max", "1..4");
    assert_eq!(r["current"], 2);
    assert_each_value_simulates(&r, "p.yaml", GITHUB_TRACE, |v| {
        let written = v as u64 + 1;
        text.replace(
            "            value: 3\n",
            &format!("            value: {written}\n"),
        )
    });
}

#[test]
fn sweep_target_recommends_the_smallest_max_within_it() {
    let r = json(&[
        "sweep",
        "--policy",
        CANDIDATE,
        FLEET,
        "--limit",
        "/all_tools/limits/all_calls",
        "--max",
        "10..40:5",
        "--target",
        "20%",
        "-f",
        "json",
    ]);
    let ok: Vec<f64> = (r["values"].as_array().unwrap().iter())
        .filter(|v| v["share"].as_f64().unwrap() <= 0.20)
        .map(|v| v["value"].as_f64().unwrap())
        .collect();
    assert!(!ok.is_empty() && ok.len() < 7, "{r}");
    assert_eq!(r["target"]["share"], 0.2);
    assert_eq!(r["target"]["recommended"].as_f64(), Some(ok[0]));
    // Shares never grow with the max here: the first value within the target is the smallest.
    let r = json(&[
        "sweep", "--policy", CANDIDATE, FLEET, "--limit", READS, "--max", "1..3", "--target", "0%",
        "-f", "json",
    ]);
    assert_eq!(r["target"]["recommended"], Value::Null, "{r}");
}

#[test]
fn sweep_windows_policylayer_and_intercept() {
    let r = sweep(
        CANDIDATE,
        FLEET,
        "/all_tools/limits/all_calls",
        "--window",
        "10s..1m:10s",
    );
    let values: Vec<u64> = (r["values"].as_array().unwrap().iter())
        .map(|v| v["value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, [10, 20, 30, 40, 50, 60]);
    assert_eq!(r["parameter"], "window");
    assert_eq!(r["current"], 60);
    assert_each_value_simulates(&r, "p.json", FLEET, |v| {
        policylayer_with("all_calls", "window", Value::from(v as u64))
    });
    // Intercept windows: the calendar ones within the range.
    let text = std::fs::read_to_string(fixture(GITHUB)).unwrap();
    let r = sweep(
        GITHUB,
        GITHUB_TRACE,
        "create_issue/issues per hour",
        "--window",
        "30s..2d",
    );
    let values: Vec<u64> = (r["values"].as_array().unwrap().iter())
        .map(|v| v["value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, [60, 3600, 86400]);
    assert_each_value_simulates(&r, "p.yaml", GITHUB_TRACE, |v| {
        let unit = match v as u64 {
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        text.replace("rate_limit: 5/hour", &format!("rate_limit: 5/{unit}"))
    });
}

#[test]
fn sweep_errors_exit_2_with_a_message() {
    let base = ["sweep", "--policy", CANDIDATE, FLEET, "--limit"];
    let rows: &[(&[&str], &str)] = &[
        (
            &[READS, "--max", "10..1"],
            "the range is empty (10 is above 1)",
        ),
        (&[READS, "--max", "1-10"], "expected A..B or A..B:STEP"),
        (&[READS, "--max", "1..x"], "`x` is not a number"),
        (&[READS, "--max", "1..10:0"], "the step must be above 0"),
        (&[READS, "--max", "1..100000"], "at most 1000"),
        (&[READS, "--window", "1m..10"], "the range is empty"),
        (&[READS, "--window", "1w..2w"], "is not a duration"),
        (
            &[
                "/tools/firewall_policy_list/limits/firewall_read",
                "--max",
                "1..3",
            ],
            "no such rule; did you mean `/tools/firewall_policy_list/limits/firewall_reads`?",
        ),
        (
            &[
                "/tools/vpn_ipsec_phase2_create/require/args.pfs-eq",
                "--max",
                "1..3",
            ],
            "has no max (it is not a limit)",
        ),
        (&[READS, "--target", "5%"], "--max"),
    ];
    for (extra, want) in rows {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // An Intercept rule without a state block, and a window that is not a calendar one.
    let (code, _, err) = run(&[
        "sweep",
        "--policy",
        GITHUB,
        GITHUB_TRACE,
        "--limit",
        "delete_repository/block repository deletion",
        "--max",
        "1..3",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("has no max"), "{err}");
    let (code, _, err) = run(&[
        "sweep",
        "--policy",
        GITHUB,
        GITHUB_TRACE,
        "--limit",
        "create_issue/issues per hour",
        "--window",
        "2m..50m",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("Intercept windows are 1m, 1h or 1d"), "{err}");
}

#[test]
fn sweep_report_formats() {
    let args = |format: &'static str| {
        mcpsim(&[
            "sweep",
            "--policy",
            CANDIDATE,
            FLEET,
            "--limit",
            "/all_tools/limits/all_calls",
            "--max",
            "5..30:5",
            "--target",
            "20%",
            "-f",
            format,
        ])
    };
    snapshot!("sweep_table", args("table"));
    snapshot!("sweep_markdown", args("markdown"));
    snapshot!("sweep_json", args("json"));
    snapshot!("sweep_csv", args("csv"));
}
