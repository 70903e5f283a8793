//! What the evaluator says about one call.

use std::sync::Arc;

use crate::call::Nanos;

/// The five outcomes of evaluating a call.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    /// Forwarded upstream; its limits' counters were reserved.
    Allow,
    /// Refused by a rule (hidden, default deny, require, deny_if, bad `increment_from`).
    Deny,
    /// Refused because a windowed limit would be exceeded; consumed nothing.
    Throttle,
    /// Held for human approval.
    Approval,
    /// Undecidable: a predicate needs an argument value the trace did not record.
    Unknown,
}

impl DecisionKind {
    /// Every kind, in report order.
    pub const ALL: [DecisionKind; 5] = [
        DecisionKind::Allow,
        DecisionKind::Deny,
        DecisionKind::Throttle,
        DecisionKind::Approval,
        DecisionKind::Unknown,
    ];

    /// The stable lower-case name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::Deny => "deny",
            DecisionKind::Throttle => "throttle",
            DecisionKind::Approval => "approval",
            DecisionKind::Unknown => "unknown",
        }
    }

    /// Parse a stable name.
    pub fn parse(s: &str) -> Option<DecisionKind> {
        DecisionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope a counter is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One counter per (server, grant).
    Grant,
    /// One counter per (server, grant, session).
    Session,
    /// One counter per server.
    Server,
    /// One counter for the whole input.
    Global,
}

impl Scope {
    /// The policy-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Grant => "grant",
            Scope::Session => "session",
            Scope::Server => "server",
            Scope::Global => "global",
        }
    }
}

/// Details of the limit that throttled a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttle {
    /// Counter name.
    pub counter: Arc<str>,
    /// The scope whose key (taken from the call's server/grant/session) holds the counter.
    pub scope: Scope,
    /// Start of the window the call fell in (for sliding limits: `ts - window`, exclusive).
    pub window_start: Nanos,
    /// What earlier admitted calls had consumed in that window.
    pub used: f64,
    /// The limit's maximum.
    pub max: f64,
    /// What this call would have added.
    pub increment: f64,
    /// The first instant at which the same call would fit again (window reset for fixed windows).
    pub retry_after: Nanos,
}

/// The verdict on one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The outcome.
    pub kind: DecisionKind,
    /// Rule id (`/tools/<tool>/require/<path>-<op>`, `(hidden)`, …); empty for a plain allow.
    pub rule: Arc<str>,
    /// `on_deny` or a generated message; empty for a plain allow.
    pub message: Arc<str>,
    /// For throttles: which counter and how full it was.
    pub throttle: Option<Throttle>,
    /// The call needed approval and was continued under `--assume-approved`.
    pub approval_required: bool,
}

impl Decision {
    /// A plain allow with no rule and no message.
    pub fn allow() -> Decision {
        Decision {
            kind: DecisionKind::Allow,
            rule: Arc::from(""),
            message: Arc::from(""),
            throttle: None,
            approval_required: false,
        }
    }
}
