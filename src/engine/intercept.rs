//! The Intercept dialect's evaluator (spec §2).
//!
//! The open-source gateway decides in two phases, and mcpsim keeps them apart because the
//! quirks users trip over live in the gap between them:
//!
//! 1. *rules*: hidden → default deny → the tool's rules, then the `"*"` rules, in file order.
//!    `deny` rules deny at once; an `evaluate` rule's conditions are ANDed. `state.` conditions
//!    read counters as they were before this call.
//! 2. *reservation*: every rule with a `state` block (tool first, then wildcard) adds its
//!    increment to its counter, bounded by the rule's own `lt`/`lte` condition on that counter.
//!    A rule without such a condition never increments. The first reservation that does not fit
//!    refuses the call and gives back the ones already made.
//!
//! Counters are keyed by `<tool or _global>.<counter>` exactly as the gateway keys them; one
//! gateway process fronts one upstream server, so mcpsim keeps one set of counters per server.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Value};

use crate::engine::{Decision, DecisionKind, Scope, Throttle};
use crate::trace::{Args, Nanos, Upstream};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A counter window of the Intercept dialect: fixed, calendar-aligned in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InterceptWindow {
    /// Starts at every UTC minute.
    Minute,
    /// Starts at the top of every UTC hour.
    Hour,
    /// Starts at 00:00 UTC.
    Day,
}

impl InterceptWindow {
    /// Parse a policy-file window name.
    pub fn parse(s: &str) -> Option<InterceptWindow> {
        match s {
            "minute" => Some(InterceptWindow::Minute),
            "hour" => Some(InterceptWindow::Hour),
            "day" => Some(InterceptWindow::Day),
            _ => None,
        }
    }

    /// The policy-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            InterceptWindow::Minute => "minute",
            InterceptWindow::Hour => "hour",
            InterceptWindow::Day => "day",
        }
    }

    /// Window length in nanoseconds. UTC has no leap seconds in Unix time, so a day is always
    /// 86 400 s and floor division gives the calendar-aligned start.
    pub fn len_nanos(self) -> Nanos {
        let secs = match self {
            InterceptWindow::Minute => 60,
            InterceptWindow::Hour => 3_600,
            InterceptWindow::Day => 86_400,
        };
        secs * NANOS_PER_SECOND
    }

    /// Start of the window holding `ts` (half-open windows: a call at the boundary is in the new one).
    pub fn start(self, ts: Nanos) -> Nanos {
        let len = self.len_nanos();
        ts.div_euclid(len) * len
    }
}

/// Comparison operators of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InterceptOp {
    /// Equal: numbers as numbers, anything else by printed form.
    Eq,
    /// Not `eq`.
    Neq,
    /// `eq` to one element of the list.
    In,
    /// `eq` to no element of the list.
    NotIn,
    /// Numeric `<`.
    Lt,
    /// Numeric `<=`.
    Lte,
    /// Numeric `>`.
    Gt,
    /// Numeric `>=`.
    Gte,
    /// Unanchored regex search on a string.
    Regex,
    /// Substring of a string, or element (by `eq`) of a list.
    Contains,
    /// Present and non-null (`value: true`) or not (`value: false`).
    Exists,
}

impl InterceptOp {
    /// Every operator, in documentation order.
    pub const ALL: [InterceptOp; 11] = [
        InterceptOp::Eq,
        InterceptOp::Neq,
        InterceptOp::In,
        InterceptOp::NotIn,
        InterceptOp::Lt,
        InterceptOp::Lte,
        InterceptOp::Gt,
        InterceptOp::Gte,
        InterceptOp::Regex,
        InterceptOp::Contains,
        InterceptOp::Exists,
    ];

    /// The policy-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            InterceptOp::Eq => "eq",
            InterceptOp::Neq => "neq",
            InterceptOp::In => "in",
            InterceptOp::NotIn => "not_in",
            InterceptOp::Lt => "lt",
            InterceptOp::Lte => "lte",
            InterceptOp::Gt => "gt",
            InterceptOp::Gte => "gte",
            InterceptOp::Regex => "regex",
            InterceptOp::Contains => "contains",
            InterceptOp::Exists => "exists",
        }
    }

    /// Parse a policy-file name.
    pub fn parse(s: &str) -> Option<InterceptOp> {
        InterceptOp::ALL.into_iter().find(|op| op.as_str() == s)
    }
}

