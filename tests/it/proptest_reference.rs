//! The evaluator held against a deliberately simple reference implementation written from
//! spec/policy.md §1: no compiled form, no slots, counters recomputed from the full list of
//! admitted calls for every decision.
//!
//! Policies and traces are generated from a proptest-chosen seed; a failure prints the seed,
//! the policy and the first call that differs.

use std::sync::Arc;

use mcpsim::engine::{Decision, DecisionKind, Engine, EvalOptions, ExplainStep, StepOutcome};
use mcpsim::policy::parse_policy_str;
use mcpsim::trace::{Args, ArgsView, CallRecord, Nanos, Origin, RawArgs, Upstream};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const S: Nanos = 1_000_000_000;

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

// ---------------------------------------------------------------- the reference model

#[derive(Debug, Clone)]
struct RPred {
    path: &'static str,
    op: &'static str,
    value: Value,
}

#[derive(Debug, Clone)]
struct RCounter {
    name: String,
    window: Value,
    window_secs: i64,
    max: f64,
    scope: &'static str,
    sliding: bool,
}

#[derive(Debug, Clone)]
struct RLimit {
    counter: usize,
    increment_from: Option<&'static str>,
}

#[derive(Debug, Clone, Default)]
struct RTool {
    require: Vec<RPred>,
    deny_if: Vec<RPred>,
    approve_if: Vec<RPred>,
    require_approval: bool,
    limits: Vec<RLimit>,
    on_deny: Option<String>,
}

#[derive(Debug, Clone)]
struct RPolicy {
    default_deny: bool,
    hide: Vec<String>,
    counters: Vec<RCounter>,
    all_tools: Vec<RLimit>,
    tools: Vec<(String, RTool)>,
}

const TOOLS: &[&str] = &["a", "b", "c", "d"];
const PATHS: &[&str] = &["args.x", "args.y", "args.o.z"];
const OPS: &[&str] = &[
    "eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists",
];

fn scalar(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(2.0),
        3 => json!("a"),
        4 => json!("b"),
        5 => json!("1"),
        6 => json!(true),
        _ => json!(null),
    }
}

fn gen_pred(rng: &mut Rng) -> RPred {
    let op = rng.pick(OPS);
    let value = match op {
        "in" | "not_in" => Value::Array((0..rng.below(3)).map(|_| scalar(rng)).collect()),
        "lt" | "lte" | "gt" | "gte" => json!(rng.below(4)),
        "regex" => json!(rng.pick(&["a", "^a$", "b|1", "^$"])),
        "exists" => json!(rng.chance(60)),
        _ => scalar(rng),
    };
    RPred {
        path: rng.pick(PATHS),
        op,
        value,
    }
}

fn gen_limits(rng: &mut Rng, pool: &[usize], plain: bool) -> Vec<RLimit> {
    let mut available = pool.to_vec();
    let mut out = Vec::new();
    while !available.is_empty() && rng.chance(50) {
        let counter = available.remove(rng.below(available.len()));
        let increment_from = if !plain && rng.chance(25) {
            Some("args.n")
        } else {
            None
        };
        out.push(RLimit {
            counter,
            increment_from,
        });
    }
    out
}

