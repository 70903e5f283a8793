//! The evaluator: one call in, one decision out, counters updated.

use std::sync::Arc;

// The counter maps are probed several times per call with small keys; Fx hashing is several
// times cheaper than SipHash there, and keys come from the trace, not from an attacker.
use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;

use super::decision::{Decision, DecisionKind, Scope, Throttle};
use super::intercept::InterceptEngine;
use super::policy::{Algorithm, Counter, Entry, Limit, LimitSpec, Policy, ToolRules};
use super::predicate::{self, Truth};
use super::window::{self, SlidingLog};
use crate::call::{ArgLookup, Args, Nanos, Upstream};
use crate::call::{CallIds, CallView};

/// Switches for the choices the spec leaves to the command line. `Default` is the spec's
/// default behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvalOptions {
    /// `--rollback-on tool-error`: an `isError: true` result also gives the reservation back.
    pub rollback_on_tool_error: bool,
    /// `--assume-upstream failure`: a call with no recorded upstream outcome is a failure.
    pub assume_upstream_failure: bool,
    /// `--assume-unknown deny`: unknown calls consume no quota.
    pub assume_unknown_deny: bool,
    /// `--assume-approved`: calls held for approval continue through the limits.
    pub assume_approved: bool,
}

/// What steps 1–5 decide about a call, without counter state. Comparable across two different
/// policies: limits are compared by definition, not by slot.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticOutcome {
    /// `Deny`, `Approval` or `Unknown` when steps 1–5 decide; `None` when the call reaches the
    /// limits (and is then allowed or throttled depending on counter state).
    pub decided: Option<DecisionKind>,
    /// The deciding rule id (empty when `decided` is `None`).
    pub rule: Arc<str>,
    /// The limits the call is subject to, in evaluation order (empty for a deny).
    pub limits: Vec<LimitSpec>,
}

/// Result of screening (steps 1–5).
enum Screen<'p> {
    Deny(&'p Arc<str>, &'p Arc<str>),
    Approval(&'p Arc<str>, &'p Arc<str>),
    Unknown(&'p Arc<str>, &'p Arc<str>),
    Pass,
}

/// Why the limits step stopped a call.
enum Stop {
    Throttle(usize, Throttle),
    Deny(usize, bool),
    Unknown(usize),
}

/// One scope instance: the server/grant/session ids a scope uses (`UNUSED` for parts it does
/// not). Ids start at 1 and absent parts are `ABSENT`, so instances of different scopes never
/// share a key.
type ScopeKey = (u32, u32, u32);

/// Interned id of an absent grant or session.
const ABSENT: u32 = u32::MAX;
/// Id of a key part the scope does not use.
const UNUSED: u32 = 0;

#[derive(Debug, Clone)]
enum CounterState {
    Fixed { start: Nanos, used: f64 },
    // Boxed: most counters are fixed, and a small state keeps more of them in cache.
    Sliding(Box<SlidingLog>),
}

/// One limit a call passes through, with what checking it needs from its counter copied in,
/// so the hot path reads one array instead of following limit → counter.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Index into [`Policy::limits`].
    limit: usize,
    /// Counter slot.
    counter: usize,
    scope: Scope,
    algorithm: Algorithm,
    /// Window length in nanoseconds.
    len: Nanos,
    max: f64,
    /// Each call counts 1 (no `increment_from`).
    counts_one: bool,
}

/// The limits a call passes through, in evaluation order: per configured tool (its own, then
/// `all_tools`), and for calls of tools not listed (`all_tools` only).
#[derive(Debug, Default)]
struct Plans {
    /// Every configured tool's steps one after another, then those of tools not listed.
    steps: Vec<Step>,
    /// Where each configured tool's steps lie in `steps` (start, count), by tool index; the
    /// last entry is that of tools not listed.
    ranges: Vec<(u32, u32)>,
}

/// Where a tool's steps lie in [`Plans::steps`]: start and count.
type StepRange = (u32, u32);

impl Plans {
    fn new(policy: &Policy) -> Plans {
        let mut plans = Plans::default();
        let tools = policy.tools.iter().map(Some).chain([None]);
        for tool in tools {
            let start = plans.steps.len() as u32;
            plans.steps.extend(applicable(policy, tool).map(|i| {
                let limit = &policy.limits[i];
                let c = &policy.counters[limit.counter];
                Step {
                    limit: i,
                    counter: limit.counter,
                    scope: c.scope,
                    algorithm: c.algorithm,
                    len: window::window_nanos(c.window_secs),
                    max: c.max,
                    counts_one: limit.increment_from.is_none(),
                }
            }));
            plans.ranges.push((start, plans.steps.len() as u32 - start));
        }
        plans
    }

    /// Where the steps of configured tool `tool` lie (`None`, or an index past the tools: a
    /// tool not listed).
    fn range(&self, tool: Option<usize>) -> StepRange {
        let unlisted = self.ranges.last().copied().unwrap_or((0, 0));
        match tool {
            Some(t) if t + 1 < self.ranges.len() => self.ranges[t],
            _ => unlisted,
        }
    }

    #[inline]
    fn at(&self, (start, count): StepRange) -> &[Step] {
        let start = start as usize;
        self.steps.get(start..start + count as usize).unwrap_or(&[])
    }

    fn for_tool(&self, tool: Option<usize>) -> &[Step] {
        self.at(self.range(tool))
    }
}