/// What a condition reads.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// `args.a.b`: the segments after `args.`.
    Args(Vec<String>),
    /// `state.<scope>.<counter>`: a counter slot.
    State(usize),
}

/// One compiled condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) target: Target,
    pub(crate) op: InterceptOp,
    pub(crate) value: Value,
    /// Compiled once for `regex`.
    pub(crate) regex: Option<Regex>,
}

/// How much a reservation adds.
#[derive(Debug, Clone)]
pub(crate) enum Increment {
    Fixed(i64),
    /// `increment_from: args.a.b`: the segments after `args.`.
    From(Vec<String>),
}

/// A rule's `state` block.
#[derive(Debug, Clone)]
pub(crate) struct StateBlock {
    pub(crate) slot: usize,
    pub(crate) increment: Increment,
    /// The binding limit from the rule's own `lt`/`lte` condition; `None` never increments.
    pub(crate) cap: Option<i64>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// `<tool>/<rule name>`.
    pub(crate) id: Arc<str>,
    /// `deny` action (no conditions) when true.
    pub(crate) deny: bool,
    pub(crate) conditions: Vec<Condition>,
    /// `on_deny`, or the gateway's `Denied by rule "<name>"`.
    pub(crate) deny_message: Arc<str>,
    /// `on_deny`, or the gateway's `Rate limit exceeded for <name>`.
    pub(crate) limit_message: Arc<str>,
    pub(crate) unknown_message: Arc<str>,
    pub(crate) state: Option<StateBlock>,
}

/// A counter the policy names: `<scope>.<counter>` with its window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterceptCounter {
    /// `<tool>.<counter>` or `_global.<counter>`, the gateway's key.
    pub key: Arc<str>,
    /// The window of the state block that writes it; `None` for a counter only read.
    pub window: Option<InterceptWindow>,
}

/// A compiled Intercept policy: immutable, shared by every engine that runs it.
#[derive(Debug, Clone)]
pub struct InterceptPolicy {
    pub(crate) default_deny: bool,
    pub(crate) hide_all: bool,
    pub(crate) hidden: HashSet<String>,
    pub(crate) tools: HashMap<String, Vec<Rule>>,
    /// Rules of the `"*"` key.
    pub(crate) wildcard: Vec<Rule>,
    /// Whether `"*"` is itself a key under `tools` (it then counts as listed for a call named `*`).
    pub(crate) wildcard_listed: bool,
    pub(crate) counters: Vec<InterceptCounter>,
    pub(crate) rule_count: usize,
}

impl InterceptPolicy {
    /// Number of tool keys (including `"*"`).
    pub fn tool_count(&self) -> usize {
        self.tools.len() + usize::from(self.wildcard_listed)
    }

    /// Number of rules across all tools.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Counters named by the policy, in slot order.
    pub fn counters(&self) -> &[InterceptCounter] {
        &self.counters
    }

    /// Whether unlisted tools are denied.
    pub fn default_deny(&self) -> bool {
        self.default_deny
    }

    fn rules_for<'p>(&'p self, tool: &str) -> impl Iterator<Item = &'p Rule> {
        self.tools
            .get(tool)
            .map(|r| r.as_slice())
            .unwrap_or(&[])
            .iter()
            .chain(self.wildcard.iter())
    }

    fn is_hidden(&self, tool: &str) -> bool {
        self.hide_all || self.hidden.contains(tool)
    }

    fn is_listed(&self, tool: &str) -> bool {
        self.tools.contains_key(tool) || (tool == "*" && self.wildcard_listed)
    }
}

/// The part of a call the Intercept evaluator looks at.
#[derive(Debug, Clone, Copy)]
pub struct InterceptCall<'a> {
    /// The clock.
    pub ts: Nanos,
    /// Counters are kept per server.
    pub server: &'a str,
    /// Tool name.
    pub tool: &'a str,
    /// Recorded arguments.
    pub args: &'a Args,
    /// How the upstream call ended, when the trace says.
    pub upstream: Option<Upstream>,
}

