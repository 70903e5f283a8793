//! Why a call gets its decision: every rule and counter on the way, read without changing
//! counter state.

use std::sync::Arc;

use super::layer::LayerEngine;
use super::limits::{Increment, increment};
use super::policy::{LimitSpec, PolicyLayer, Predicate, ToolRules};
use super::predicate::{self, Truth};
use super::screen::applicable;
use crate::call::CallView;
use crate::call::Nanos;

/// What one step of the evaluation order found.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The tool is hidden (step 1): the call is denied.
    Hidden,
    /// The tool is not listed and the default is deny (step 2).
    DefaultDeny,
    /// The tool is not listed and the default is allow: only `all_tools` limits apply.
    Unlisted,
    /// A predicate (steps 3–5) was evaluated.
    Predicate {
        /// `require`, `deny_if` or `approve_if`.
        list: &'static str,
        /// Whether it holds; `None` when the trace lacks what it needs.
        holds: Option<bool>,
    },
    /// `require_approval: true` (step 5).
    RequireApproval,
    /// A limit (step 6) with the counter as it stands before this call.
    Limit {
        /// The limit's definition.
        spec: LimitSpec,
        /// Start of the current window (for sliding limits, `ts - window`, exclusive).
        window_start: Nanos,
        /// What earlier admitted calls consumed in the window.
        used: f64,
        /// What this call would add; `None` when `increment_from` has no usable value.
        increment: Option<f64>,
        /// Whether `used + increment <= max`; `None` when the increment is not known.
        fits: Option<bool>,
    },
}

/// One rule on the way to a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainStep {
    /// Rule id (`/tools/t/require/args.a-eq`, `(hidden)`, …).
    pub rule: Arc<str>,
    /// What was found.
    pub outcome: StepOutcome,
}

impl LayerEngine {
    /// See [`super::Engine::explain`].
    pub(super) fn explain(&self, call: &CallView<'_>) -> Vec<ExplainStep> {
        let policy = &*self.policy;
        let s = &policy.sentinels;
        let mut steps = Vec::new();
        let entry = policy.entries.get(call.tool);
        if policy.hide_all || entry.is_some_and(|e| e.hidden) {
            steps.push(step(&s.hidden_rule, StepOutcome::Hidden));
            return steps;
        }
        let tool = entry.and_then(|e| e.tool).map(|i| (i, &policy.tools[i]));
        match tool {
            None if policy.default_deny => {
                steps.push(step(&s.default_deny_rule, StepOutcome::DefaultDeny));
                return steps;
            }
            None => steps.push(step(&s.empty, StepOutcome::Unlisted)),
            Some((ti, t)) => {
                let mode = policy.eq_mode;
                let visit = |steps: &mut Vec<ExplainStep>, list, p: &Predicate| {
                    let holds = match predicate::eval(&p.path, &p.op, call.args, mode) {
                        Truth::Holds => Some(true),
                        Truth::Fails => Some(false),
                        Truth::Unknown => None,
                    };
                    steps.push(step(&p.rule, StepOutcome::Predicate { list, holds }));
                    holds
                };
                for p in &t.require {
                    if visit(&mut steps, "require", p) == Some(false) {
                        return steps;
                    }
                }
                for p in &t.deny_if {
                    if visit(&mut steps, "deny_if", p) == Some(true) {
                        return steps;
                    }
                }
                if t.require_approval {
                    steps.push(step(
                        &policy.approval_rules[ti],
                        StepOutcome::RequireApproval,
                    ));
                } else {
                    for p in &t.approve_if {
                        if visit(&mut steps, "approve_if", p) == Some(true) {
                            break;
                        }
                    }
                }
            }
        }
        self.explain_limits(policy, tool.map(|(_, t)| t), call, &mut steps);
        steps
    }

    fn explain_limits(
        &self,
        policy: &PolicyLayer,
        tool: Option<&ToolRules>,
        call: &CallView<'_>,
        steps: &mut Vec<ExplainStep>,
    ) {
        for i in applicable(policy, tool) {
            let limit = &policy.limits[i];
            let c = &policy.counters[limit.counter];
            let (used, window_start) = self.counters.peek(limit.counter, c, call);
            let inc = match increment(limit, call.args) {
                Increment::Amount(x) => Some(x),
                Increment::Missing | Increment::NotNumber | Increment::Unknown => None,
            };
            let outcome = StepOutcome::Limit {
                spec: policy.limit_spec(i),
                window_start,
                used,
                increment: inc,
                fits: inc.map(|x| used + x <= c.max),
            };
            steps.push(step(&limit.rule, outcome));
        }
    }
}

fn step(rule: &Arc<str>, outcome: StepOutcome) -> ExplainStep {
    ExplainStep {
        rule: rule.clone(),
        outcome,
    }
}