/// Counter state of one engine.
#[derive(Debug, Clone, Default)]
pub(super) struct Counters {
    names: HashMap<Box<str>, u32>,
    /// Dense id of each scope instance. A call hashes the key of each scope it meets once,
    /// however many limits share that scope; limits then find their state by index.
    scopes: HashMap<ScopeKey, u32>,
    /// Counter slots of the policy (at least 1).
    stride: usize,
    /// Per counter slot, the fixed window `[start, end)` last computed for it: calls come in
    /// time order, so most calls fall in the window of the call before and skip a division.
    windows: Vec<(Nanos, Nanos)>,
    /// State of each counter instance (`None` until a call first charges it): `stride` slots
    /// per scope instance, instance after instance.
    states: Vec<Option<CounterState>>,
    /// Reservations of the call being evaluated: state index, the counter's algorithm, the
    /// fixed window the call falls in and the increment (reused, so the hot path does not
    /// allocate).
    scratch: Vec<(u32, Algorithm, Nanos, f64)>,
    /// Interned server, grant and session of the call being evaluated, filled on first use:
    /// a call passes several limits of the same scope.
    call_ids: [Option<u32>; 3],
    /// By caller grant id: the server of the grant's last call and that pair's grant-scope
    /// instance (see [`Counters::grant_instance`]).
    by_grant: Vec<(u32, u32)>,
    /// Scope instance of the call being evaluated, per [`Scope`] (in declaration order).
    call_scopes: [Option<u32>; 4],
    /// The last string interned for each key part and its id: consecutive calls often come
    /// from the same server and grant, and a comparison is cheaper than a map lookup.
    last: [(String, u32); 3],
}

impl Counters {
    /// Empty counters for a policy with `slots` counter slots.
    fn new(slots: usize) -> Counters {
        Counters {
            stride: slots.max(1),
            windows: vec![(1, 0); slots],
            ..Counters::default()
        }
    }

    /// The fixed window of length `len` holding `ts` for counter `slot` (see `windows`).
    #[inline]
    fn fixed_window(&mut self, slot: usize, ts: Nanos, len: Nanos) -> (Nanos, Nanos) {
        if let Some(&(start, end)) = self.windows.get(slot) {
            if start <= ts && ts < end {
                return (start, end);
            }
        }
        let start = window::fixed_window_start(ts, len);
        let end = window::fixed_window_end(start, len);
        if let Some(w) = self.windows.get_mut(slot) {
            *w = (start, end);
        }
        (start, end)
    }

    /// What `counter` (slot `slot`) has used in the window holding `call.ts`, and that window's
    /// start, without changing any state.
    pub(super) fn peek(&self, slot: usize, c: &Counter, call: &CallView<'_>) -> (f64, Nanos) {
        let len = window::window_nanos(c.window_secs);
        let start = match c.algorithm {
            Algorithm::Fixed => window::fixed_window_start(call.ts, len),
            Algorithm::Sliding => call.ts.saturating_sub(len),
        };
        let id = |s: &str| self.names.get(s).copied();
        let opt = |s: Option<&str>| s.map_or(Some(ABSENT), id);
        let key = match c.scope {
            Scope::Global => Some((UNUSED, UNUSED, UNUSED)),
            Scope::Server => id(call.server).map(|s| (s, UNUSED, UNUSED)),
            Scope::Grant => id(call.server)
                .zip(opt(call.grant))
                .map(|(s, g)| (s, g, UNUSED)),
            Scope::Session => id(call.server)
                .zip(opt(call.grant))
                .zip(opt(call.session))
                .map(|((s, g), x)| (s, g, x)),
        };
        let state = key
            .and_then(|k| self.scopes.get(&k))
            .and_then(|&inst| self.states.get(inst as usize * self.stride + slot))
            .and_then(Option::as_ref);
        let used = match state {
            Some(CounterState::Fixed { start: s, used }) if *s == start => *used,
            Some(CounterState::Sliding(log)) => log.used_at(call.ts, len),
            _ => 0.0,
        };
        (used, start)
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.names.get(s) {
            return id;
        }
        // Ids start at 1 so that UNUSED never collides.
        let id = self.names.len() as u32 + 1;
        self.names.insert(Box::from(s), id);
        id
    }

    /// Id of part `i` (0 server, 1 grant, 2 session) of the current call, interned once per call.
    fn call_id(&mut self, i: usize, s: Option<&str>) -> u32 {
        if let Some(id) = self.call_ids[i] {
            return id;
        }
        let id = match s {
            None => ABSENT,
            Some(s) if self.last[i].1 != UNUSED && self.last[i].0 == s => self.last[i].1,
            Some(s) => {
                let id = self.intern(s);
                let last = &mut self.last[i];
                last.0.clear();
                last.0.push_str(s);
                last.1 = id;
                id
            }
        };
        self.call_ids[i] = Some(id);
        id
    }

    /// Index in `states` of counter `slot` in `scope` for the current call, made on first
    /// sight.
    fn state_index(&mut self, slot: usize, scope: Scope, call: &CallView<'_>) -> u32 {
        let which = scope as usize;
        let inst = match self.call_scopes[which] {
            Some(inst) => inst,
            None => {
                let inst = match (scope, call.ids) {
                    (Scope::Grant, Some(ids)) if ids.grant != CallIds::ABSENT => {
                        self.grant_instance(ids, call)
                    }
                    _ => self.instance(scope, call),
                };
                self.call_scopes[which] = Some(inst);
                inst
            }
        };
        (inst as usize * self.stride + slot) as u32
    }