/// Switches that matter to the Intercept evaluator (same meaning as for `policy.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterceptOptions {
    /// `--rollback-on tool-error`: an `isError: true` result also gives the reservation back.
    pub rollback_on_tool_error: bool,
    /// `--assume-upstream failure`: a call with no recorded upstream outcome failed.
    pub assume_upstream_failure: bool,
    /// `--assume-unknown deny`: an unknown call consumes nothing.
    pub assume_unknown_deny: bool,
}

/// What the rules phase decided, before any counter is touched.
#[derive(Debug, Clone, PartialEq)]
pub enum InterceptRulesOutcome {
    /// Hidden, default deny, a `deny` rule or a failing condition.
    Deny {
        /// Rule id (`(hidden)`, `(default deny)`, `<tool>/<rule name>`).
        rule: Arc<str>,
    },
    /// A condition needs argument values the trace did not record, and nothing decidable denied.
    Unknown {
        /// The first rule that could not be decided.
        rule: Arc<str>,
    },
    /// Every rule passed; the listed reservations will be attempted.
    Pass {
        /// `(rule id, counter key, cap)` of each reservation that binds, in order.
        reservations: Vec<(Arc<str>, Arc<str>, Option<i64>)>,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct CounterState {
    window_start: Nanos,
    used: i64,
}

/// Tri-state result of a condition on recorded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Holds,
    Fails,
    Unknown,
}

/// Runs one compiled Intercept policy over calls in time order, keeping its counters.
#[derive(Debug, Clone)]
pub struct InterceptEngine {
    policy: Arc<InterceptPolicy>,
    opts: InterceptOptions,
    /// Per server, one state per counter slot.
    counters: HashMap<Arc<str>, Vec<CounterState>>,
}

fn deny(rule: &Arc<str>, message: Arc<str>) -> Decision {
    Decision {
        kind: DecisionKind::Deny,
        rule: rule.clone(),
        message,
        throttle: None,
        approval_required: false,
    }
}

fn unknown(rule: &Rule) -> Decision {
    Decision {
        kind: DecisionKind::Unknown,
        rule: rule.id.clone(),
        message: rule.unknown_message.clone(),
        throttle: None,
        approval_required: false,
    }
}

impl InterceptEngine {
    /// A fresh engine: every counter at zero.
    pub fn new(policy: Arc<InterceptPolicy>, opts: InterceptOptions) -> InterceptEngine {
        InterceptEngine {
            policy,
            opts,
            counters: HashMap::new(),
        }
    }

    /// The policy this engine runs.
    pub fn policy(&self) -> &Arc<InterceptPolicy> {
        &self.policy
    }