fn gen_policy(rng: &mut Rng) -> RPolicy {
    let windows: &[(Value, i64)] = &[
        (json!("second"), 1),
        (json!("minute"), 60),
        (json!("hour"), 3600),
        (json!(10), 10),
        (json!(90), 90),
    ];
    // A quarter of the policies use only what the engine's short path for id calls covers
    // (no argument rules, no approval, fixed windows counting one per call), so that path is
    // held to the reference as often as the general one.
    let plain = rng.chance(25);
    let counters = (0..5)
        .map(|i| {
            let (window, window_secs) = rng.pick(windows);
            RCounter {
                name: format!("c{i}"),
                window,
                window_secs,
                max: rng.below(4) as f64,
                scope: rng.pick(&["grant", "session", "server", "global"]),
                sliding: !plain && rng.chance(30),
            }
        })
        .collect();
    let mut hide = Vec::new();
    for t in TOOLS {
        if rng.chance(10) {
            hide.push(t.to_string());
        }
    }
    if rng.chance(3) {
        hide.push("*".to_string());
    }
    let mut tools = Vec::new();
    for t in TOOLS {
        if !rng.chance(70) {
            continue;
        }
        let preds = |rng: &mut Rng, p: u64| -> Vec<RPred> {
            let n = rng.below(3);
            let mut out = Vec::new();
            for _ in 0..n {
                if rng.chance(p) {
                    out.push(gen_pred(rng));
                }
            }
            out
        };
        let odds = |p: u64| if plain { 0 } else { p };
        let tool = RTool {
            require: preds(rng, odds(60)),
            deny_if: preds(rng, odds(60)),
            approve_if: preds(rng, odds(30)),
            require_approval: rng.chance(odds(10)),
            limits: gen_limits(rng, &[2, 3, 4], plain),
            on_deny: rng.chance(20).then(|| format!("no {t}")),
        };
        tools.push((t.to_string(), tool));
    }
    RPolicy {
        default_deny: rng.chance(50),
        hide,
        counters,
        all_tools: gen_limits(rng, &[0, 1], plain),
        tools,
    }
}

impl RPolicy {
    fn limit_json(&self, l: &RLimit) -> Value {
        let c = &self.counters[l.counter];
        let mut v = json!({"counter": c.name, "window": c.window, "max": c.max, "scope": c.scope});
        if c.sliding {
            v["algorithm"] = json!("sliding");
        }
        if let Some(p) = l.increment_from {
            v["increment_from"] = json!(p);
        }
        v
    }

    fn to_json(&self) -> Value {
        let pred = |p: &RPred| json!({"path": p.path, "op": p.op, "value": p.value});
        let mut tools = Map::new();
        for (name, t) in &self.tools {
            let mut o = Map::new();
            if !t.require.is_empty() {
                o.insert("require".into(), t.require.iter().map(pred).collect());
            }
            if !t.deny_if.is_empty() {
                o.insert("deny_if".into(), t.deny_if.iter().map(pred).collect());
            }
            if !t.approve_if.is_empty() {
                o.insert("approve_if".into(), t.approve_if.iter().map(pred).collect());
            }
            if t.require_approval {
                o.insert("require_approval".into(), json!(true));
            }
            if !t.limits.is_empty() {
                let limits = t.limits.iter().map(|l| self.limit_json(l)).collect();
                o.insert("limits".into(), limits);
            }
            if let Some(m) = &t.on_deny {
                o.insert("on_deny".into(), json!(m));
            }
            tools.insert(name.clone(), Value::Object(o));
        }
        json!({
            "version": "1",
            "default": if self.default_deny { "deny" } else { "allow" },
            "hide": self.hide,
            "all_tools": {"limits": self.all_tools.iter().map(|l| self.limit_json(l)).collect::<Vec<_>>()},
            "tools": tools,
        })
    }
}

// ------------------------------------------------------------------- the reference rules

fn lookup<'a>(args: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut keys = path.strip_prefix("args.")?.split('.');
    let mut cur = args.get(keys.next()?)?;
    for k in keys {
        cur = cur.as_object()?.get(k)?;
    }
    Some(cur)
}

