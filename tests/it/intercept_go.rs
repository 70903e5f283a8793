//! The Intercept dialect decided as the gateway's Go build decides it (issue #13): printed
//! forms, RE2, yaml.v3 scalars, amd64's int64 conversion, rollbacks floored at zero and made
//! when the reply arrives, one shared store, arguments that are not an object. Each row is a
//! behaviour checked against the gateway's own engine (docs/fidelity.md).

use std::process::Command;
use std::sync::Arc;

use insta_cmd::get_cargo_bin;
use mcpsim::engine::{CallView, DecisionKind, Engine, EvalOptions, Policy};
use mcpsim::policy::intercept::parse_intercept_str;
use mcpsim::policy::parse_policy_str;
use mcpsim::trace::{Args, Upstream};
use serde_json::Value;

/// 2026-08-01T10:00:00Z.
const BASE: i64 = 1_785_578_400;
const NS: i64 = 1_000_000_000;

struct Call {
    /// Seconds after BASE.
    t: i64,
    server: &'static str,
    tool: &'static str,
    args: Args,
    upstream: Option<Upstream>,
    /// Seconds after BASE when the reply arrived.
    reply: Option<i64>,
}

fn call(t: i64, tool: &'static str, args: &str) -> Call {
    let args = match serde_json::from_str::<Value>(args).expect("test args are JSON") {
        Value::Object(m) => Args::Values(m),
        other => Args::NotObject(other.to_string().into()),
    };
    Call {
        t,
        server: "srv",
        tool,
        args,
        upstream: Some(Upstream::Ok),
        reply: None,
    }
}

impl Call {
    /// The upstream answered with a JSON-RPC error `after` seconds.
    fn failed_after(mut self, after: Option<i64>) -> Call {
        self.upstream = Some(Upstream::Error);
        self.reply = after.map(|a| self.t + a);
        self
    }
    fn on(mut self, server: &'static str) -> Call {
        self.server = server;
        self
    }
}

fn compile(yaml: &str) -> Arc<Policy> {
    let yaml = format!("version: \"1\"\n{yaml}");
    let policy = parse_policy_str(&yaml, "policy.yaml")
        .unwrap_or_else(|e| panic!("a clean policy compiles: {e}\n{yaml}"));
    Arc::new(policy)
}

/// `allow`, or `<kind> <rule id>`; an allow with a rule shows the rule.
fn run_with(policy: &str, calls: &[Call], opts: EvalOptions) -> Vec<String> {
    let mut engine = Engine::new(compile(policy), opts);
    calls
        .iter()
        .map(|c| {
            let d = engine.evaluate(&CallView {
                ts: (BASE + c.t) * NS,
                server: c.server,
                grant: None,
                session: None,
                tool: c.tool,
                args: (&c.args).into(),
                upstream: c.upstream,
                reply_at: c.reply.map(|r| (BASE + r) * NS),
                ids: None,
            });
            match (d.kind, d.rule.is_empty()) {
                (DecisionKind::Allow, true) => "allow".to_string(),
                (kind, _) => format!("{kind} {}", d.rule),
            }
        })
        .collect()
}

