//! The evaluator: one call in, one decision out, counters updated. An [`Engine`] runs the
//! evaluator of its policy's dialect.

use std::sync::Arc;

use super::decision::{Decision, DecisionKind};
use super::explain::ExplainStep;
use super::intercept::{InterceptEngine, InterceptStore};
use super::layer::LayerEngine;
use super::policy::{LimitSpec, Policy};
use super::screen::Screened;
use crate::call::CallView;

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
    /// `--intercept-counters per-server`: each server keeps its own Intercept counters instead
    /// of the one state store the gateway's instances share by default.
    pub intercept_per_server: bool,
}

/// What steps 1–5 decide about a call, without counter state. Comparable across two different
/// policies: limits are compared by definition, not by slot.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticOutcome {
    /// `Deny`, `Approval` or `Unknown` when steps 1–5 decide (`Allow` for an Intercept call
    /// forwarded unevaluated); `None` when the call reaches the limits (and is then allowed or
    /// throttled depending on counter state).
    pub decided: Option<DecisionKind>,
    /// The deciding rule id (empty when `decided` is `None`).
    pub rule: Arc<str>,
    /// The limits the call is subject to, in evaluation order (empty for a deny).
    pub limits: Vec<LimitSpec>,
}

/// A policy plus the counter state of one replay. Feed calls in timestamp order.
///
/// Cloning an engine snapshots its counters (to ask "what would happen" without committing).
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Arc<Policy>,
    opts: EvalOptions,
    run: Run,
}

/// The evaluator of the policy's dialect, with its counters.
// One per engine, made once: boxing the large variant would only add an indirection to every
// call of the dialect the hot path serves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Run {
    PolicyLayer(LayerEngine),
    Intercept(InterceptEngine),
}

impl Engine {
    /// An engine with empty counters.
    pub fn new(policy: Arc<Policy>, opts: EvalOptions) -> Engine {
        Engine::with_store(policy, opts, &InterceptStore::new())
    }

    /// An engine with empty counters whose Intercept counters live in `store`, shared with
    /// every engine given a clone of it. A PolicyLayer engine keeps counters of its own.
    pub fn with_store(policy: Arc<Policy>, opts: EvalOptions, store: &InterceptStore) -> Engine {
        let run = match &*policy {
            Policy::PolicyLayer(p) => Run::PolicyLayer(LayerEngine::new(Arc::clone(p), opts)),
            Policy::Intercept(p) => {
                Run::Intercept(InterceptEngine::with_store(Arc::clone(p), opts, store))
            }
        };
        Engine { policy, opts, run }
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
        match &mut self.run {
            Run::PolicyLayer(e) => e.evaluate(call),
            Run::Intercept(e) => e.evaluate(call),
        }
    }

    /// [`Engine::evaluate`] into an existing decision. Replays use this: rule ids and
    /// messages are shared strings, and one already in `out` is not replaced by the same one,
    /// so a run of calls decided alike costs no reference counting.
    #[inline]
    pub fn evaluate_into(&mut self, call: &CallView<'_>, out: &mut Decision) {
        match &mut self.run {
            Run::PolicyLayer(e) => e.evaluate_into(call, out),
            Run::Intercept(e) => *out = e.evaluate(call),
        }
    }

    /// [`Engine::evaluate_into`] for a call whose steps 1–5 [`Policy::screen`] worked out ahead
    /// under this engine's policy (for the call's tool, with its arguments); `None` as
    /// [`Engine::evaluate_into`].
    #[inline]
    pub fn evaluate_screened_into(
        &mut self,
        call: &CallView<'_>,
        screened: Option<Screened>,
        out: &mut Decision,
    ) {
        match &mut self.run {
            Run::PolicyLayer(e) => e.evaluate_screened_into(call, screened, out),
            Run::Intercept(e) => *out = e.evaluate(call),
        }
    }

    /// Steps 1–5 only, plus the definitions of the limits that apply. Reads no counter state.
    pub fn static_outcome(&self, call: &CallView<'_>) -> StaticOutcome {
        static_outcome(&self.policy, call)
    }

    /// Every rule the evaluation order visits for `call`, in order, and every limit that
    /// applies, with counters as they stand now (state is not changed; call before
    /// [`Engine::evaluate`] for the same call). Predicate steps stop where a predicate decides
    /// (a failing `require`, a holding `deny_if`); limits are listed when the call reaches them
    /// or is unknown.
    pub fn explain(&self, call: &CallView<'_>) -> Vec<ExplainStep> {
        match &self.run {
            Run::PolicyLayer(e) => e.explain(call),
            Run::Intercept(e) => e.explain(call),
        }
    }
}

/// Steps 1–5 for `call` under `policy` (see [`Engine::static_outcome`]).
pub fn static_outcome(policy: &Policy, call: &CallView<'_>) -> StaticOutcome {
    match policy {
        Policy::PolicyLayer(p) => super::screen::static_outcome(p, call),
        Policy::Intercept(p) => super::intercept::static_outcome(p, call),
    }
}