/// `eq` of the spec: numbers as numbers (inside arrays and objects too), everything else
/// exactly.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn holds(p: &RPred, arg: Option<&Value>) -> bool {
    let Some(a) = arg else {
        // A missing path: only `exists: false` holds.
        return p.op == "exists" && p.value == json!(false);
    };
    let num = |f: fn(f64, f64) -> bool| match (a, &p.value) {
        (Value::Number(x), Value::Number(y)) => f(
            x.as_f64().unwrap_or(f64::NAN),
            y.as_f64().unwrap_or(f64::NAN),
        ),
        _ => false,
    };
    let list = || p.value.as_array().map(Vec::as_slice).unwrap_or(&[]);
    match p.op {
        "eq" => same(a, &p.value),
        "neq" => !same(a, &p.value),
        "in" => list().iter().any(|v| same(a, v)),
        "not_in" => !list().iter().any(|v| same(a, v)),
        "lt" => num(|x, y| x < y),
        "lte" => num(|x, y| x <= y),
        "gt" => num(|x, y| x > y),
        "gte" => num(|x, y| x >= y),
        "regex" => match (a, &p.value) {
            (Value::String(s), Value::String(re)) => regex::Regex::new(re)
                .map(|r| r.is_match(s))
                .unwrap_or(false),
            _ => false,
        },
        "contains" => match a {
            Value::String(s) => p.value.as_str().is_some_and(|n| s.contains(n)),
            Value::Array(items) => items.iter().any(|i| same(i, &p.value)),
            _ => false,
        },
        "exists" => a.is_null() != (p.value == json!(true)),
        _ => unreachable!("generated ops only"),
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Tri {
    Yes,
    No,
    Unknown,
}

fn eval(p: &RPred, args: &Args) -> Tri {
    let b = |x: bool| if x { Tri::Yes } else { Tri::No };
    // Values not recorded: decided only when every value the path may have had (and, when it
    // may have been missing, no value) gives the same verdict; an empty list is the one case.
    let empty_list = p.value.as_array().is_some_and(|l| l.is_empty());
    let unseen = |maybe_missing: bool| {
        let present = match p.op {
            "in" if empty_list => false,
            "not_in" if empty_list => true,
            _ => return Tri::Unknown,
        };
        if maybe_missing && present != holds(p, None) {
            Tri::Unknown
        } else {
            b(present)
        }
    };
    match args.view() {
        ArgsView::Values(m) => b(holds(p, lookup(m, p.path))),
        ArgsView::Keys(keys) => {
            let rest = &p.path["args.".len()..];
            let top = rest.split('.').next().unwrap_or("");
            if !keys.iter().any(|k| k == top) {
                b(holds(p, None))
            } else if p.op == "exists" && !rest.contains('.') {
                b(p.value == json!(true))
            } else {
                unseen(rest.contains('.'))
            }
        }
        ArgsView::Unrecorded | ArgsView::NotObject(_) => unseen(true),
    }
}

/// What the reference says about a call.
#[derive(Debug, PartialEq)]
struct Verdict {
    kind: DecisionKind,
    rule: String,
    approval_required: bool,
    /// counter, window start, used, max, increment, retry-after.
    throttle: Option<(String, Nanos, f64, f64, f64, Nanos)>,
}

struct Admitted {
    counter: usize,
    key: (String, String, String),
    ts: Nanos,
    amount: f64,
}

struct Reference<'p> {
    p: &'p RPolicy,
    opts: EvalOptions,
    admitted: Vec<Admitted>,
}

enum Inc {
    Amount(f64),
    Deny,
    Unknown,
}

