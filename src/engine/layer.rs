//! The evaluator of a PolicyLayer policy: one call in, one decision out, counters updated.

use std::sync::Arc;

use super::counters::Counters;
use super::decision::{Decision, DecisionKind};
use super::eval::EvalOptions;
use super::limits::{Stop, check_limits, commit};
use super::policy::{Entry, PolicyLayer};
use super::quick::{Plans, Quick, quick_grant_limits, quick_limits};
use super::screen::{Screen, Screened, resolve, screen};
use crate::call::{CallIds, CallView, Upstream};

/// A PolicyLayer policy plus the counter state of one replay.
#[derive(Debug, Clone)]
pub(super) struct LayerEngine {
    pub(super) policy: Arc<PolicyLayer>,
    pub(super) opts: EvalOptions,
    pub(super) counters: Counters,
    /// What each caller tool id (see [`CallIds`]) resolves to, filled on first sight.
    tool_cache: Vec<ToolSlot>,
    /// The limits of each tool, in order.
    plans: Arc<Plans>,
}

/// A tool id's entry in [`LayerEngine::tool_cache`]: what the name resolves to, and how calls of
/// the tool can be decided.
#[derive(Debug, Clone, Copy)]
enum ToolSlot {
    Unseen,
    Seen(Option<Entry>, Quick),
}

impl LayerEngine {
    /// An engine with empty counters.
    pub(super) fn new(policy: Arc<PolicyLayer>, opts: EvalOptions) -> LayerEngine {
        let plans = Arc::new(Plans::new(&policy));
        LayerEngine {
            counters: Counters::new(&policy.counters),
            policy,
            opts,
            tool_cache: Vec::new(),
            plans,
        }
    }

