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
//! Counters are keyed by `<tool or _global>.<counter>` exactly as the gateway keys them, in an
//! [`InterceptStore`]: the gateway's instances share one state store by default, so the same
//! key on two servers is one counter unless `--intercept-counters per-server` is given.
//! Arithmetic is the gateway's: int64 that wraps, limits and increments converted from
//! floats as amd64 converts them, rollbacks floored at zero.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::decision::{Decision, DecisionKind, Scope, Throttle};
use super::eval::{EvalOptions, StaticOutcome};
use super::explain::{ExplainStep, StepOutcome};
use super::policy::{Algorithm, LimitSpec, RuleLimit};
use super::predicate::{self, ArgPath, EqMode, Op, Truth};
use super::{gofmt, window};
use crate::call::CallView;
use crate::call::{ArgLookup, ArgsRef, Nanos, Upstream};

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
    /// Every window, shortest first.
    pub const ALL: [InterceptWindow; 3] = [
        InterceptWindow::Minute,
        InterceptWindow::Hour,
        InterceptWindow::Day,
    ];

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

    /// Window length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            InterceptWindow::Minute => 60,
            InterceptWindow::Hour => 3_600,
            InterceptWindow::Day => 86_400,
        }
    }

    /// Window length in nanoseconds.
    pub fn len_nanos(self) -> Nanos {
        window::window_nanos(self.seconds())
    }

    /// Start of the window holding `ts` (half-open windows: a call at the boundary is in the new
    /// one). Unix time has no leap seconds, so floor division is calendar alignment in UTC.
    pub fn start(self, ts: Nanos) -> Nanos {
        window::fixed_window_start(ts, self.len_nanos())
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
    /// `args.a.b`.
    Args(ArgPath),
    /// `state.<scope>.<counter>`: a counter slot.
    State(usize),
}

/// One compiled condition: the engine's operators, compared in printed-form `eq` mode.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(super) target: Target,
    pub(super) op: Op,
}

/// How much a reservation adds.
#[derive(Debug, Clone)]
pub(crate) enum Increment {
    Fixed(i64),
    /// `increment_from: args.a.b`.
    From(ArgPath),
}

/// A rule's `state` block.
#[derive(Debug, Clone)]
pub(crate) struct StateBlock {
    pub(super) slot: usize,
    pub(super) increment: Increment,
    /// The binding limit from the rule's own `lt`/`lte` condition; `None` never increments.
    pub(super) cap: Option<i64>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// `<tool>/<rule name>`.
    pub(super) id: Arc<str>,
    /// `deny` action (no conditions) when true.
    pub(super) deny: bool,
    pub(super) conditions: Vec<Condition>,
    /// `on_deny`, or the gateway's `Denied by rule "<name>"`.
    pub(super) deny_message: Arc<str>,
    /// `on_deny`, or the gateway's `Rate limit exceeded for <name>`.
    pub(super) limit_message: Arc<str>,
    pub(super) unknown_message: Arc<str>,
    pub(super) state: Option<StateBlock>,
}

impl Condition {
    /// A condition on `target`.
    pub(crate) fn new(target: Target, op: Op) -> Condition {
        Condition { target, op }
    }
}

impl StateBlock {
    /// A state block charging counter `slot` by `increment` while below `cap`.
    pub(crate) fn new(slot: usize, increment: Increment, cap: Option<i64>) -> StateBlock {
        StateBlock {
            slot,
            increment,
            cap,
        }
    }

    /// The binding limit; `None` never increments.
    pub(crate) fn cap(&self) -> Option<i64> {
        self.cap
    }
}

/// What an Intercept rule says when it decides a call.
#[derive(Debug, Clone)]
pub(crate) struct RuleMessages {
    /// `on_deny`, or the gateway's `Denied by rule "<name>"`.
    pub(crate) deny: Arc<str>,
    /// `on_deny`, or the gateway's `Rate limit exceeded for <name>`.
    pub(crate) limit: Arc<str>,
    /// When the trace lacks the argument values the rule reads.
    pub(crate) unknown: Arc<str>,
}