    /// The instance of `scope` for `call`, made on first sight.
    fn instance(&mut self, scope: Scope, call: &CallView<'_>) -> u32 {
        let key = self.key(scope, call);
        let next = (self.states.len() / self.stride) as u32;
        let inst = *self.scopes.entry(key).or_insert(next);
        if inst == next {
            self.states.resize(self.states.len() + self.stride, None);
        }
        inst
    }

    /// The grant-scope instance of a call with ids: a grant's calls mostly go to one server,
    /// so the instance of the last (server, grant) pair is kept by grant id and found without
    /// hashing.
    fn grant_instance(&mut self, ids: CallIds, call: &CallView<'_>) -> u32 {
        let g = ids.grant as usize;
        if let Some(&(server, inst)) = self.by_grant.get(g) {
            if server == ids.server {
                return inst;
            }
        }
        let inst = self.instance(Scope::Grant, call);
        if self.by_grant.len() <= g {
            self.by_grant.resize(g + 1, (CallIds::ABSENT, 0));
        }
        self.by_grant[g] = (ids.server, inst);
        inst
    }

    fn key(&mut self, scope: Scope, call: &CallView<'_>) -> ScopeKey {
        if let Some(ids) = call.ids {
            // Shifted by one so that id 0 never reads as UNUSED; an absent part stays ABSENT.
            let part = |id: u32| {
                if id == CallIds::ABSENT {
                    ABSENT
                } else {
                    id + 1
                }
            };
            return match scope {
                Scope::Global => (UNUSED, UNUSED, UNUSED),
                Scope::Server => (part(ids.server), UNUSED, UNUSED),
                Scope::Grant => (part(ids.server), part(ids.grant), UNUSED),
                Scope::Session => (part(ids.server), part(ids.grant), part(ids.session)),
            };
        }
        match scope {
            Scope::Global => (UNUSED, UNUSED, UNUSED),
            Scope::Server => (self.call_id(0, Some(call.server)), UNUSED, UNUSED),
            Scope::Grant => {
                let server = self.call_id(0, Some(call.server));
                (server, self.call_id(1, call.grant), UNUSED)
            }
            Scope::Session => {
                let server = self.call_id(0, Some(call.server));
                let grant = self.call_id(1, call.grant);
                (server, grant, self.call_id(2, call.session))
            }
        }
    }
}

/// A policy plus the counter state of one replay. Feed calls in timestamp order.
///
/// Cloning an engine snapshots its counters (to ask "what would happen" without committing).
#[derive(Debug, Clone)]
pub struct Engine {
    pub(super) policy: Arc<Policy>,
    pub(super) opts: EvalOptions,
    pub(super) counters: Counters,
    /// The evaluator of an Intercept-dialect policy, which keeps its own counters.
    pub(super) intercept: Option<InterceptEngine>,
    /// What each caller tool id (see [`CallIds`]) resolves to, filled on first sight.
    tool_cache: Vec<ToolSlot>,
    /// The limits of each tool, in order.
    plans: Arc<Plans>,
}

/// A tool id's entry in [`Engine::tool_cache`]: what the name resolves to, and how calls of
/// the tool can be decided.
#[derive(Debug, Clone, Copy)]
enum ToolSlot {
    Unseen,
    Seen(Option<Entry>, Quick),
}

/// Most limits a call may pass through and still take [`Quick::Limits`].
const QUICK_STEPS: usize = 4;

/// How the calls of one tool are decided when they come with ids: what steps 1–5 give does not
/// depend on the arguments for most tools, so it is worked out once per tool, and the usual
/// limits (fixed windows, one per call) are checked by a short loop. Anything else takes the
/// general steps; so does a call that a limit would stop, so that the throttle is described by
/// the one piece of code that describes throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quick {
    /// The general steps decide.
    General,
    /// Steps 1–5 deny whatever the arguments: the tool is hidden.
    Hidden,
    /// Steps 1–5 deny whatever the arguments: the tool is not listed under `default: deny`.
    DefaultDeny,
    /// Steps 1–5 pass whatever the arguments, and every applicable limit is a fixed window
    /// charged 1 per call (at most [`QUICK_STEPS`] of them): these, in [`Plans::steps`].
    Limits(StepRange),
    /// [`Quick::Limits`], every limit kept per grant (the default scope): a call with a
    /// grant finds all its counters in one scope instance.
    GrantLimits(StepRange),
}

impl Quick {
    /// How calls of a tool that resolves to `entry` can be decided.
    fn plan(policy: &Policy, entry: Option<Entry>, plans: &Plans) -> Quick {
        if policy.intercept.is_some() {
            return Quick::General;
        }
        if policy.hide_all || entry.is_some_and(|e| e.hidden) {
            return Quick::Hidden;
        }
        // No rule of steps 3–5 that reads the arguments or holds the call.
        let passes = match entry.and_then(|e| e.tool) {
            None if policy.default_deny => return Quick::DefaultDeny,
            None => true,
            Some(ti) => policy.tools.get(ti).is_some_and(|t| {
                t.require.is_empty()
                    && t.deny_if.is_empty()
                    && t.approve_if.is_empty()
                    && !t.require_approval
            }),
        };
        let range = plans.range(entry.and_then(|e| e.tool));
        let steps = plans.at(range);
        let simple = steps.len() <= QUICK_STEPS
            && steps
                .iter()
                .all(|st| st.counts_one && st.algorithm == Algorithm::Fixed);
        if passes && simple {
            if steps.iter().all(|st| st.scope == Scope::Grant) {
                Quick::GrantLimits(range)
            } else {
                Quick::Limits(range)
            }
        } else {
            Quick::General
        }
    }
}

