//! Steps 1–5 of the evaluation order: hidden, default deny, `require`, `deny_if`, approval.

use std::sync::Arc;

use super::decision::DecisionKind;
use super::eval::StaticOutcome;
use super::policy::{Entry, PolicyLayer, ToolRules};
use super::predicate::{self, Truth};
use crate::call::CallView;

/// Result of screening (steps 1–5).
pub(super) enum Screen<'p> {
    Deny(&'p Arc<str>, &'p Arc<str>),
    Approval(&'p Arc<str>, &'p Arc<str>),
    Unknown(&'p Arc<str>, &'p Arc<str>),
    Pass,
}

/// Steps 1–5 for `call` under `policy` (see [`super::Engine::static_outcome`]).
pub(super) fn static_outcome(policy: &PolicyLayer, call: &CallView<'_>) -> StaticOutcome {
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
pub(super) fn screen<'p>(
    policy: &'p PolicyLayer,
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
            Truth::Fails => {
                // A missing path fails every operator but `exists`: say so, or a `neq`
                // that refuses every call leaving the argument out reads as a mystery.
                let message = if predicate::is_absent(&p.path, call.args) {
                    &p.absent_message
                } else {
                    &p.message
                };
                return (Screen::Deny(&p.rule, message), Some(tool));
            }
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
    policy: &'p PolicyLayer,
    tool: Option<&'p ToolRules>,
) -> impl Iterator<Item = usize> + 'p {
    tool.map_or(&[][..], |t| &t.limits[..])
        .iter()
        .chain(&policy.all_tools_limits)
        .copied()
}