impl Rule {
    /// Rule `id` (`<tool>/<rule name>`), a `deny` action when `deny`.
    pub(crate) fn new(
        id: Arc<str>,
        deny: bool,
        conditions: Vec<Condition>,
        messages: RuleMessages,
        state: Option<StateBlock>,
    ) -> Rule {
        Rule {
            id,
            deny,
            conditions,
            deny_message: messages.deny,
            limit_message: messages.limit,
            unknown_message: messages.unknown,
            state,
        }
    }

    /// The rule's `state` block.
    #[cfg(test)]
    pub(crate) fn state(&self) -> Option<&StateBlock> {
        self.state.as_ref()
    }
}

/// The rule id of a call forwarded unevaluated because its arguments are not an object.
pub const NOT_OBJECT_RULE: &str = "(arguments not an object)";

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
    pub(super) default_deny: bool,
    pub(super) hide_all: bool,
    pub(super) hidden: HashSet<String>,
    pub(super) tools: HashMap<String, Vec<Rule>>,
    /// Rules of the `"*"` key.
    pub(super) wildcard: Vec<Rule>,
    /// Whether `"*"` is itself a key under `tools` (it then counts as listed for a call named `*`).
    pub(super) wildcard_listed: bool,
    pub(super) counters: Vec<InterceptCounter>,
    pub(super) rule_count: usize,
    pub(super) hidden_rule: Arc<str>,
    pub(super) default_deny_rule: Arc<str>,
    pub(super) not_object_rule: Arc<str>,
    pub(super) not_object_message: Arc<str>,
    pub(super) internal_error_message: Arc<str>,
    pub(super) empty: Arc<str>,
}

impl InterceptPolicy {
    /// A policy of `tools` (rules by tool name) and the rules of the `"*"` key when there is
    /// one, hiding `hidden` (`"*"` hides every tool), over `counters` (the slots the rules
    /// name).
    pub(crate) fn new(
        default_deny: bool,
        hidden: HashSet<String>,
        tools: HashMap<String, Vec<Rule>>,
        wildcard: Option<Vec<Rule>>,
        counters: Vec<InterceptCounter>,
    ) -> InterceptPolicy {
        let rule_count =
            tools.values().map(Vec::len).sum::<usize>() + wildcard.as_ref().map_or(0, Vec::len);
        InterceptPolicy {
            default_deny,
            hide_all: hidden.contains("*"),
            hidden,
            tools,
            wildcard_listed: wildcard.is_some(),
            wildcard: wildcard.unwrap_or_default(),
            counters,
            rule_count,
            hidden_rule: Arc::from("(hidden)"),
            default_deny_rule: Arc::from("(default deny)"),
            not_object_rule: Arc::from(NOT_OBJECT_RULE),
            not_object_message: Arc::from(
                "arguments are not a JSON object: the gateway forwards the call without evaluating it",
            ),
            internal_error_message: Arc::from("Internal policy error"),
            empty: Arc::from(""),
        }
    }

    /// The rules of tool key `tool` (not those of `"*"`).
    #[cfg(test)]
    pub(crate) fn tool_rules(&self, tool: &str) -> Option<&[Rule]> {
        self.tools.get(tool).map(Vec::as_slice)
    }

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