    /// Decide one call, reserve its counters, and give them back if the upstream call failed.
    pub fn evaluate(&mut self, call: &InterceptCall<'_>) -> Decision {
        let policy = Arc::clone(&self.policy);
        let tool = call.tool;
        if policy.is_hidden(tool) {
            return deny(
                &Arc::from("(hidden)"),
                Arc::from(format!("Tool \"{tool}\" is hidden by policy")),
            );
        }
        if policy.default_deny && !policy.is_listed(tool) {
            return deny(
                &Arc::from("(default deny)"),
                Arc::from(format!("Tool \"{tool}\" is not permitted by policy")),
            );
        }

        let slots = self.slots_for(call.server);
        let mut first_unknown: Option<&Rule> = None;
        for rule in policy.rules_for(tool) {
            if rule.deny {
                return deny(&rule.id, rule.deny_message.clone());
            }
            let mut rule_unknown = false;
            for cond in &rule.conditions {
                match eval_condition(cond, call, &policy.counters, slots) {
                    Truth::Holds => {}
                    Truth::Fails => return deny(&rule.id, rule.deny_message.clone()),
                    Truth::Unknown => rule_unknown = true,
                }
            }
            if rule_unknown && first_unknown.is_none() {
                first_unknown = Some(rule);
            }
        }
        if let Some(rule) = first_unknown {
            if self.opts.assume_unknown_deny {
                return unknown(rule);
            }
        }

        // Reservation phase: tentative increments, given back on the first refusal.
        let mut reserved: Vec<(usize, i64)> = Vec::new();
        let mut refusal: Option<Decision> = None;
        for rule in policy.rules_for(tool) {
            let Some(state) = &rule.state else { continue };
            let amount = match &state.increment {
                Increment::Fixed(n) => *n,
                Increment::From(path) => match increment_from(path, call.args) {
                    Truth3::Value(n) => n,
                    Truth3::Invalid => {
                        self.rollback(call.server, &reserved);
                        return deny(&rule.id, Arc::from("Internal policy error"));
                    }
                    Truth3::Unknown => {
                        self.rollback(call.server, &reserved);
                        return unknown(first_unknown.unwrap_or(rule));
                    }
                },
            };
            let Some(cap) = state.cap else { continue };
            let window = policy.counters[state.slot]
                .window
                .unwrap_or(InterceptWindow::Minute);
            let start = window.start(call.ts);
            let counter = self.counter_mut(call.server, state.slot);
            if counter.window_start != start {
                *counter = CounterState {
                    window_start: start,
                    used: 0,
                };
            }
            let used = counter.used;
            if used.saturating_add(amount) > cap {
                refusal = Some(Decision {
                    kind: DecisionKind::Throttle,
                    rule: rule.id.clone(),
                    message: rule.limit_message.clone(),
                    throttle: Some(Throttle {
                        counter: policy.counters[state.slot].key.clone(),
                        scope: Scope::Server,
                        window_start: start,
                        used: used as f64,
                        max: cap as f64,
                        increment: amount as f64,
                        retry_after: start + window.len_nanos(),
                    }),
                    approval_required: false,
                });
                break;
            }
            counter.used = used.saturating_add(amount);
            reserved.push((state.slot, amount));
        }

        if let Some(refused) = refusal {
            self.rollback(call.server, &reserved);
            return match first_unknown {
                Some(rule) => unknown(rule),
                None => refused,
            };
        }
        if self.upstream_failed(call.upstream) {
            self.rollback(call.server, &reserved);
        }
        match first_unknown {
            Some(rule) => unknown(rule),
            None => Decision::allow(),
        }
    }

    /// The rules phase alone, without touching counters (counters read as zero): what `diff`
    /// compares across two policies to tell a call's own rules from knock-on effects.
    pub fn rules_outcome(&self, call: &InterceptCall<'_>) -> InterceptRulesOutcome {
        rules_outcome(&self.policy, call)
    }

    fn upstream_failed(&self, upstream: Option<Upstream>) -> bool {
        match upstream {
            Some(Upstream::Error) => true,
            Some(Upstream::ToolError) => self.opts.rollback_on_tool_error,
            Some(Upstream::Ok) => false,
            None => self.opts.assume_upstream_failure,
        }
    }

    fn slots_for(&self, server: &str) -> Option<&[CounterState]> {
        self.counters.get(server).map(|v| v.as_slice())
    }

    fn counter_mut(&mut self, server: &str, slot: usize) -> &mut CounterState {
        if !self.counters.contains_key(server) {
            let fresh = vec![CounterState::default(); self.policy.counters.len()];
            self.counters.insert(Arc::from(server), fresh);
        }
        let table = self
            .counters
            .get_mut(server)
            .expect("the server's counter table was inserted just above");
        &mut table[slot]
    }