impl Reference<'_> {
    fn scope_key(&self, c: &RCounter, call: &CallRecord) -> (String, String, String) {
        let opt = |s: &Option<Arc<str>>| {
            s.as_deref()
                .map_or("\u{0}absent".to_string(), str::to_string)
        };
        match c.scope {
            "grant" => (call.server.to_string(), opt(&call.grant), String::new()),
            "session" => (
                call.server.to_string(),
                opt(&call.grant),
                opt(&call.session),
            ),
            "server" => (call.server.to_string(), String::new(), String::new()),
            _ => (String::new(), String::new(), String::new()),
        }
    }

    fn increment(l: &RLimit, args: &Args) -> Inc {
        let Some(path) = l.increment_from else {
            return Inc::Amount(1.0);
        };
        match args.view() {
            ArgsView::Values(m) => match lookup(m, path) {
                Some(v) if v.is_number() => Inc::Amount(v.as_f64().unwrap_or(f64::NAN)),
                _ => Inc::Deny,
            },
            ArgsView::Keys(keys) if !keys.iter().any(|k| *k == path["args.".len()..]) => Inc::Deny,
            _ => Inc::Unknown,
        }
    }

    /// The rule of the limit that, taking the limits in order, first refuses the call for an
    /// `increment_from` argument absent or not a number, when none before it refuses it (or
    /// has an unrecorded increment); nothing is reserved.
    fn limit_denial(
        &self,
        tool: Option<&RTool>,
        call: &CallRecord,
        tool_name: &str,
    ) -> Option<String> {
        let mut list: Vec<(String, &RLimit)> = Vec::new();
        if let Some(t) = tool {
            for l in &t.limits {
                let name = &self.p.counters[l.counter].name;
                list.push((format!("/tools/{tool_name}/limits/{name}"), l));
            }
        }
        for l in &self.p.all_tools {
            let name = &self.p.counters[l.counter].name;
            list.push((format!("/all_tools/limits/{name}"), l));
        }
        for (rule, l) in list {
            let c = &self.p.counters[l.counter];
            let inc = match Self::increment(l, &call.args) {
                Inc::Amount(x) => x,
                Inc::Deny => return Some(rule),
                Inc::Unknown => return None,
            };
            let key = self.scope_key(c, call);
            let len = c.window_secs * S;
            let (lo_excl, hi_excl) = if c.sliding {
                (call.ts - len, call.ts + 1)
            } else {
                let start = call.ts.div_euclid(len) * len;
                (start - 1, start + len)
            };
            let used: f64 = (self.admitted.iter())
                .filter(|a| {
                    a.counter == l.counter && a.key == key && a.ts > lo_excl && a.ts < hi_excl
                })
                .map(|a| a.amount)
                .sum();
            if used + inc > c.max {
                return None;
            }
        }
        None
    }

    /// Steps 6–8. `Ok` when every limit fits (and the reservation was kept or given back).
    fn limits(
        &mut self,
        tool: Option<&RTool>,
        call: &CallRecord,
        tool_name: &str,
    ) -> Result<(), Verdict> {
        let mut list: Vec<(String, &RLimit)> = Vec::new();
        if let Some(t) = tool {
            for l in &t.limits {
                list.push((
                    format!(
                        "/tools/{tool_name}/limits/{}",
                        self.p.counters[l.counter].name
                    ),
                    l,
                ));
            }
        }
        for l in &self.p.all_tools {
            list.push((
                format!("/all_tools/limits/{}", self.p.counters[l.counter].name),
                l,
            ));
        }
        let verdict = |kind, rule: &str| Verdict {
            kind,
            rule: rule.to_string(),
            approval_required: false,
            throttle: None,
        };
        let mut reserve = Vec::new();
        // The first limit whose increment was not recorded: it is skipped, and a refusal after
        // it is of unknown kind.
        let mut unknown: Option<&String> = None;
        for (rule, l) in &list {
            let c = &self.p.counters[l.counter];
            let refused = |kind, rule: &str| match unknown {
                Some(first) => verdict(DecisionKind::Unknown, first),
                None => verdict(kind, rule),
            };
            let inc = match Self::increment(l, &call.args) {
                Inc::Amount(x) => x,
                Inc::Deny => return Err(refused(DecisionKind::Deny, rule)),
                Inc::Unknown => {
                    unknown.get_or_insert(rule);
                    continue;
                }
            };
            let key = self.scope_key(c, call);
            let len = c.window_secs * S;
            let (lo_excl, hi_excl, start) = if c.sliding {
                (call.ts - len, call.ts + 1, call.ts - len)
            } else {
                let start = call.ts.div_euclid(len) * len;
                (start - 1, start + len, start)
            };
            let mut used = 0.0;
            for a in &self.admitted {
                if a.counter == l.counter && a.key == key && a.ts > lo_excl && a.ts < hi_excl {
                    used += a.amount;
                }
            }
            if used + inc > c.max {
                // Fixed: the window end. Sliding: the first instant at which the calls still
                // inside the window have aged out enough for this one to fit.
                let retry = if c.sliding {
                    let live: Vec<&Admitted> = self
                        .admitted
                        .iter()
                        .filter(|a| {
                            a.counter == l.counter
                                && a.key == key
                                && a.ts > lo_excl
                                && a.ts < hi_excl
                        })
                        .collect();
                    live.iter()
                        .map(|a| a.ts + len)
                        .find(|&t| {
                            let u: f64 = live
                                .iter()
                                .filter(|a| a.ts > t - len)
                                .map(|a| a.amount)
                                .sum();
                            u + inc <= c.max
                        })
                        .unwrap_or(call.ts + len)
                } else {
                    start + len
                };
                let mut v = refused(DecisionKind::Throttle, rule);
                if unknown.is_none() {
                    v.throttle = Some((c.name.clone(), start, used, c.max, inc, retry));
                }
                return Err(v);
            }
            reserve.push(Admitted {
                counter: l.counter,
                key,
                ts: call.ts,
                amount: inc,
            });
        }
        let failed = match call.upstream {
            Some(Upstream::Ok) => false,
            Some(Upstream::Error) => true,
            Some(Upstream::ToolError) => self.opts.rollback_on_tool_error,
            None => self.opts.assume_upstream_failure,
        };
        if !failed && (unknown.is_none() || !self.opts.assume_unknown_deny) {
            self.admitted.extend(reserve);
        }
        match unknown {
            Some(rule) => Err(verdict(DecisionKind::Unknown, rule)),
            None => Ok(()),
        }
    }

    fn decide(&mut self, call: &CallRecord) -> Verdict {
        let p = self.p;
        let name = &*call.tool;
        let v = |kind, rule: String| Verdict {
            kind,
            rule,
            approval_required: false,
            throttle: None,
        };
        // 1. hidden
        if p.hide.iter().any(|h| h == "*" || h == name) {
            return v(DecisionKind::Deny, "(hidden)".into());
        }
        // 2. default deny
        let tool = p.tools.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        if tool.is_none() && p.default_deny {
            return v(DecisionKind::Deny, "(default deny)".into());
        }
        let rule = |list: &str, pr: &RPred| format!("/tools/{name}/{list}/{}-{}", pr.path, pr.op);
        let mut unknown: Option<String> = None;
        let mut approval: Option<String> = None;
        if let Some(t) = tool {
            // 3. require, 4. deny_if: a decided deny wins over an unknown.
            for pr in &t.require {
                match eval(pr, &call.args) {
                    Tri::No => return v(DecisionKind::Deny, rule("require", pr)),
                    Tri::Unknown => {
                        unknown.get_or_insert_with(|| rule("require", pr));
                    }
                    Tri::Yes => {}
                }
            }
            for pr in &t.deny_if {
                match eval(pr, &call.args) {
                    Tri::Yes => return v(DecisionKind::Deny, rule("deny_if", pr)),
                    Tri::Unknown => {
                        unknown.get_or_insert_with(|| rule("deny_if", pr));
                    }
                    Tri::No => {}
                }
            }
            // 5. approval
            if unknown.is_none() {
                if t.require_approval {
                    approval = Some(format!("/tools/{name}/require_approval"));
                } else {
                    let mut undecided = None;
                    for pr in &t.approve_if {
                        match eval(pr, &call.args) {
                            Tri::Yes => {
                                approval = Some(rule("approve_if", pr));
                                break;
                            }
                            Tri::Unknown => {
                                undecided.get_or_insert_with(|| rule("approve_if", pr));
                            }
                            Tri::No => {}
                        }
                    }
                    if approval.is_none() {
                        unknown = undecided;
                    }
                }
            }
        }
        if let Some(rule) = unknown {
            // Whichever way the undecided predicates turn out, a limit that refuses the call
            // for its recorded arguments denies it, unless an approval step could hold it.
            let approval = tool.is_some_and(|t| t.require_approval || !t.approve_if.is_empty());
            if !approval || self.opts.assume_approved {
                if let Some(deny) = self.limit_denial(tool, call, name) {
                    return v(DecisionKind::Deny, deny);
                }
            }
            if !self.opts.assume_unknown_deny {
                let _ = self.limits(tool, call, name);
            }
            return v(DecisionKind::Unknown, rule);
        }
        if let Some(rule) = &approval {
            if !self.opts.assume_approved {
                return v(DecisionKind::Approval, rule.clone());
            }
        }
        let mut verdict = match self.limits(tool, call, name) {
            Ok(()) => v(DecisionKind::Allow, approval.clone().unwrap_or_default()),
            Err(v) => v,
        };
        verdict.approval_required = approval.is_some();
        verdict
    }
}

