//! The compiled policy the evaluator runs, of either dialect.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::decision::Scope;
use super::intercept::InterceptPolicy;
use super::predicate::{ArgPath, EqMode, Op};
use super::screen::Screened;
use crate::call::ArgsRef;

/// How a limit counts what was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// Fixed, UTC-aligned windows (what the gateway does).
    Fixed,
    /// Exact sliding log over the last window length.
    Sliding,
}

impl Algorithm {
    /// The policy-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Fixed => "fixed",
            Algorithm::Sliding => "sliding",
        }
    }
}

/// A limit as defined in a policy, independent of how it was compiled: two policies that
/// define the same limit produce equal specs.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSpec {
    /// Counter name (shared by every limit that names it).
    pub counter: Arc<str>,
    /// Window length in seconds (`minute` is 60).
    pub window_secs: u64,
    /// Maximum per window.
    pub max: f64,
    /// Scope whose key holds the counter.
    pub scope: Scope,
    /// Fixed or sliding.
    pub algorithm: Algorithm,
    /// `increment_from` path (`args.…`) when the increment is an argument value, else 1.
    pub increment_from: Option<Arc<str>>,
}

/// One predicate with its precomputed rule id and messages.
#[derive(Debug, Clone)]
pub(crate) struct Predicate {
    pub(super) path: ArgPath,
    pub(super) op: Op,
    /// `/tools/<tool>/<list>/<path>-<op>`.
    pub(super) rule: Arc<str>,
    /// Message when this predicate decides the call (deny or approval).
    pub(super) message: Arc<str>,
    /// Message when the trace lacks what this predicate needs.
    pub(super) unknown_message: Arc<str>,
    /// Message when a `require` fails because the call left the argument out.
    pub(super) absent_message: Arc<str>,
}

/// A counter shared by name: its definition and slot.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    pub(crate) name: Arc<str>,
    pub(crate) window_secs: u64,
    pub(crate) max: f64,
    pub(crate) scope: Scope,
    pub(crate) algorithm: Algorithm,
}

/// One place a counter is used (a tool's limit or an `all_tools` limit).
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    /// Index into [`PolicyLayer::counters`].
    pub(super) counter: usize,
    pub(super) increment_from: Option<ArgPath>,
    /// `/tools/<tool>/limits/<counter>` or `/all_tools/limits/<counter>`.
    pub(super) rule: Arc<str>,
    pub(super) throttle_message: Arc<str>,
    /// Deny message when `increment_from` is absent from recorded arguments.
    pub(super) missing_message: Arc<str>,
    /// Deny message when `increment_from` is not a number.
    pub(super) not_number_message: Arc<str>,
    /// Unknown message when the arguments were not recorded.
    pub(super) unknown_message: Arc<str>,
}

/// Per-tool rules.
#[derive(Debug, Clone)]
pub(crate) struct ToolRules {
    pub(super) name: Arc<str>,
    pub(super) require: Vec<Predicate>,
    pub(super) deny_if: Vec<Predicate>,
    pub(super) approve_if: Vec<Predicate>,
    pub(super) require_approval: bool,
    /// Indices into [`PolicyLayer::limits`], file order.
    pub(super) limits: Vec<usize>,
}

/// A tool of a policy whose calls' steps 1–5 are worked out ahead ([`Policy::screened_tool`]).
#[derive(Debug, Clone, Copy)]
pub struct ScreenedTool(Entry);

/// What one tool name resolves to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) hidden: bool,
    /// Index into [`PolicyLayer::tools`] when the tool is configured.
    pub(super) tool: Option<usize>,
}

/// Strings every decision may carry, allocated once.
#[derive(Debug, Clone)]
pub(super) struct Sentinels {
    pub(super) empty: Arc<str>,
    pub(super) hidden_rule: Arc<str>,
    pub(super) hidden_message: Arc<str>,
    pub(super) default_deny_rule: Arc<str>,
    pub(super) default_deny_message: Arc<str>,
    pub(super) require_approval_message: Arc<str>,
}

impl Default for Sentinels {
    fn default() -> Sentinels {
        Sentinels {
            empty: Arc::from(""),
            hidden_rule: Arc::from(Policy::HIDDEN),
            hidden_message: Arc::from("tool is hidden by the policy"),
            default_deny_rule: Arc::from(Policy::DEFAULT_DENY),
            default_deny_message: Arc::from(
                "tool is not listed under `tools` and the policy default is deny",
            ),
            require_approval_message: Arc::from("tool requires human approval"),
        }
    }
}

