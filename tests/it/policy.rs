//! Policy loading: located diagnostics, all errors at once, warnings, and `mcpsim check`.

use std::path::{Path, PathBuf};

use mcpsim::cli::check::{CheckArgs, run};
use mcpsim::policy::{
    Diagnostic, LoadOptions, Severity, check_policy_str, load_policy_file, parse_policy_str,
    parse_policy_str_with,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/policies")
        .join(name)
}

/// (line, column, json path, message) of every diagnostic.
fn located(diags: &[Diagnostic]) -> Vec<(usize, usize, &str, &str)> {
    diags
        .iter()
        .map(|d| (d.line, d.column, d.json_path.as_str(), d.message.as_str()))
        .collect()
}

fn errors_of(src: &str) -> Vec<Diagnostic> {
    match parse_policy_str(src, "p.json") {
        Ok(_) => panic!("policy unexpectedly loaded"),
        Err(e) => {
            assert_eq!(e.file, "p.json");
            e.errors
        }
    }
}

#[test]
fn the_spec_example_loads() {
    let policy = load_policy_file(&fixture("policylayer_example.json")).expect("loads");
    assert_eq!(
        policy.tool_names(),
        ["firewall_policy_list", "vpn_ipsec_phase2_create"]
    );
    assert_eq!(policy.limit_count(), 2);
    assert!(policy.default_deny());
    assert!(policy.is_hidden("delete_account"));
    assert!(!policy.is_hidden("firewall_policy_list"));
}

#[test]
fn every_error_of_a_file_is_reported_with_line_column_and_path() {
    let err = load_policy_file(&fixture("policylayer_typos.json")).expect_err("has errors");
    assert_eq!(
        located(&err.errors),
        [
            (
                8,
                48,
                "tools.vpn_ipsec_phase2_create.require[0].op",
                "unknown op `equals`, expected one of `eq`, `neq`, `in`, `not_in`, `lt`, `lte`, `gt`, `gte`, `regex`, `contains`, `exists`"
            ),
            (
                9,
                71,
                "tools.vpn_ipsec_phase2_create.deny_if[0].value",
                "invalid regex `des|(md5`: unclosed group"
            ),
            (
                10,
                7,
                "tools.vpn_ipsec_phase2_create.limts",
                "unknown field `limts`, did you mean `limits`?"
            ),
            (
                15,
                55,
                "tools.firewall_policy_list.limits[0].window",
                "unknown window `minutes`, did you mean `minute`? (expected one of `second`, `minute`, `hour`, `day`)"
            ),
            (
                15,
                73,
                "tools.firewall_policy_list.limits[0].max",
                "`max` must be a number, found a string"
            ),
        ]
    );
    assert_eq!(
        located(&err.warnings),
        [(
            6,
            5,
            "tools.delete_account",
            "tool `delete_account` is both hidden and configured; it is always denied as hidden, so its rules never fire"
        )]
    );
}

#[test]
fn bad_json_syntax_is_located() {
    let errors = errors_of("{\n  \"version\": \"1\",\n  \"default\": \"deny\"\n  \"tools\": {}\n}");
    assert_eq!(
        located(&errors),
        [(4, 3, "", "invalid JSON: expected `,` or `}`")]
    );
    let errors = errors_of("");
    assert_eq!(
        located(&errors),
        [(1, 1, "", "invalid JSON: unexpected end of file")]
    );
}