// --------------------------------------------------------------------------- the traces

fn gen_arg(rng: &mut Rng) -> Option<Value> {
    match rng.below(10) {
        0 | 1 => None,
        2 => Some(json!(["a", 1])),
        _ => Some(scalar(rng)),
    }
}

fn gen_calls(rng: &mut Rng) -> Vec<CallRecord> {
    let steps: &[Nanos] = &[
        0,
        1,
        S / 2,
        S,
        9 * S,
        10 * S,
        60 * S - 1,
        60 * S,
        90 * S,
        3600 * S,
    ];
    let mut ts: Nanos = (rng.below(1000) as Nanos) * 30 * S;
    // In one trace in five half the calls have no arguments recorded: unknown calls then
    // charge counters that later calls meet.
    let unrecorded = if rng.chance(20) { 5 } else { 1 };
    (0..rng.below(60) + 1)
        .map(|_| {
            ts += rng.pick(steps);
            let mut args = Map::new();
            for key in ["x", "y", "n"] {
                if let Some(v) = gen_arg(rng) {
                    args.insert(key.to_string(), v);
                }
            }
            match rng.below(4) {
                0 => {}
                1 => {
                    args.insert("o".into(), json!("z"));
                }
                _ => {
                    let mut o = Map::new();
                    if let Some(v) = gen_arg(rng) {
                        o.insert("z".into(), v);
                    }
                    args.insert("o".into(), Value::Object(o));
                }
            }
            let args = match rng.below(10) {
                n if n < unrecorded => Args::Unrecorded,
                1 | 2 => Args::Keys(args.keys().cloned().collect()),
                // Raw text must decide exactly as the map it parses to.
                3 | 4 => Args::Raw(RawArgs::new(Value::Object(args).to_string())),
                _ => Args::Values(args),
            };
            let sym = |s: &str| Arc::<str>::from(s);
            CallRecord {
                ts,
                server: sym(rng.pick(&["s1", "s2"])),
                grant: rng.pick(&[Some("g1"), Some("g2"), None]).map(sym),
                session: rng.pick(&[Some("x"), Some("y"), None]).map(sym),
                tool: sym(rng.pick(&["a", "b", "c", "d", "e"])),
                args,
                id: None,
                recorded: None,
                upstream: rng.pick(&[
                    None,
                    None,
                    Some(Upstream::Ok),
                    Some(Upstream::Error),
                    Some(Upstream::ToolError),
                ]),
                latency_ms: None,
                origin: Origin::default(),
            }
        })
        .collect()
}