impl Engine {
    /// An engine with empty counters.
    pub fn new(policy: Arc<Policy>, opts: EvalOptions) -> Engine {
        let slots = policy.counters.len();
        let plans = Arc::new(Plans::new(&policy));
        let intercept = policy
            .intercept
            .as_ref()
            .map(|p| InterceptEngine::new(Arc::clone(p), opts));
        Engine {
            policy,
            opts,
            counters: Counters::new(slots),
            intercept,
            tool_cache: Vec::new(),
            plans,
        }
    }

    /// The policy this engine runs.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The options this engine runs with.
    pub fn options(&self) -> EvalOptions {
        self.opts
    }

    /// Decide one call, reserve its quota, and give the reservation back when the recorded
    /// upstream outcome is a failure — all in one step. Calls must come in non-decreasing
    /// timestamp order: counter state only looks forward.
    pub fn evaluate(&mut self, call: &CallView<'_>) -> Decision {
        let empty = &self.policy.sentinels.empty;
        let mut d = Decision {
            kind: DecisionKind::Allow,
            rule: empty.clone(),
            message: empty.clone(),
            throttle: None,
            approval_required: false,
        };
        self.evaluate_into(call, &mut d);
        d
    }

    /// [`Engine::evaluate`] into an existing decision. Replays use this: rule ids and
    /// messages are shared strings, and one already in `out` is not replaced by the same one,
    /// so a run of calls decided alike costs no reference counting.
    pub fn evaluate_into(&mut self, call: &CallView<'_>, out: &mut Decision) {
        // The short path first: it is never planned for an Intercept policy.
        let seen = match call.ids {
            Some(ids) => {
                let (entry, quick) = self.tool_entry(ids.tool, call.tool);
                if self.quick(quick, ids, call, out) {
                    return;
                }
                Some(entry)
            }
            None => None,
        };
        if let Some(intercept) = &mut self.intercept {
            *out = intercept.evaluate(call);
            return;
        }
        let entry = seen.unwrap_or_else(|| self.policy.entries.get(call.tool).copied());
        let policy = &*self.policy;
        let s = &policy.sentinels;
        let (screen, _) = screen(policy, entry, call);
        let steps = self.plans.for_tool(entry.and_then(|e| e.tool));
        let set = set_decision;
        let approval_required = match screen {
            Screen::Deny(rule, message) => return set(out, DecisionKind::Deny, rule, message),
            Screen::Approval(rule, message) if !self.opts.assume_approved => {
                return set(out, DecisionKind::Approval, rule, message);
            }
            Screen::Unknown(rule, message) => {
                // The decision stays unknown; under the default `--assume-unknown allow` the
                // call still charges the counters it fits in, as an allowed call would.
                if !self.opts.assume_unknown_deny
                    && check_limits(&mut self.counters, policy, steps, call).is_ok()
                    && !upstream_failed(self.opts, call.upstream)
                {
                    commit(&mut self.counters, call);
                }
                return set(out, DecisionKind::Unknown, rule, message);
            }
            Screen::Approval(..) => true,
            Screen::Pass => false,
        };
        match check_limits(&mut self.counters, policy, steps, call) {
            Ok(()) => {
                if !upstream_failed(self.opts, call.upstream) {
                    commit(&mut self.counters, call);
                }
                match screen {
                    Screen::Approval(rule, message) => set(out, DecisionKind::Allow, rule, message),
                    _ => set(out, DecisionKind::Allow, &s.empty, &s.empty),
                }
            }
            Err(Stop::Throttle(i, t)) => {
                let limit = &policy.limits[i];
                set(
                    out,
                    DecisionKind::Throttle,
                    &limit.rule,
                    &limit.throttle_message,
                );
                out.throttle = Some(t);
            }
            Err(Stop::Deny(i, missing)) => {
                let limit = &policy.limits[i];
                let message = if missing {
                    &limit.missing_message
                } else {
                    &limit.not_number_message
                };
                set(out, DecisionKind::Deny, &limit.rule, message);
            }
            Err(Stop::Unknown(i)) => {
                let limit = &policy.limits[i];
                set(
                    out,
                    DecisionKind::Unknown,
                    &limit.rule,
                    &limit.unknown_message,
                );
            }
        }
        out.approval_required = approval_required;
    }

    /// The policy entry of caller tool id `id` (named `name`) and how its calls can be
    /// decided, worked out by name once.
    #[inline]
    fn tool_entry(&mut self, id: u32, name: &str) -> (Option<Entry>, Quick) {
        let i = id as usize;
        if let Some(&ToolSlot::Seen(entry, quick)) = self.tool_cache.get(i) {
            return (entry, quick);
        }
        let entry = self.policy.entries.get(name).copied();
        let quick = Quick::plan(&self.policy, entry, &self.plans);
        if self.tool_cache.len() <= i {
            self.tool_cache.resize(i + 1, ToolSlot::Unseen);
        }
        self.tool_cache[i] = ToolSlot::Seen(entry, quick);
        (entry, quick)
    }