impl Predicate {
    /// A predicate with its rule id, its message when it decides, and its message when the
    /// trace lacks what it needs.
    pub(crate) fn new(
        path: ArgPath,
        op: Op,
        rule: Arc<str>,
        message: Arc<str>,
        unknown_message: Arc<str>,
    ) -> Predicate {
        let absent_message = Arc::from(format!("{message} (argument absent)"));
        Predicate {
            path,
            op,
            rule,
            message,
            unknown_message,
            absent_message,
        }
    }

    /// The argument path the predicate reads.
    pub(crate) fn path(&self) -> &ArgPath {
        &self.path
    }

    /// The operator with its policy value.
    pub(crate) fn op(&self) -> &Op {
        &self.op
    }
}

impl Counter {
    /// A counter definition.
    pub(crate) fn new(
        name: Arc<str>,
        window_secs: u64,
        max: f64,
        scope: Scope,
        algorithm: Algorithm,
    ) -> Counter {
        Counter {
            name,
            window_secs,
            max,
            scope,
            algorithm,
        }
    }
}

/// What a limit says when it stops a call, beside its rule id.
#[derive(Debug, Clone)]
pub(crate) struct LimitMessages {
    /// Throttle message.
    pub(crate) throttle: Arc<str>,
    /// Deny message when `increment_from` is absent from recorded arguments.
    pub(crate) missing: Arc<str>,
    /// Deny message when `increment_from` is not a number.
    pub(crate) not_number: Arc<str>,
    /// Unknown message when the arguments were not recorded.
    pub(crate) unknown: Arc<str>,
}

impl Limit {
    /// A use of counter slot `counter` by rule `rule`.
    pub(crate) fn new(
        counter: usize,
        increment_from: Option<ArgPath>,
        rule: Arc<str>,
        messages: LimitMessages,
    ) -> Limit {
        Limit {
            counter,
            increment_from,
            rule,
            throttle_message: messages.throttle,
            missing_message: messages.missing,
            not_number_message: messages.not_number,
            unknown_message: messages.unknown,
        }
    }

    /// The counter slot.
    pub(crate) fn counter(&self) -> usize {
        self.counter
    }

    /// Whether the increment is read from the arguments.
    pub(crate) fn reads_args(&self) -> bool {
        self.increment_from.is_some()
    }
}

impl ToolRules {
    /// The rules of tool `name`; `limits` are indices of limits added to the policy.
    pub(crate) fn new(
        name: Arc<str>,
        require: Vec<Predicate>,
        deny_if: Vec<Predicate>,
        approve_if: Vec<Predicate>,
        require_approval: bool,
        limits: Vec<usize>,
    ) -> ToolRules {
        ToolRules {
            name,
            require,
            deny_if,
            approve_if,
            require_approval,
            limits,
        }
    }
}

/// A rule of a policy as `sweep` sees it: its id as reports print it and, when it is a limit,
/// what a window admits (`max`) and the window's length in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleLimit {
    /// Rule id (`/tools/<tool>/limits/<counter>`, `<tool>/<rule name>`, …).
    pub rule: Arc<str>,
    /// `(max, window seconds)` for a limit; `None` for a rule without one.
    pub limit: Option<(f64, u64)>,
}

/// A compiled, immutable policy of either dialect. Build one with
/// [`crate::policy::load_policy_file`] or [`crate::policy::parse_policy_str`]; share it between
/// engines with an `Arc`.
#[derive(Debug, Clone)]
pub enum Policy {
    /// A policy of the PolicyLayer `policy.json` dialect.
    PolicyLayer(Arc<PolicyLayer>),
    /// A policy of the Intercept YAML dialect.
    Intercept(Arc<InterceptPolicy>),
}

impl Policy {
    /// Rule id of a call denied because its tool is hidden.
    pub const HIDDEN: &'static str = "(hidden)";
    /// Rule id of a call denied because its tool is not listed and the default is deny.
    pub const DEFAULT_DENY: &'static str = "(default deny)";
    /// Rule id callers use for calls of a server that has no policy.
    pub const NO_POLICY: &'static str = "(no policy)";