    /// Whether calls of `tool` are denied as hidden.
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.hide_all || self.hidden.contains(tool)
    }

    /// Tool keys, sorted (`"*"` included when present).
    pub fn tool_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tools.keys().map(String::as_str).collect();
        if self.wildcard_listed {
            names.push("*");
        }
        names.sort_unstable();
        names
    }

    /// Number of rules whose `state` block reserves (has a binding `lt`/`lte` cap).
    pub fn limit_count(&self) -> usize {
        self.tools
            .values()
            .flatten()
            .chain(&self.wildcard)
            .filter(|r| r.state.as_ref().is_some_and(|s| s.cap.is_some()))
            .count()
    }

    /// Every rule with its id, in file order (tools by name, then `"*"`); a rule whose `state`
    /// block reserves has a limit: its cap and its counter's window.
    pub fn rule_limits(&self) -> Vec<RuleLimit> {
        let mut tools: Vec<(&String, &Vec<Rule>)> = self.tools.iter().collect();
        tools.sort_by_key(|(name, _)| *name);
        (tools.into_iter().flat_map(|(_, rules)| rules))
            .chain(&self.wildcard)
            .map(|r| RuleLimit {
                rule: r.id.clone(),
                limit: r.state.as_ref().and_then(|s| {
                    let window = self.counters.get(s.slot)?.window?;
                    Some((s.cap? as f64, window.seconds()))
                }),
            })
            .collect()
    }

    fn is_listed(&self, tool: &str) -> bool {
        self.tools.contains_key(tool) || (tool == "*" && self.wildcard_listed)
    }
}

/// One counter of the store: the value and the window it was last written in.
#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Nanos,
    window_len: Nanos,
    used: i64,
}

/// Reservations to give back when a failed call's reply arrives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PendingRollback {
    at: Nanos,
    seq: u64,
    reserved: Vec<(StoreKey, i64)>,
}

/// A store key: the server part (0 when counters are shared by every server) and the id of
/// `<tool>.<counter>`.
type StoreKey = (u32, u32);

/// What a store holds.
#[derive(Debug, Clone, Default)]
struct StoreState {
    keys: HashMap<Arc<str>, u32>,
    servers: HashMap<Arc<str>, u32>,
    entries: HashMap<StoreKey, Entry>,
    pending: BinaryHeap<Reverse<PendingRollback>>,
    seq: u64,
}

impl StoreState {
    fn key_id(&mut self, key: &Arc<str>) -> u32 {
        let next = self.keys.len() as u32;
        *self.keys.entry(key.clone()).or_insert(next)
    }

    fn server_id(&mut self, server: &str) -> u32 {
        if let Some(&id) = self.servers.get(server) {
            return id;
        }
        let id = self.servers.len() as u32 + 1;
        self.servers.insert(Arc::from(server), id);
        id
    }

    /// The counter's value at `ts`: zero outside the window it was written in, as the
    /// gateway's store reads it (with the window length of its last write).
    fn read(&self, key: StoreKey, ts: Nanos) -> i64 {
        match self.entries.get(&key) {
            Some(e) if e.window_start == window::fixed_window_start(ts, e.window_len) => e.used,
            _ => 0,
        }
    }

    /// Give reservations back: the stores subtract and floor the value at zero, whatever
    /// window the counter is in now.
    fn rollback(&mut self, reserved: &[(StoreKey, i64)]) {
        for (key, amount) in reserved {
            if let Some(e) = self.entries.get_mut(key) {
                e.used = e.used.wrapping_sub(*amount).max(0);
            }
        }
    }

    /// Apply the rollbacks of replies that arrived at or before `ts`, in arrival order.
    fn settle(&mut self, ts: Nanos) {
        while self.pending.peek().is_some_and(|p| p.0.at <= ts) {
            if let Some(Reverse(p)) = self.pending.pop() {
                self.rollback(&p.reserved);
            }
        }
    }
}

/// The gateway's state store: Intercept counters by key (`<tool>.<counter>`,
/// `_global.<counter>`). Every Intercept instance of a deployment shares one store by
/// default, so engines given the same store (clones of one [`InterceptStore`]) share their
/// counters across servers and policies; with [`EvalOptions::intercept_per_server`] each
/// server keeps its own.
#[derive(Debug, Clone, Default)]
pub struct InterceptStore(Arc<Mutex<StoreState>>);

