//! `--format html`: one self-contained page per report (no script, nothing fetched), the
//! same bytes for the same input, and snapshots of what it says.

use crate::cli::{mcpsim, run, snapshot};

const FLEET: &str = "fixtures/traces/fleet.jsonl";
const BASELINE: &str = "fixtures/policies/baseline.json";
const CANDIDATE: &str = "fixtures/policies/candidate.json";

fn reports() -> [Vec<&'static str>; 3] {
    [
        vec!["simulate", "--policy", CANDIDATE, FLEET, "-f", "html"],
        vec![
            "diff",
            "--base",
            BASELINE,
            "--candidate",
            CANDIDATE,
            FLEET,
            "-f",
            "html",
        ],
        vec![
            "sweep",
            "--policy",
            CANDIDATE,
            FLEET,
            "--limit",
            "/all_tools/limits/all_calls",
            "--max",
            "5..70:5",
            "--target",
            "20%",
            "-f",
            "html",
        ],
    ]
}

#[test]
fn html_is_self_contained_and_deterministic() {
    for args in reports() {
        let (code, first, err) = run(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let (_, second, _) = run(&args);
        assert_eq!(first, second, "{args:?}: same input, same bytes");
        assert!(first.starts_with("<!DOCTYPE html>"), "{args:?}");
        assert!(first.trim_end().ends_with("</html>"), "{args:?}");
        let lower = first.to_lowercase();
        assert!(!lower.contains("<script"), "{args:?}: no script");
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!lower.contains(external), "{args:?}: {external}");
        }
        // The SVG namespace is the only address in the page.
        let addresses = lower.matches("http").count();
        let namespaces = lower
            .matches("xmlns=\"http://www.w3.org/2000/svg\"")
            .count();
        assert_eq!(addresses, namespaces, "{args:?}");
        assert!(namespaces >= 1, "{args:?}: at least one chart");
    }
}

#[test]
fn html_charts_of_each_report() {
    let [simulate, diff, sweep] = reports();
    let (_, page, _) = run(&simulate);
    for title in [
        "Decisions per minute (UTC)",
        "Throttled calls per grant",
        "/tools/firewall_policy_list/limits/firewall_reads at grant:fortios/audit-bot (6 throttled)",
    ] {
        assert!(page.contains(title), "simulate: {title}");
    }
    let (_, page, _) = run(&diff);
    for title in [
        "Decisions per minute (UTC) under the base policy",
        "Decisions per minute (UTC) under the candidate policy",
        "Calls newly refused per grant",
    ] {
        assert!(page.contains(title), "diff: {title}");
    }
    let (_, page, _) = run(&sweep);
    for title in [
        "Throttled calls by max of /all_tools/limits/all_calls",
        "target 20.0%",
        "recommended 30",
        "policy 60",
    ] {
        assert!(page.contains(title), "sweep: {title}");
    }
}

#[test]
fn html_snapshots() {
    let [simulate, diff, sweep] = reports();
    snapshot!("simulate_html", mcpsim(&simulate));
    snapshot!("diff_html", mcpsim(&diff));
    snapshot!("sweep_html", mcpsim(&sweep));
}