    /// A policy of the Intercept YAML dialect.
    pub(crate) fn from_intercept(policy: InterceptPolicy) -> Policy {
        Policy::Intercept(Arc::new(policy))
    }

    /// The Intercept policy, when this policy was read from that dialect.
    pub fn intercept(&self) -> Option<&InterceptPolicy> {
        match self {
            Policy::Intercept(p) => Some(p),
            Policy::PolicyLayer(_) => None,
        }
    }

    /// Whether tools not listed under `tools` are denied.
    pub fn default_deny(&self) -> bool {
        match self {
            Policy::PolicyLayer(p) => p.default_deny,
            Policy::Intercept(p) => p.default_deny(),
        }
    }

    /// Configured tool names, sorted.
    pub fn tool_names(&self) -> Vec<&str> {
        match self {
            Policy::PolicyLayer(p) => p.tool_names(),
            Policy::Intercept(p) => p.tool_names(),
        }
    }

    /// Number of configured tools.
    pub fn tool_count(&self) -> usize {
        match self {
            Policy::PolicyLayer(p) => p.tool_count(),
            Policy::Intercept(p) => p.tool_count(),
        }
    }

    /// Number of limits (each tool's and `all_tools`), counting a shared counter once per use.
    pub fn limit_count(&self) -> usize {
        match self {
            Policy::PolicyLayer(p) => p.limits.len(),
            Policy::Intercept(p) => p.limit_count(),
        }
    }

    /// Whether any decision under this policy can depend on a call's arguments (a predicate,
    /// an `increment_from`, or an Intercept policy, whose conditions read arguments). When it
    /// cannot, a replay need not build arguments at all.
    pub fn reads_args(&self) -> bool {
        match self {
            Policy::PolicyLayer(p) => p.reads_args(),
            Policy::Intercept(_) => true,
        }
    }

    /// Whether deciding a call of `tool` can read its arguments ([`Policy::reads_args`] for
    /// one tool): when it cannot, a replay need not build that call's arguments.
    pub fn reads_args_of(&self, tool: &str) -> bool {
        match self {
            Policy::PolicyLayer(p) => p.reads_args_of(tool),
            Policy::Intercept(_) => true,
        }
    }

    /// Whether a limit that applies to calls of `tool` charges an argument (`increment_from`;
    /// an Intercept policy: whether anything may read them).
    pub fn limits_read_args_of(&self, tool: &str) -> bool {
        match self {
            Policy::PolicyLayer(p) => p.limits_read_args_of(tool),
            Policy::Intercept(_) => true,
        }
    }

    /// A tool whose calls [`Policy::screen`] can decide steps 1–5 for ahead of their
    /// evaluation: a tool of a PolicyLayer policy with rules that read the arguments (`None`
    /// for any other: their steps 1–5 cost the evaluation next to nothing, and an Intercept
    /// policy's conditions read counters).
    pub fn screened_tool(&self, tool: &str) -> Option<ScreenedTool> {
        let Policy::PolicyLayer(p) = self else {
            return None;
        };
        let entry = p.entries.get(tool).copied()?;
        let t = p.tools.get(entry.tool?)?;
        let reads = !t.require.is_empty() || !t.deny_if.is_empty() || !t.approve_if.is_empty();
        (reads && !entry.hidden && !p.hide_all).then_some(ScreenedTool(entry))
    }

    /// Steps 1–5 of the evaluation order for a call of `tool` with `args`: they read no
    /// counter, so a reader's thread can work them out while the replay evaluates earlier
    /// calls, and [`super::Engine::evaluate_screened_into`] then skips them. `tool` must come
    /// from this policy's [`Policy::screened_tool`].
    pub fn screen(&self, tool: ScreenedTool, args: ArgsRef<'_>) -> Screened {
        match self {
            Policy::PolicyLayer(p) => super::screen::screen_code(p, Some(tool.0), args),
            Policy::Intercept(_) => Screened::from_bits(0),
        }
    }

    /// Whether evaluating calls can read their session: a counter kept per session, or an
    /// Intercept policy (whose evaluator is not analysed for it).
    pub fn reads_sessions(&self) -> bool {
        match self {
            Policy::PolicyLayer(p) => p.counters.iter().any(|c| c.scope == Scope::Session),
            Policy::Intercept(_) => true,
        }
    }