fn observed(d: &Decision) -> Verdict {
    Verdict {
        kind: d.kind,
        rule: d.rule.to_string(),
        approval_required: d.approval_required,
        throttle: d.throttle.as_ref().map(|t| {
            let c = t.counter.to_string();
            (c, t.window_start, t.used, t.max, t.increment, t.retry_after)
        }),
    }
}

/// `explain` (taken before `evaluate`) must tell the same story as the decision.
fn explain_agrees(d: &Decision, steps: &[ExplainStep]) -> Result<(), String> {
    let last = steps.last().map_or("", |s| &*s.rule);
    let limits: Vec<(&str, Option<bool>, f64)> = steps
        .iter()
        .filter_map(|s| match &s.outcome {
            StepOutcome::Limit { fits, used, .. } => Some((&*s.rule, *fits, *used)),
            _ => None,
        })
        .collect();
    match d.kind {
        DecisionKind::Deny if !d.rule.contains("/limits/") && last != &*d.rule => {
            return Err(format!("deny by {} but explain ends at {last}", d.rule));
        }
        DecisionKind::Throttle => {
            let first = limits.iter().find(|l| l.1 != Some(true));
            let t = d.throttle.as_ref().ok_or("throttle without details")?;
            if first.map(|l| (l.0, l.1, l.2)) != Some((&*d.rule, Some(false), t.used)) {
                return Err(format!(
                    "throttle by {} but explain says {limits:?}",
                    d.rule
                ));
            }
        }
        DecisionKind::Allow if limits.iter().any(|l| l.1 != Some(true)) => {
            return Err(format!("allow but explain says {limits:?}"));
        }
        _ => {}
    }
    Ok(())
}