impl InterceptStore {
    /// An empty store.
    pub fn new() -> InterceptStore {
        InterceptStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        // A panic while holding the lock leaves counters that are still consistent numbers.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A separate store holding a copy of this one's counters.
    fn snapshot(&self) -> InterceptStore {
        InterceptStore(Arc::new(Mutex::new(self.lock().clone())))
    }
}

/// Runs one compiled Intercept policy over calls in time order, keeping its counters in a
/// store (its own, or one shared with other engines).
#[derive(Debug)]
pub struct InterceptEngine {
    policy: Arc<InterceptPolicy>,
    opts: EvalOptions,
    store: InterceptStore,
    /// The store's key id of each counter slot of the policy.
    slot_keys: Vec<u32>,
    /// Reservations of the call being evaluated (reused across calls).
    scratch: Vec<(StoreKey, i64)>,
}

/// Cloning an engine snapshots its counters: the clone has a store of its own.
impl Clone for InterceptEngine {
    fn clone(&self) -> InterceptEngine {
        InterceptEngine {
            policy: self.policy.clone(),
            opts: self.opts,
            store: self.store.snapshot(),
            slot_keys: self.slot_keys.clone(),
            scratch: Vec::new(),
        }
    }
}

fn decision(kind: DecisionKind, rule: &Arc<str>, message: &Arc<str>) -> Decision {
    Decision {
        kind,
        rule: rule.clone(),
        message: message.clone(),
        throttle: None,
        approval_required: false,
    }
}

/// What the rules phase decides, before any counter is touched.
enum Screen<'p> {
    /// Rule id and message. Hidden and default-deny messages name the tool, as the gateway's do.
    Deny(&'p Arc<str>, Arc<str>),
    /// A condition needed argument values the trace did not record; the first such rule.
    Unknown(&'p Rule),
    Pass,
}

/// How `state.` conditions read counters: from a store (its state, the call's server part,
/// the key id of each slot), or all zero.
#[derive(Clone, Copy)]
struct Reader<'a>(Option<(&'a StoreState, u32, &'a [u32])>);

impl Reader<'_> {
    fn used(&self, slot: usize, ts: Nanos) -> i64 {
        match self.0 {
            Some((store, server, keys)) => store.read((server, keys[slot]), ts),
            None => 0,
        }
    }
}

/// The rules phase: hidden, default deny, then tool and wildcard rules in file order.
fn screen<'p>(
    policy: &'p InterceptPolicy,
    call: &CallView<'_>,
    counters: Reader<'_>,
) -> Screen<'p> {
    let tool = call.tool;
    if policy.is_hidden(tool) {
        let message = format!("Tool {} is hidden by policy", gofmt::quote(tool));
        return Screen::Deny(&policy.hidden_rule, Arc::from(message));
    }
    if policy.default_deny && !policy.is_listed(tool) {
        let message = format!("Tool {} is not permitted by policy", gofmt::quote(tool));
        return Screen::Deny(&policy.default_deny_rule, Arc::from(message));
    }
    let mut first_unknown: Option<&Rule> = None;
    for rule in policy.rules_for(tool) {
        if rule.deny {
            return Screen::Deny(&rule.id, rule.deny_message.clone());
        }
        let mut rule_unknown = false;
        for cond in &rule.conditions {
            match eval_condition(cond, call, counters) {
                Truth::Holds => {}
                // Deny wins over unknown: whatever the unrecorded values were, this call is denied.
                Truth::Fails => return Screen::Deny(&rule.id, rule.deny_message.clone()),
                Truth::Unknown => rule_unknown = true,
            }
        }
        if rule_unknown && first_unknown.is_none() {
            first_unknown = Some(rule);
        }
    }
    match first_unknown {
        Some(rule) => Screen::Unknown(rule),
        None => Screen::Pass,
    }
}

impl InterceptEngine {
    /// A fresh engine with a store of its own: every counter at zero.
    pub fn new(policy: Arc<InterceptPolicy>, opts: EvalOptions) -> InterceptEngine {
        InterceptEngine::with_store(policy, opts, &InterceptStore::new())
    }