    /// Decide a call the short way `quick` allows, into `out`; `false` (nothing changed) when
    /// the general steps must decide it.
    #[inline]
    fn quick(
        &mut self,
        quick: Quick,
        ids: CallIds,
        call: &CallView<'_>,
        out: &mut Decision,
    ) -> bool {
        let s = &self.policy.sentinels;
        match quick {
            Quick::General => false,
            Quick::Hidden => {
                set_decision(out, DecisionKind::Deny, &s.hidden_rule, &s.hidden_message);
                true
            }
            Quick::DefaultDeny => {
                set_decision(
                    out,
                    DecisionKind::Deny,
                    &s.default_deny_rule,
                    &s.default_deny_message,
                );
                true
            }
            Quick::Limits(range) | Quick::GrantLimits(range) => {
                let steps = self.plans.at(range);
                let commit = !upstream_failed(self.opts, call.upstream);
                let charged = match quick {
                    Quick::GrantLimits(_) if ids.grant != CallIds::ABSENT => {
                        quick_grant_limits(&mut self.counters, steps, ids, call, commit)
                    }
                    _ => quick_limits(&mut self.counters, steps, ids, call, commit),
                };
                if !charged {
                    return false;
                }
                let empty = &self.policy.sentinels.empty;
                set_decision(out, DecisionKind::Allow, empty, empty);
                true
            }
        }
    }

    /// Steps 1–5 only, plus the definitions of the limits that apply. Reads no counter state.
    pub fn static_outcome(&self, call: &CallView<'_>) -> StaticOutcome {
        static_outcome(&self.policy, call)
    }
}

/// Make `out` a decision of `kind` by `rule` with `message`, not approval-bound and without a
/// throttle. A rule or message already there is not replaced by the same shared string, so a
/// run of calls decided alike moves no reference counts.
#[inline]
fn set_decision(out: &mut Decision, kind: DecisionKind, rule: &Arc<str>, message: &Arc<str>) {
    out.kind = kind;
    if !Arc::ptr_eq(&out.rule, rule) {
        out.rule = rule.clone();
    }
    if !Arc::ptr_eq(&out.message, message) {
        out.message = message.clone();
    }
    if out.throttle.is_some() {
        out.throttle = None;
    }
    out.approval_required = false;
}

/// Steps 6 and 7 for a call of a [`Quick::Limits`] tool: when every limit in `steps` has room
/// for one more call, charge them (if `commit`: the upstream did not fail) and return `true`;
/// otherwise change nothing and return `false`, and the general steps decide the call. Counts
/// exactly as [`check_limits`] and [`commit`] do: every limit is checked against the counts
/// before this call, then all are charged.
#[inline]
fn quick_limits(
    counters: &mut Counters,
    steps: &[Step],
    ids: CallIds,
    call: &CallView<'_>,
    commit: bool,
) -> bool {
    let mut at = [(0usize, 0 as Nanos); QUICK_STEPS];
    // Scope instances met so far in this call, by `Scope as usize`.
    let mut instances = [u32::MAX; 4];
    for (k, st) in steps.iter().enumerate().take(QUICK_STEPS) {
        let which = st.scope as usize;
        let inst = match instances[which] {
            u32::MAX => {
                let inst = match st.scope {
                    Scope::Grant if ids.grant != CallIds::ABSENT => {
                        counters.grant_instance(ids, call)
                    }
                    scope => counters.instance(scope, call),
                };
                instances[which] = inst;
                inst
            }
            inst => inst,
        };
        let index = inst as usize * counters.stride + st.counter;
        let (start, _) = counters.fixed_window(st.counter, call.ts, st.len);
        if !has_room(&counters.states, index, start, st.max) {
            return false;
        }
        at[k] = (index, start);
    }
    if commit {
        for &(index, start) in &at[..steps.len().min(QUICK_STEPS)] {
            if let Some(slot) = counters.states.get_mut(index) {
                charge_fixed(slot, start, 1.0);
            }
        }
    }
    true
}

/// [`quick_limits`] for limits all kept per grant, for a call with a grant: every counter is
/// found in the call's one grant instance.
#[inline]
fn quick_grant_limits(
    counters: &mut Counters,
    steps: &[Step],
    ids: CallIds,
    call: &CallView<'_>,
    commit: bool,
) -> bool {
    let base = counters.grant_instance(ids, call) as usize * counters.stride;
    let mut starts = [0 as Nanos; QUICK_STEPS];
    for (st, start) in steps.iter().zip(starts.iter_mut()) {
        let (window, _) = counters.fixed_window(st.counter, call.ts, st.len);
        if !has_room(&counters.states, base + st.counter, window, st.max) {
            return false;
        }
        *start = window;
    }
    if commit {
        for (st, &start) in steps.iter().zip(&starts) {
            if let Some(slot) = counters.states.get_mut(base + st.counter) {
                charge_fixed(slot, start, 1.0);
            }
        }
    }
    true
}

/// Whether the fixed-window counter state at `index` has room for one more call in the window
/// starting at `start`: the test of [`check_limits`] (`used + 1 <= max`, NaN failing it), a
/// state of an older window counting as empty.
#[inline]
fn has_room(states: &[Option<CounterState>], index: usize, start: Nanos, max: f64) -> bool {
    let used = match states.get(index) {
        Some(Some(CounterState::Fixed { start: s, used })) if *s == start => *used,
        _ => 0.0,
    };
    used + 1.0 <= max
}