    fn rollback(&mut self, server: &str, reserved: &[(usize, i64)]) {
        if let Some(table) = self.counters.get_mut(server) {
            for &(slot, amount) in reserved {
                table[slot].used = table[slot].used.saturating_sub(amount);
            }
        }
    }
}

/// The rules phase on a policy with every counter at zero.
pub(crate) fn rules_outcome(
    policy: &InterceptPolicy,
    call: &InterceptCall<'_>,
) -> InterceptRulesOutcome {
    let tool = call.tool;
    if policy.is_hidden(tool) {
        return InterceptRulesOutcome::Deny {
            rule: Arc::from("(hidden)"),
        };
    }
    if policy.default_deny && !policy.is_listed(tool) {
        return InterceptRulesOutcome::Deny {
            rule: Arc::from("(default deny)"),
        };
    }
    let mut first_unknown: Option<&Rule> = None;
    for rule in policy.rules_for(tool) {
        if rule.deny {
            return InterceptRulesOutcome::Deny {
                rule: rule.id.clone(),
            };
        }
        let mut rule_unknown = false;
        for cond in &rule.conditions {
            match eval_condition(cond, call, &policy.counters, None) {
                Truth::Holds => {}
                Truth::Fails => {
                    return InterceptRulesOutcome::Deny {
                        rule: rule.id.clone(),
                    };
                }
                Truth::Unknown => rule_unknown = true,
            }
        }
        if rule_unknown && first_unknown.is_none() {
            first_unknown = Some(rule);
        }
    }
    if let Some(rule) = first_unknown {
        return InterceptRulesOutcome::Unknown {
            rule: rule.id.clone(),
        };
    }
    let reservations = policy
        .rules_for(tool)
        .filter_map(|r| {
            r.state
                .as_ref()
                .map(|s| (r.id.clone(), policy.counters[s.slot].key.clone(), s.cap))
        })
        .collect();
    InterceptRulesOutcome::Pass { reservations }
}

enum Truth3 {
    Value(i64),
    Invalid,
    Unknown,
}

/// `increment_from`: a number truncated toward zero (the gateway converts with `int64(f)`).
fn increment_from(path: &[String], args: &Args) -> Truth3 {
    match args {
        Args::Values(map) => match lookup(map, path) {
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Truth3::Value(i),
                // `as` saturates out-of-range floats, as the gateway's conversion would overflow.
                (None, Some(f)) => Truth3::Value(f.trunc() as i64),
                (None, None) => Truth3::Invalid,
            },
            _ => Truth3::Invalid,
        },
        Args::Keys(keys) => match path.first() {
            Some(first) if !keys.iter().any(|k| k == first) => Truth3::Invalid,
            _ => Truth3::Unknown,
        },
        Args::Unrecorded => Truth3::Unknown,
    }
}

fn lookup<'v>(map: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = map.get(first)?;
    for seg in rest {
        cur = cur.as_object()?.get(seg)?;
    }
    Some(cur)
}

fn eval_condition(
    cond: &Condition,
    call: &InterceptCall<'_>,
    counters: &[InterceptCounter],
    slots: Option<&[CounterState]>,
) -> Truth {
    let actual: Option<Value> = match &cond.target {
        Target::State(slot) => {
            // A counter reads as zero outside the window it was written in, like the gateway's store.
            let used = match (slots.and_then(|s| s.get(*slot)), counters[*slot].window) {
                (Some(state), Some(window)) if state.window_start == window.start(call.ts) => {
                    state.used
                }
                _ => 0,
            };
            Some(Value::from(used))
        }
        Target::Args(path) => match call.args {
            Args::Values(map) => lookup(map, path).cloned(),
            Args::Keys(keys) => {
                let present = path.first().is_some_and(|f| keys.iter().any(|k| k == f));
                if !present {
                    None
                } else if cond.op == InterceptOp::Exists && path.len() == 1 {
                    // Only keys were recorded: a present top-level key counts as existing.
                    return truth(cond.value.as_bool() == Some(true));
                } else {
                    return Truth::Unknown;
                }
            }
            Args::Unrecorded => return Truth::Unknown,
        },
    };
    truth(apply(cond, actual.as_ref()))
}

fn truth(b: bool) -> Truth {
    if b { Truth::Holds } else { Truth::Fails }
}