    /// A fresh engine keeping its counters in `store`, shared with every engine given a clone
    /// of it (as the gateway's instances share one state store).
    pub fn with_store(
        policy: Arc<InterceptPolicy>,
        opts: EvalOptions,
        store: &InterceptStore,
    ) -> InterceptEngine {
        let slot_keys = {
            let mut state = store.lock();
            policy
                .counters
                .iter()
                .map(|c| state.key_id(&c.key))
                .collect()
        };
        InterceptEngine {
            policy,
            opts,
            store: store.clone(),
            slot_keys,
            scratch: Vec::new(),
        }
    }

    /// The policy this engine runs.
    pub fn policy(&self) -> &Arc<InterceptPolicy> {
        &self.policy
    }

    /// The scope counters are kept in, as throttles report it.
    fn scope(&self) -> Scope {
        if self.opts.intercept_per_server {
            Scope::Server
        } else {
            Scope::Global
        }
    }

    /// Decide one call, reserve its counters, and give them back if the upstream call failed:
    /// when its reply arrives ([`CallView::reply_at`]), else at once. Rollbacks of earlier calls
    /// whose replies arrived by this call's time are applied first.
    ///
    /// A reservation that does not fit is reported as `throttle` (the gateway answers it with a
    /// denial; mcpsim keeps limit refusals apart from rule refusals in every dialect). An
    /// `unknown` call still reserves (unless `--assume-unknown deny`), every counter but those
    /// whose increment is an unrecorded argument.
    pub fn evaluate(&mut self, call: &CallView<'_>) -> Decision {
        let policy = Arc::clone(&self.policy);
        let store = self.store.clone();
        let mut state = store.lock();
        state.settle(call.ts);
        // The gateway cannot read such arguments and forwards the call unevaluated: allowed,
        // nothing reserved, so nothing to give back.
        if call.args.is_not_object() {
            let rule = &policy.not_object_rule;
            return decision(DecisionKind::Allow, rule, &policy.not_object_message);
        }
        let server = if self.opts.intercept_per_server {
            state.server_id(call.server)
        } else {
            0
        };
        let reader = Reader(Some((&state, server, &self.slot_keys)));
        let unknown_rule = match screen(&policy, call, reader) {
            Screen::Deny(rule, message) => return decision(DecisionKind::Deny, rule, &message),
            Screen::Unknown(rule) if self.opts.assume_unknown_deny => {
                return decision(DecisionKind::Unknown, &rule.id, &rule.unknown_message);
            }
            Screen::Unknown(rule) => Some(rule),
            Screen::Pass => None,
        };
        let outcome = self.reserve(&policy, call, &mut state, server);
        let (refused, unknown_rule) = match outcome {
            // An unknown increment under `--assume-unknown deny`: the call consumes nothing.
            Ok(Some(rule)) if self.opts.assume_unknown_deny => {
                state.rollback(&self.scratch);
                (None, unknown_rule.or(Some(rule)))
            }
            Ok(unknown_increment) => {
                if self.upstream_failed(call.upstream) {
                    match call.reply_at.filter(|&at| at > call.ts) {
                        Some(at) => {
                            state.seq += 1;
                            let seq = state.seq;
                            state.pending.push(Reverse(PendingRollback {
                                at,
                                seq,
                                reserved: self.scratch.clone(),
                            }));
                        }
                        None => state.rollback(&self.scratch),
                    }
                }
                (None, unknown_rule.or(unknown_increment))
            }
            Err(refusal) => {
                state.rollback(&self.scratch);
                (Some(refusal), unknown_rule)
            }
        };
        drop(state);
        self.scratch.clear();
        match (refused, unknown_rule) {
            // A decidable deny (bad `increment_from`) wins over unknown.
            (Some(Refusal::Deny(rule)), _) => {
                decision(DecisionKind::Deny, &rule.id, &policy.internal_error_message)
            }
            (_, Some(rule)) | (Some(Refusal::Unknown(rule)), None) => {
                decision(DecisionKind::Unknown, &rule.id, &rule.unknown_message)
            }
            (Some(Refusal::Throttle(rule, t)), None) => Decision {
                throttle: Some(t),
                ..decision(DecisionKind::Throttle, &rule.id, &rule.limit_message)
            },
            (None, None) => decision(DecisionKind::Allow, &policy.empty, &policy.empty),
        }
    }

