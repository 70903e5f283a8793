//! `mcpsim test`: the example policy repository passes, a tightened copy fails with a diff,
//! snapshots are written only for review and never under CI, and bad test files are located.

use std::path::{Path, PathBuf};

use super::cli::{mcpsim, run, snapshot};

const REPO: &str = "examples/policy-repo";

/// A copy of the example repository in a temporary directory.
fn repo_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let dest = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &dest);
            } else {
                std::fs::copy(&path, &dest).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(REPO),
        dir.path(),
    );
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = mcpsim(args).current_dir(dir).output().expect("mcpsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pending(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir.join("policies/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".new"))
        .collect();
    found.sort();
    found
}

#[test]
fn the_example_repository_passes() {
    snapshot!("test_policy_repo", mcpsim(&["test", REPO]));
}

#[test]
fn a_tightened_limit_fails_with_a_diff() {
    let dir = repo_copy();
    edit(
        &dir.path().join("policies/github.json"),
        r#""counter": "searches", "window": "minute", "max": 10"#,
        r#""counter": "searches", "window": "minute", "max": 8"#,
    );
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 1, "{out}");
    // The decision case names the call that moved.
    assert!(
        out.contains("FAILED  case the eleventh search in a minute is throttled"),
        "{out}"
    );
    assert!(out.contains("-#10: allow\n+#10: throttle\n"), "{out}");
    assert!(
        out.contains("-allow calls: 10\n-throttle calls: 1\n+allow calls: 8\n+throttle calls: 3\n"),
        "{out}"
    );
    // The snapshots show the report's change as a unified diff.
    assert!(out.contains("FAILED  snapshot last-week"), "{out}");
    assert!(out.contains("\n-| search_code | 12 | 10 | 0 | 2 | 0 | 0 |\n+| search_code | 12 | 8 | 0 | 4 | 0 | 0 |\n"), "{out}");
    assert!(out.contains("FAILED  snapshot per-call"), "{out}");
    assert!(out.contains("\n@@ "), "{out}");
    assert!(
        out.contains("test result: FAILED. 8 passed, 4 failed, 0 errors"),
        "{out}"
    );
    // Nothing is written without --update.
    assert!(pending(dir.path()).is_empty());
}

#[test]
fn update_writes_new_files_for_review_and_accept_takes_them() {
    let dir = repo_copy();
    edit(
        &dir.path().join("policies/github.json"),
        r#""max": 5, "scope": "grant""#,
        r#""max": 3, "scope": "grant""#,
    );
    // Under CI nothing is written, whatever is asked.
    let mut ci = mcpsim(&["test", "--update"]);
    ci.current_dir(dir.path()).env("CI", "true");
    let out = ci.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writes nothing under CI"));
    assert!(pending(dir.path()).is_empty());
    let mut ci = mcpsim(&["test", "--accept"]);
    ci.current_dir(dir.path()).env("CI", "1");
    assert_eq!(ci.output().unwrap().status.code(), Some(2));
    // `CI=false` is not CI.
    let mut not_ci = mcpsim(&["test", "--update"]);
    not_ci.current_dir(dir.path()).env("CI", "false");
    let out = not_ci.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wrote policies/./snapshots/") || stdout.contains("for review"),
        "{stdout}"
    );
    // Only the reports that changed: create_issue now throttles for triage-bot.
    assert_eq!(
        pending(dir.path()),
        [
            "changes_test__per-call.csv.new",
            "changes_test__summary.json.new",
            "github_test__last-week.md.new"
        ]
    );
    let (code, out, _) = run_in(dir.path(), &["test", "--accept"]);
    assert_eq!(code, 0);
    assert!(out.contains("3 snapshots accepted"), "{out}");
    assert!(pending(dir.path()).is_empty());
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 0, "{out}");
    let kept = std::fs::read_to_string(
        dir.path()
            .join("policies/snapshots/github_test__last-week.md"),
    )
    .unwrap();
    assert!(
        kept.contains("| create_issue | 5 | 4 | 0 | 1 | 0 | 0 |"),
        "{kept}"
    );
}