/// Add `inc` to a fixed-window counter state for the window starting at `start`; a state of
/// another window (or none) starts over at `inc`.
#[inline]
fn charge_fixed(slot: &mut Option<CounterState>, start: Nanos, inc: f64) {
    match slot {
        Some(CounterState::Fixed { start: s, used }) if *s == start => *used += inc,
        other => *other = Some(CounterState::Fixed { start, used: inc }),
    }
}

/// Whether a call's recorded upstream outcome gives its reservation back.
fn upstream_failed(opts: EvalOptions, upstream: Option<Upstream>) -> bool {
    match upstream {
        Some(Upstream::Ok) => false,
        Some(Upstream::Error) => true,
        Some(Upstream::ToolError) => opts.rollback_on_tool_error,
        None => opts.assume_upstream_failure,
    }
}

/// Steps 1–5 for `call` under `policy` (see [`Engine::static_outcome`]).
pub fn static_outcome(policy: &Policy, call: &CallView<'_>) -> StaticOutcome {
    if let Some(intercept) = &policy.intercept {
        return super::intercept::static_outcome(intercept, call);
    }
    let (screen, tool) = screen(policy, policy.entries.get(call.tool).copied(), call);
    let (decided, rule) = match screen {
        Screen::Deny(rule, _) => {
            return StaticOutcome {
                decided: Some(DecisionKind::Deny),
                rule: rule.clone(),
                limits: Vec::new(),
            };
        }
        Screen::Approval(rule, _) => (Some(DecisionKind::Approval), rule.clone()),
        Screen::Unknown(rule, _) => (Some(DecisionKind::Unknown), rule.clone()),
        Screen::Pass => (None, policy.sentinels.empty.clone()),
    };
    let limits = applicable(policy, tool)
        .map(|i| policy.limit_spec(i))
        .collect();
    StaticOutcome {
        decided,
        rule,
        limits,
    }
}

/// Steps 1–5 of the evaluation order. Also returns the configured tool, if any.
fn screen<'p>(
    policy: &'p Policy,
    entry: Option<Entry>,
    call: &CallView<'_>,
) -> (Screen<'p>, Option<&'p ToolRules>) {
    let s = &policy.sentinels;
    if policy.hide_all || entry.is_some_and(|e| e.hidden) {
        return (Screen::Deny(&s.hidden_rule, &s.hidden_message), None);
    }
    let Some(ti) = entry.and_then(|e| e.tool) else {
        if policy.default_deny {
            return (
                Screen::Deny(&s.default_deny_rule, &s.default_deny_message),
                None,
            );
        }
        return (Screen::Pass, None);
    };
    let tool = &policy.tools[ti];
    let mode = policy.eq_mode;
    let mut unknown = None;
    for p in &tool.require {
        match predicate::eval(&p.path, &p.op, call.args, mode) {
            Truth::Holds => {}
            Truth::Fails => return (Screen::Deny(&p.rule, &p.message), Some(tool)),
            Truth::Unknown => {
                unknown.get_or_insert((&p.rule, &p.unknown_message));
            }
        }
    }
    for p in &tool.deny_if {
        match predicate::eval(&p.path, &p.op, call.args, mode) {
            Truth::Holds => return (Screen::Deny(&p.rule, &p.message), Some(tool)),
            Truth::Fails => {}
            Truth::Unknown => {
                unknown.get_or_insert((&p.rule, &p.unknown_message));
            }
        }
    }
    // A decidable deny above wins over an unknown; an undecided require/deny_if makes the
    // approval question moot (the call might have been denied).
    if let Some((rule, message)) = unknown {
        return (Screen::Unknown(rule, message), Some(tool));
    }
    if tool.require_approval {
        return (
            Screen::Approval(&policy.approval_rules[ti], &s.require_approval_message),
            Some(tool),
        );
    }
    let mut approve_unknown = None;
    for p in &tool.approve_if {
        match predicate::eval(&p.path, &p.op, call.args, mode) {
            Truth::Holds => return (Screen::Approval(&p.rule, &p.message), Some(tool)),
            Truth::Fails => {}
            Truth::Unknown => {
                approve_unknown.get_or_insert((&p.rule, &p.unknown_message));
            }
        }
    }
    match approve_unknown {
        Some((rule, message)) => (Screen::Unknown(rule, message), Some(tool)),
        None => (Screen::Pass, Some(tool)),
    }
}

/// The limits a call passes through, in order: the tool's own, then `all_tools`.
pub(super) fn applicable<'p>(
    policy: &'p Policy,
    tool: Option<&'p ToolRules>,
) -> impl Iterator<Item = usize> + 'p {
    tool.map_or(&[][..], |t| &t.limits[..])
        .iter()
        .chain(&policy.all_tools_limits)
        .copied()
}

/// How much a call adds to a limit's counter.
pub(super) enum Increment {
    Amount(f64),
    Missing,
    NotNumber,
    Unknown,
}

pub(super) fn increment(limit: &Limit, args: &Args) -> Increment {
    let Some(path) = &limit.increment_from else {
        return Increment::Amount(1.0);
    };
    let value = match path.find(args) {
        ArgLookup::Value(value) => value,
        ArgLookup::TopKey(false) => None,
        ArgLookup::TopKey(true) | ArgLookup::Unrecorded => return Increment::Unknown,
    };
    match value.as_deref() {
        None | Some(Value::Null) => Increment::Missing,
        Some(v) => v.as_f64().map_or(Increment::NotNumber, Increment::Amount),
    }
}