    /// Every rule of the policy with its limit, if it has one, sorted by id.
    pub fn rule_limits(&self) -> Vec<RuleLimit> {
        let mut rules = match self {
            Policy::PolicyLayer(p) => p.rule_limits(),
            Policy::Intercept(p) => p.rule_limits(),
        };
        rules.sort_by(|a, b| a.rule.cmp(&b.rule));
        rules.dedup_by(|a, b| a.rule == b.rule);
        rules
    }

    /// The counters calls of this policy share, each with the scope whose instances keep it
    /// apart (a counter of another instance never moves it): a PolicyLayer counter's own
    /// `scope`; an Intercept counter lives in the store every Intercept engine of a run
    /// shares (`Global`), or in its server's with `intercept_per_server` (`Server`).
    pub fn counter_scopes(&self, intercept_per_server: bool) -> Vec<(Scope, Arc<str>)> {
        match self {
            Policy::PolicyLayer(p) => p
                .counters
                .iter()
                .map(|c| (c.scope, c.name.clone()))
                .collect(),
            Policy::Intercept(p) => {
                let scope = if intercept_per_server {
                    Scope::Server
                } else {
                    Scope::Global
                };
                p.counters.iter().map(|c| (scope, c.key.clone())).collect()
            }
        }
    }

    /// Whether calls of `tool` are denied as hidden.
    pub fn is_hidden(&self, tool: &str) -> bool {
        match self {
            Policy::PolicyLayer(p) => p.is_hidden(tool),
            Policy::Intercept(p) => p.is_hidden(tool),
        }
    }
}

/// A compiled policy of the PolicyLayer dialect: tools resolved once per call, regexes
/// compiled, counters resolved to slots, every rule id and message precomputed. The compiler
/// builds one with [`PolicyLayer::new`] and the `add_` methods.
#[derive(Debug, Clone)]
pub struct PolicyLayer {
    pub(super) default_deny: bool,
    pub(super) hide_all: bool,
    pub(super) entries: HashMap<Box<str>, Entry>,
    pub(super) tools: Vec<ToolRules>,
    pub(super) all_tools_limits: Vec<usize>,
    pub(super) limits: Vec<Limit>,
    pub(super) counters: Vec<Counter>,
    pub(super) eq_mode: EqMode,
    pub(super) sentinels: Sentinels,
    /// Rule id of each tool's `require_approval: true` (`/tools/<tool>/require_approval`).
    pub(super) approval_rules: Vec<Arc<str>>,
}

impl PolicyLayer {
    /// An empty policy whose default is deny, for the compiler to fill in.
    pub(crate) fn new() -> PolicyLayer {
        PolicyLayer {
            default_deny: true,
            hide_all: false,
            entries: HashMap::default(),
            tools: Vec::new(),
            all_tools_limits: Vec::new(),
            limits: Vec::new(),
            counters: Vec::new(),
            eq_mode: EqMode::Strict,
            sentinels: Sentinels::default(),
            approval_rules: Vec::new(),
        }
    }

    /// Set whether tools not listed under `tools` are denied.
    pub(crate) fn set_default_deny(&mut self, deny: bool) {
        self.default_deny = deny;
    }

    /// Set whether every tool is hidden (`hide: ["*"]`).
    pub(crate) fn set_hide_all(&mut self, hide_all: bool) {
        self.hide_all = hide_all;
    }

    /// Hide `tool`.
    pub(crate) fn hide(&mut self, tool: &str) {
        self.entry(tool).hidden = true;
    }

    /// Add a configured tool; its index.
    pub(crate) fn add_tool(&mut self, rules: ToolRules) -> usize {
        let ti = self.tools.len();
        self.approval_rules
            .push(Arc::from(format!("/tools/{}/require_approval", rules.name)));
        self.entry(&rules.name.clone()).tool = Some(ti);
        self.tools.push(rules);
        ti
    }

    fn entry(&mut self, tool: &str) -> &mut Entry {
        self.entries.entry(Box::from(tool)).or_insert(Entry {
            hidden: false,
            tool: None,
        })
    }

    /// Add a counter; its slot.
    pub(crate) fn add_counter(&mut self, counter: Counter) -> usize {
        self.counters.push(counter);
        self.counters.len() - 1
    }