fn rows(table: Vec<(&str, String, Vec<Call>, Vec<&str>)>) {
    let mut failures = Vec::new();
    for (name, policy, calls, expected) in table {
        let got = run_with(&policy, &calls, EvalOptions::default());
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A tool `t` with one rule `r` of one condition on `args.v`.
fn cond(op: &str, value: &str) -> String {
    format!(
        "tools:\n  t:\n    rules:\n      - name: r\n        conditions:\n          - path: args.v\n            op: {op}\n            value: {value}\n"
    )
}

#[test]
fn printed_form_is_gos() {
    let v = |json: &str| call(0, "t", &format!("{{\"v\": {json}}}"));
    rows(vec![
        (
            "an argument number is a float64: 1000000 prints 1e+06",
            cond("eq", "\"1e+06\""),
            vec![v("1000000"), v("\"1000000\"")],
            vec!["allow", "deny t/r"],
        ),
        (
            "1234567 prints 1.234567e+06; 123456 prints as is",
            cond("in", "[\"1.234567e+06\", \"123456\"]"),
            vec![v("1234567"), v("123456"), v("1234567.5")],
            vec!["allow", "allow", "deny t/r"],
        ),
        (
            "a YAML float prints as a float64, a YAML integer as an int",
            cond("in", "[1000000.0, 2000000]"),
            vec![v("\"1e+06\""), v("\"2000000\""), v("\"2e+06\"")],
            vec!["allow", "allow", "deny t/r"],
        ),
        (
            "maps print with sorted keys, lists space-separated",
            cond("in", "[\"map[a:1 b:[1 2]]\", \"[x 5]\"]"),
            vec![
                v("{\"b\": [1, 2], \"a\": 1}"),
                v("[\"x\", 5]"),
                v("[\"x\", 6]"),
            ],
            vec!["allow", "allow", "deny t/r"],
        ),
        (
            "contains on a list compares items by printed form",
            cond("contains", "\"1e+06\""),
            vec![v("[1, 1000000]"), v("\"a 1e+06 b\""), v("[1]")],
            vec!["allow", "allow", "deny t/r"],
        ),
    ]);
}

#[test]
fn regular_expressions_are_re2_as_go_reads_it() {
    let v = |s: &str| call(0, "t", &format!("{{\"v\": {}}}", serde_json::json!(s)));
    rows(vec![
        (
            "\\d is ASCII only",
            cond("regex", "'^\\d+$'"),
            vec![v("12"), v("١٢")],
            vec!["allow", "deny t/r"],
        ),
        (
            "\\b is ASCII only: é is not a word character",
            cond("regex", "'\\bé'"),
            vec![v("é"), v("xé")],
            vec!["deny t/r", "allow"],
        ),
        (
            "\\Q…\\E quotes",
            cond("regex", "'^\\Qa.b\\E$'"),
            vec![v("a.b"), v("axb")],
            vec!["allow", "deny t/r"],
        ),
        (
            "a{,3} is literal text",
            cond("regex", "'^a{,3}$'"),
            vec![v("a{,3}"), v("aa")],
            vec!["allow", "deny t/r"],
        ),
    ]);
    let rejected = |pattern: &str| {
        let yaml = format!("version: \"1\"\n{}", cond("regex", &format!("'{pattern}'")));
        parse_intercept_str(&yaml, "p.yaml")
            .errors
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rejected("a**"),
        ["invalid regex \"a**\": error parsing regexp: invalid nested repetition operator: `**`"]
    );
    assert_eq!(
        rejected("x{1001}"),
        ["invalid regex \"x{1001}\": error parsing regexp: invalid repeat count: `{1001}`"]
    );
    assert!(rejected("x{1000}").is_empty());
}

#[test]
fn yaml_scalars_resolve_as_yaml_v3_does() {
    let n = |json: &str| call(0, "t", &format!("{{\"v\": {json}}}"));
    rows(vec![
        ("017 is octal", cond("eq", "017"), vec![n("15"), n("17")], vec!["allow", "deny t/r"]),
        ("1_000 is a number", cond("eq", "1_000"), vec![n("1000")], vec!["allow"]),
        ("0b101 is binary", cond("eq", "0b101"), vec![n("5")], vec!["allow"]),
        ("0x_1F is hex", cond("eq", "0x_1F"), vec![n("31")], vec!["allow"]),
        ("08 is a float", cond("eq", "08"), vec![n("\"8\"")], vec!["allow"]),
        (".inf is a float", cond("lt", ".inf"), vec![n("1e300")], vec!["allow"]),
        ("yes is a string", cond("eq", "yes"), vec![n("\"yes\""), n("true")], vec!["allow", "deny t/r"]),
        (
            "an unquoted date is a timestamp, printed as Go prints it",
            cond("eq", "2024-01-01"),
            vec![n("\"2024-01-01 00:00:00 +0000 UTC\""), n("\"2024-01-01\"")],
            vec!["allow", "deny t/r"],
        ),
        ("!!binary is decoded", cond("eq", "!!binary aGVsbG8="), vec![n("\"hello\"")], vec!["allow"]),
        (
            "merge keys are applied, the mapping's own keys win",
            "defaults: &d {path: args.v, op: eq, value: 1}\ntools:\n  t:\n    rules:\n      - name: r\n        conditions:\n          - <<: *d\n            value: 2\n".to_string(),
            vec![n("2"), n("1")],
            vec!["allow", "deny t/r"],
        ),
        (
            "an integral float is an integer increment (2.0)",
            "tools:\n  t:\n    rules:\n      - name: r\n        conditions: [{path: state.t.c, op: lte, value: 4}]\n        state: {counter: c, window: minute, increment: 2.0}\n".to_string(),
            vec![n("1"), n("1"), n("1")],
            vec!["allow", "allow", "throttle t/r"],
        ),
        (
            "1e3 is an integer increment too",
            "tools:\n  t:\n    rules:\n      - name: r\n        conditions: [{path: state.t.c, op: lte, value: 1500}]\n        state: {counter: c, window: minute, increment: 1e3}\n".to_string(),
            vec![n("1"), n("1")],
            vec!["allow", "throttle t/r"],
        ),
    ]);
}

fn capped(op: &str, value: &str, increment: &str) -> String {
    format!(
        "tools:\n  t:\n    rules:\n      - name: r\n        conditions: [{{path: state.t.c, op: {op}, value: {value}}}]\n        state: {{counter: c, window: minute, {increment}}}\n"
    )
}

#[test]
fn numbers_convert_to_int64_as_amd64_does() {
    let n = |t: i64, json: &str| call(t, "t", &format!("{{\"n\": {json}}}"));
    rows(vec![
        (
            "lte 1e19 is a cap of the minimum int64: every call is refused",
            capped("lte", "1e19", "increment: 1"),
            vec![n(0, "1"), n(1, "1")],
            vec!["throttle t/r", "throttle t/r"],
        ),
        (
            "lt 1e19 wraps to the maximum int64: no call is refused",
            capped("lt", "1e19", "increment: 1"),
            vec![n(0, "1"), n(1, "1")],
            vec!["allow", "allow"],
        ),
        (
            "an increment_from of 1e21 is the minimum int64: let through, and the counter with it",
            capped("lte", "3", "increment_from: args.n"),
            vec![n(0, "1e21"), n(1, "3"), n(2, "3"), n(3, "3")],
            vec!["allow", "allow", "allow", "allow"],
        ),
        (
            "increment_from truncates toward zero",
            capped("lte", "3", "increment_from: args.n"),
            vec![n(0, "2.9"), n(1, "1.9"), n(2, "1.5")],
            vec!["allow", "allow", "throttle t/r"],
        ),
    ]);
}

#[test]
fn rollback_floors_at_zero_and_waits_for_the_reply() {
    let n = |t: i64, v: i64| call(t, "t", &format!("{{\"n\": {v}}}"));
    let policy = capped("lte", "5", "increment_from: args.n");
    rows(vec![
        (
            // 10:00:59 reserves 3; its error reply comes at 10:01:20, after 10:01:10 reserved 1
            // in the new window: 1 − 3 is floored at 0, so 3 fits once and 3 more does not.
            "rollback floors the counter at zero",
            policy.clone(),
            vec![
                n(59, 3).failed_after(Some(21)),
                n(70, 1),
                n(90, 3),
                n(91, 3),
            ],
            vec!["allow", "allow", "allow", "throttle t/r"],
        ),
        (
            "until the error reply arrives the reservation holds",
            policy.clone(),
            vec![n(0, 5).failed_after(Some(30)), n(10, 1), n(30, 1)],
            vec!["allow", "throttle t/r", "allow"],
        ),
        (
            "with no reply time recorded it is given back at once",
            policy,
            vec![n(0, 5).failed_after(None), n(10, 5)],
            vec!["allow", "allow"],
        ),
    ]);
}

#[test]
fn arguments_that_are_not_an_object_are_forwarded_unevaluated() {
    let policy = "hide: [secret]\ntools:\n  t:\n    rules:\n      - name: block\n        action: deny\n  \"*\":\n    rules:\n      - name: all\n        rate_limit: 1/minute\n";
    rows(vec![(
        "forwarded, even hidden or denied tools, and nothing is counted",
        policy.to_string(),
        vec![
            call(0, "t", "[1, 2]"),
            call(1, "secret", "\"text\""),
            call(2, "u", "5"),
            call(3, "u", "{}"),
            call(4, "u", "{}"),
        ],
        vec![
            "allow (arguments not an object)",
            "allow (arguments not an object)",
            "allow (arguments not an object)",
            "allow",
            "throttle */all",
        ],
    )]);
}

#[test]
fn one_store_serves_every_server_unless_kept_per_server() {
    let policy = "tools:\n  t:\n    rules:\n      - name: r\n        rate_limit: 2/minute\n";
    let calls = || {
        vec![
            call(0, "t", "{}"),
            call(1, "t", "{}").on("other"),
            call(2, "t", "{}"),
        ]
    };
    assert_eq!(
        run_with(policy, &calls(), EvalOptions::default()),
        ["allow", "allow", "throttle t/r"]
    );
    let per_server = EvalOptions {
        intercept_per_server: true,
        ..EvalOptions::default()
    };
    assert_eq!(
        run_with(policy, &calls(), per_server),
        ["allow", "allow", "allow"]
    );
}

fn mcpsim(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(get_cargo_bin("mcpsim"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("mcpsim runs")
}

/// Two servers bound to two policies share the store: the key has no server part.
#[test]
fn bindings_share_the_store_and_reports_say_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy =
        "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: r\n        rate_limit: 1/minute\n";
    std::fs::write(dir.path().join("a.yaml"), policy).expect("write");
    std::fs::write(dir.path().join("b.yaml"), policy).expect("write");
    let trace = [
        r#"{"ts":"2026-08-01T10:00:00Z","server":"a","tool":"t","args":{}}"#,
        r#"{"ts":"2026-08-01T10:00:01Z","server":"b","tool":"t","args":{}}"#,
        r#"{"ts":"2026-08-01T10:00:02Z","server":"b","tool":"t","args":[1]}"#,
    ]
    .join("\n");
    std::fs::write(dir.path().join("t.jsonl"), trace + "\n").expect("write");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate", "--policy", "a=a.yaml", "--policy", "b=b.yaml", "t.jsonl", "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = mcpsim(&args, dir.path());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("json report")
    };
    let shared = run(&[]);
    assert_eq!(shared["totals"]["throttle"], 1);
    assert_eq!(shared["calls"][0]["throttle"]["counter"], "t._rate_minute");
    assert_eq!(shared["calls"][0]["throttle"]["key"], "global");
    let forwarded: Vec<&Value> = shared["per_rule"]
        .as_array()
        .expect("per_rule")
        .iter()
        .filter(|r| r["rule"] == "(arguments not an object)")
        .collect();
    assert_eq!(forwarded.len(), 1, "{shared}");
    assert_eq!(forwarded[0]["calls"], 1);
    assert_eq!(forwarded[0]["decision"], "allow");
    let apart = run(&["--intercept-counters", "per-server"]);
    assert_eq!(apart["totals"]["throttle"], 0);
}

/// The JSON-RPC reader pairs the error reply 30 s later: until then the reservation holds.
#[test]
fn a_recorded_error_reply_gives_the_reservation_back_when_it_arrives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: one\n        rate_limit: 1/minute\n";
    std::fs::write(dir.path().join("p.yaml"), policy).expect("write");
    let request = |ts: &str, id: u32| {
        format!(
            r#"{{"ts":"2026-01-01T00:00:{ts}Z","dir":"c2s","server":"s","session":"x","msg":{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"t","arguments":{{}}}}}}}}"#
        )
    };
    let trace = [
        request("00", 1),
        request("10", 2),
        r#"{"ts":"2026-01-01T00:00:30Z","dir":"s2c","server":"s","session":"x","msg":{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"boom"}}}"#.to_string(),
        request("40", 3),
    ]
    .join("\n");
    std::fs::write(dir.path().join("t.jsonl"), trace + "\n").expect("write");
    let out = mcpsim(
        &[
            "simulate", "--policy", "p.yaml", "t.jsonl", "--format", "jsonl", "--calls", "all",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let row: Value = serde_json::from_str(l).expect("json row");
            row["decision"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(decisions, ["allow", "throttle", "allow"]);
}

/// Messages that name a tool or a rule quote it as Go's `%q` does (checked against the
/// gateway's engine): `\"` and `\\`, and escapes for every character Go does not print —
/// a line separator, a no-break space, a soft hyphen — while `é` and symbols stay as they are.
#[test]
fn names_in_messages_are_quoted_as_go_quotes_them() {
    let policy = "default: deny\nhide:\n  - a\"b\ntools:\n  ok:\n    rules:\n      - name: \"say \\\"no\\\"\\u2028\"\n        action: deny\n";
    let mut engine = Engine::new(compile(policy), EvalOptions::default());
    let args = Args::Values(serde_json::Map::new());
    let mut message = |tool: &str| {
        let d = engine.evaluate(&CallView {
            ts: BASE * NS,
            server: "srv",
            grant: None,
            session: None,
            tool,
            args: (&args).into(),
            upstream: None,
            reply_at: None,
            ids: None,
        });
        assert_eq!(d.kind, DecisionKind::Deny, "{tool}");
        d.message.to_string()
    };
    assert_eq!(message("a\"b"), r#"Tool "a\"b" is hidden by policy"#);
    assert_eq!(
        message("tool\u{2028}x \"q\" é"),
        r#"Tool "tool\u2028x \"q\" é" is not permitted by policy"#
    );
    assert_eq!(
        message("nb\u{a0}sp\u{ad}\\ ✓ \u{1}\u{7f}\u{85}\u{e0001}"),
        r#"Tool "nb\u00a0sp\u00ad\\ ✓ \x01\x7f\u0085\U000e0001" is not permitted by policy"#
    );
    assert_eq!(message("ok"), r#"Denied by rule "say \"no\"\u2028""#);
}

/// A rule whose `increment_from` was not recorded makes the call unknown and is neither
/// checked nor charged; the call's other counters are charged as for any unknown call (the
/// gateway charged them for every call it let through). Seen on event logs the gateway wrote:
/// charges kept only as a hash left the wildcard counter short.
#[test]
fn an_unrecorded_increment_skips_its_rule_and_charges_the_others() {
    let policy = "tools:\n  charge:\n    rules:\n      - name: spend\n        conditions:\n          - path: state.charge.spend\n            op: lte\n            value: 100\n        state:\n          counter: spend\n          window: day\n          increment_from: args.amount\n  \"*\":\n    rules:\n      - name: all\n        rate_limit: 2/minute\n";
    let unrecorded = |t: i64, tool: &'static str| Call {
        args: Args::Unrecorded,
        ..call(t, tool, "{}")
    };
    let calls = || {
        vec![
            unrecorded(0, "charge"),
            call(1, "list", "{}"),
            call(2, "list", "{}"),
        ]
    };
    let got = run_with(policy, &calls(), EvalOptions::default());
    assert_eq!(got, ["unknown charge/spend", "allow", "throttle */all"]);
    let got = run_with(
        policy,
        &calls(),
        EvalOptions {
            assume_unknown_deny: true,
            ..EvalOptions::default()
        },
    );
    assert_eq!(got, ["unknown charge/spend", "allow", "allow"]);
}
