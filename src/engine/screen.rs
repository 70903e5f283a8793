//! Steps 1–5 of the evaluation order: hidden, default deny, `require`, `deny_if`, approval.

use std::sync::Arc;

use super::decision::DecisionKind;
use super::eval::StaticOutcome;
use super::policy::{Entry, PolicyLayer, ToolRules};
use super::predicate::{self, Truth};
use crate::call::{ArgsRef, CallView};

/// Result of screening (steps 1–5).
pub(super) enum Screen<'p> {
    Deny(&'p Arc<str>, &'p Arc<str>),
    Approval(&'p Arc<str>, &'p Arc<str>),
    Unknown(&'p Arc<str>, &'p Arc<str>),
    Pass,
}

/// Steps 1–5 for `call` under `policy` (see [`super::Engine::static_outcome`]).
pub(super) fn static_outcome(policy: &PolicyLayer, call: &CallView<'_>) -> StaticOutcome {
    let (screen, tool) = screen(policy, policy.entries.get(call.tool).copied(), call.args);
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
    args: ArgsRef<'_>,
) -> (Screen<'p>, Option<&'p ToolRules>) {
    resolve(policy, entry, screen_code(policy, entry, args))
}

/// What steps 1–5 decided about a call, as a number that holds no reference into the policy
/// (so that it can be worked out on another thread and kept with the call): the decision's
/// kind, where its rule and message come from, and the index of the predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screened(u32);

// Kinds, in the low two bits.
const PASS: u32 = 0;
const DENY: u32 = 1;
const APPROVAL: u32 = 2;
const UNKNOWN: u32 = 3;
// Sources of the rule and message, in the next four bits; the predicate's index above them.
const HIDDEN: u32 = 0;
const DEFAULT_DENY: u32 = 1;
const REQUIRE_APPROVAL: u32 = 2;
const REQUIRE: u32 = 3;
const REQUIRE_ABSENT: u32 = 4;
const REQUIRE_UNKNOWN: u32 = 5;
const DENY_IF: u32 = 6;
const DENY_IF_UNKNOWN: u32 = 7;
const APPROVE_IF: u32 = 8;
const APPROVE_IF_UNKNOWN: u32 = 9;

impl Screened {
    const PASS: Screened = Screened(PASS);

    fn new(kind: u32, source: u32, index: usize) -> Screened {
        // A tool has far fewer than 2^26 predicates of one kind.
        Screened(kind | source << 2 | (index as u32) << 6)
    }

    /// The number, to keep with a call.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// From [`Screened::bits`].
    pub fn from_bits(bits: u32) -> Screened {
        Screened(bits)
    }
}

/// [`screen`], as a [`Screened`].
pub(super) fn screen_code(
    policy: &PolicyLayer,
    entry: Option<Entry>,
    args: ArgsRef<'_>,
) -> Screened {
    if policy.hide_all || entry.is_some_and(|e| e.hidden) {
        return Screened::new(DENY, HIDDEN, 0);
    }
    let Some(ti) = entry.and_then(|e| e.tool) else {
        return match policy.default_deny {
            true => Screened::new(DENY, DEFAULT_DENY, 0),
            false => Screened::PASS,
        };
    };
    let tool = &policy.tools[ti];
    let mode = policy.eq_mode;
    let mut unknown = None;
    for (i, p) in tool.require.iter().enumerate() {
        match predicate::eval(&p.path, &p.op, args, mode) {
            Truth::Holds => {}
            Truth::Fails => {
                // A missing path fails every operator but `exists`: say so, or a `neq`
                // that refuses every call leaving the argument out reads as a mystery.
                let source = match predicate::is_absent(&p.path, args) {
                    true => REQUIRE_ABSENT,
                    false => REQUIRE,
                };
                return Screened::new(DENY, source, i);
            }
            Truth::Unknown => {
                unknown.get_or_insert(Screened::new(UNKNOWN, REQUIRE_UNKNOWN, i));
            }
        }
    }
    for (i, p) in tool.deny_if.iter().enumerate() {
        match predicate::eval(&p.path, &p.op, args, mode) {
            Truth::Holds => return Screened::new(DENY, DENY_IF, i),
            Truth::Fails => {}
            Truth::Unknown => {
                unknown.get_or_insert(Screened::new(UNKNOWN, DENY_IF_UNKNOWN, i));
            }
        }
    }
    // A decidable deny above wins over an unknown; an undecided require/deny_if makes the
    // approval question moot (the call might have been denied).
    if let Some(unknown) = unknown {
        return unknown;
    }
    if tool.require_approval {
        return Screened::new(APPROVAL, REQUIRE_APPROVAL, 0);
    }
    let mut approve_unknown = None;
    for (i, p) in tool.approve_if.iter().enumerate() {
        match predicate::eval(&p.path, &p.op, args, mode) {
            Truth::Holds => return Screened::new(APPROVAL, APPROVE_IF, i),
            Truth::Fails => {}
            Truth::Unknown => {
                approve_unknown.get_or_insert(Screened::new(UNKNOWN, APPROVE_IF_UNKNOWN, i));
            }
        }
    }
    approve_unknown.unwrap_or(Screened::PASS)
}