    /// Decide one call, reserve its quota, and give the reservation back when the recorded
    /// upstream outcome is a failure — all in one step. Calls must come in non-decreasing
    /// timestamp order: counter state only looks forward.
    pub(super) fn evaluate(&mut self, call: &CallView<'_>) -> Decision {
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

    /// [`LayerEngine::evaluate`] into an existing decision. Replays use this: rule ids and
    /// messages are shared strings, and one already in `out` is not replaced by the same one,
    /// so a run of calls decided alike costs no reference counting.
    pub(super) fn evaluate_into(&mut self, call: &CallView<'_>, out: &mut Decision) {
        self.evaluate_screened_into(call, None, out);
    }

    /// [`LayerEngine::evaluate_into`] with what steps 1–5 decide, when worked out ahead by
    /// `Policy::screen` for the same call.
    pub(super) fn evaluate_screened_into(
        &mut self,
        call: &CallView<'_>,
        screened: Option<Screened>,
        out: &mut Decision,
    ) {
        self.counters.settle(call.ts);
        // The short path first.
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
        let entry = seen.unwrap_or_else(|| self.policy.entries.get(call.tool).copied());
        let policy = &*self.policy;
        let s = &policy.sentinels;
        let (screen, tool) = match screened {
            Some(code) => resolve(policy, entry, code),
            None => screen(policy, entry, call.args),
        };
        let steps = self.plans.for_tool(entry.and_then(|e| e.tool));
        let set = set_decision;
        let approval_required = match screen {
            Screen::Deny(rule, message) => return set(out, DecisionKind::Deny, rule, message),
            Screen::Approval(rule, message) if !self.opts.assume_approved => {
                return set(out, DecisionKind::Approval, rule, message);
            }
            Screen::Unknown(rule, message) => {
                let limits = check_limits(&mut self.counters, policy, steps, call);
                // However the undecided predicates turn out, a limit that refuses the call for
                // its recorded arguments (an `increment_from` argument absent or not a number)
                // denies it, unless an approval step could hold it first.
                let approval = tool.is_some_and(|t| t.require_approval || !t.approve_if.is_empty());
                if let (Err(Stop::Deny(i, missing)), false) =
                    (&limits, approval && !self.opts.assume_approved)
                {
                    let limit = &policy.limits[*i];
                    let message = if *missing {
                        &limit.missing_message
                    } else {
                        &limit.not_number_message
                    };
                    return set(out, DecisionKind::Deny, &limit.rule, message);
                }
                // The decision stays unknown; under the default `--assume-unknown allow` the
                // call still charges the counters it fits in, as an allowed call would.
                if !self.opts.assume_unknown_deny
                    && matches!(limits, Ok(()) | Err(Stop::Unknown(_, true)))
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
            Err(Stop::Unknown(i, fits)) => {
                // As an unknown call from steps 3–5: it charges the limits it fits in (all
                // but the unknown increment's).
                if fits
                    && !self.opts.assume_unknown_deny
                    && !upstream_failed(self.opts, call.upstream)
                {
                    commit(&mut self.counters, call);
                }
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

/// Whether a call's recorded upstream outcome gives its reservation back.
fn upstream_failed(opts: EvalOptions, upstream: Option<Upstream>) -> bool {
    match upstream {
        Some(Upstream::Ok) => false,
        Some(Upstream::Error) => true,
        Some(Upstream::ToolError) => opts.rollback_on_tool_error,
        None => opts.assume_upstream_failure,
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use serde_json::json;

    use super::*;
    use crate::call::{Args, Nanos};
    use crate::engine::predicate::{ArgPath, Op};
    use crate::engine::{Algorithm, Counter, Limit, LimitMessages, Predicate, Scope, ToolRules};

    /// A policy built as the compiler builds one, with each counter's name for its rule ids
    /// and messages (these tests compare decisions, not wording).
    struct Build {
        policy: PolicyLayer,
        counters: Vec<(&'static str, usize)>,
    }

    impl Build {
        fn new() -> Build {
            Build {
                policy: PolicyLayer::new(),
                counters: Vec::new(),
            }
        }

        /// A limit on counter `name`, declared on first use.
        fn limit(&mut self, name: &'static str, secs: u64, max: f64, scope: Scope) -> usize {
            self.limit_by(name, secs, max, scope, Algorithm::Fixed)
        }

        fn limit_by(
            &mut self,
            name: &'static str,
            secs: u64,
            max: f64,
            scope: Scope,
            algorithm: Algorithm,
        ) -> usize {
            self.limit_from(name, (secs, max, scope, algorithm), None)
        }

        /// A limit charged `increment_from` (or 1).
        fn limit_from(
            &mut self,
            name: &'static str,
            (secs, max, scope, algorithm): (u64, f64, Scope, Algorithm),
            increment_from: Option<&str>,
        ) -> usize {
            let slot = match self.counters.iter().find(|(n, _)| *n == name) {
                Some(&(_, slot)) => slot,
                None => {
                    let counter = Counter::new(Arc::from(name), secs, max, scope, algorithm);
                    let slot = self.policy.add_counter(counter);
                    self.counters.push((name, slot));
                    slot
                }
            };
            let text: Arc<str> = Arc::from(name);
            let messages = LimitMessages {
                throttle: text.clone(),
                missing: text.clone(),
                not_number: text.clone(),
                unknown: text.clone(),
            };
            let path = increment_from.map(|p| ArgPath::parse(p).expect("an argument path"));
            self.policy
                .add_limit(Limit::new(slot, path, text, messages))
        }

        fn tool(
            &mut self,
            name: &str,
            require: Vec<Predicate>,
            deny_if: Vec<Predicate>,
            limits: Vec<usize>,
        ) {
            let rules =
                ToolRules::new(Arc::from(name), require, deny_if, Vec::new(), false, limits);
            self.policy.add_tool(rules);
        }

        fn done(self) -> Arc<PolicyLayer> {
            Arc::new(self.policy)
        }
    }

    fn predicate(path: &str, op: Op) -> Predicate {
        let text: Arc<str> = Arc::from(path);
        let path = ArgPath::parse(path).expect("an argument path");
        Predicate::new(path, op, text.clone(), text.clone(), text)
    }

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
        // all_tools: all (minute, 50, server); t: require mode in [a, b], deny_if name matches
        // ^tmp, limits c (second, 3) and s (10 s, 3, sliding, per session).
        let mut b = Build::new();
        let all = b.limit("all", 60, 50.0, Scope::Server);
        b.policy.set_all_tools_limits(vec![all]);
        let c = b.limit("c", 1, 3.0, Scope::Grant);
        let s = b.limit_by("s", 10, 3.0, Scope::Session, Algorithm::Sliding);
        let require = predicate("args.mode", Op::In(vec![json!("a"), json!("b")]));
        let regex = regex::Regex::new("^tmp").expect("a regex");
        let deny_if = predicate("args.name", Op::Regex(regex));
        b.tool("t", vec![require], vec![deny_if], vec![c, s]);
        let mut engine = LayerEngine::new(b.done(), EvalOptions::default());
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
            args: (&args).into(),
            upstream: None,
            reply_at: None,
            ids: None,
        };
        let mut kinds = [0usize; 5];
        let mut run = |engine: &mut LayerEngine, call: &mut CallView<'_>, n: usize| {
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

        // The same with names as ids and a reused decision, as the replay evaluates.
        let mut engine = LayerEngine::new(engine.policy.clone(), EvalOptions::default());
        let ids = CallIds {
            server: 0,
            grant: 1,
            tool: 3,
        };
        let mut d = Decision::allow();
        let mut seen = [0usize; 5];
        call.ids = Some(ids);
        let mut run_ids = |engine: &mut LayerEngine, call: &mut CallView<'_>, n: usize| {
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
        // default deny, `secret` hidden; all_tools: all (minute, 6); a: a (second, 2) and srv
        // (10 s, 4, per server); b: srv; g: g (hour, 3, global); grant: gr (second, 1);
        // c: require x exists.
        let mut b = Build::new();
        b.policy.hide("secret");
        let all = b.limit("all", 60, 6.0, Scope::Grant);
        b.policy.set_all_tools_limits(vec![all]);
        let a = b.limit("a", 1, 2.0, Scope::Grant);
        let srv = b.limit("srv", 10, 4.0, Scope::Server);
        b.tool("a", vec![], vec![], vec![a, srv]);
        let srv = b.limit("srv", 10, 4.0, Scope::Server);
        b.tool("b", vec![], vec![], vec![srv]);
        let g = b.limit("g", 3600, 3.0, Scope::Global);
        b.tool("g", vec![], vec![], vec![g]);
        let gr = b.limit("gr", 1, 1.0, Scope::Grant);
        b.tool("grant", vec![], vec![], vec![gr]);
        b.tool("secret", vec![], vec![], vec![]);
        let exists = predicate("args.x", Op::Exists(true));
        b.tool("c", vec![exists], vec![], vec![]);
        let policy = b.done();
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
            let mut by_name = LayerEngine::new(Arc::clone(&policy), opts);
            let mut by_id = LayerEngine::new(Arc::clone(&policy), opts);
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
                    args: (&args).into(),
                    upstream,
                    reply_at: None,
                    ids: None,
                };
                let want = by_name.evaluate(&view);
                view.ids = Some(CallIds {
                    server: s as u32,
                    grant: grants[g].map_or(CallIds::ABSENT, |_| 10 + g as u32),
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

    #[test]
    fn dropping_lapsed_counters_changes_no_decision() {
        // all_tools: all (10 s, 3, per session); a: a (10 s, 2), sl (minute, 2, sliding, per
        // session), srv (hour, 40, per server); b: gl (minute, 25, global); spend: budget
        // (10 s, 6, per session, charged args.n).
        let mut b = Build::new();
        let all = b.limit("all", 10, 3.0, Scope::Session);
        b.policy.set_all_tools_limits(vec![all]);
        let a = b.limit("a", 10, 2.0, Scope::Grant);
        let sl = b.limit_by("sl", 60, 2.0, Scope::Session, Algorithm::Sliding);
        let srv = b.limit("srv", 3600, 40.0, Scope::Server);
        b.tool("a", vec![], vec![], vec![a, sl, srv]);
        let gl = b.limit("gl", 60, 25.0, Scope::Global);
        b.tool("b", vec![], vec![], vec![gl]);
        let budget = b.limit_from(
            "budget",
            (10, 6.0, Scope::Session, Algorithm::Fixed),
            Some("args.n"),
        );
        b.tool("spend", vec![], vec![], vec![budget]);
        let policy = b.done();
        let tools = ["a", "b", "spend"];
        let grants = ["g1", "g2", "g3"];
        let servers = ["s1", "s2"];
        let sessions: Vec<String> = (0..5_000).map(|i| format!("session-{i}")).collect();
        // Never swept, swept before every call by name, swept as it grows by id.
        let mut kept = LayerEngine::new(Arc::clone(&policy), EvalOptions::default());
        kept.counters.sweep_from(usize::MAX);
        let mut by_name = LayerEngine::new(Arc::clone(&policy), EvalOptions::default());
        let mut by_id = LayerEngine::new(Arc::clone(&policy), EvalOptions::default());
        by_id.counters.sweep_from(16);
        let mut d = Decision::allow();
        let mut kinds = [0usize; 5];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut ts: Nanos = 1_700_000_000_000_000_000;
        let mut session = 0usize;
        for i in 0..6_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly calls a few hundred milliseconds apart, now and then a pause of minutes.
            ts += if x % 50 == 0 {
                (x % 200) as Nanos * 1_000_000_000
            } else {
                (x % 900) as Nanos * 1_000_000
            };
            // A session goes on or a new one starts; now and then an old one comes back.
            if (x >> 40) % 8 == 0 {
                session += 1;
            }
            let session = match (x >> 42) % 8 {
                0 => session.saturating_sub(((x >> 44) % 40) as usize),
                _ => session,
            } % sessions.len();
            let (t, g, s) = (
                (x >> 8) as usize % tools.len(),
                (x >> 16) as usize % grants.len(),
                (x >> 24) as usize % servers.len(),
            );
            let upstream = match (x >> 32) % 5 {
                0 => Some(Upstream::Error),
                _ => Some(Upstream::Ok),
            };
            let args = Args::Values(
                json!({"n": (x >> 48) % 5})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut view = CallView {
                ts,
                server: servers[s],
                grant: Some(grants[g]),
                session: Some(&sessions[session]),
                tool: tools[t],
                args: (&args).into(),
                upstream,
                reply_at: None,
                ids: None,
            };
            let want = kept.evaluate(&view);
            by_name.counters.sweep(ts);
            assert_eq!(by_name.evaluate(&view), want, "call {i} by name");
            view.ids = Some(CallIds {
                server: s as u32,
                grant: 10 + g as u32,
                tool: 20 + t as u32,
            });
            by_id.evaluate_into(&view, &mut d);
            assert_eq!(d, want, "call {i} by id");
            kinds[d.kind as usize] += 1;
        }
        assert!(kinds[DecisionKind::Allow as usize] > 500, "{kinds:?}");
        assert!(kinds[DecisionKind::Throttle as usize] > 500, "{kinds:?}");
        // The swept engines hold a fraction of the states and names the other does.
        let held = |e: &LayerEngine| (e.counters.states.len(), e.counters.names.len());
        let (all_states, all_names) = held(&kept);
        for (states, names) in [held(&by_name), held(&by_id)] {
            assert!(states * 10 < all_states, "{states} of {all_states}");
            assert!(names * 10 < all_names.max(10), "{names} of {all_names}");
        }
    }
}