/// One operator on a resolved value; `None` is a missing path.
pub(crate) fn apply(cond: &Condition, actual: Option<&Value>) -> bool {
    if cond.op == InterceptOp::Exists {
        let exists = actual.is_some_and(|v| !v.is_null());
        return cond.value.as_bool() == Some(exists);
    }
    let Some(actual) = actual else { return false };
    let expected = &cond.value;
    match cond.op {
        InterceptOp::Eq => printed_eq(actual, expected),
        InterceptOp::Neq => !printed_eq(actual, expected),
        InterceptOp::In => member(actual, expected),
        InterceptOp::NotIn => !member(actual, expected),
        InterceptOp::Lt => numeric(actual, expected, |a, b| a < b),
        InterceptOp::Lte => numeric(actual, expected, |a, b| a <= b),
        InterceptOp::Gt => numeric(actual, expected, |a, b| a > b),
        InterceptOp::Gte => numeric(actual, expected, |a, b| a >= b),
        InterceptOp::Regex => match (actual, &cond.regex) {
            (Value::String(s), Some(re)) => re.is_match(s),
            _ => false,
        },
        InterceptOp::Contains => match (actual, expected) {
            (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
            (Value::String(_), _) => false,
            (Value::Array(items), _) => items.iter().any(|item| printed_eq(item, expected)),
            _ => false,
        },
        InterceptOp::Exists => unreachable!("handled above"),
    }
}

fn member(actual: &Value, list: &Value) -> bool {
    match list {
        Value::Array(items) => items.iter().any(|item| printed_eq(actual, item)),
        _ => false,
    }
}

fn numeric(actual: &Value, expected: &Value, cmp: impl Fn(f64, f64) -> bool) -> bool {
    match (actual.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) => cmp(a, b),
        _ => false,
    }
}

/// The gateway's `eq`: numbers compare as numbers, anything else by printed form, so `"5"`
/// equals `5` and `"true"` equals `true`.
pub fn printed_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x == y;
    }
    printed_form(a) == printed_form(b)
}

/// A value as the gateway prints it with Go's `%v` (strings bare, `<nil>`, `[a b]`, `map[k:v]`).
pub fn printed_form(v: &Value) -> String {
    let mut out = String::new();
    print_into(v, &mut out);
    out
}

fn print_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => {
            const EXACT: u64 = 1 << 53;
            if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() < EXACT) {
                out.push_str(&i.to_string());
            } else if let Some(f) = n.as_f64() {
                out.push_str(&go_float(f));
            }
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go prints map keys sorted.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_into(&map[k], out);
            }
            out.push(']');
        }
    }
}

/// Go's `%v` for a float64: shortest digits, exponent form when the exponent is < -4 or >= 21.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printed_form_follows_go() {
        assert_eq!(printed_form(&json!("x")), "x");
        assert_eq!(printed_form(&json!(5)), "5");
        assert_eq!(printed_form(&json!(5.5)), "5.5");
        assert_eq!(printed_form(&json!(1e21)), "1e+21");
        assert_eq!(printed_form(&json!(0.00001)), "1e-05");
        assert_eq!(printed_form(&json!(null)), "<nil>");
        assert_eq!(printed_form(&json!(["a", 1, true])), "[a 1 true]");
        assert_eq!(printed_form(&json!({"b": 1, "a": "x"})), "map[a:x b:1]");
    }

    #[test]
    fn printed_eq_coerces_non_numbers_only() {
        assert!(printed_eq(&json!("5"), &json!(5)));
        assert!(printed_eq(&json!(5.0), &json!(5)));
        assert!(printed_eq(&json!("true"), &json!(true)));
        assert!(!printed_eq(&json!("5.0"), &json!(5)));
        assert!(!printed_eq(&json!("a"), &json!("b")));
    }

    #[test]
    fn windows_are_calendar_aligned() {
        let t = 1_700_000_123 * NANOS_PER_SECOND + 5;
        assert_eq!(
            InterceptWindow::Minute.start(t),
            1_700_000_100 * NANOS_PER_SECOND
        );
        assert_eq!(
            InterceptWindow::Hour.start(t),
            1_699_999_200 * NANOS_PER_SECOND
        );
        assert_eq!(
            InterceptWindow::Day.start(t),
            1_699_920_000 * NANOS_PER_SECOND
        );
        let boundary = 1_700_000_160 * NANOS_PER_SECOND;
        assert_eq!(InterceptWindow::Minute.start(boundary), boundary);
    }
}