/// The [`Screen`] that `code`, worked out by [`screen_code`] for a call of the tool at `entry`,
/// stands for, with the configured tool. A code that does not fit the policy (never made by
/// [`screen_code`] for it) reads as passing.
pub(super) fn resolve<'p>(
    policy: &'p PolicyLayer,
    entry: Option<Entry>,
    code: Screened,
) -> (Screen<'p>, Option<&'p ToolRules>) {
    let s = &policy.sentinels;
    let tool = entry.and_then(|e| e.tool).map(|ti| (ti, &policy.tools[ti]));
    let (kind, source, i) = (code.0 & 3, code.0 >> 2 & 15, (code.0 >> 6) as usize);
    let pair = match (source, tool) {
        (HIDDEN, _) if kind == DENY => Some((&s.hidden_rule, &s.hidden_message)),
        (DEFAULT_DENY, _) if kind == DENY => Some((&s.default_deny_rule, &s.default_deny_message)),
        (REQUIRE_APPROVAL, Some((ti, _))) => policy
            .approval_rules
            .get(ti)
            .map(|rule| (rule, &s.require_approval_message)),
        (REQUIRE, Some((_, t))) => t.require.get(i).map(|p| (&p.rule, &p.message)),
        (REQUIRE_ABSENT, Some((_, t))) => t.require.get(i).map(|p| (&p.rule, &p.absent_message)),
        (REQUIRE_UNKNOWN, Some((_, t))) => t.require.get(i).map(|p| (&p.rule, &p.unknown_message)),
        (DENY_IF, Some((_, t))) => t.deny_if.get(i).map(|p| (&p.rule, &p.message)),
        (DENY_IF_UNKNOWN, Some((_, t))) => t.deny_if.get(i).map(|p| (&p.rule, &p.unknown_message)),
        (APPROVE_IF, Some((_, t))) => t.approve_if.get(i).map(|p| (&p.rule, &p.message)),
        (APPROVE_IF_UNKNOWN, Some((_, t))) => {
            t.approve_if.get(i).map(|p| (&p.rule, &p.unknown_message))
        }
        _ => None,
    };
    // Hidden and default-deny calls are decided without the tool's rules.
    let tool = tool.filter(|_| !matches!(source, HIDDEN | DEFAULT_DENY) || kind == PASS);
    let screen = match (kind, pair) {
        (DENY, Some((rule, message))) => Screen::Deny(rule, message),
        (APPROVAL, Some((rule, message))) => Screen::Approval(rule, message),
        (UNKNOWN, Some((rule, message))) => Screen::Unknown(rule, message),
        _ => Screen::Pass,
    };
    (screen, tool.map(|(_, t)| t))
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