/// Step 6: check every applicable limit; on success the reservations are left in
/// `counters.scratch` for [`commit`]. The first limit that stops the call decides.
fn check_limits(
    counters: &mut Counters,
    policy: &Policy,
    steps: &[Step],
    call: &CallView<'_>,
) -> Result<(), Stop> {
    counters.scratch.clear();
    counters.call_ids = [None; 3];
    counters.call_scopes = [None; 4];
    for st in steps {
        let i = st.limit;
        let inc = if st.counts_one {
            1.0
        } else {
            match increment(&policy.limits[i], call.args) {
                Increment::Amount(x) => x,
                Increment::Missing => return Err(Stop::Deny(i, true)),
                Increment::NotNumber => return Err(Stop::Deny(i, false)),
                Increment::Unknown => return Err(Stop::Unknown(i)),
            }
        };
        let index = counters.state_index(st.counter, st.scope, call);
        let state = counters
            .states
            .get_mut(index as usize)
            .and_then(Option::as_mut);
        let len = st.len;
        let (used, window_start, retry_after) = match (st.algorithm, state) {
            (Algorithm::Fixed, state) => {
                let used = match state {
                    Some(CounterState::Fixed { start: s, used }) => Some((*s, *used)),
                    _ => None,
                };
                let (start, end) = counters.fixed_window(st.counter, call.ts, len);
                let used = match used {
                    Some((s, used)) if s == start => used,
                    _ => 0.0,
                };
                (used, start, end)
            }
            (Algorithm::Sliding, Some(CounterState::Sliding(log))) => {
                log.expire(call.ts, len);
                let used = log.used();
                let retry = log.retry_after(call.ts, len, inc, st.max);
                (used, call.ts.saturating_sub(len), retry)
            }
            (Algorithm::Sliding, _) => (
                0.0,
                call.ts.saturating_sub(len),
                call.ts.saturating_add(len),
            ),
        };
        // Passing is `used + increment <= max`; anything else (NaN included) throttles.
        let fits = used + inc <= st.max;
        if !fits {
            return Err(Stop::Throttle(
                i,
                Throttle {
                    counter: policy.counters[st.counter].name.clone(),
                    scope: st.scope,
                    window_start,
                    used,
                    max: st.max,
                    increment: inc,
                    retry_after,
                },
            ));
        }
        counters
            .scratch
            .push((index, st.algorithm, window_start, inc));
    }
    Ok(())
}

