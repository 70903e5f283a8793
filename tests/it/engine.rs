//! Semantics of the evaluator, row by row against docs spec/policy.md §1.
//!
//! Each row: a policy, options, a sequence of calls, and the expected (decision, rule id) of
//! every call in order. Times are seconds since the epoch (fractions allowed).

use std::sync::Arc;

use mcpsim::engine::{
    Algorithm, Decision, DecisionKind, Engine, EvalOptions, LimitSpec, Scope, StepOutcome,
    static_outcome,
};
use mcpsim::policy::parse_policy_str;
use mcpsim::trace::{Args, CallRecord, Nanos, Origin, Upstream};
use serde_json::{Value, json};

const S: Nanos = 1_000_000_000;

fn policy(v: Value) -> Arc<mcpsim::engine::Policy> {
    match parse_policy_str(&v.to_string(), "test.json") {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("test policy does not load: {e}"),
    }
}

/// A call builder.
#[derive(Clone)]
struct C(CallRecord);

fn call(secs: f64, tool: &str, args: Value) -> C {
    let Value::Object(map) = args else {
        panic!("args must be an object")
    };
    C(CallRecord {
        ts: (secs * 1e9).round() as Nanos,
        server: Arc::from("srv"),
        grant: Some(Arc::from("g1")),
        session: Some(Arc::from("s1")),
        tool: Arc::from(tool),
        args: Args::Values(map),
        id: None,
        recorded: None,
        upstream: None,
        latency_ms: None,
        origin: Origin::default(),
    })
}

impl C {
    fn grant(mut self, g: Option<&str>) -> C {
        self.0.grant = g.map(Arc::from);
        self
    }
    fn session(mut self, s: &str) -> C {
        self.0.session = Some(Arc::from(s));
        self
    }
    fn server(mut self, s: &str) -> C {
        self.0.server = Arc::from(s);
        self
    }
    fn upstream(mut self, u: Upstream) -> C {
        self.0.upstream = Some(u);
        self
    }
    fn keys(mut self, keys: &[&str]) -> C {
        self.0.args = Args::Keys(keys.iter().map(|k| k.to_string()).collect());
        self
    }
    fn unrecorded(mut self) -> C {
        self.0.args = Args::Unrecorded;
        self
    }
}

fn run(p: Value, opts: EvalOptions, calls: &[C]) -> Vec<Decision> {
    let mut engine = Engine::new(policy(p), opts);
    calls.iter().map(|c| engine.evaluate(&c.0.view())).collect()
}

/// Assert kinds and rule ids, naming the row and call on failure.
fn check(row: &str, got: &[Decision], want: &[(&str, &str)]) {
    assert_eq!(got.len(), want.len(), "{row}: number of calls");
    for (i, (d, (kind, rule))) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (d.kind.as_str(), &*d.rule),
            (*kind, *rule),
            "{row}: call #{i} (message: {:?})",
            d.message
        );
    }
}