    /// The reservation phase, as the gateway's store runs it: in rule order, each counter
    /// checked and written at once (`used + amount > cap` refuses, in int64 arithmetic that
    /// wraps), tentative increments listed in `self.scratch` for the caller to give back on a
    /// refusal or a failed upstream call.
    ///
    /// A rule whose `increment_from` was not recorded is skipped, its counter neither checked
    /// nor charged, and the first such rule is returned: the call is unknown, and reserves the
    /// rest as an unknown call does. A refusal after it is a refusal of unknown kind.
    fn reserve<'p>(
        &mut self,
        policy: &'p InterceptPolicy,
        call: &CallView<'_>,
        state: &mut StoreState,
        server: u32,
    ) -> Result<Option<&'p Rule>, Refusal<'p>> {
        self.scratch.clear();
        let mut unknown: Option<&'p Rule> = None;
        let refuse = |unknown: Option<&'p Rule>, refusal| match unknown {
            Some(first) => Err(Refusal::Unknown(first)),
            None => Err(refusal),
        };
        for rule in policy.rules_for(call.tool) {
            let Some(block) = &rule.state else { continue };
            // The gateway resolves the increment before it looks for a cap, so a bad
            // `increment_from` denies even on a rule that never increments.
            let amount = match &block.increment {
                Increment::Fixed(n) => *n,
                Increment::From(path) => match increment_from(path, call.args) {
                    Amount::Value(n) => n,
                    Amount::Invalid => return refuse(unknown, Refusal::Deny(rule)),
                    Amount::Unknown => {
                        unknown.get_or_insert(rule);
                        continue;
                    }
                },
            };
            let Some(cap) = block.cap else { continue };
            let Some(window) = policy.counters[block.slot].window else {
                continue;
            };
            let start = window.start(call.ts);
            let key = (server, self.slot_keys[block.slot]);
            let used = match state.entries.get(&key) {
                Some(e) if e.window_start == start => e.used,
                _ => 0,
            };
            if used.wrapping_add(amount) > cap {
                return refuse(
                    unknown,
                    Refusal::Throttle(
                        rule,
                        Throttle {
                            counter: policy.counters[block.slot].key.clone(),
                            scope: self.scope(),
                            window_start: start,
                            used: used as f64,
                            max: cap as f64,
                            increment: amount as f64,
                            retry_after: window::fixed_window_end(start, window.len_nanos()),
                        },
                    ),
                );
            }
            state.entries.insert(
                key,
                Entry {
                    window_start: start,
                    window_len: window.len_nanos(),
                    used: used.wrapping_add(amount),
                },
            );
            self.scratch.push((key, amount));
        }
        Ok(unknown)
    }

    /// The rules phase alone with every counter at zero, plus the reservations that would be
    /// attempted: see [`static_outcome`].
    pub fn static_outcome(&self, call: &CallView<'_>) -> StaticOutcome {
        static_outcome(&self.policy, call)
    }

    fn upstream_failed(&self, upstream: Option<Upstream>) -> bool {
        match upstream {
            Some(Upstream::Error) => true,
            Some(Upstream::ToolError) => self.opts.rollback_on_tool_error,
            Some(Upstream::Ok) => false,
            None => self.opts.assume_upstream_failure,
        }
    }
}