/// Step 7: add the reservations [`check_limits`] left in the scratch list.
fn commit(counters: &mut Counters, call: &CallView<'_>) {
    let Counters {
        states, scratch, ..
    } = counters;
    for &(index, algorithm, window_start, inc) in scratch.iter() {
        // `check_limits` made the slot; a missing one cannot happen, and skipping is harmless.
        let Some(slot) = states.get_mut(index as usize) else {
            continue;
        };
        match algorithm {
            // The window `check_limits` computed for this call.
            Algorithm::Fixed => charge_fixed(slot, window_start, inc),
            Algorithm::Sliding => {
                let state = slot.get_or_insert_with(|| CounterState::Sliding(Box::default()));
                match state {
                    CounterState::Sliding(log) => log.push(call.ts, inc),
                    other => {
                        let mut log = Box::<SlidingLog>::default();
                        log.push(call.ts, inc);
                        *other = CounterState::Sliding(log);
                    }
                }
            }
        }
    }
    scratch.clear();
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use serde_json::json;

    use super::*;

    /// Counts allocations made by the current thread, so the hot path can be held to its
    /// promise of not allocating.
    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocations() -> usize {
        ALLOCATIONS.with(Cell::get)
    }

    #[test]
    fn evaluating_known_callers_does_not_allocate() {
        let src = json!({"version":"1","default":"deny",
            "all_tools":{"limits":[{"counter":"all","window":"minute","max":50,"scope":"server"}]},
            "tools":{"t":{
                "require":[{"path":"args.mode","op":"in","value":["a","b"]}],
                "deny_if":[{"path":"args.name","op":"regex","value":"^tmp"}],
                "limits":[
                    {"counter":"c","window":"second","max":3},
                    {"counter":"s","window":10,"max":3,"algorithm":"sliding","scope":"session"}]}}})
        .to_string();
        let policy = crate::policy::parse_policy_str(&src, "p.json").expect("loads");
        let mut engine = Engine::new(Arc::new(policy), EvalOptions::default());
        let args = Args::Values(
            json!({"mode":"a","name":"x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let mut call = CallView {
            ts: 0,
            server: "srv",
            grant: Some("g"),
            session: Some("s"),
            tool: "t",
            args: &args,
            upstream: None,
            ids: None,
        };
        let mut kinds = [0usize; 5];
        let mut run = |engine: &mut Engine, call: &mut CallView<'_>, n: usize| {
            for _ in 0..n {
                call.ts += 250_000_000;
                let d = engine.evaluate(call);
                kinds[d.kind as usize] += 1;
            }
        };
        // Warm up: interning, first counter states, the sliding log's buffer.
        run(&mut engine, &mut call, 100);
        let before = allocations();
        assert!(before > 0, "the counting allocator is not in use");
        run(&mut engine, &mut call, 2_000);
        assert_eq!(allocations() - before, 0);
        // The run went through allows and throttles, not only one path.
        assert!(kinds[DecisionKind::Allow as usize] > 100, "{kinds:?}");
        assert!(kinds[DecisionKind::Throttle as usize] > 100, "{kinds:?}");

        // The same with names as ids and a reused decision, as the fast lane evaluates.
        let mut engine = Engine::new(engine.policy().clone(), EvalOptions::default());
        let ids = CallIds {
            server: 0,
            grant: 1,
            session: 2,
            tool: 3,
        };
        let mut d = Decision::allow();
        let mut seen = [0usize; 5];
        call.ids = Some(ids);
        let mut run_ids = |engine: &mut Engine, call: &mut CallView<'_>, n: usize| {
            for _ in 0..n {
                call.ts += 250_000_000;
                let view = *call;
                engine.evaluate_into(&view, &mut d);
                seen[d.kind as usize] += 1;
            }
        };
        run_ids(&mut engine, &mut call, 100);
        let before = allocations();
        run_ids(&mut engine, &mut call, 2_000);
        assert_eq!(allocations() - before, 0);
        assert!(seen[DecisionKind::Allow as usize] > 100, "{seen:?}");
        assert!(seen[DecisionKind::Throttle as usize] > 100, "{seen:?}");
    }

    #[test]
    fn the_short_path_for_id_calls_decides_as_the_general_steps() {
        let src = json!({"version":"1","default":"deny","hide":["secret"],
            "all_tools":{"limits":[{"counter":"all","window":"minute","max":6,"scope":"grant"}]},
            "tools":{
                "a":{"limits":[
                    {"counter":"a","window":"second","max":2},
                    {"counter":"srv","window":10,"max":4,"scope":"server"}]},
                "b":{"limits":[{"counter":"srv","window":10,"max":4,"scope":"server"}]},
                "g":{"limits":[{"counter":"g","window":"hour","max":3,"scope":"global"}]},
                "grant":{"limits":[{"counter":"gr","window":"second","max":1}]},
                "secret":{},
                "c":{"require":[{"path":"args.x","op":"exists","value":true}]}}})
        .to_string();
        let policy = Arc::new(crate::policy::parse_policy_str(&src, "p.json").expect("loads"));
        let tools = ["a", "b", "g", "grant", "secret", "unlisted", "c"];
        let grants = [Some("g1"), Some("g2"), None];
        let servers = ["s1", "s2"];
        for opts in [
            EvalOptions::default(),
            EvalOptions {
                assume_upstream_failure: true,
                rollback_on_tool_error: true,
                ..EvalOptions::default()
            },
        ] {
            let mut by_name = Engine::new(Arc::clone(&policy), opts);
            let mut by_id = Engine::new(Arc::clone(&policy), opts);
            let mut d = Decision::allow();
            let mut kinds = [0usize; 5];
            // A fixed pseudo-random walk through tools, grants, servers, outcomes and times.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut ts: Nanos = 1_700_000_000_000_000_000;
            for i in 0..3_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ts += (x % 700) as Nanos * 1_000_000;
                let (t, g, s) = (
                    (x >> 8) as usize % tools.len(),
                    (x >> 16) as usize % grants.len(),
                    (x >> 24) as usize % servers.len(),
                );
                let upstream = match (x >> 32) % 6 {
                    0 => Some(Upstream::Error),
                    1 => Some(Upstream::ToolError),
                    2 => None,
                    _ => Some(Upstream::Ok),
                };
                let args = Args::Unrecorded;
                let mut view = CallView {
                    ts,
                    server: servers[s],
                    grant: grants[g],
                    session: None,
                    tool: tools[t],
                    args: &args,
                    upstream,
                    ids: None,
                };
                let want = by_name.evaluate(&view);
                view.ids = Some(CallIds {
                    server: s as u32,
                    grant: grants[g].map_or(CallIds::ABSENT, |_| 10 + g as u32),
                    session: CallIds::ABSENT,
                    tool: 20 + t as u32,
                });
                by_id.evaluate_into(&view, &mut d);
                assert_eq!(
                    d, want,
                    "call {i}: {} {:?} {}",
                    tools[t], grants[g], servers[s]
                );
                kinds[d.kind as usize] += 1;
            }
            // Every kind of short-path outcome was met, and the general steps' too.
            for kind in [
                DecisionKind::Allow,
                DecisionKind::Throttle,
                DecisionKind::Deny,
                DecisionKind::Unknown,
            ] {
                assert!(kinds[kind as usize] > 50, "{kind:?}: {kinds:?}");
            }
            let planned = |name: &str| {
                let id = 20 + tools.iter().position(|t| *t == name).unwrap_or(0);
                match by_id.tool_cache.get(id) {
                    Some(ToolSlot::Seen(_, quick)) => Some(*quick),
                    _ => None,
                }
            };
            assert!(matches!(planned("a"), Some(Quick::Limits((_, 3)))));
            assert!(matches!(planned("g"), Some(Quick::Limits((_, 2)))));
            assert!(matches!(planned("grant"), Some(Quick::GrantLimits((_, 2)))));
            assert_eq!(planned("secret"), Some(Quick::Hidden));
            assert_eq!(planned("unlisted"), Some(Quick::DefaultDeny));
            assert_eq!(planned("c"), Some(Quick::General));
        }
    }
}