#[test]
fn junit_and_json_outcomes() {
    let dir = repo_copy();
    edit(
        &dir.path().join("policies/filesystem.yaml"),
        "rate_limit: 20/hour",
        "rate_limit: 2/hour",
    );
    let (code, xml, _) = run_in(dir.path(), &["test", "--format", "junit"]);
    assert_eq!(code, 1);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"mcpsim test\" tests=\"12\" failures=\"3\" errors=\"0\">"), "{xml}");
    assert!(xml.contains("<testsuite name=\"./policies/filesystem_test.yaml\" tests=\"3\" failures=\"1\" errors=\"0\">"), "{xml}");
    assert!(xml.contains("<testcase classname=\"./policies/filesystem_test.yaml\" name=\"case writes stay in the workspace\" file=\"./policies/filesystem_test.yaml\" line=\"5\"/>"), "{xml}");
    assert!(xml.contains("<failure message=\"2 expectations not met (21 calls evaluated)\">--- expected\n+++ actual\n"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 12);
    assert_eq!(xml.matches("<failure ").count(), 3);
    // Same input, same bytes.
    assert_eq!(run_in(dir.path(), &["test", "--format", "junit"]).1, xml);

    let (code, json, _) = run_in(dir.path(), &["test", "--format", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["passed"], 9);
    assert_eq!(doc["failed"], 3);
    assert_eq!(doc["errors"], 0);
    let failed: Vec<&str> = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "failed")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "per-call",
            "summary",
            "the 21st write in an hour is throttled"
        ]
    );
}

/// A test file in a fresh directory beside a copy of the example's policies and trace.
fn suite(test: &str) -> tempfile::TempDir {
    let dir = repo_copy();
    for f in [
        "github_test.yaml",
        "filesystem_test.yaml",
        "changes_test.yaml",
    ] {
        std::fs::remove_file(dir.path().join("policies").join(f)).unwrap();
    }
    std::fs::write(dir.path().join("policies/my_test.yaml"), test).unwrap();
    dir
}

#[test]
fn bad_test_files_are_located() {
    let cases: &[(&str, &str)] = &[
        (
            "policy: github.json\ncases:\n  - name: x\n    calls: [{tool: a}]\n    expect: [dney]\n",
            "my_test.yaml:5:14: unknown decision `dney` (expected allow, deny, throttle, approval or unknown)",
        ),
        (
            "policy: github.json\ncases:\n  - name: x\n    calls: [{tool: a}]\n    expcet: [deny]\n",
            "my_test.yaml:5:5: unknown field `expcet` in a case; did you mean `expect`?",
        ),
        (
            "policy: github.json\ncases:\n  - name: x\n    calls: [{tool: a}]\n    expect: {\"#0\": deny}\n",
            "my_test.yaml:5:14: `#0`: `#N` takes a call number from 1",
        ),
        (
            "policy: github.json\ncases:\n  - name: x\n    calls: [{grant: a}]\n    expect: [deny]\n",
            "my_test.yaml:4:13: a call needs a `tool` name",
        ),
        (
            "policy: github.json\ncases:\n  - name: x\n    calls: [{tool: a, ts: yesterday}]\n    expect: [deny]\n",
            "my_test.yaml:4:27: `ts` \"yesterday\" is not an RFC 3339 time",
        ),
        (
            "policy: github.json\nsnapshots:\n  - name: a b\n    trace: t.jsonl\n",
            "my_test.yaml:3:11: snapshot name `a b`: use letters, digits, `-`, `_` and `.` only",
        ),
        (
            "policy: github.json\nsnapshots:\n  - name: a\n    trace: t.jsonl\n    options: [--format, json]\n",
            "my_test.yaml:5:15: `--format` is set by the test itself",
        ),
        (
            "cases:\n  - name: x\n    calls: [{tool: a}]\n    expect: [deny]\n",
            "my_test.yaml:2:5: case `x` has no policy",
        ),
        ("cases: [\n", "my_test.yaml:2:1: invalid YAML"),
    ];
    for (text, message) in cases {
        let dir = suite(text);
        let (code, out, _) = run_in(dir.path(), &["test", "policies"]);
        assert_eq!(code, 2, "{text}\n{out}");
        assert!(out.contains("ERROR   file my_test.yaml"), "{out}");
        assert!(out.contains(message), "{text}\nwanted: {message}\n{out}");
    }
    // No test file at all.
    let (code, _, err) = run(&["test", "fixtures/policies"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "fixtures/policies: no test files (*_test.yaml, *_test.yml or *_test.json) here"
        ),
        "{err}"
    );
}