fn compare(seed: u64) -> Result<(), TestCaseError> {
    compare_counting(seed, &mut Vec::new())
}

/// Compare one seed; the engine's decisions are appended to `seen`.
fn compare_counting(seed: u64, seen: &mut Vec<Decision>) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed);
    let rp = gen_policy(&mut rng);
    let src = rp.to_json().to_string();
    let policy = parse_policy_str(&src, "generated.json")
        .map_err(|e| TestCaseError::fail(format!("generated policy rejected: {e}\n{src}")))?;
    let opts = EvalOptions {
        rollback_on_tool_error: rng.chance(50),
        assume_upstream_failure: rng.chance(30),
        assume_unknown_deny: rng.chance(50),
        assume_approved: rng.chance(50),
        ..EvalOptions::default()
    };
    let policy = Arc::new(policy);
    let mut engine = Engine::new(policy.clone(), opts);
    // The same policy fed as the fast lane feeds it: names as ids, one decision reused.
    let mut interned = Engine::new(policy, opts);
    let symbols = mcpsim::trace::Symbols::new();
    let mut local = mcpsim::trace::LocalSymbols::new(symbols);
    let mut reused = Decision::allow();
    let mut reference = Reference {
        p: &rp,
        opts,
        admitted: Vec::new(),
    };
    for (i, call) in gen_calls(&mut rng).iter().enumerate() {
        let want = reference.decide(call);
        let steps = engine.explain(&call.view());
        let got = engine.evaluate(&call.view());
        let mut view = call.view();
        view.ids = Some(mcpsim::engine::CallIds {
            server: local.intern(&call.server),
            grant: local.intern_opt(call.grant.as_deref()),
            tool: local.intern(&call.tool),
        });
        interned.evaluate_into(&view, &mut reused);
        prop_assert_eq!(
            &reused,
            &got,
            "seed {} call #{}: ids and names disagree",
            seed,
            i
        );
        explain_agrees(&got, &steps)
            .map_err(|m| TestCaseError::fail(format!("seed {seed} call #{i}: {m}")))?;
        let got_v = observed(&got);
        seen.push(got.clone());
        prop_assert_eq!(
            &got_v,
            &want,
            "seed {} call #{} {:?} {:?}\npolicy {}",
            seed,
            i,
            call.tool,
            call.args,
            src
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference(seed in any::<u64>()) {
        compare(seed)?;
    }
}

/// The generator is only as good as what it reaches: every decision kind, throttles of both
/// algorithms, approvals continued under `--assume-approved`, denies by `increment_from`.
#[test]
fn generated_cases_reach_every_outcome() {
    let mut seen = Vec::new();
    for seed in 0..400 {
        if let Err(e) = compare_counting(seed, &mut seen) {
            panic!("{e}");
        }
    }
    for kind in DecisionKind::ALL {
        let n = seen.iter().filter(|d| d.kind == kind).count();
        assert!(n >= 20, "only {n} {kind} decisions");
    }
    let count = |f: &dyn Fn(&Decision) -> bool| seen.iter().filter(|d| f(d)).count();
    assert!(count(&|d| d.throttle.as_ref().is_some_and(|t| t.used > 0.0)) > 20);
    assert!(count(&|d| d.approval_required && d.kind == DecisionKind::Allow) > 5);
    assert!(count(&|d| d.approval_required && d.kind == DecisionKind::Throttle) > 0);
    assert!(count(&|d| d.kind == DecisionKind::Deny && d.rule.contains("/limits/")) > 5);
    assert!(count(&|d| d.kind == DecisionKind::Unknown && d.rule.contains("/limits/")) > 5);
    assert!(count(&|d| d.kind == DecisionKind::Deny && d.rule.contains("/deny_if/")) > 20);
    assert!(count(&|d| d.kind == DecisionKind::Deny && &*d.rule == "(hidden)") > 20);
}