/// Why the reservation phase stopped a call.
enum Refusal<'p> {
    Throttle(&'p Rule, Throttle),
    /// `increment_from` missing or not a number.
    Deny(&'p Rule),
    /// `increment_from` not recorded.
    Unknown(&'p Rule),
}

/// What the rules phase decides about `call` under `policy` with every counter at zero, and
/// the reservations that would follow, described by definition (counter key, window, cap,
/// increment source) so that outcomes compare across two policies of either dialect.
pub fn static_outcome(policy: &InterceptPolicy, call: &CallView<'_>) -> StaticOutcome {
    if call.args.is_not_object() {
        return StaticOutcome {
            decided: Some(DecisionKind::Allow),
            rule: policy.not_object_rule.clone(),
            limits: Vec::new(),
        };
    }
    match screen(policy, call, Reader(None)) {
        Screen::Deny(rule, _) => StaticOutcome {
            decided: Some(DecisionKind::Deny),
            rule: rule.clone(),
            limits: Vec::new(),
        },
        Screen::Unknown(rule) => StaticOutcome {
            decided: Some(DecisionKind::Unknown),
            rule: rule.id.clone(),
            limits: limit_specs(policy, call.tool),
        },
        Screen::Pass => StaticOutcome {
            decided: None,
            rule: policy.empty.clone(),
            limits: limit_specs(policy, call.tool),
        },
    }
}

/// The binding reservations of a tool as the engine's limit definitions.
fn limit_specs(policy: &InterceptPolicy, tool: &str) -> Vec<LimitSpec> {
    policy
        .rules_for(tool)
        .filter_map(|rule| limit_spec(policy, rule))
        .collect()
}

/// A rule's reservation as a limit definition, when it binds (has a cap and a window).
fn limit_spec(policy: &InterceptPolicy, rule: &Rule) -> Option<LimitSpec> {
    let state = rule.state.as_ref()?;
    let cap = state.cap?;
    let counter = &policy.counters[state.slot];
    Some(LimitSpec {
        counter: counter.key.clone(),
        window_secs: counter.window?.seconds(),
        max: cap as f64,
        // The gateway's instances share one store by default (explain gives the run's scope).
        scope: Scope::Global,
        algorithm: Algorithm::Fixed,
        increment_from: match &state.increment {
            Increment::From(path) => Some(Arc::from(&*path.text)),
            Increment::Fixed(_) => None,
        },
    })
}

impl InterceptEngine {
    /// Every rule the evaluation visits for `call`, in order, then every binding reservation
    /// with its counter as it stands now. Counter state is not changed. Condition steps stop
    /// where a condition fails or a `deny` rule is reached (list `conditions` / `deny`).
    pub fn explain(&self, call: &CallView<'_>) -> Vec<ExplainStep> {
        let policy = &*self.policy;
        let step = |rule: &Arc<str>, outcome| ExplainStep {
            rule: rule.clone(),
            outcome,
        };
        let mut steps = Vec::new();
        if call.args.is_not_object() {
            return steps;
        }
        if policy.is_hidden(call.tool) {
            steps.push(step(&policy.hidden_rule, StepOutcome::Hidden));
            return steps;
        }
        if !policy.is_listed(call.tool) {
            if policy.default_deny {
                steps.push(step(&policy.default_deny_rule, StepOutcome::DefaultDeny));
                return steps;
            }
            steps.push(step(&policy.empty, StepOutcome::Unlisted));
        }
        // Counters as the call would find them: replies that arrived by now rolled back.
        let mut state = self.store.lock().clone();
        state.settle(call.ts);
        let server = match self.opts.intercept_per_server {
            true => state.servers.get(call.server).copied().unwrap_or(u32::MAX),
            false => 0,
        };
        let reader = Reader(Some((&state, server, &self.slot_keys)));
        for rule in policy.rules_for(call.tool) {
            if rule.deny {
                let outcome = StepOutcome::Predicate {
                    list: "deny",
                    holds: Some(true),
                };
                steps.push(step(&rule.id, outcome));
                return steps;
            }
            for cond in &rule.conditions {
                let holds = match eval_condition(cond, call, reader) {
                    Truth::Holds => Some(true),
                    Truth::Fails => Some(false),
                    Truth::Unknown => None,
                };
                let outcome = StepOutcome::Predicate {
                    list: "conditions",
                    holds,
                };
                steps.push(step(&rule.id, outcome));
                if holds == Some(false) {
                    return steps;
                }
            }
        }
        for rule in policy.rules_for(call.tool) {
            let (Some(mut spec), Some(block)) = (limit_spec(policy, rule), &rule.state) else {
                continue;
            };
            spec.scope = self.scope();
            let window_start =
                window::fixed_window_start(call.ts, window::window_nanos(spec.window_secs));
            let used = match state.entries.get(&(server, self.slot_keys[block.slot])) {
                Some(e) if e.window_start == window_start => e.used,
                _ => 0,
            };
            let increment = match &block.increment {
                Increment::Fixed(n) => Some(*n),
                Increment::From(path) => match increment_from(path, call.args) {
                    Amount::Value(n) => Some(n),
                    Amount::Invalid | Amount::Unknown => None,
                },
            };
            let outcome = StepOutcome::Limit {
                window_start,
                used: used as f64,
                increment: increment.map(|n| n as f64),
                fits: increment.map(|n| used.wrapping_add(n) as f64 <= spec.max),
                spec,
            };
            steps.push(step(&rule.id, outcome));
        }
        steps
    }
}

enum Amount {
    Value(i64),
    Invalid,
    Unknown,
}

/// `increment_from`: the argument (a JSON number, so a Go `float64`) converted with Go's
/// `int64(f)`: truncated toward zero, the minimum int64 when out of range.
fn increment_from(path: &ArgPath, args: ArgsRef<'_>) -> Amount {
    match path.find(args) {
        ArgLookup::Value(value) => match value.as_deref() {
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) => Amount::Value(gofmt::float_to_int64(f)),
                None => Amount::Invalid,
            },
            _ => Amount::Invalid,
        },
        ArgLookup::TopKey(false) => Amount::Invalid,
        ArgLookup::TopKey(true) | ArgLookup::Unrecorded => Amount::Unknown,
    }
}