#[test]
fn structural_errors() {
    let rows: Vec<(&str, &str, &str)> = vec![
        (
            r#"{"default":"deny"}"#,
            "",
            "missing field `version` in the policy",
        ),
        (
            r#"{"version":"1"}"#,
            "",
            "missing field `default` in the policy",
        ),
        (
            r#"{"version":"2","default":"deny"}"#,
            "version",
            "unsupported `version`: expected \"1\", found \"2\"",
        ),
        (
            r#"{"version":1,"default":"deny"}"#,
            "version",
            "unsupported `version`: expected \"1\", found a number",
        ),
        (
            r#"{"version":"1","default":"maybe"}"#,
            "default",
            "unknown default `maybe`, expected one of `allow`, `deny`",
        ),
        (
            r#"{"version":"1","default":"deny","hide":"x"}"#,
            "hide",
            "`hide` must be an array of tool names, found a string",
        ),
        (
            r#"{"version":"1","default":"deny","tool":{}}"#,
            "tool",
            "unknown field `tool`, did you mean `tools`?",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"a","op":"eq","value":1}]}}}"#,
            "tools.t.require[0].path",
            "invalid path `a`: it must be `args.` followed by dot-separated argument names",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"gte=","value":1}]}}}"#,
            "tools.t.require[0].op",
            "unknown op `gte=`, did you mean `gte`? (expected one of `eq`, `neq`, `in`, `not_in`, `lt`, `lte`, `gt`, `gte`, `regex`, `contains`, `exists`)",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"lt","value":"5"}]}}}"#,
            "tools.t.require[0].value",
            "`value` must be a number for `lt`, found a string",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"in","value":1}]}}}"#,
            "tools.t.require[0].value",
            "`value` must be a list for `in`, found a number",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[{"path":"args.a","op":"exists"}]}}}"#,
            "tools.t.require[0]",
            "missing field `value` in tools.t.require[0]",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":0,"max":1}]}}}"#,
            "tools.t.limits[0].window",
            "a numeric `window` must be a whole number of seconds from 1 to 3153600000, found 0",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"day","max":-1}]}}}"#,
            "tools.t.limits[0].max",
            "`max` must not be negative",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"day","max":1,"scope":"user"}]}}}"#,
            "tools.t.limits[0].scope",
            "unknown scope `user`, expected one of `grant`, `session`, `server`, `global`",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limits":[{"counter":"c","window":"day","max":1,"algorithm":"sliding-log"}]}}}"#,
            "tools.t.limits[0].algorithm",
            "unknown algorithm `sliding-log`, expected one of `fixed`, `sliding`",
        ),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"require":[],"require":[]}}}"#,
            "tools.t.require",
            "duplicate field `require`",
        ),
    ];
    for (src, path, message) in rows {
        let errors = errors_of(src);
        let got: Vec<(&str, &str)> = errors
            .iter()
            .map(|d| (d.json_path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(got, [(path, message)], "for {src}");
    }
}

#[test]
fn counters_must_agree_wherever_they_are_named() {
    let src = r#"{
  "version": "1", "default": "deny",
  "all_tools": { "limits": [ { "counter": "all", "window": "minute", "max": 5 } ] },
  "tools": {
    "a": { "limits": [ { "counter": "c", "window": "minute", "max": 30 } ] },
    "b": { "limits": [ { "counter": "c", "window": "minute", "max": 31 } ] },
    "d": { "limits": [ { "counter": "all", "window": "minute", "max": 5 } ] },
    "e": { "limits": [ { "counter": "c", "window": "minute", "max": 30 },
                       { "counter": "c", "window": "minute", "max": 30 } ] },
    "f": { "limits": [ { "counter": "c", "window": 60, "max": 30, "scope": "grant" } ] }
  }
}"#;
    let errors = errors_of(src);
    assert_eq!(
        located(&errors),
        [
            (
                6,
                37,
                "tools.b.limits[0].counter",
                "counter `c` is declared differently at line 5: minute / max 30 / scope grant / fixed there, minute / max 31 / scope grant / fixed here"
            ),
            (
                7,
                37,
                "tools.d.limits[0].counter",
                "counter `all` is used both under `all_tools` (line 3) and under tool `d`"
            ),
            (
                9,
                37,
                "tools.e.limits[1].counter",
                "counter `c` is already a limit here; it would count each call twice"
            ),
        ]
    );
}