/// Expected (decision, rule id) per call.
type Want = Vec<(&'static str, &'static str)>;
/// A table row: name, policy or options, calls, expectations.
type Row<T> = (&'static str, T, Vec<C>, Want);

const ALLOW: (&str, &str) = ("allow", "");
const HIDDEN: (&str, &str) = ("deny", "(hidden)");
const DEFAULT_DENY: (&str, &str) = ("deny", "(default deny)");

fn opts() -> EvalOptions {
    EvalOptions::default()
}

#[test]
fn steps_hide_default_require_deny_if() {
    let rows: Vec<Row<Value>> = vec![
        (
            "listed tool with {} is allowed",
            json!({"version":"1","default":"deny","tools":{"t":{}}}),
            vec![call(0.0, "t", json!({}))],
            vec![ALLOW],
        ),
        (
            "hidden tool is denied even when configured",
            json!({"version":"1","default":"allow","hide":["t"],"tools":{"t":{}}}),
            vec![call(0.0, "t", json!({})), call(1.0, "u", json!({}))],
            vec![HIDDEN, ALLOW],
        ),
        (
            "\"*\" hides every tool, listed or not",
            json!({"version":"1","default":"allow","hide":["*"],"tools":{"t":{}}}),
            vec![call(0.0, "t", json!({})), call(1.0, "u", json!({}))],
            vec![HIDDEN, HIDDEN],
        ),
        (
            "default deny: unlisted tools are denied, all_tools does not rescue them",
            json!({"version":"1","default":"deny","all_tools":{"limits":[{"counter":"c","window":"minute","max":5}]},"tools":{"t":{}}}),
            vec![call(0.0, "u", json!({})), call(1.0, "t", json!({}))],
            vec![DEFAULT_DENY, ALLOW],
        ),
        (
            "default allow: unlisted tools pass (through all_tools limits)",
            json!({"version":"1","default":"allow","all_tools":{"limits":[{"counter":"c","window":"minute","max":1}]}}),
            vec![call(0.0, "u", json!({})), call(1.0, "v", json!({}))],
            vec![ALLOW, ("throttle", "/all_tools/limits/c")],
        ),
        (
            "require: first failing predicate in file order denies",
            json!({"version":"1","default":"deny","tools":{"t":{"require":[
                {"path":"args.a","op":"eq","value":1},
                {"path":"args.b","op":"eq","value":2}]}}}),
            vec![
                call(0.0, "t", json!({"a":1,"b":2})),
                call(1.0, "t", json!({"a":0,"b":0})),
                call(2.0, "t", json!({"a":1,"b":0})),
                call(3.0, "t", json!({"b":2})),
            ],
            vec![
                ALLOW,
                ("deny", "/tools/t/require/args.a-eq"),
                ("deny", "/tools/t/require/args.b-eq"),
                ("deny", "/tools/t/require/args.a-eq"),
            ],
        ),
        (
            "deny_if: first holding predicate denies; a missing argument does not deny",
            json!({"version":"1","default":"deny","tools":{"t":{"deny_if":[
                {"path":"args.p","op":"regex","value":"des|md5"},
                {"path":"args.n","op":"gt","value":10}]}}}),
            vec![
                call(0.0, "t", json!({"p":"aes256"})),
                call(1.0, "t", json!({"p":"3des","n":11})),
                call(2.0, "t", json!({"p":"aes","n":11})),
                call(3.0, "t", json!({})),
            ],
            vec![
                ALLOW,
                ("deny", "/tools/t/deny_if/args.p-regex"),
                ("deny", "/tools/t/deny_if/args.n-gt"),
                ALLOW,
            ],
        ),
        (
            "require runs before deny_if",
            json!({"version":"1","default":"deny","tools":{"t":{
                "require":[{"path":"args.a","op":"exists","value":true}],
                "deny_if":[{"path":"args.b","op":"exists","value":true}]}}}),
            vec![call(0.0, "t", json!({"b":1}))],
            vec![("deny", "/tools/t/require/args.a-exists")],
        ),
        (
            "a deny consumes nothing",
            json!({"version":"1","default":"deny","tools":{"t":{
                "deny_if":[{"path":"args.bad","op":"eq","value":true}],
                "limits":[{"counter":"c","window":"minute","max":1}]}}}),
            vec![
                call(0.0, "t", json!({"bad":true})),
                call(1.0, "t", json!({})),
            ],
            vec![("deny", "/tools/t/deny_if/args.bad-eq"), ALLOW],
        ),
    ];
    for (name, p, calls, want) in rows {
        check(name, &run(p, opts(), &calls), &want);
    }
}

#[test]
fn deny_messages_use_on_deny_then_tool_on_deny_then_generated() {
    let p = json!({"version":"1","default":"deny","tools":{
        "a":{"require":[{"path":"args.x","op":"eq","value":"y","on_deny":"x must be y"}]},
        "b":{"on_deny":"b refused","require":[{"path":"args.x","op":"eq","value":"y"}]},
        "c":{"deny_if":[{"path":"args.p","op":"regex","value":"des|md5"}],
             "require":[{"path":"args.pfs","op":"eq","value":"enable"}]}}});
    let got = run(
        p,
        opts(),
        &[
            call(0.0, "a", json!({})),
            call(0.0, "b", json!({})),
            call(0.0, "c", json!({"pfs":"enable","p":"md5"})),
            call(0.0, "c", json!({})),
            call(0.0, "c", json!({"pfs":"disable"})),
            call(0.0, "z", json!({})),
        ],
    );
    let messages: Vec<&str> = got.iter().map(|d| &*d.message).collect();
    // A require that fails on a missing argument says so.
    assert_eq!(
        messages,
        [
            "x must be y (argument absent)",
            "b refused (argument absent)",
            "denied: args.p regex \"des|md5\"",
            "require failed: args.pfs eq \"enable\" (argument absent)",
            "require failed: args.pfs eq \"enable\"",
            "tool is not listed under `tools` and the policy default is deny",
        ]
    );
}

/// One row per operator outcome: (op, policy value, args, holds). The predicate sits in a
/// `deny_if`, so "holds" shows as a deny and "does not hold" as an allow.
#[test]
fn operators_match_no_match_missing_path_wrong_type() {
    let rows: Vec<(&str, Value, Value, bool)> = vec![
        ("eq", json!(5), json!({"x":5.0}), true),
        ("eq", json!("a"), json!({"x":"a"}), true),
        ("eq", json!("a"), json!({"x":"b"}), false),
        ("eq", json!(5), json!({}), false),
        ("eq", json!(5), json!({"x":"5"}), false),
        (
            "eq",
            json!([1, {"k":"v"}]),
            json!({"x":[1, {"k":"v"}]}),
            true,
        ),
        ("eq", json!(null), json!({"x":null}), true),
        ("neq", json!("a"), json!({"x":"b"}), true),
        ("neq", json!("a"), json!({"x":"a"}), false),
        ("neq", json!("a"), json!({}), false),
        ("neq", json!(5), json!({"x":"5"}), true),
        ("in", json!(["a", "b"]), json!({"x":"b"}), true),
        ("in", json!(["a", "b"]), json!({"x":"c"}), false),
        ("in", json!(["a"]), json!({}), false),
        ("in", json!([1, 2]), json!({"x":2.0}), true),
        ("in", json!([2]), json!({"x":"2"}), false),
        ("not_in", json!(["a"]), json!({"x":"c"}), true),
        ("not_in", json!(["a"]), json!({"x":"a"}), false),
        ("not_in", json!(["a"]), json!({}), false),
        ("not_in", json!([5]), json!({"x":"5"}), true),
        ("lt", json!(2), json!({"x":1}), true),
        ("lt", json!(2), json!({"x":2}), false),
        ("lt", json!(2), json!({}), false),
        ("lt", json!(2), json!({"x":"1"}), false),
        ("lte", json!(2), json!({"x":2}), true),
        ("lte", json!(2), json!({"x":2.5}), false),
        ("lte", json!(2), json!({}), false),
        ("lte", json!(2), json!({"x":null}), false),
        ("gt", json!(2), json!({"x":3}), true),
        ("gt", json!(2), json!({"x":2}), false),
        ("gt", json!(2), json!({}), false),
        ("gt", json!(2), json!({"x":true}), false),
        ("gte", json!(2), json!({"x":2.0}), true),
        ("gte", json!(2), json!({"x":1}), false),
        ("gte", json!(2), json!({}), false),
        ("gte", json!(2), json!({"x":[3]}), false),
        ("regex", json!("des|md5"), json!({"x":"aes-md5-96"}), true),
        ("regex", json!("^des$"), json!({"x":"3des"}), false),
        ("regex", json!("des"), json!({}), false),
        ("regex", json!("5"), json!({"x":5}), false),
        ("contains", json!("lo w"), json!({"x":"hello world"}), true),
        ("contains", json!("b"), json!({"x":["a", "b"]}), true),
        ("contains", json!(2), json!({"x":[1, 2.0]}), true),
        ("contains", json!("z"), json!({"x":"abc"}), false),
        ("contains", json!("z"), json!({"x":["a"]}), false),
        ("contains", json!("a"), json!({}), false),
        ("contains", json!(5), json!({"x":5}), false),
        ("contains", json!("a"), json!({"x":{"a":1}}), false),
        ("contains", json!(1), json!({"x":"1"}), false),
        ("exists", json!(true), json!({"x":0}), true),
        ("exists", json!(true), json!({"x":null}), false),
        ("exists", json!(true), json!({}), false),
        ("exists", json!(false), json!({}), true),
        ("exists", json!(false), json!({"x":null}), true),
        ("exists", json!(false), json!({"x":"v"}), false),
    ];
    for (op, value, args, holds) in rows {
        let p = json!({"version":"1","default":"deny","tools":{"t":{"deny_if":[
            {"path":"args.x","op":op,"value":value}]}}});
        let row = format!("{op} {value} on {args}");
        let rule = format!("/tools/t/deny_if/args.x-{op}");
        let want = if holds {
            ("deny", rule.as_str())
        } else {
            ALLOW
        };
        check(&row, &run(p, opts(), &[call(0.0, "t", args)]), &[want]);
    }
}

#[test]
fn nested_paths_walk_objects_only() {
    let p = json!({"version":"1","default":"deny","tools":{"t":{"require":[
        {"path":"args.a.b","op":"eq","value":1}]}}});
    let rule = "/tools/t/require/args.a.b-eq";
    let got = run(
        p,
        opts(),
        &[
            call(0.0, "t", json!({"a":{"b":1}})),
            call(0.0, "t", json!({"a":{"b":2}})),
            call(0.0, "t", json!({"a":"b"})),
            call(0.0, "t", json!({"a":[{"b":1}]})),
            call(0.0, "t", json!({"a.b":1})),
        ],
    );
    check(
        "nested",
        &got,
        &[
            ALLOW,
            ("deny", rule),
            ("deny", rule),
            ("deny", rule),
            ("deny", rule),
        ],
    );
}

fn one_limit(window: Value, max: f64, extra: Value) -> Value {
    let mut limit = json!({"counter":"c","window":window,"max":max});
    if let (Value::Object(l), Value::Object(e)) = (&mut limit, extra) {
        l.extend(e);
    }
    json!({"version":"1","default":"deny","tools":{"t":{"limits":[limit]}}})
}

const T: (&str, &str) = ("throttle", "/tools/t/limits/c");

#[test]
fn fixed_windows_of_every_unit_reset_exactly_at_the_boundary() {
    let rows: Vec<(&str, Value, Vec<f64>, Want)> = vec![
        (
            "second",
            json!("second"),
            vec![0.0, 0.999_999_999, 1.0],
            vec![ALLOW, T, ALLOW],
        ),
        (
            "minute",
            json!("minute"),
            vec![0.0, 59.999_999_999, 60.0],
            vec![ALLOW, T, ALLOW],
        ),
        (
            "minute is calendar aligned, not relative to the first call",
            json!("minute"),
            vec![30.0, 59.9, 60.0, 89.0],
            vec![ALLOW, T, ALLOW, T],
        ),
        (
            "hour",
            json!("hour"),
            vec![10.0, 3599.999, 3600.0],
            vec![ALLOW, T, ALLOW],
        ),
        (
            "day",
            json!("day"),
            vec![86_000.0, 86_399.999, 86_400.0],
            vec![ALLOW, T, ALLOW],
        ),
        (
            "numeric window aligned to multiples of N since the epoch",
            json!(90),
            vec![80.0, 89.999, 90.0, 179.0, 180.0],
            vec![ALLOW, T, ALLOW, T, ALLOW],
        ),
    ];
    for (name, window, times, want) in rows {
        let calls: Vec<C> = times.iter().map(|&t| call(t, "t", json!({}))).collect();
        check(
            name,
            &run(one_limit(window, 1.0, json!({})), opts(), &calls),
            &want,
        );
    }
}

#[test]
fn throttle_carries_counter_window_used_max_and_retry_after() {
    let got = run(
        one_limit(json!("minute"), 2.0, json!({"scope":"server"})),
        opts(),
        &[
            call(120.5, "t", json!({})),
            call(130.0, "t", json!({})),
            call(150.0, "t", json!({})),
        ],
    );
    check("throttle details", &got, &[ALLOW, ALLOW, T]);
    let t = got[2].throttle.as_ref().expect("throttle details");
    assert_eq!(&*t.counter, "c");
    assert_eq!(t.scope, Scope::Server);
    assert_eq!(t.window_start, 120 * S);
    assert_eq!(t.retry_after, 180 * S);
    assert_eq!((t.used, t.max, t.increment), (2.0, 2.0, 1.0));
    assert_eq!(
        &*got[2].message,
        "rate limit exceeded: counter `c` allows 2 per minute (scope server)"
    );
}

#[test]
fn sliding_window_counts_the_last_window_half_open() {
    let sliding = json!({"algorithm":"sliding"});
    let times = [30.0, 60.0, 89.999, 90.0, 100.0];
    let calls: Vec<C> = times.iter().map(|&t| call(t, "t", json!({}))).collect();
    let got = run(one_limit(json!("minute"), 1.0, sliding), opts(), &calls);
    check("sliding", &got, &[ALLOW, T, T, ALLOW, T]);
    let t = got[1].throttle.as_ref().expect("throttle details");
    assert_eq!((t.window_start, t.retry_after), (0, 90 * S));
    // The fixed algorithm on the same calls resets at :60.
    let fixed = run(one_limit(json!("minute"), 1.0, json!({})), opts(), &calls);
    check("fixed contrast", &fixed, &[ALLOW, ALLOW, T, T, T]);
}

#[test]
fn scopes_key_counters_by_server_grant_session() {
    let base = || call(0.0, "t", json!({}));
    let rows: Vec<(&str, Vec<C>, Want)> = vec![
        (
            "grant",
            vec![
                base(),
                base().grant(Some("g2")),
                base().session("s2"),
                base().server("other"),
                base().grant(None),
                base().grant(None).session("s9"),
            ],
            vec![ALLOW, ALLOW, T, ALLOW, ALLOW, T],
        ),
        (
            "session",
            vec![
                base(),
                base().session("s2"),
                base(),
                base().grant(Some("g2")),
                base().server("other"),
            ],
            vec![ALLOW, ALLOW, T, ALLOW, ALLOW],
        ),
        (
            "server",
            vec![
                base(),
                base().grant(Some("g2")).session("s2"),
                base().server("other"),
            ],
            vec![ALLOW, T, ALLOW],
        ),
        (
            "global",
            vec![base(), base().server("other").grant(Some("g2"))],
            vec![ALLOW, T],
        ),
    ];
    for (scope, calls, want) in rows {
        let p = one_limit(json!("minute"), 1.0, json!({"scope":scope}));
        check(scope, &run(p, opts(), &calls), &want);
    }
}

#[test]
fn counters_are_shared_by_name_across_tools() {
    let lim = json!([{"counter":"shared","window":"minute","max":2}]);
    let p = json!({"version":"1","default":"deny","tools":{"a":{"limits":lim},"b":{"limits":lim}}});
    let got = run(
        p,
        opts(),
        &[
            call(0.0, "a", json!({})),
            call(1.0, "b", json!({})),
            call(2.0, "a", json!({})),
            call(3.0, "b", json!({})),
        ],
    );
    check(
        "shared",
        &got,
        &[
            ALLOW,
            ALLOW,
            ("throttle", "/tools/a/limits/shared"),
            ("throttle", "/tools/b/limits/shared"),
        ],
    );
}

#[test]
fn a_throttled_call_consumes_nothing_from_any_counter() {
    // The tool limit throttles the third `t`; had it consumed from all_tools, `u`'s first call
    // would be throttled too.
    let p = json!({"version":"1","default":"deny",
        "all_tools":{"limits":[{"counter":"all","window":"minute","max":3}]},
        "tools":{"t":{"limits":[{"counter":"t_rate","window":"minute","max":2}]},"u":{}}});
    let calls = [0.0, 1.0, 2.0].map(|s| call(s, "t", json!({})));
    let mut calls = calls.to_vec();
    calls.push(call(3.0, "u", json!({})));
    calls.push(call(4.0, "u", json!({})));
    check(
        "tool limit throttles first",
        &run(p, opts(), &calls),
        &[
            ALLOW,
            ALLOW,
            ("throttle", "/tools/t/limits/t_rate"),
            ALLOW,
            ("throttle", "/all_tools/limits/all"),
        ],
    );
    // And the other way round: all_tools throttles, the tool counter is not charged.
    let p = json!({"version":"1","default":"deny",
        "all_tools":{"limits":[{"counter":"all","window":"second","max":1}]},
        "tools":{"t":{"limits":[{"counter":"t_rate","window":"minute","max":2}]}}});
    let calls: Vec<C> = [0.0, 0.5, 1.0, 2.0]
        .iter()
        .map(|&s| call(s, "t", json!({})))
        .collect();
    check(
        "all_tools throttles",
        &run(p, opts(), &calls),
        &[
            ALLOW,
            ("throttle", "/all_tools/limits/all"),
            ALLOW,
            ("throttle", "/tools/t/limits/t_rate"),
        ],
    );
}

#[test]
fn rollback_follows_the_recorded_upstream_outcome() {
    let p = || one_limit(json!("minute"), 1.0, json!({}));
    let c = |s: f64| call(s, "t", json!({}));
    let rows: Vec<Row<EvalOptions>> = vec![
        (
            "a JSON-RPC error gives the reservation back",
            opts(),
            vec![c(0.0).upstream(Upstream::Error), c(1.0), c(2.0)],
            vec![ALLOW, ALLOW, T],
        ),
        (
            "an isError result is a success by default",
            opts(),
            vec![c(0.0).upstream(Upstream::ToolError), c(1.0)],
            vec![ALLOW, T],
        ),
        (
            "--rollback-on tool-error",
            EvalOptions {
                rollback_on_tool_error: true,
                ..opts()
            },
            vec![c(0.0).upstream(Upstream::ToolError), c(1.0), c(2.0)],
            vec![ALLOW, ALLOW, T],
        ),
        (
            "no recorded outcome counts as success",
            opts(),
            vec![c(0.0), c(1.0).upstream(Upstream::Ok)],
            vec![ALLOW, T],
        ),
        (
            "--assume-upstream failure",
            EvalOptions {
                assume_upstream_failure: true,
                ..opts()
            },
            vec![c(0.0), c(1.0), c(2.0).upstream(Upstream::Ok), c(3.0)],
            vec![ALLOW, ALLOW, ALLOW, T],
        ),
    ];
    for (name, o, calls, want) in rows {
        check(name, &run(p(), o, &calls), &want);
    }
}

#[test]
fn approval_holds_calls_and_assume_approved_continues_them() {
    let p = || {
        json!({"version":"1","default":"deny","tools":{
        "pay":{"approve_if":[{"path":"args.amount","op":"gt","value":100}],
               "limits":[{"counter":"c","window":"minute","max":1}]},
        "wipe":{"require_approval":true,"require":[{"path":"args.ok","op":"eq","value":true}]}}})
    };
    let approve_if = ("approval", "/tools/pay/approve_if/args.amount-gt");
    let calls = vec![
        call(0.0, "pay", json!({"amount":500})),
        call(1.0, "pay", json!({"amount":50})),
        call(2.0, "pay", json!({"amount":500})),
        call(3.0, "wipe", json!({"ok":true})),
        call(4.0, "wipe", json!({"ok":false})),
    ];
    let got = run(p(), opts(), &calls);
    check(
        "held",
        &got,
        &[
            approve_if,
            ALLOW,
            approve_if,
            ("approval", "/tools/wipe/require_approval"),
            ("deny", "/tools/wipe/require/args.ok-eq"),
        ],
    );
    assert_eq!(&*got[0].message, "held for approval: args.amount gt 100");
    assert!(got.iter().all(|d| !d.approval_required));

    let assume = EvalOptions {
        assume_approved: true,
        ..opts()
    };
    let got = run(p(), assume, &calls);
    let kinds: Vec<(DecisionKind, bool)> =
        got.iter().map(|d| (d.kind, d.approval_required)).collect();
    assert_eq!(
        kinds,
        [
            (DecisionKind::Allow, true),
            (DecisionKind::Throttle, false),
            (DecisionKind::Throttle, true),
            (DecisionKind::Allow, true),
            (DecisionKind::Deny, false),
        ]
    );
    assert_eq!(&*got[0].rule, "/tools/pay/approve_if/args.amount-gt");
    assert_eq!(&*got[2].rule, "/tools/pay/limits/c");
}

/// Keys only, an undecided predicate, and an `increment_from` argument absent from the keys:
/// denied whichever way the predicate turns out (by it, or by the limit), so denied by the
/// limit; unless an approval step could hold the call first, or a limit before it throttles.
#[test]
fn a_certain_limit_denial_wins_over_an_undecided_predicate() {
    let p = |extra: Value| {
        let mut tool = json!({
        "require":[{"path":"args.currency","op":"eq","value":"EUR"}],
        "limits":[
            {"counter":"rate","window":"minute","max":1},
            {"counter":"spend","window":"day","max":1000,"increment_from":"args.amount"}
        ]});
        for (k, v) in extra.as_object().unwrap() {
            tool[k] = v.clone();
        }
        json!({"version":"1","default":"deny","tools":{"charge": tool}})
    };
    let spend = ("deny", "/tools/charge/limits/spend");
    let unknown = ("unknown", "/tools/charge/require/args.currency-eq");
    let rows: Vec<Row<Value>> = vec![
        (
            "the amount's key is absent: denied by the limit",
            p(json!({})),
            vec![call(0.0, "charge", json!({})).keys(&["currency"])],
            vec![spend],
        ),
        (
            "the amount's key is there: its value may fit, unknown",
            p(json!({})),
            vec![call(0.0, "charge", json!({})).keys(&["currency", "amount"])],
            vec![unknown],
        ),
        (
            "a limit before it that may throttle decides first: unknown",
            p(json!({})),
            vec![
                call(0.0, "charge", json!({"currency":"EUR","amount":1})),
                call(1.0, "charge", json!({})).keys(&["currency"]),
            ],
            vec![ALLOW, unknown],
        ),
        (
            "an approval step could hold the call first: unknown",
            p(json!({"require_approval": true})),
            vec![call(0.0, "charge", json!({})).keys(&["currency"])],
            vec![unknown],
        ),
    ];
    for (row, policy, calls, want) in rows {
        check(row, &run(policy, opts(), &calls), &want);
    }
}

#[test]
fn unknown_when_values_were_not_recorded() {
    let p = || {
        json!({"version":"1","default":"deny","tools":{"t":{
        "require":[{"path":"args.a","op":"eq","value":1},{"path":"args.k","op":"exists","value":true}],
        "deny_if":[{"path":"args.d","op":"exists","value":true}],
        "limits":[{"counter":"c","window":"minute","max":1}]}}})
    };
    let a_eq = ("unknown", "/tools/t/require/args.a-eq");
    let rows: Vec<Row<EvalOptions>> = vec![
        (
            "nothing recorded: unknown on the first undecidable predicate",
            opts(),
            vec![call(0.0, "t", json!({})).unrecorded()],
            vec![a_eq],
        ),
        (
            "keys only: exists on a recorded top-level key is decided (deny wins over unknown)",
            opts(),
            vec![
                call(0.0, "t", json!({})).keys(&["a"]),
                call(1.0, "t", json!({})).keys(&["a", "k", "d"]),
            ],
            vec![
                ("deny", "/tools/t/require/args.k-exists"),
                ("deny", "/tools/t/deny_if/args.d-exists"),
            ],
        ),
        (
            "keys only: an absent key is a missing argument, decided",
            opts(),
            vec![call(0.0, "t", json!({})).keys(&["k"])],
            vec![("deny", "/tools/t/require/args.a-eq")],
        ),
        (
            "unknown calls consume quota by default",
            opts(),
            vec![
                call(0.0, "t", json!({})).keys(&["a", "k"]),
                call(1.0, "t", json!({"a":1,"k":1})),
            ],
            vec![a_eq, T],
        ),
        (
            "--assume-unknown deny: unknown calls consume nothing",
            EvalOptions {
                assume_unknown_deny: true,
                ..opts()
            },
            vec![
                call(0.0, "t", json!({})).keys(&["a", "k"]),
                call(1.0, "t", json!({"a":1,"k":1})),
            ],
            vec![a_eq, ALLOW],
        ),
        (
            "an unknown call that would not fit consumes nothing",
            opts(),
            vec![
                call(0.0, "t", json!({"a":1,"k":1})),
                call(1.0, "t", json!({})).unrecorded(),
                call(60.0, "t", json!({"a":1,"k":1})),
            ],
            vec![ALLOW, a_eq, ALLOW],
        ),
    ];
    for (name, o, calls, want) in rows {
        check(name, &run(p(), o, &calls), &want);
    }
}

/// An increment the trace did not record (`increment_from`, arguments not recorded) makes the
/// call unknown; that limit is neither checked nor charged, the call's other limits are, as for
/// any unknown call. A refusal by a limit after it is a refusal of unknown kind; one before it
/// decides.
#[test]
fn an_unknown_increment_skips_its_limit_and_charges_the_others() {
    let p = |spend_first: bool| {
        let spend =
            json!({"counter":"spend","window":"day","max":100,"increment_from":"args.amount"});
        let calls = json!({"counter":"calls","window":"minute","max":2});
        let limits = if spend_first {
            json!([spend, calls])
        } else {
            json!([calls, spend])
        };
        json!({"version":"1","default":"allow","tools":{"charge":{"limits":limits},"list":{}},
               "all_tools":{"limits":[{"counter":"all","window":"minute","max":2}]}})
    };
    let spend = ("unknown", "/tools/charge/limits/spend");
    let all = ("throttle", "/all_tools/limits/all");
    let then_two_lists = |first: C| {
        vec![
            first,
            call(1.0, "list", json!({})),
            call(2.0, "list", json!({})),
        ]
    };
    let rows: Vec<(&str, Value, EvalOptions, Vec<C>, Want)> = vec![
        (
            "the unknown charge takes one of `all`: the second list is throttled",
            p(true),
            opts(),
            then_two_lists(call(0.0, "charge", json!({})).unrecorded()),
            vec![spend, ALLOW, all],
        ),
        (
            "--assume-unknown deny: it takes nothing",
            p(true),
            EvalOptions {
                assume_unknown_deny: true,
                ..opts()
            },
            then_two_lists(call(0.0, "charge", json!({})).unrecorded()),
            vec![spend, ALLOW, ALLOW],
        ),
        (
            "a failed upstream call gives it back",
            p(true),
            opts(),
            then_two_lists(
                call(0.0, "charge", json!({}))
                    .unrecorded()
                    .upstream(Upstream::Error),
            ),
            vec![spend, ALLOW, ALLOW],
        ),
        (
            "a full counter after the unknown one: refused, of unknown kind, nothing taken",
            p(true),
            opts(),
            vec![
                call(0.0, "charge", json!({"amount": 1})),
                call(1.0, "charge", json!({"amount": 1})),
                call(2.0, "charge", json!({})).unrecorded(),
                call(61.0, "list", json!({})),
                call(62.0, "list", json!({})),
            ],
            vec![ALLOW, ALLOW, spend, ALLOW, ALLOW],
        ),
        (
            "a full counter before the unknown one: throttled by it",
            p(false),
            opts(),
            vec![
                call(0.0, "charge", json!({"amount": 1})),
                call(1.0, "charge", json!({"amount": 1})),
                call(2.0, "charge", json!({})).unrecorded(),
            ],
            vec![ALLOW, ALLOW, ("throttle", "/tools/charge/limits/calls")],
        ),
    ];
    for (name, p, o, calls, want) in rows {
        check(name, &run(p, o, &calls), &want);
    }
}

#[test]
fn unknown_approval_when_approve_if_is_undecidable() {
    let p = json!({"version":"1","default":"deny","tools":{"t":{
        "approve_if":[{"path":"args.n","op":"gt","value":5},{"path":"args.flag","op":"exists","value":true}]}}});
    let got = run(
        p,
        opts(),
        &[
            call(0.0, "t", json!({})).keys(&["n"]),
            call(0.0, "t", json!({})).keys(&["n", "flag"]),
            call(0.0, "t", json!({})).keys(&[]),
        ],
    );
    check(
        "approve_if unknown",
        &got,
        &[
            ("unknown", "/tools/t/approve_if/args.n-gt"),
            ("approval", "/tools/t/approve_if/args.flag-exists"),
            ALLOW,
        ],
    );
}

#[test]
fn increment_from_spends_argument_values() {
    let p = || one_limit(json!("day"), 100.0, json!({"increment_from":"args.amount"}));
    let got = run(
        p(),
        opts(),
        &[
            call(0.0, "t", json!({"amount":60})),
            call(1.0, "t", json!({"amount":50})),
            call(2.0, "t", json!({"amount":40.0})),
            call(3.0, "t", json!({})),
            call(4.0, "t", json!({"amount":"12"})),
            call(5.0, "t", json!({})).unrecorded(),
            call(6.0, "t", json!({})).keys(&["amount"]),
            call(7.0, "t", json!({})).keys(&["other"]),
            call(8.0, "t", json!({"amount":0})),
        ],
    );
    check(
        "spend cap",
        &got,
        &[
            ALLOW,
            T,
            ALLOW,
            ("deny", "/tools/t/limits/c"),
            ("deny", "/tools/t/limits/c"),
            ("unknown", "/tools/t/limits/c"),
            ("unknown", "/tools/t/limits/c"),
            ("deny", "/tools/t/limits/c"),
            ALLOW,
        ],
    );
    let t = got[1].throttle.as_ref().expect("throttle details");
    assert_eq!((t.used, t.increment, t.max), (60.0, 50.0, 100.0));
    assert_eq!(
        &*got[3].message,
        "`increment_from` argument `args.amount` is missing"
    );
    assert_eq!(
        &*got[4].message,
        "`increment_from` argument `args.amount` is not a number"
    );
}

#[test]
fn static_outcome_compares_limits_by_definition() {
    let a = policy(json!({"version":"1","default":"deny","tools":{
        "x":{"limits":[{"counter":"other","window":"hour","max":9}]},
        "t":{"limits":[{"counter":"c","window":"minute","max":5}]}}}));
    let b = policy(json!({"version":"1","default":"deny","tools":{
        "t":{"limits":[{"counter":"c","window":60,"max":5}]}}}));
    let c = policy(json!({"version":"1","default":"deny","tools":{
        "t":{"limits":[{"counter":"c","window":"minute","max":6}]}}}));
    let d = policy(json!({"version":"1","default":"deny","tools":{
        "t":{"require":[{"path":"args.a","op":"exists","value":true}]}}}));
    let rec = call(0.0, "t", json!({}));
    let v = rec.0.view();
    let sa = static_outcome(&a, &v);
    assert_eq!(
        sa,
        static_outcome(&b, &v),
        "same definition, different slot"
    );
    assert_ne!(sa, static_outcome(&c, &v), "different max");
    assert_eq!(sa.decided, None);
    assert_eq!(
        sa.limits,
        [LimitSpec {
            counter: Arc::from("c"),
            window_secs: 60,
            max: 5.0,
            scope: Scope::Grant,
            algorithm: Algorithm::Fixed,
            increment_from: None,
        }]
    );
    let sd = Engine::new(d, opts()).static_outcome(&v);
    assert_eq!(sd.decided, Some(DecisionKind::Deny));
    assert_eq!(&*sd.rule, "/tools/t/require/args.a-exists");
    // Counter state does not enter: a throttled call has the same static outcome.
    let mut e = Engine::new(c.clone(), opts());
    for _ in 0..7 {
        e.evaluate(&v);
    }
    assert_eq!(e.evaluate(&v).kind, DecisionKind::Throttle);
    assert_eq!(e.static_outcome(&v), static_outcome(&c, &v));
}

#[test]
fn explain_lists_every_rule_and_counter_on_the_way() {
    let p = policy(json!({"version":"1","default":"deny",
        "all_tools":{"limits":[{"counter":"all","window":"hour","max":10,"scope":"server"}]},
        "tools":{"t":{
            "require":[{"path":"args.a","op":"eq","value":1}],
            "deny_if":[{"path":"args.b","op":"exists","value":true}],
            "approve_if":[{"path":"args.n","op":"gt","value":5}],
            "limits":[{"counter":"c","window":"minute","max":2,"algorithm":"sliding"}]}}}));
    let mut engine = Engine::new(p, opts());
    let first = call(100.0, "t", json!({"a":1}));
    engine.evaluate(&first.0.view());
    let c = call(130.0, "t", json!({"a":1}));
    let steps = engine.explain(&c.0.view());
    let rules: Vec<&str> = steps.iter().map(|s| &*s.rule).collect();
    assert_eq!(
        rules,
        [
            "/tools/t/require/args.a-eq",
            "/tools/t/deny_if/args.b-exists",
            "/tools/t/approve_if/args.n-gt",
            "/tools/t/limits/c",
            "/all_tools/limits/all",
        ]
    );
    assert_eq!(
        steps[1].outcome,
        StepOutcome::Predicate {
            list: "deny_if",
            holds: Some(false)
        }
    );
    let StepOutcome::Limit {
        window_start,
        used,
        increment,
        fits,
        spec,
    } = &steps[3].outcome
    else {
        panic!("not a limit: {:?}", steps[3]);
    };
    assert_eq!(
        (*window_start, *used, *increment, *fits),
        (70 * S, 1.0, Some(1.0), Some(true))
    );
    assert_eq!(spec.algorithm, Algorithm::Sliding);
    // Explaining does not change state: the call evaluates as if never explained.
    assert_eq!(engine.evaluate(&c.0.view()).kind, DecisionKind::Allow);
    // A failing require ends the list.
    let steps = engine.explain(&call(131.0, "t", json!({"a":2})).0.view());
    assert_eq!(steps.len(), 1);
    assert_eq!(
        steps[0].outcome,
        StepOutcome::Predicate {
            list: "require",
            holds: Some(false)
        }
    );
    let hidden = engine.explain(&call(0.0, "zzz", json!({})).0.view());
    assert_eq!(&*hidden[0].rule, "(default deny)");
}