    /// The counter in `slot`.
    pub(crate) fn counter(&self, slot: usize) -> &Counter {
        &self.counters[slot]
    }

    /// Add a limit; its index (what [`ToolRules`] and `all_tools` refer to).
    pub(crate) fn add_limit(&mut self, limit: Limit) -> usize {
        self.limits.push(limit);
        self.limits.len() - 1
    }

    /// Limit number `i`.
    pub(crate) fn limit(&self, i: usize) -> &Limit {
        &self.limits[i]
    }

    /// Set the `all_tools` limits (indices of added limits).
    pub(crate) fn set_all_tools_limits(&mut self, limits: Vec<usize>) {
        self.all_tools_limits = limits;
    }

    /// Whether `all_tools` has limits.
    pub(crate) fn has_all_tools_limits(&self) -> bool {
        !self.all_tools_limits.is_empty()
    }

    /// The shared empty string of rule ids and messages.
    pub(crate) fn empty_text(&self) -> &Arc<str> {
        &self.sentinels.empty
    }

    /// Whether tools not listed under `tools` are denied.
    pub fn default_deny(&self) -> bool {
        self.default_deny
    }

    /// Configured tool names, sorted.
    pub fn tool_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tools.iter().map(|t| &*t.name).collect();
        names.sort_unstable();
        names
    }

    /// Number of configured tools.
    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }

    /// Whether any decision can depend on a call's arguments (a predicate or an
    /// `increment_from`).
    pub fn reads_args(&self) -> bool {
        self.limits.iter().any(Limit::reads_args)
            || self
                .tools
                .iter()
                .any(|t| !t.require.is_empty() || !t.deny_if.is_empty() || !t.approve_if.is_empty())
    }

    /// Whether deciding a call of `tool` can read its arguments: its own predicates, or an
    /// `increment_from` of its limits or of `all_tools`' (tools are found by exact name).
    pub fn reads_args_of(&self, tool: &str) -> bool {
        let reads = |i: &usize| self.limits[*i].reads_args();
        let rules = (self.entries.get(tool).and_then(|e| e.tool)).map(|ti| &self.tools[ti]);
        rules.is_some_and(|t| {
            !t.require.is_empty()
                || !t.deny_if.is_empty()
                || !t.approve_if.is_empty()
                || t.limits.iter().any(reads)
        }) || self.all_tools_limits.iter().any(reads)
    }

    /// Whether a limit that applies to calls of `tool` charges an argument.
    pub fn limits_read_args_of(&self, tool: &str) -> bool {
        let reads = |i: &usize| self.limits[*i].reads_args();
        let rules = (self.entries.get(tool).and_then(|e| e.tool)).map(|ti| &self.tools[ti]);
        rules.is_some_and(|t| t.limits.iter().any(reads)) || self.all_tools_limits.iter().any(reads)
    }

    /// Whether calls of `tool` are denied as hidden.
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.hide_all || self.entries.get(tool).is_some_and(|e| e.hidden)
    }

    /// Every rule: predicates, `require_approval` and limits (with their counter's max and
    /// window).
    fn rule_limits(&self) -> Vec<RuleLimit> {
        let plain = |rule: &Arc<str>| RuleLimit {
            rule: rule.clone(),
            limit: None,
        };
        let mut rules = Vec::new();
        for (ti, t) in self.tools.iter().enumerate() {
            let predicates = t.require.iter().chain(&t.deny_if).chain(&t.approve_if);
            rules.extend(predicates.map(|p| plain(&p.rule)));
            if t.require_approval {
                rules.push(plain(&self.approval_rules[ti]));
            }
        }
        rules.extend(self.limits.iter().map(|l| {
            let c = &self.counters[l.counter];
            RuleLimit {
                rule: l.rule.clone(),
                limit: Some((c.max, c.window_secs)),
            }
        }));
        rules
    }

    /// The definition of limit number `i` (an index into [`PolicyLayer::limits`]).
    pub(crate) fn limit_spec(&self, i: usize) -> LimitSpec {
        let limit = &self.limits[i];
        let c = &self.counters[limit.counter];
        LimitSpec {
            counter: c.name.clone(),
            window_secs: c.window_secs,
            max: c.max,
            scope: c.scope,
            algorithm: c.algorithm,
            increment_from: limit.increment_from.as_ref().map(|p| Arc::from(&*p.text)),
        }
    }
}