#[test]
fn strict_dialect_rejects_extensions() {
    let src = r#"{"version":"1","default":"deny","tools":{"t":{
        "require_approval": true,
        "approve_if": [],
        "limits": [{"counter":"c","window":90,"max":1,"algorithm":"sliding","increment_from":"args.n"}]}}}"#;
    assert!(parse_policy_str(src, "p.json").is_ok());
    let strict = LoadOptions {
        strict_dialect: true,
        ..LoadOptions::default()
    };
    let err = parse_policy_str_with(src, "p.json", &strict).expect_err("strict rejects");
    let paths: Vec<&str> = err.errors.iter().map(|d| d.json_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tools.t.require_approval",
            "tools.t.approve_if",
            "tools.t.limits[0].window",
            "tools.t.limits[0].algorithm",
            "tools.t.limits[0].increment_from",
        ]
    );
    assert_eq!(
        err.errors[0].message,
        "`require_approval` is an mcpsim extension, rejected under --strict-dialect"
    );
}

#[test]
fn warnings_for_rules_that_can_never_fire() {
    let src = r#"{"version":"1","default":"deny","hide":["*"],"tools":{
  "t": { "require_approval": true,
         "approve_if": [ {"path":"args.a","op":"exists","value":true} ],
         "deny_if": [ {"path":"args.a","op":"eq","value":1}, {"path":"args.a","op":"eq","value":1.0},
                      {"path":"args.b","op":"in","value":[]} ] },
  "u": { "on_deny": "no", "limits": [ {"counter":"z","window":"hour","max":0} ] }
}}"#;
    let report = check_policy_str(src, &LoadOptions::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.policy.is_some());
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.severity == Severity::Warning)
    );
    let got: Vec<(&str, &str)> = report
        .warnings
        .iter()
        .map(|d| (d.json_path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "hide",
                "`\"*\"` hides every tool, so no rule of this policy can ever fire (2 tools configured)"
            ),
            (
                "tools.t.approve_if",
                "`approve_if` never fires: `require_approval` is true, so every call is held anyway"
            ),
            (
                "tools.t.deny_if[1]",
                "this predicate repeats tools.t.deny_if[0], so it can never fire"
            ),
            (
                "tools.t.deny_if[2]",
                "`in` with an empty list never holds, so this predicate can never fire"
            ),
            (
                "tools.u.on_deny",
                "`on_deny` is never used: this tool has no rule that denies"
            ),
            (
                "tools.u.limits[0].max",
                "`max` 0 is below 1, so this limit throttles every call"
            ),
        ]
    );
}

#[test]
fn policy_errors_display_names_file_line_and_path() {
    let err = parse_policy_str(
        r#"{"version":"1","default":"deny","tools":{"t":{"limts":[]}}}"#,
        "p.json",
    )
    .expect_err("typo");
    assert_eq!(
        err.to_string(),
        "p.json: 1 error\n  unknown field `limts`, did you mean `limits`? (p.json:1:47, at tools.t.limts)"
    );
}

fn check_cmd(paths: &[PathBuf], strict: bool) -> (u8, String, String) {
    let args = CheckArgs {
        policies: paths.to_vec(),
        strict_dialect: strict,
        dialect: None,
        format: mcpsim::cli::check::CheckFormat::Human,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, &mut out, &mut err).expect("check runs");
    (
        code,
        String::from_utf8(out).expect("utf-8"),
        String::from_utf8(err).expect("utf-8"),
    )
}

#[test]
fn check_prints_errors_like_a_compiler_and_exits_2() {
    let path = fixture("policylayer_typos.json");
    let (code, out, err) = check_cmd(std::slice::from_ref(&path), false);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    let file = path.display().to_string();
    let expected_head = format!(
        "warning: tool `delete_account` is both hidden and configured; it is always denied as hidden, so its rules never fire
 --> {file}:6:5
  |
6 |     \"delete_account\": {{}},
  |     ^
  = at tools.delete_account

error: unknown op `equals`, expected one of `eq`, `neq`, `in`, `not_in`, `lt`, `lte`, `gt`, `gte`, `regex`, `contains`, `exists`
 --> {file}:8:48
  |
8 |       \"require\": [ {{ \"path\": \"args.pfs\", \"op\": \"equals\", \"value\": \"enable\" }} ],
  |                                                ^
  = at tools.vpn_ipsec_phase2_create.require[0].op
"
    );
    assert!(err.starts_with(&expected_head), "got:\n{err}");
    assert!(err.contains(&format!(
        "error: unknown field `limts`, did you mean `limits`?
  --> {file}:10:7
   |
10 |       \"limts\": [
   |       ^
   = at tools.vpn_ipsec_phase2_create.limts
"
    )));
    assert!(
        err.ends_with(&format!("error: {file}: 5 errors, 1 warning\n")),
        "got:\n{err}"
    );
}

