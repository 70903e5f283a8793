//! The Intercept YAML dialect: one semantics row per behaviour of spec §2, every validation
//! error, and the shipped fixtures replayed end to end.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

use mcpsim::engine::{CallView, Decision, DecisionKind, Engine, EvalOptions, Policy};
use mcpsim::policy::intercept::parse_intercept_str;
use mcpsim::policy::parse_policy_str;
use mcpsim::trace::{Args, Nanos, Upstream};
use serde_json::Value;

/// 2026-08-01T10:00:00Z: on a minute and hour boundary, not a day boundary.
const BASE: i64 = 1_785_578_400;
const NS: i64 = 1_000_000_000;

/// Compile through the dialect-detecting loader every command uses.
fn compile(yaml: &str) -> Arc<Policy> {
    let policy = parse_policy_str(yaml, "policy.yaml").expect("a clean policy compiles");
    assert!(policy.intercept().is_some(), "detected as Intercept YAML");
    Arc::new(policy)
}

/// One call of a semantics row.
struct C {
    /// Seconds after BASE.
    t: i64,
    server: &'static str,
    tool: &'static str,
    args: Args,
    upstream: Option<Upstream>,
}

/// A call with argument values (`args` is a JSON object), forwarded and succeeding.
fn c(t: i64, tool: &'static str, args: &str) -> C {
    let value: Value = serde_json::from_str(args).expect("test args are JSON");
    let map = match value {
        Value::Object(m) => m,
        _ => panic!("test args must be an object"),
    };
    C {
        t,
        server: "srv",
        tool,
        args: Args::Values(map),
        upstream: Some(Upstream::Ok),
    }
}

impl C {
    fn up(mut self, upstream: Option<Upstream>) -> C {
        self.upstream = upstream;
        self
    }
    fn keys(mut self, keys: &[&str]) -> C {
        self.args = Args::Keys(keys.iter().map(|k| k.to_string()).collect());
        self
    }
    fn unrecorded(mut self) -> C {
        self.args = Args::Unrecorded;
        self
    }
    fn on(mut self, server: &'static str) -> C {
        self.server = server;
        self
    }
}

fn run_with(policy: &str, calls: &[C], opts: EvalOptions) -> Vec<Decision> {
    let mut engine = Engine::new(compile(policy), opts);
    calls
        .iter()
        .map(|call| {
            engine.evaluate(&CallView {
                ts: (BASE + call.t) * NS,
                server: call.server,
                grant: None,
                session: None,
                tool: call.tool,
                args: (&call.args).into(),
                upstream: call.upstream,
                reply_at: None,
                ids: None,
            })
        })
        .collect()
}

/// `allow`, or `<kind> <rule id>`.
fn brief(d: &Decision) -> String {
    if d.kind == DecisionKind::Allow {
        "allow".to_string()
    } else {
        format!("{} {}", d.kind, d.rule)
    }
}

fn run(policy: &str, calls: &[C]) -> Vec<String> {
    run_with(policy, calls, EvalOptions::default())
        .iter()
        .map(brief)
        .collect()
}