fn eval_condition(cond: &Condition, call: &CallView<'_>, counters: Reader<'_>) -> Truth {
    match &cond.target {
        Target::Args(path) => predicate::eval(path, &cond.op, call.args, EqMode::Printed),
        Target::State(slot) => {
            let used = counters.used(*slot, call.ts);
            predicate::holds(&cond.op, Some(&Value::from(used)), EqMode::PrintedCounter).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printed_eq_coerces_non_numbers_only() {
        let eq = |a: Value, b: Value| predicate::json_eq(&a, &b, EqMode::Printed);
        assert!(eq(json!("5"), json!(5)));
        assert!(eq(json!(5.0), json!(5)));
        assert!(eq(json!("true"), json!(true)));
        assert!(eq(json!("[a 1]"), json!(["a", 1])));
        assert!(!eq(json!("null"), json!(null)));
        assert!(!eq(json!("5.0"), json!(5)));
        assert!(!eq(json!("a"), json!("b")));
    }

    #[test]
    fn windows_are_calendar_aligned() {
        let t = 1_700_000_123 * window::NANOS_PER_SEC + 5;
        assert_eq!(
            InterceptWindow::Minute.start(t),
            1_700_000_100 * window::NANOS_PER_SEC
        );
        assert_eq!(
            InterceptWindow::Hour.start(t),
            1_699_999_200 * window::NANOS_PER_SEC
        );
        assert_eq!(
            InterceptWindow::Day.start(t),
            1_699_920_000 * window::NANOS_PER_SEC
        );
        let boundary = 1_700_000_160 * window::NANOS_PER_SEC;
        assert_eq!(InterceptWindow::Minute.start(boundary), boundary);
    }
}