#[test]
fn check_passes_clean_files_and_reports_missing_ones() {
    let good = fixture("policylayer_example.json");
    let (code, out, err) = check_cmd(std::slice::from_ref(&good), false);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, format!("ok: {} (2 tools, 2 limits)\n", good.display()));

    let missing = fixture("does_not_exist.json");
    let (code, out, err) = check_cmd(&[good.clone(), missing.clone()], false);
    assert_eq!(code, 2);
    assert_eq!(out, format!("ok: {} (2 tools, 2 limits)\n", good.display()));
    assert!(
        err.starts_with("error: cannot read policy file: "),
        "got: {err}"
    );
    assert!(
        err.ends_with(&format!(
            " --> {}\n\nerror: {}: 1 error\n",
            missing.display(),
            missing.display()
        )),
        "got: {err}"
    );
}

mod never_panics {
    use mcpsim::policy::{LoadOptions, check_policy_str, render_diagnostics};
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../../fixtures/policies/policylayer_example.json");

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Damaged policies (bytes cut out, characters spliced in) give diagnostics, never a
        /// panic, and every diagnostic renders.
        #[test]
        fn damaged_policies_are_diagnosed(
            cut in 0..EXAMPLE.len(),
            len in 0usize..8,
            insert in prop::sample::select(vec!["", "\"", "{", "}", "[", ",", ":", "é", "\\u12", "1e999", "-", "\n", "null", "\"x\":"]),
            strict in any::<bool>(),
        ) {
            let mut src = String::new();
            let end = (cut + len).min(EXAMPLE.len());
            if let (Some(a), Some(b)) = (EXAMPLE.get(..cut), EXAMPLE.get(end..)) {
                src.push_str(a);
                src.push_str(insert);
                src.push_str(b);
            } else {
                src.push_str(EXAMPLE);
            }
            let report = check_policy_str(&src, &LoadOptions { strict_dialect: strict, ..LoadOptions::default() });
            prop_assert_eq!(report.policy.is_some(), report.errors.is_empty());
            for d in report.errors.iter().chain(&report.warnings) {
                prop_assert!(d.line >= 1 && d.column >= 1, "{:?}", d);
            }
            let mut out = Vec::new();
            prop_assert!(render_diagnostics(&src, "p.json", &report.errors, &mut out).is_ok());
        }
    }
}

#[test]
fn all_tools_limits_unreachable_under_default_deny_warns() {
    let src = r#"{"version":"1","default":"deny","hide":["t"],
  "all_tools":{"limits":[{"counter":"all","window":"minute","max":5}]},
  "tools":{"t":{}}}"#;
    let report = check_policy_str(src, &LoadOptions::default());
    let got: Vec<(&str, &str)> = report
        .warnings
        .iter()
        .map(|d| (d.json_path.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "all_tools",
                "`all_tools` limits never apply: the default is deny and no visible tool is listed under `tools`"
            ),
            (
                "tools.t",
                "tool `t` is both hidden and configured; it is always denied as hidden, so its rules never fire"
            ),
        ]
    );
}

#[test]
fn a_repeated_top_level_key_is_one_error() {
    let src = r#"{"version":"1","default":"deny",
  "tools":{"t":{"limits":[{"counter":"c","window":"minute","max":5}]}},
  "tools":{"t":{"limits":[{"counter":"c","window":"minute","max":6}]}}}"#;
    assert_eq!(
        located(&errors_of(src)),
        [(3, 3, "tools", "duplicate field `tools`")]
    );
}

#[test]
fn compiled_policies_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<mcpsim::engine::Policy>();
    shareable::<mcpsim::engine::Engine>();
}