#[test]
fn a_run_that_cannot_start_is_an_error_naming_the_command() {
    let dir = suite(
        "policy: missing.json\ncases:\n  - name: x\n    calls: [{tool: a}]\n    expect: [deny]\n",
    );
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 2);
    assert!(out.contains("ERROR   case x"), "{out}");
    assert!(
        out.contains(
            "`mcpsim simulate --format jsonl --policy missing.json -` (in ./policies) exited with 2"
        ),
        "{out}"
    );
}

#[test]
fn expectations_by_position_by_number_and_by_id() {
    let dir = suite(
        r##"
policy: github=github.json
cases:
  - name: one expectation too few
    calls:
      - {server: github, tool: list_issues}
      - {server: github, tool: delete_repository}
    expect: [allow]
  - name: one too many
    calls:
      - {server: github, tool: list_issues}
    expect: [allow, deny]
  - name: ids
    calls:
      - {server: github, tool: list_issues, id: a}
      - {server: github, tool: list_issues, id: b}
      - {server: github, tool: list_issues, id: b}
    expect:
      a: allow
      b: allow
      zz: allow
  - name: timestamps and repeat
    calls:
      - {server: github, grant: g, tool: search_code, ts: "2026-03-01T10:00:59Z", repeat: 10}
      - {server: github, grant: g, tool: search_code, repeat: 2}
    expect: {"#1": allow, "#11": allow, "#12": throttle}
    counts: {allow: 11, throttle: 1}
"##,
    );
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(" #1: allow\n-#2: (no expectation)\n+#2: deny\n"),
        "{out}"
    );
    assert!(
        out.contains(" #1: allow\n-#2: deny\n+#2: no such call\n"),
        "{out}"
    );
    assert!(out.contains(" id a: allow\n-id b: allow\n-id zz: allow\n+id b: several calls have this id: use #N\n+id zz: no call has this id\n"), "{out}");
    // Ten calls from 10:00:59, then two a second apart: the first is alone in its minute, the
    // next eleven share 10:01, where the eleventh is one search too many.
    assert!(out.contains("ok      case timestamps and repeat"), "{out}");
}

#[test]
fn diff_and_parquet_snapshots() {
    let dir = suite(
        r#"
snapshots:
  - name: tighter
    base: github=github.json
    candidate: github=tighter.json
    trace: ../traces/last-week.jsonl
    format: markdown
  - name: rows
    policy: github=github.json
    trace: ../traces/last-week.jsonl
    format: parquet
"#,
    );
    let github = dir.path().join("policies/github.json");
    let tighter = std::fs::read_to_string(&github)
        .unwrap()
        .replace(r#""max": 10"#, r#""max": 9"#);
    std::fs::write(dir.path().join("policies/tighter.json"), tighter).unwrap();
    let (code, _, _) = run_in(dir.path(), &["test", "--update"]);
    assert_eq!(code, 1);
    let (code, out, _) = run_in(dir.path(), &["test", "--accept"]);
    assert_eq!(code, 0, "{out}");
    let md =
        std::fs::read_to_string(dir.path().join("policies/snapshots/my_test__tighter.md")).unwrap();
    assert!(
        md.contains("| github | /tools/search_code/limits/searches/max | changed | 10 | 9 |"),
        "{md}"
    );
    let rows = PathBuf::from(dir.path()).join("policies/snapshots/my_test__rows.parquet");
    assert!(std::fs::read(&rows).unwrap().starts_with(b"PAR1"));
    assert_eq!(run_in(dir.path(), &["test"]).0, 0);
    // A change shows as rows.
    edit(&github, r#""max": 10"#, r#""max": 11"#);
    let (code, out, _) = run_in(dir.path(), &["test"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED  snapshot rows"), "{out}");
    assert!(out.contains("-17,"), "{out}");
    assert!(out.contains("+17,"), "{out}");
}

#[test]
fn check_takes_a_policy_directory_and_leaves_tests_out() {
    let (code, out, err) = run(&["check", "examples/policy-repo/policies"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ok: examples/policy-repo/policies/filesystem.yaml (3 tools, 1 limit)\n\
         ok: examples/policy-repo/policies/github.json (6 tools, 3 limits)\n"
    );
}
