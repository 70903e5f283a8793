//! The compiled policy the evaluator runs: tools resolved once per call, regexes compiled,
//! counters resolved to slots, every rule id and message precomputed.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::decision::Scope;
use super::intercept::InterceptPolicy;
use super::predicate::{ArgPath, EqMode, Op};

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
    pub(crate) path: ArgPath,
    pub(crate) op: Op,
    /// `/tools/<tool>/<list>/<path>-<op>`.
    pub(crate) rule: Arc<str>,
    /// Message when this predicate decides the call (deny or approval).
    pub(crate) message: Arc<str>,
    /// Message when the trace lacks what this predicate needs.
    pub(crate) unknown_message: Arc<str>,
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
    /// Index into [`Policy::counters`].
    pub(crate) counter: usize,
    pub(crate) increment_from: Option<ArgPath>,
    /// `/tools/<tool>/limits/<counter>` or `/all_tools/limits/<counter>`.
    pub(crate) rule: Arc<str>,
    pub(crate) throttle_message: Arc<str>,
    /// Deny message when `increment_from` is absent from recorded arguments.
    pub(crate) missing_message: Arc<str>,
    /// Deny message when `increment_from` is not a number.
    pub(crate) not_number_message: Arc<str>,
    /// Unknown message when the arguments were not recorded.
    pub(crate) unknown_message: Arc<str>,
}

/// Per-tool rules.
#[derive(Debug, Clone)]
pub(crate) struct ToolRules {
    pub(crate) name: Arc<str>,
    pub(crate) require: Vec<Predicate>,
    pub(crate) deny_if: Vec<Predicate>,
    pub(crate) approve_if: Vec<Predicate>,
    pub(crate) require_approval: bool,
    /// Indices into [`Policy::limits`], file order.
    pub(crate) limits: Vec<usize>,
}

/// What one tool name resolves to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) hidden: bool,
    /// Index into [`Policy::tools`] when the tool is configured.
    pub(crate) tool: Option<usize>,
}

/// Strings every decision may carry, allocated once.
#[derive(Debug, Clone)]
pub(crate) struct Sentinels {
    pub(crate) empty: Arc<str>,
    pub(crate) hidden_rule: Arc<str>,
    pub(crate) hidden_message: Arc<str>,
    pub(crate) default_deny_rule: Arc<str>,
    pub(crate) default_deny_message: Arc<str>,
    pub(crate) require_approval_message: Arc<str>,
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

/// A compiled, immutable policy. Build one with [`crate::policy::load_policy_file`] or
/// [`crate::policy::parse_policy_str`]; share it between engines with an `Arc`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) default_deny: bool,
    pub(crate) hide_all: bool,
    pub(crate) entries: HashMap<Box<str>, Entry>,
    pub(crate) tools: Vec<ToolRules>,
    pub(crate) all_tools_limits: Vec<usize>,
    pub(crate) limits: Vec<Limit>,
    pub(crate) counters: Vec<Counter>,
    pub(crate) eq_mode: EqMode,
    pub(crate) sentinels: Sentinels,
    /// Rule id of each tool's `require_approval: true` (`/tools/<tool>/require_approval`).
    pub(crate) approval_rules: Vec<Arc<str>>,
    /// A policy read from the Intercept YAML dialect runs on its own evaluator path; the
    /// fields above then stay empty.
    pub(crate) intercept: Option<Arc<InterceptPolicy>>,
}

impl Policy {
    /// Rule id of a call denied because its tool is hidden.
    pub const HIDDEN: &'static str = "(hidden)";
    /// Rule id of a call denied because its tool is not listed and the default is deny.
    pub const DEFAULT_DENY: &'static str = "(default deny)";
    /// Rule id callers use for calls of a server that has no policy.
    pub const NO_POLICY: &'static str = "(no policy)";

    /// An empty policy with the given default, for dialect compilers to fill in.
    pub(crate) fn empty(default_deny: bool) -> Policy {
        Policy {
            default_deny,
            hide_all: false,
            entries: HashMap::default(),
            tools: Vec::new(),
            all_tools_limits: Vec::new(),
            limits: Vec::new(),
            counters: Vec::new(),
            eq_mode: EqMode::Strict,
            sentinels: Sentinels::default(),
            approval_rules: Vec::new(),
            intercept: None,
        }
    }

    /// A policy of the Intercept YAML dialect.
    pub(crate) fn from_intercept(policy: InterceptPolicy) -> Policy {
        Policy {
            default_deny: policy.default_deny(),
            intercept: Some(Arc::new(policy)),
            ..Policy::empty(false)
        }
    }

    /// The Intercept policy, when this policy was read from that dialect.
    pub fn intercept(&self) -> Option<&InterceptPolicy> {
        self.intercept.as_deref()
    }

    /// Whether tools not listed under `tools` are denied.
    pub fn default_deny(&self) -> bool {
        self.default_deny
    }

    /// Configured tool names, sorted.
    pub fn tool_names(&self) -> Vec<&str> {
        if let Some(p) = &self.intercept {
            return p.tool_names();
        }
        let mut names: Vec<&str> = self.tools.iter().map(|t| &*t.name).collect();
        names.sort_unstable();
        names
    }

    /// Number of configured tools.
    pub fn tool_count(&self) -> usize {
        if let Some(p) = &self.intercept {
            return p.tool_count();
        }
        self.tools.len()
    }

    /// Number of limits (each tool's and `all_tools`), counting a shared counter once per use.
    pub fn limit_count(&self) -> usize {
        if let Some(p) = &self.intercept {
            return p.limit_count();
        }
        self.limits.len()
    }

    /// Whether any decision under this policy can depend on a call's arguments (a predicate,
    /// an `increment_from`, or an Intercept policy, whose conditions read arguments). When it
    /// cannot, a replay need not build arguments at all.
    pub fn reads_args(&self) -> bool {
        self.intercept.is_some()
            || self.limits.iter().any(|l| l.increment_from.is_some())
            || self
                .tools
                .iter()
                .any(|t| !t.require.is_empty() || !t.deny_if.is_empty() || !t.approve_if.is_empty())
    }

    /// Whether evaluating calls can read their session: a counter kept per session, or an
    /// Intercept policy (whose evaluator is not analysed for it).
    pub fn reads_sessions(&self) -> bool {
        self.intercept.is_some() || self.counters.iter().any(|c| c.scope == Scope::Session)
    }

    /// Whether calls of `tool` are denied as hidden.
    pub fn is_hidden(&self, tool: &str) -> bool {
        if let Some(p) = &self.intercept {
            return p.is_hidden(tool);
        }
        self.hide_all || self.entries.get(tool).is_some_and(|e| e.hidden)
    }

    /// The definition of limit number `i` (an index into [`Policy::limits`]).
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