fn rows(table: Vec<(&str, &str, Vec<C>, Vec<&str>)>) {
    let mut failures = Vec::new();
    for (name, policy, calls, expected) in table {
        let got = run(policy, &calls);
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const HEAD: &str = "version: \"1\"\n";

fn p(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn order_hidden_default_deny_tool_then_wildcard() {
    let hidden = p(
        "hide: [secret]\ntools:\n  secret:\n    rules: []\n  \"*\":\n    rules:\n      - {name: w, action: deny}\n",
    );
    let hide_all = p("hide: [\"*\"]\ntools:\n  a:\n    rules: []\n");
    let default_deny = p(
        "default: deny\ntools:\n  listed:\n    rules: []\n  \"*\":\n    rules:\n      - name: any\n        conditions: [{path: args.x, op: exists, value: false}]\n",
    );
    let tool_first = p(
        "tools:\n  t:\n    rules:\n      - {name: mine, action: deny}\n  \"*\":\n    rules:\n      - {name: global, action: deny}\n",
    );
    let deny_at_once = p(
        "tools:\n  t:\n    rules:\n      - {name: first, action: deny, on_deny: stop}\n      - name: later\n        conditions: [{path: args.x, op: exists, value: true}]\n",
    );
    let and_first_failing = p(
        "tools:\n  t:\n    rules:\n      - name: both\n        conditions:\n          - {path: args.a, op: eq, value: 1}\n          - {path: args.b, op: eq, value: 2}\n      - name: second\n        conditions: [{path: args.c, op: exists, value: false}]\n",
    );
    rows(vec![
        (
            "a hidden tool is denied before its own rules and the wildcard",
            &hidden,
            vec![c(0, "secret", "{}"), c(1, "other", "{}")],
            vec!["deny (hidden)", "deny */w"],
        ),
        (
            "\"*\" in hide hides every tool",
            &hide_all,
            vec![c(0, "a", "{}"), c(1, "b", "{}")],
            vec!["deny (hidden)", "deny (hidden)"],
        ),
        (
            "default deny: unlisted tools denied, wildcard rules do not rescue them",
            &default_deny,
            vec![
                c(0, "unlisted", "{}"),
                c(1, "listed", "{}"),
                c(2, "listed", "{\"x\":1}"),
            ],
            vec!["deny (default deny)", "allow", "deny */any"],
        ),
        (
            "the tool's rules run before the wildcard's",
            &tool_first,
            vec![c(0, "t", "{}"), c(1, "u", "{}")],
            vec!["deny t/mine", "deny */global"],
        ),
        (
            "a deny rule denies at once",
            &deny_at_once,
            vec![c(0, "t", "{\"x\":1}")],
            vec!["deny t/first"],
        ),
        (
            "conditions are ANDed; the first failing rule denies",
            &and_first_failing,
            vec![
                c(0, "t", "{\"a\":1,\"b\":2}"),
                c(1, "t", "{\"a\":1,\"b\":3}"),
                c(2, "t", "{\"a\":1,\"b\":2,\"c\":0}"),
            ],
            vec!["allow", "deny t/both", "deny t/second"],
        ),
    ]);
}

#[test]
fn deny_messages_are_on_deny_or_the_gateways_default() {
    let policy = p(
        "tools:\n  t:\n    rules:\n      - name: quiet\n        conditions: [{path: args.a, op: exists, value: true}]\n  u:\n    rules:\n      - {name: loud, action: deny, on_deny: \"no u\"}\n",
    );
    let d = run_with(
        &policy,
        &[c(0, "t", "{}"), c(1, "u", "{}"), c(2, "h", "{}")],
        EvalOptions::default(),
    );
    assert_eq!(&*d[0].message, "Denied by rule \"quiet\"");
    assert_eq!(&*d[1].message, "no u");
    assert_eq!(d[2].kind, DecisionKind::Allow);
    let hidden = run_with(
        &p("hide: [h]\ndefault: deny\n"),
        &[c(0, "h", "{}"), c(1, "x", "{}")],
        EvalOptions::default(),
    );
    assert_eq!(&*hidden[0].message, "Tool \"h\" is hidden by policy");
    assert_eq!(&*hidden[1].message, "Tool \"x\" is not permitted by policy");
}

/// A rule with an own counter capped by `OP N`.
fn capped(op: &str, n: &str) -> String {
    p(&format!(
        "tools:\n  t:\n    rules:\n      - name: cap\n        conditions: [{{path: state.t.c, op: {op}, value: {n}}}]\n        state: {{counter: c, window: hour}}\n"
    ))
}

#[test]
fn reservation_caps() {
    let lte = capped("lte", "2");
    let lt = capped("lt", "3");
    let lt_fraction = capped("lt", "3.7");
    let no_cap = p(
        "tools:\n  t:\n    rules:\n      - name: counted\n        conditions: [{path: state.t.c, op: gte, value: 0}]\n        state: {counter: c, window: hour}\n  u:\n    rules:\n      - name: reads t\n        conditions: [{path: state.t.c, op: lt, value: 1}]\n",
    );
    let reads_before = p(
        "tools:\n  t:\n    rules:\n      - name: cap\n        conditions: [{path: state.t.c, op: lte, value: 5}]\n        state: {counter: c, window: hour}\n  u:\n    rules:\n      - name: before t\n        conditions: [{path: state.t.c, op: lt, value: 1}]\n",
    );
    let three = |tool: &'static str| vec![c(0, tool, "{}"), c(1, tool, "{}"), c(2, tool, "{}")];
    rows(vec![
        (
            "lte N caps at N",
            &lte,
            three("t"),
            vec!["allow", "allow", "throttle t/cap"],
        ),
        (
            "lt N caps at N-1",
            &lt,
            three("t"),
            vec!["allow", "allow", "throttle t/cap"],
        ),
        (
            "lt N with a fraction truncates then subtracts one",
            &lt_fraction,
            three("t"),
            vec!["allow", "allow", "throttle t/cap"],
        ),
        (
            "a state block without lt/lte on its own counter never increments",
            &no_cap,
            vec![
                c(0, "t", "{}"),
                c(1, "t", "{}"),
                c(2, "t", "{}"),
                c(3, "u", "{}"),
            ],
            vec!["allow", "allow", "allow", "allow"],
        ),
        (
            "state conditions read the counter before this call's increment",
            &reads_before,
            vec![c(0, "u", "{}"), c(1, "t", "{}"), c(2, "u", "{}")],
            vec!["allow", "allow", "deny u/before t"],
        ),
    ]);
}

#[test]
fn a_refused_reservation_gives_back_the_earlier_ones() {
    // The tool's own counter fits but the wildcard's does not: the tool's reservation is undone,
    // so after the wildcard window turns over the tool still has its full budget.
    let policy = p(
        "tools:\n  t:\n    rules:\n      - {name: own, rate_limit: 2/hour}\n  \"*\":\n    rules:\n      - {name: global, rate_limit: 1/minute}\n",
    );
    rows(vec![(
        "all-or-nothing reservation",
        &policy,
        vec![
            c(0, "t", "{}"),
            c(1, "t", "{}"),
            c(60, "t", "{}"),
            c(120, "t", "{}"),
        ],
        vec!["allow", "throttle */global", "allow", "throttle t/own"],
    )]);
    let d = run_with(
        &policy,
        &[c(0, "t", "{}"), c(1, "t", "{}")],
        EvalOptions::default(),
    );
    let th = d[1].throttle.as_ref().expect("throttle details");
    assert_eq!(&*th.counter, "_global._rate_minute");
    assert_eq!((th.used, th.max, th.increment), (1.0, 1.0, 1.0));
    assert_eq!(th.window_start, BASE * NS);
    assert_eq!(th.retry_after, (BASE + 60) * NS);
    assert_eq!(
        &*d[1].message,
        "Rate limit of 1 per minute reached. Try again later."
    );
}

#[test]
fn increment_from() {
    let spend = p(
        "tools:\n  pay:\n    rules:\n      - name: spend\n        conditions: [{path: state.pay.total, op: lte, value: 10}]\n        on_deny: over budget\n        state: {counter: total, window: day, increment_from: args.amount}\n",
    );
    let uncapped = p(
        "tools:\n  pay:\n    rules:\n      - name: tally\n        conditions: [{path: args.note, op: exists, value: false}]\n        state: {counter: total, window: day, increment_from: args.amount}\n",
    );
    rows(vec![
        (
            "amounts are truncated toward zero",
            &spend,
            vec![
                c(0, "pay", "{\"amount\":4.9}"),
                c(1, "pay", "{\"amount\":6.99}"),
                c(2, "pay", "{\"amount\":0.99}"),
                c(3, "pay", "{\"amount\":1}"),
            ],
            vec!["allow", "allow", "allow", "throttle pay/spend"],
        ),
        (
            "a missing or non-numeric amount denies",
            &spend,
            vec![
                c(0, "pay", "{}"),
                c(1, "pay", "{\"amount\":\"3\"}"),
                c(2, "pay", "{\"amount\":null}"),
            ],
            vec!["deny pay/spend", "deny pay/spend", "deny pay/spend"],
        ),
        (
            "the amount is resolved even for a rule that never increments",
            &uncapped,
            vec![c(0, "pay", "{}"), c(1, "pay", "{\"amount\":5}")],
            vec!["deny pay/tally", "allow"],
        ),
    ]);
    let d = run_with(&spend, &[c(0, "pay", "{}")], EvalOptions::default());
    assert_eq!(&*d[0].message, "Internal policy error");
    let d = run_with(
        &spend,
        &[c(0, "pay", "{\"amount\":8}"), c(1, "pay", "{\"amount\":3}")],
        EvalOptions::default(),
    );
    assert_eq!(&*d[1].message, "over budget");
    let th = d[1].throttle.as_ref().expect("throttle details");
    assert_eq!((th.used, th.max, th.increment), (8.0, 10.0, 3.0));
}

#[test]
fn rate_limit_shorthand_and_scopes() {
    let per_tool = p(
        "tools:\n  a:\n    rules:\n      - {name: ra, rate_limit: 2/minute}\n  b:\n    rules:\n      - {name: rb, rate_limit: 2/minute}\n",
    );
    let wildcard = p("tools:\n  \"*\":\n    rules:\n      - {name: all, rate_limit: 2/minute}\n");
    rows(vec![
        (
            "rate_limit N/w allows N per window",
            &per_tool,
            vec![c(0, "a", "{}"), c(1, "a", "{}"), c(2, "a", "{}")],
            vec!["allow", "allow", "throttle a/ra"],
        ),
        (
            "a tool's counters are its own, even under the same name",
            &per_tool,
            vec![
                c(0, "a", "{}"),
                c(1, "a", "{}"),
                c(2, "b", "{}"),
                c(3, "b", "{}"),
            ],
            vec!["allow", "allow", "allow", "allow"],
        ),
        (
            "\"*\" counters live in _global: every tool draws on one budget",
            &wildcard,
            vec![c(0, "a", "{}"), c(1, "b", "{}"), c(2, "c", "{}")],
            vec!["allow", "allow", "throttle */all"],
        ),
        (
            "one store for every server: keys have no server part",
            &wildcard,
            vec![
                c(0, "a", "{}"),
                c(1, "a", "{}"),
                c(2, "a", "{}").on("other"),
                c(3, "a", "{}"),
            ],
            vec!["allow", "allow", "throttle */all", "throttle */all"],
        ),
    ]);
    let calls = [
        c(0, "a", "{}"),
        c(1, "a", "{}"),
        c(2, "a", "{}").on("other"),
        c(3, "a", "{}"),
    ];
    let opts = EvalOptions {
        intercept_per_server: true,
        ..EvalOptions::default()
    };
    let got: Vec<String> = run_with(&wildcard, &calls, opts)
        .iter()
        .map(brief)
        .collect();
    assert_eq!(
        got,
        ["allow", "allow", "allow", "throttle */all"],
        "--intercept-counters per-server"
    );
}

#[test]
fn windows_are_fixed_and_calendar_aligned() {
    let minute = p("tools:\n  t:\n    rules:\n      - {name: r, rate_limit: 1/minute}\n");
    let hour = p("tools:\n  t:\n    rules:\n      - {name: r, rate_limit: 1/hour}\n");
    let day = p("tools:\n  t:\n    rules:\n      - {name: r, rate_limit: 1/day}\n");
    // BASE is 10:00:00Z; the day turns over 14 hours later.
    rows(vec![
        (
            "minute: a call at :00 starts a new window",
            &minute,
            vec![c(0, "t", "{}"), c(59, "t", "{}"), c(60, "t", "{}")],
            vec!["allow", "throttle t/r", "allow"],
        ),
        (
            "hour: aligned to the top of the hour, not to the first call",
            &hour,
            vec![c(1800, "t", "{}"), c(3599, "t", "{}"), c(3600, "t", "{}")],
            vec!["allow", "throttle t/r", "allow"],
        ),
        (
            "day: aligned to 00:00 UTC",
            &day,
            vec![
                c(0, "t", "{}"),
                c(14 * 3600 - 1, "t", "{}"),
                c(14 * 3600, "t", "{}"),
            ],
            vec!["allow", "throttle t/r", "allow"],
        ),
    ]);
}

#[test]
fn operators_and_missing_paths() {
    let op = |path: &str, op: &str, value: &str| {
        p(&format!(
            "tools:\n  t:\n    rules:\n      - name: r\n        conditions: [{{path: {path}, op: {op}, value: {value}}}]\n"
        ))
    };
    let eq5 = op("args.x", "eq", "5");
    let eq_str = op("args.x", "eq", "\"true\"");
    let neq = op("args.x", "neq", "draft");
    let inl = op("args.x", "in", "[1, usd]");
    let not_in = op("args.x", "not_in", "[admin]");
    let lt = op("args.x", "lt", "10");
    let regex = op("args.x", "regex", "\"^feat/\"");
    let contains = op("args.x", "contains", "te");
    let exists = op("args.x", "exists", "true");
    let absent = op("args.x", "exists", "false");
    let nested = op("args.a.b", "eq", "1");
    rows(vec![
        (
            "eq: numbers as numbers, other values by printed form",
            &eq5,
            vec![
                c(0, "t", "{\"x\":5.0}"),
                c(1, "t", "{\"x\":\"5\"}"),
                c(2, "t", "{\"x\":\"5.0\"}"),
                c(3, "t", "{}"),
            ],
            vec!["allow", "allow", "deny t/r", "deny t/r"],
        ),
        (
            "eq: a string value equals a boolean argument that prints the same",
            &eq_str,
            vec![c(0, "t", "{\"x\":true}"), c(1, "t", "{\"x\":false}")],
            vec!["allow", "deny t/r"],
        ),
        (
            "neq: holds on a different value, not on a missing one",
            &neq,
            vec![
                c(0, "t", "{\"x\":\"open\"}"),
                c(1, "t", "{\"x\":\"draft\"}"),
                c(2, "t", "{}"),
            ],
            vec!["allow", "deny t/r", "deny t/r"],
        ),
        (
            "in / not_in: membership by printed-form eq",
            &inl,
            vec![
                c(0, "t", "{\"x\":\"1\"}"),
                c(1, "t", "{\"x\":\"usd\"}"),
                c(2, "t", "{\"x\":\"gbp\"}"),
            ],
            vec!["allow", "allow", "deny t/r"],
        ),
        (
            "not_in: a missing path does not hold",
            &not_in,
            vec![
                c(0, "t", "{\"x\":\"user\"}"),
                c(1, "t", "{\"x\":\"admin\"}"),
                c(2, "t", "{}"),
            ],
            vec!["allow", "deny t/r", "deny t/r"],
        ),
        (
            "lt: both sides numeric, otherwise it does not hold",
            &lt,
            vec![
                c(0, "t", "{\"x\":9.5}"),
                c(1, "t", "{\"x\":10}"),
                c(2, "t", "{\"x\":\"3\"}"),
            ],
            vec!["allow", "deny t/r", "deny t/r"],
        ),
        (
            "regex: unanchored search on strings only",
            &regex,
            vec![
                c(0, "t", "{\"x\":\"feat/a\"}"),
                c(1, "t", "{\"x\":\"fix/a\"}"),
                c(2, "t", "{\"x\":7}"),
            ],
            vec!["allow", "deny t/r", "deny t/r"],
        ),
        (
            "contains: substring of a string, element of a list",
            &contains,
            vec![
                c(0, "t", "{\"x\":\"latest\"}"),
                c(1, "t", "{\"x\":[\"te\",\"x\"]}"),
                c(2, "t", "{\"x\":[\"tea\"]}"),
                c(3, "t", "{\"x\":42}"),
            ],
            vec!["allow", "allow", "deny t/r", "deny t/r"],
        ),
        (
            "exists: present and non-null",
            &exists,
            vec![
                c(0, "t", "{\"x\":0}"),
                c(1, "t", "{\"x\":null}"),
                c(2, "t", "{}"),
            ],
            vec!["allow", "deny t/r", "deny t/r"],
        ),
        (
            "exists false holds on a missing path",
            &absent,
            vec![c(0, "t", "{}"), c(1, "t", "{\"x\":1}")],
            vec!["allow", "deny t/r"],
        ),
        (
            "paths walk nested objects",
            &nested,
            vec![c(0, "t", "{\"a\":{\"b\":1}}"), c(1, "t", "{\"a\":1}")],
            vec!["allow", "deny t/r"],
        ),
    ]);
}

#[test]
fn rollback_follows_the_upstream_outcome() {
    let policy = p("tools:\n  t:\n    rules:\n      - {name: r, rate_limit: 1/minute}\n");
    rows(vec![
        (
            "a JSON-RPC error gives the reservation back",
            &policy,
            vec![
                c(0, "t", "{}").up(Some(Upstream::Error)),
                c(1, "t", "{}"),
                c(2, "t", "{}"),
            ],
            vec!["allow", "allow", "throttle t/r"],
        ),
        (
            "an isError result keeps it",
            &policy,
            vec![
                c(0, "t", "{}").up(Some(Upstream::ToolError)),
                c(1, "t", "{}"),
            ],
            vec!["allow", "throttle t/r"],
        ),
        (
            "an unrecorded outcome is assumed to succeed",
            &policy,
            vec![c(0, "t", "{}").up(None), c(1, "t", "{}")],
            vec!["allow", "throttle t/r"],
        ),
    ]);
    let calls = [
        c(0, "t", "{}").up(Some(Upstream::ToolError)),
        c(1, "t", "{}"),
    ];
    let opts = EvalOptions {
        rollback_on_tool_error: true,
        ..EvalOptions::default()
    };
    let got: Vec<String> = run_with(&policy, &calls, opts).iter().map(brief).collect();
    assert_eq!(got, ["allow", "allow"], "--rollback-on tool-error");
    let calls = [c(0, "t", "{}").up(None), c(1, "t", "{}")];
    let opts = EvalOptions {
        assume_upstream_failure: true,
        ..EvalOptions::default()
    };
    let got: Vec<String> = run_with(&policy, &calls, opts).iter().map(brief).collect();
    assert_eq!(got, ["allow", "allow"], "--assume-upstream failure");
}

#[test]
fn unrecorded_arguments_are_unknown_and_deny_still_wins() {
    let policy = p(
        "tools:\n  t:\n    rules:\n      - name: small\n        conditions: [{path: args.n, op: lte, value: 5}]\n      - name: has id\n        conditions: [{path: args.id, op: exists, value: true}]\n      - {name: quota, rate_limit: 1/minute}\n",
    );
    rows(vec![
        (
            "values unrecorded: unknown, and it still takes quota by default",
            &policy,
            vec![
                c(0, "t", "{}").unrecorded(),
                c(1, "t", "{\"n\":1,\"id\":1}"),
            ],
            vec!["unknown t/small", "throttle t/quota"],
        ),
        (
            "keys only: exists on a top-level key is decided, a decidable deny wins",
            &policy,
            vec![c(0, "t", "{}").keys(&["n"])],
            vec!["deny t/has id"],
        ),
        (
            "keys only: a missing key makes the condition fail",
            &policy,
            vec![c(0, "t", "{}").keys(&["id"])],
            vec!["deny t/small"],
        ),
    ]);
    let opts = EvalOptions {
        assume_unknown_deny: true,
        ..EvalOptions::default()
    };
    let calls = [
        c(0, "t", "{}").unrecorded(),
        c(1, "t", "{\"n\":1,\"id\":1}"),
    ];
    let got: Vec<String> = run_with(&policy, &calls, opts).iter().map(brief).collect();
    assert_eq!(
        got,
        ["unknown t/small", "allow"],
        "--assume-unknown deny consumes nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Validation: every error the gateway reports, located.

/// `(message, path, line, column)` of every error.
fn errors(yaml: &str) -> Vec<(String, String, usize, usize)> {
    parse_intercept_str(yaml, "policy.yaml")
        .errors
        .into_iter()
        .map(|e| (e.message, e.path, e.line, e.column))
        .collect()
}

fn one_error(yaml: &str) -> (String, String, usize, usize) {
    let mut e = errors(yaml);
    assert_eq!(e.len(), 1, "expected exactly one error, got {e:?}");
    e.remove(0)
}

fn e(msg: &str, path: &str, line: usize, col: usize) -> (String, String, usize, usize) {
    (msg.to_string(), path.to_string(), line, col)
}

/// 1-based column of the first `needle` on 1-based `line` of `src`, so expected positions are
/// derived from the text the test wrote rather than counted by hand.
fn col(src: &str, line: usize, needle: &str) -> usize {
    let text = src.lines().nth(line - 1).expect("line exists");
    text.find(needle).expect("needle on line") + 1
}

/// Assert every error of `src`, each given as (message, path, line, text found at the column).
fn assert_errors(src: &str, expected: &[(&str, &str, usize, &str)]) {
    let want: Vec<(String, String, usize, usize)> = expected
        .iter()
        .map(|(msg, path, line, needle)| e(msg, path, *line, col(src, *line, needle)))
        .collect();
    assert_eq!(errors(src), want, "policy:\n{src}");
}

#[test]
fn validation_top_level() {
    assert_errors(
        "version: \"2\"\n",
        &[("version must be \"1\", got \"2\"", "version", 1, "\"2\"")],
    );
    assert_eq!(
        one_error("# nothing but a comment\n"),
        e("version must be \"1\", got \"\"", "version", 1, 1)
    );
    assert_errors(
        "description: x\n",
        &[(
            "version must be \"1\", got \"\"",
            "version",
            1,
            "description",
        )],
    );
    assert_errors(
        "version: \"1\"\ndefault: block\n",
        &[(
            "default must be \"allow\" or \"deny\", got \"block\"",
            "default",
            2,
            "block",
        )],
    );
    assert_errors(
        "version: \"1\"\nhide:\n  - \"\"\n  - a\n  - a\n",
        &[
            ("entry must not be empty", "hide[0]", 3, "\"\""),
            ("duplicate entry \"a\"", "hide[2]", 5, "a"),
        ],
    );
    assert_errors(
        "- just\n- a list\n",
        &[(
            "the policy must be a mapping, found a list",
            "",
            1,
            "- just",
        )],
    );
}

#[test]
fn validation_yaml_syntax_and_types() {
    let (msg, path, line, _) = one_error("version: \"1\"\ntools:\n  a: [\n");
    assert!(msg.starts_with("invalid YAML"), "{msg}");
    assert_eq!((path.as_str(), line >= 3), ("", true));
    let (msg, _, line, column) = one_error("version: \"1\"\nversion: \"1\"\n");
    assert!(msg.contains("duplicated key"), "{msg}");
    assert_eq!((line, column), (2, 1));
    assert_errors(
        "version: \"1\"\ntools:\n  a:\n    rules: {name: x}\n",
        &[(
            "expected a list, found a mapping",
            "tools.a.rules",
            4,
            "{name",
        )],
    );
    assert_errors(
        "version: \"1\"\ntools:\n  a:\n    rules:\n      - name: [x]\n        action: deny\n",
        &[(
            "expected a string, found a list",
            "tools.a.rules[0].name",
            5,
            "[x]",
        )],
    );
    assert_errors(
        "version: \"1\"\ntools:\n  a:\n    rules:\n      - name: r\n        conditions: [{path: state.a.c, op: lte, value: 1}]\n        state: {counter: c, window: hour, increment: many}\n",
        &[(
            "increment must be an integer, found a string",
            "tools.a.rules[0].state.increment",
            7,
            "many",
        )],
    );
}

const RULE_HEAD: &str = "version: \"1\"\ntools:\n  t:\n    rules:\n";

/// A policy whose single tool `t` has the given rules (lines 5 onwards).
fn with_rules(rules: &str) -> String {
    format!("{RULE_HEAD}{rules}")
}

#[test]
fn validation_rules() {
    assert_errors(
        &with_rules("      - action: deny\n"),
        &[(
            "rule must have a name",
            "tools.t.rules[0].name",
            5,
            "action",
        )],
    );
    assert_errors(
        &with_rules("      - name: r\n        action: block\n"),
        &[(
            "action must be \"evaluate\" or \"deny\", got \"block\"",
            "tools.t.rules[0].action",
            6,
            "block",
        )],
    );
    assert_errors(
        &with_rules(
            "      - name: r\n        action: deny\n        conditions:\n          - {path: args.a, op: exists, value: true}\n",
        ),
        &[(
            "deny rules must not have conditions",
            "tools.t.rules[0].conditions",
            8,
            "{path",
        )],
    );
    assert_errors(
        &with_rules("      - name: r\n"),
        &[(
            "evaluate rules must have at least one condition",
            "tools.t.rules[0].conditions",
            5,
            "name",
        )],
    );
}

/// A policy whose rule `r` has the single condition `cond` (on line 7).
fn with_condition(cond: &str) -> String {
    with_rules(&format!(
        "      - name: r\n        conditions:\n          - {cond}\n"
    ))
}

#[test]
fn validation_conditions() {
    let at = |field: &str| format!("tools.t.rules[0].conditions[0].{field}");
    let (path, op, value) = (at("path"), at("op"), at("value"));
    assert_errors(
        &with_condition("{path: arguments.a, op: eq, value: 1}"),
        &[(
            "path must start with \"args.\" or \"state.\", got \"arguments.a\"",
            &path,
            7,
            "arguments",
        )],
    );
    assert_errors(
        &with_condition("{path: args.a, op: \"gte=\", value: 1}"),
        &[("unknown operator \"gte=\"", &op, 7, "\"gte=\"")],
    );
    assert_errors(
        &with_condition("{path: args.a, op: in, value: usd}"),
        &[("operator \"in\" requires a list value", &value, 7, "usd")],
    );
    // An absent value is reported at the condition itself.
    assert_errors(
        &with_condition("{path: args.a, op: not_in}"),
        &[(
            "operator \"not_in\" requires a list value",
            &value,
            7,
            "{path",
        )],
    );
    assert_errors(
        &with_condition("{path: args.a, op: lte, value: \"100\"}"),
        &[(
            "operator \"lte\" requires a numeric value",
            &value,
            7,
            "\"100\"",
        )],
    );
    assert_errors(
        &with_condition("{path: args.a, op: exists, value: \"yes\"}"),
        &[(
            "operator \"exists\" requires a boolean value",
            &value,
            7,
            "\"yes\"",
        )],
    );
    assert_errors(
        &with_condition("{path: args.a, op: regex, value: 5}"),
        &[("regex value must be a string", &value, 7, "5}")],
    );
    let src = with_condition("{path: args.a, op: regex, value: \"a(b\"}");
    let bad = errors(&src);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].0.starts_with("invalid regex \"a(b\": "), "{bad:?}");
    assert_eq!(
        (bad[0].1.as_str(), bad[0].2, bad[0].3),
        (value.as_str(), 7, col(&src, 7, "\"a(b\""))
    );
}

#[test]
fn validation_state_blocks_and_counters() {
    let with_state = |block: &str| {
        with_rules(&format!(
            "      - name: r\n        conditions: [{{path: state.t.c, op: lte, value: 1}}]\n        state: {block}\n"
        ))
    };
    let sp = |field: &str| format!("tools.t.rules[0].state.{field}");
    assert_errors(
        &with_rules(
            "      - name: r\n        conditions: [{path: args.a, op: exists, value: true}]\n        state: {counter: \"\", window: hour}\n",
        ),
        &[("counter must not be empty", &sp("counter"), 7, "\"\"")],
    );
    assert_errors(
        &with_state("{counter: c, window: week}"),
        &[(
            "window must be \"minute\", \"hour\", or \"day\", got \"week\"",
            &sp("window"),
            7,
            "week",
        )],
    );
    assert_errors(
        &with_state("{counter: c, window: day, increment_from: amount}"),
        &[(
            "increment_from must start with \"args.\", got \"amount\"",
            &sp("increment_from"),
            7,
            "amount",
        )],
    );
    assert_errors(
        &with_rules(
            "      - name: r\n        conditions: [{path: state.t.missing, op: lte, value: 1}]\n",
        ),
        &[(
            "condition references state.t.missing but no matching state block found",
            "tools.t.rules[0].conditions[0].path",
            6,
            "state.t",
        )],
    );
    // A wildcard counter is read as state._global.<counter>.
    assert_errors(
        "version: \"1\"\ntools:\n  \"*\":\n    rules:\n      - name: g\n        conditions: [{path: state._global.n, op: lte, value: 1}]\n        state: {counter: n, window: minute}\n",
        &[],
    );
    assert_errors(
        &with_rules(
            "      - name: a\n        conditions: [{path: state.t.c, op: lte, value: 1}]\n        state: {counter: c, window: hour}\n      - name: b\n        conditions: [{path: state.t.c, op: lte, value: 2}]\n        state: {counter: c, window: day}\n",
        ),
        &[(
            "duplicate state counter \"c\" (also used by rules[0])",
            "tools.t.rules[1].state.counter",
            10,
            "c,",
        )],
    );
}

#[test]
fn validation_rate_limit() {
    let rl = "tools.t.rules[0].rate_limit";
    assert_errors(
        &with_rules("      - {name: r, rate_limit: fast}\n"),
        &[(
            "rate_limit must be in the format \"N/window\" (e.g. \"5/hour\"), got \"fast\"",
            rl,
            5,
            "fast",
        )],
    );
    assert_errors(
        &with_rules("      - {name: r, rate_limit: 0/hour}\n"),
        &[(
            "rate_limit count must be a positive integer, got \"0\"",
            rl,
            5,
            "0/hour",
        )],
    );
    assert_errors(
        &with_rules("      - {name: r, rate_limit: 5/week}\n"),
        &[(
            "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"week\"",
            rl,
            5,
            "5/week",
        )],
    );
    assert_errors(
        &with_rules(
            "      - name: r\n        rate_limit: 5/hour\n        conditions: [{path: args.a, op: exists, value: true}]\n",
        ),
        &[(
            "rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead",
            rl,
            6,
            "5/hour",
        )],
    );
    assert_errors(
        &with_rules("      - {name: r, rate_limit: 5/hour, action: deny}\n"),
        &[(
            "rate_limit cannot be used with action \"deny\"",
            rl,
            5,
            "5/hour",
        )],
    );
    assert_errors(
        &with_rules(
            "      - {name: a, rate_limit: 5/hour}\n      - {name: b, rate_limit: 9/hour}\n",
        ),
        &[(
            "duplicate state counter \"_rate_hour\" (also used by rules[0])",
            "tools.t.rules[1].rate_limit",
            6,
            "9/hour",
        )],
    );
}

#[test]
fn every_error_of_a_file_is_reported() {
    let found = errors(
        "version: \"0\"\ndefault: maybe\ntools:\n  t:\n    rules:\n      - action: nope\n      - name: c\n        conditions: [{path: x, op: like, value: 1}]\n",
    );
    let paths: Vec<&str> = found.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        paths,
        [
            "version",
            "default",
            "tools.t.rules[0].name",
            "tools.t.rules[0].action",
            "tools.t.rules[1].conditions[0].path",
            "tools.t.rules[1].conditions[0].op",
        ]
    );
}

#[test]
fn a_hidden_tool_with_rules_warns() {
    let parsed = parse_intercept_str(
        "version: \"1\"\nhide: [t]\ntools:\n  t:\n    rules: []\n  u:\n    rules: []\n",
        "policy.yaml",
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let w: Vec<(String, String, usize, usize)> = parsed
        .warnings
        .into_iter()
        .map(|e| (e.message, e.path, e.line, e.column))
        .collect();
    assert_eq!(
        w,
        vec![e(
            "tool \"t\" is hidden: its rules never run",
            "tools.t",
            4,
            3
        )]
    );
}

#[test]
fn a_state_block_that_never_increments_warns() {
    let parsed = parse_intercept_str(
        "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: r\n        conditions: [{path: state.t.c, op: gte, value: 0}]\n        state: {counter: c, window: hour}\n",
        "policy.yaml",
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let w: Vec<(String, String)> = parsed
        .warnings
        .into_iter()
        .map(|e| (e.message, e.path))
        .collect();
    assert_eq!(
        w,
        [(
            "counter \"c\" never increments: the rule has no `lt`/`lte` condition on state.t.c"
                .to_string(),
            "tools.t.rules[0].state.counter".to_string()
        )]
    );
}

#[test]
fn unknown_fields_warn_with_a_suggestion() {
    let parsed = parse_intercept_str(
        "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: r\n        condtions: []\n        action: deny\n",
        "policy.yaml",
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert!(parsed.policy.is_some());
    let w: Vec<(String, String, usize, usize)> = parsed
        .warnings
        .into_iter()
        .map(|e| (e.message, e.path, e.line, e.column))
        .collect();
    assert_eq!(
        w,
        vec![e(
            "unknown field `condtions` is ignored by the gateway, did you mean `conditions`?",
            "tools.t.rules[0].condtions",
            6,
            9
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the shipped policies against the shipped traces.

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Calls of an mcpsim JSONL trace (`ts` RFC 3339, `args` or `arg_keys`, `upstream`).
fn read_trace(rel: &str) -> Vec<(Nanos, String, String, Args, Option<Upstream>)> {
    let text = std::fs::read_to_string(fixture(rel)).expect("fixture trace");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("fixture line is JSON");
            let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().expect("ts"))
                .expect("RFC 3339 ts")
                .timestamp_nanos_opt()
                .expect("ts in range");
            let args = match (&v["args"], &v["arg_keys"]) {
                (Value::Object(m), _) => Args::Values(m.clone()),
                (_, Value::Array(keys)) => Args::Keys(
                    keys.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect(),
                ),
                _ => Args::Unrecorded,
            };
            let upstream = v["upstream"].as_str().and_then(Upstream::parse);
            (
                ts,
                v["server"].as_str().unwrap_or("").to_string(),
                v["tool"].as_str().expect("tool").to_string(),
                args,
                upstream,
            )
        })
        .collect()
}

fn replay_fixture(policy: &str, trace: &str) -> Vec<Decision> {
    let src = std::fs::read_to_string(fixture(policy)).expect("fixture policy");
    let parsed = parse_intercept_str(&src, policy);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let policy = mcpsim::policy::load_policy_file(&fixture(policy)).expect("fixture loads");
    let mut engine = Engine::new(Arc::new(policy), EvalOptions::default());
    read_trace(trace)
        .iter()
        .map(|(ts, server, tool, args, upstream)| {
            engine.evaluate(&CallView {
                ts: *ts,
                server,
                grant: None,
                session: None,
                tool,
                args: args.into(),
                upstream: *upstream,
                reply_at: None,
                ids: None,
            })
        })
        .collect()
}

#[test]
fn github_fixture() {
    let got: Vec<String> = replay_fixture(
        "policies/intercept/github.yaml",
        "traces/intercept-github.jsonl",
    )
    .iter()
    .map(brief)
    .collect();
    let mut expected = vec![
        // five issues fit the hour; the failed third one gave its slot back
        "allow",
        "allow",
        "allow",
        "allow",
        "allow",
        "allow",
        "throttle create_issue/issues per hour",
        // `lt 3` admits two pull requests per hour
        "allow",
        "allow",
        "throttle create_pull_request/pull requests per hour",
        "deny create_pull_request/no pull requests into main",
        "deny delete_repository/block repository deletion",
        "deny (hidden)",
        "deny delete_branch/never delete protected branches",
        "allow",
        "deny delete_branch/feature branches only",
    ];
    // twelve list_issues in one minute against the global 10/minute
    expected.extend(["allow"; 10]);
    expected.extend(["throttle */global per-minute"; 2]);
    expected.push("allow");
    // a second agent shares the server's issue budget: Intercept counters are per gateway
    expected.extend(["throttle create_issue/issues per hour"; 2]);
    // the next hour
    expected.push("allow");
    assert_eq!(got, expected);
}

#[test]
fn stripe_fixture() {
    let decisions = replay_fixture(
        "policies/intercept/stripe.yaml",
        "traces/intercept-stripe.jsonl",
    );
    let got: Vec<String> = decisions.iter().map(brief).collect();
    assert_eq!(
        got,
        [
            "allow",
            "deny create_charge/max single charge",
            "deny create_charge/allowed currencies",
            "allow",
            // "1500" is a string: lte needs numbers
            "deny create_charge/max single charge",
            "throttle create_charge/daily spend cap",
            // failed upstream: the 15000 is given back, so the next 15000 fits exactly
            "allow",
            "allow",
            "throttle create_charge/daily spend cap",
            "deny create_charge/max single charge",
            "allow",
            "allow",
            "allow",
            "throttle create_refund/refunds per day",
            "deny delete_customer/block customer deletion",
            "unknown create_charge/max single charge",
            "allow",
            // next UTC day: 50000 + 49999 (truncated) + 1 (truncated) + 0 (truncated) = 100000
            "allow",
            "allow",
            "allow",
            "allow",
        ]
    );
    let th = decisions[5].throttle.as_ref().expect("spend cap details");
    assert_eq!(&*th.counter, "create_charge.daily_spend");
    assert_eq!(
        (th.used, th.max, th.increment),
        (85000.0, 100000.0, 20000.0)
    );
    assert_eq!(
        &*decisions[5].message,
        "Daily spend cap of $1,000.00 reached"
    );
    assert_eq!(
        &*decisions[13].message,
        "Rate limit of 3 per day reached. Try again later."
    );
}

// ---------------------------------------------------------------------------------------------
// The command line with Intercept policies.

/// `mcpsim` run from the repository root with a cleared environment.
fn mcpsim(args: &[&str]) -> Command {
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
            assert_cmd_snapshot!($name, $cmd);
        })
    };
}

/// Moving from the Intercept YAML to a literal hosted translation: `lt 3` meant two pull
/// requests an hour, `max: 3` means three; Intercept counts per server, policy.json per grant.
#[test]
fn diff_across_dialects() {
    snapshot!(
        "diff_intercept_to_policylayer",
        mcpsim(&[
            "diff",
            "--base",
            "fixtures/policies/intercept/github.yaml",
            "--candidate",
            "fixtures/policies/intercept/github.policy.json",
            "fixtures/traces/intercept-github.jsonl",
        ])
    );
}

#[test]
fn simulate_reads_intercept_yaml() {
    snapshot!(
        "simulate_intercept_stripe",
        mcpsim(&[
            "simulate",
            "--policy",
            "fixtures/policies/intercept/stripe.yaml",
            "fixtures/traces/intercept-stripe.jsonl",
            "--format",
            "jsonl",
        ])
    );
}

#[test]
fn check_locates_intercept_errors() {
    snapshot!(
        "check_intercept_broken",
        mcpsim(&["check", "fixtures/policies/intercept/broken.yaml"])
    );
    let out = mcpsim(&[
        "check",
        "fixtures/policies/intercept/github.yaml",
        "fixtures/policies/intercept/stripe.yaml",
    ])
    .output()
    .expect("mcpsim runs");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: fixtures/policies/intercept/github.yaml (5 tools, 3 limits)\n\
         ok: fixtures/policies/intercept/stripe.yaml (4 tools, 3 limits)\n"
    );
}

/// One row per document shape: the dialect read from its content.
#[test]
fn dialect_is_detected_from_the_keys_of_a_braced_document() {
    use mcpsim::policy::Dialect::{self, Intercept, PolicyLayer};
    let rows: [(&str, Dialect); 11] = [
        ("version: \"1\"\n", Intercept),
        ("", PolicyLayer),
        ("[1]", PolicyLayer),
        // YAML flow style, not JSON: Intercept's `rules`.
        (
            "{version: \"1\", tools: {t: {rules: [{name: r, action: deny}]}}}",
            Intercept,
        ),
        // JSON text with Intercept keys is an Intercept policy (JSON is YAML).
        (r#"{"version":"1","description":"d","tools":{}}"#, Intercept),
        (r#"  {"version":"1","tools":{"t":{"rules":[]}}}"#, Intercept),
        (
            r#"{"version":"1","default":"deny","tools":{"t":{"limits":[]}}}"#,
            PolicyLayer,
        ),
        // No telling keys: JSON is policy.json, YAML that is not JSON is Intercept.
        (r#"{"version": "1", "default": "deny"}"#, PolicyLayer),
        ("{version: \"1\", default: deny}", Intercept),
        // Broken JSON with policy.json keys, or not even YAML: reported as JSON.
        (r#"{"version":"1","all_tools":{"limits":[]},}"#, PolicyLayer),
        ("{ \"version\": ", PolicyLayer),
    ];
    for (src, want) in rows {
        assert_eq!(Dialect::detect(src), want, "{src}");
    }
    assert_eq!("yaml".parse::<Dialect>(), Ok(Intercept));
    assert!("toml".parse::<Dialect>().is_err());
}

#[test]
fn a_flow_style_yaml_policy_is_read_as_intercept_and_can_be_forced() {
    use mcpsim::policy::{Dialect, LoadOptions, check_policy_str};
    let flow = "{version: \"1\", tools: {t: {rules: [{name: r, action: deny}]}}}";
    let report = check_policy_str(flow, &LoadOptions::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let policy = report.policy.expect("compiles as YAML");
    assert!(policy.intercept().is_some());
    assert_eq!(policy.tool_names(), ["t"]);
    // Forced to policy.json, it is invalid JSON.
    let forced = LoadOptions {
        dialect: Some(Dialect::PolicyLayer),
        ..LoadOptions::default()
    };
    let report = check_policy_str(flow, &forced);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].message.starts_with("invalid JSON"),
        "{:?}",
        report.errors
    );
    // A broken policy.json is still reported as JSON.
    let broken = r#"{"version":"1","default":"deny","tools":{"t":{"limits":[]}},}"#;
    let report = check_policy_str(broken, &LoadOptions::default());
    assert!(
        report.errors[0].message.starts_with("invalid JSON"),
        "{:?}",
        report.errors
    );
}

/// The shipped flow-style copy of `github.yaml` decides every call as the block-style one.
#[test]
fn flow_style_fixture_decides_as_block_style() {
    let run = |policy: &str| {
        let out = mcpsim(&[
            "simulate",
            "--policy",
            policy,
            "fixtures/traces/intercept-github.jsonl",
            "--format",
            "jsonl",
        ])
        .output()
        .expect("mcpsim runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let block = run("fixtures/policies/intercept/github.yaml");
    assert!(block.contains("\"deny\""), "{block}");
    assert_eq!(run("fixtures/policies/intercept/github.flow.yaml"), block);
}

/// One run, three dialect choices: detection (flow-style YAML), a `:intercept` suffix that
/// beats `--dialect policylayer`, and `--dialect` for the policy that names none.
#[test]
fn one_run_mixes_dialects_across_servers() {
    snapshot!(
        "simulate_mixed_dialects",
        mcpsim(&[
            "simulate",
            "--dialect",
            "policylayer",
            "--policy",
            "github=fixtures/policies/intercept/github.policy.json",
            "--policy",
            "stripe=fixtures/policies/intercept/stripe.yaml:intercept",
            "fixtures/traces/intercept-github.jsonl",
            "fixtures/traces/intercept-stripe.jsonl",
        ])
    );
    // Without the suffix, `--dialect policylayer` reads the YAML as JSON.
    let out = mcpsim(&[
        "simulate",
        "--dialect",
        "policylayer",
        "--policy",
        "stripe=fixtures/policies/intercept/stripe.yaml",
        "fixtures/traces/intercept-stripe.jsonl",
    ])
    .output()
    .expect("mcpsim runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fixtures/policies/intercept/stripe.yaml:1:1") && err.contains("invalid JSON"),
        "{err}"
    );
    // Detection alone: the flow-style YAML and the JSON policy side by side.
    let out = mcpsim(&[
        "simulate",
        "--policy",
        "github=fixtures/policies/intercept/github.flow.yaml",
        "--policy",
        "stripe=fixtures/policies/intercept/stripe.yaml",
        "fixtures/traces/intercept-github.jsonl",
        "fixtures/traces/intercept-stripe.jsonl",
    ])
    .output()
    .expect("mcpsim runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rules phase compares across dialects by limit definition: the same call is "direct"
/// when its own limits differ and equal when they match.
#[test]
fn static_outcome_compares_across_dialects() {
    use mcpsim::engine::static_outcome;
    let yaml = compile(
        "version: \"1\"\ntools:\n  t:\n    rules:\n      - {name: r, rate_limit: 3/hour}\n",
    );
    let json = parse_policy_str(
        r#"{"version":"1","default":"allow","tools":{"t":{"limits":[{"counter":"t._rate_hour","window":"hour","max":3,"scope":"global"}]}}}"#,
        "p.json",
    )
    .expect("json policy");
    let args = Args::Values(Default::default());
    let call = CallView {
        ts: BASE * NS,
        server: "srv",
        grant: None,
        session: None,
        tool: "t",
        args: (&args).into(),
        upstream: None,
        reply_at: None,
        ids: None,
    };
    let a = static_outcome(&yaml, &call);
    let b = static_outcome(&json, &call);
    assert_eq!(a.decided, None);
    assert_eq!(a.limits.len(), 1);
    assert_eq!(&*a.limits[0].counter, "t._rate_hour");
    assert_eq!((a.limits[0].window_secs, a.limits[0].max), (3600, 3.0));
    assert_eq!(a, b);
    let hidden = compile("version: \"1\"\nhide: [t]\n");
    let h = static_outcome(&hidden, &call);
    assert_eq!(
        (h.decided, &*h.rule),
        (Some(DecisionKind::Deny), "(hidden)")
    );
}

// ---------------------------------------------------------------------------------------------
// The reservation phase held against a plain model written from spec §2.

mod reservation_model {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    const POLICY: &str = "version: \"1\"
tools:
  a:
    rules:
      - {name: ra, rate_limit: 3/minute}
      - name: spend
        conditions: [{path: state.a.total, op: lt, value: 10}]
        state: {counter: total, window: hour, increment_from: args.n}
  b:
    rules:
      - {name: rb, rate_limit: 2/minute}
  \"*\":
    rules:
      - {name: all, rate_limit: 5/minute}
";

    /// One reservation step as the spec states it: counter key, window seconds, cap, and the
    /// amount (`None` = read `args.n`).
    type Step = (&'static str, &'static str, i64, i64, Option<i64>);

    fn steps(tool: &str) -> Vec<Step> {
        let mut v: Vec<Step> = match tool {
            "a" => vec![
                ("a/ra", "a._rate_minute", 60, 3, Some(1)),
                // `lt 10` caps at 9
                ("a/spend", "a.total", 3600, 9, None),
            ],
            "b" => vec![("b/rb", "b._rate_minute", 60, 2, Some(1))],
            _ => vec![],
        };
        v.push(("*/all", "_global._rate_minute", 60, 5, Some(1)));
        v
    }

    /// The model: used per (counter, window start); tentative increments undone on refusal
    /// or on a JSON-RPC error.
    fn model(calls: &[(i64, &'static str, Option<i64>, Option<Upstream>)]) -> Vec<String> {
        let mut used: HashMap<(&str, i64), i64> = HashMap::new();
        let mut out = Vec::new();
        for &(t, tool, n, upstream) in calls {
            let mut taken: Vec<(&str, i64, i64)> = Vec::new();
            let mut verdict = "allow".to_string();
            for (rule, key, secs, cap, amount) in steps(tool) {
                let Some(amount) = amount.or(n) else {
                    verdict = format!("deny {rule}");
                    break;
                };
                let start = (BASE + t).div_euclid(secs) * secs;
                let u = used.get(&(key, start)).copied().unwrap_or(0);
                if u + amount > cap {
                    verdict = format!("throttle {rule}");
                    break;
                }
                *used.entry((key, start)).or_insert(0) += amount;
                taken.push((key, start, amount));
            }
            if verdict != "allow" || upstream == Some(Upstream::Error) {
                for (key, start, amount) in taken {
                    *used.entry((key, start)).or_insert(0) -= amount;
                }
            }
            out.push(verdict);
        }
        out
    }

    fn call_strategy() -> impl Strategy<Value = (i64, &'static str, Option<i64>, Option<Upstream>)>
    {
        (
            0i64..40,
            prop::sample::select(vec!["a", "b", "c"]),
            prop::option::weighted(0.9, 0i64..5),
            prop::sample::select(vec![
                Some(Upstream::Ok),
                Some(Upstream::Error),
                Some(Upstream::ToolError),
                None,
            ]),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn engine_matches_the_model(steps in prop::collection::vec(call_strategy(), 1..60)) {
            // Gaps between calls accumulate into timestamps.
            let mut t = 0;
            let calls: Vec<_> = steps
                .into_iter()
                .map(|(gap, tool, n, up)| {
                    t += gap;
                    (t, tool, n, up)
                })
                .collect();
            let records: Vec<C> = calls
                .iter()
                .map(|&(t, tool, n, up)| {
                    let args = match n {
                        Some(n) => format!("{{\"n\":{n}}}"),
                        None => "{}".to_string(),
                    };
                    c(t, tool, &args).up(up)
                })
                .collect();
            prop_assert_eq!(run(POLICY, &records), model(&calls));
        }
    }
}

#[test]
fn explain_lists_conditions_then_reservations() {
    use mcpsim::engine::StepOutcome;
    let policy = p(
        "tools:\n  t:\n    rules:\n      - name: small\n        conditions: [{path: args.n, op: lte, value: 5}]\n      - {name: quota, rate_limit: 1/minute}\n  \"*\":\n    rules:\n      - {name: all, action: deny}\n",
    );
    let mut engine = Engine::new(compile(&policy), EvalOptions::default());
    let args = |json: &str| match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(m)) => Args::Values(m),
        _ => panic!("test args are an object"),
    };
    let (ok, big) = (args("{\"n\":1}"), args("{\"n\":9}"));
    fn view<'a>(a: &'static str, args: &'a Args) -> CallView<'a> {
        CallView {
            ts: BASE * NS,
            server: "srv",
            grant: None,
            session: None,
            tool: a,
            args: args.into(),
            upstream: Some(Upstream::Ok),
            reply_at: None,
            ids: None,
        }
    }
    let steps = engine.explain(&view("t", &big));
    let brief: Vec<(String, Option<bool>)> = steps
        .iter()
        .map(|s| match &s.outcome {
            StepOutcome::Predicate { holds, .. } => (s.rule.to_string(), *holds),
            other => panic!("unexpected step {other:?}"),
        })
        .collect();
    assert_eq!(brief, [("t/small".to_string(), Some(false))]);

    // An unlisted tool meets only the wildcard rules; a `deny` rule ends the rules phase.
    let steps = engine.explain(&view("u", &ok));
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0].outcome, StepOutcome::Unlisted);
    assert_eq!(&*steps[1].rule, "*/all");
    assert_eq!(
        steps[1].outcome,
        StepOutcome::Predicate {
            list: "deny",
            holds: Some(true)
        }
    );
    assert_eq!(engine.evaluate(&view("u", &ok)).kind, DecisionKind::Deny);

    // After one admitted call the reservation step shows the counter full.
    let free = p("tools:\n  t:\n    rules:\n      - {name: quota, rate_limit: 1/minute}\n");
    let mut engine = Engine::new(compile(&free), EvalOptions::default());
    assert_eq!(engine.evaluate(&view("t", &ok)).kind, DecisionKind::Allow);
    let steps = engine.explain(&view("t", &ok));
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(&*steps[0].rule, "t/quota");
    assert_eq!(
        steps[0].outcome,
        StepOutcome::Predicate {
            list: "conditions",
            holds: Some(true)
        }
    );
    match &steps[1].outcome {
        StepOutcome::Limit {
            spec,
            used,
            increment,
            fits,
            ..
        } => {
            assert_eq!(&*spec.counter, "t._rate_minute");
            assert_eq!((*used, *increment, *fits), (1.0, Some(1.0), Some(false)));
        }
        other => panic!("expected the reservation, got {other:?}"),
    }
    assert_eq!(
        engine.evaluate(&view("t", &ok)).kind,
        DecisionKind::Throttle
    );
}
