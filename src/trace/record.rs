//! The call record: what every reader produces and everything downstream consumes.

use crate::call::{Args, CallView, Nanos, Sym, Upstream};

/// One recorded `tools/call`, normalised from whatever format it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// When the gateway received the call.
    pub ts: Nanos,
    /// The MCP server the call went to.
    pub server: Sym,
    /// Caller identity (grant/token label, agent, user, client), when known.
    pub grant: Option<Sym>,
    /// MCP session id, when known.
    pub session: Option<Sym>,
    /// `params.name` of the `tools/call`.
    pub tool: Sym,
    /// What the trace recorded of the arguments.
    pub args: Args,
    /// Request id / JSON-RPC id, for cross-reference.
    pub id: Option<String>,
    /// What the gateway decided when the call was recorded, if the trace says.
    pub recorded: Option<Recorded>,
    /// How the upstream call ended, when it was forwarded and the trace says.
    pub upstream: Option<Upstream>,
    /// Upstream latency in milliseconds, when known.
    pub latency_ms: Option<f64>,
    /// Where the record came from (file index and line), for error messages and reports.
    pub origin: Origin,
}

impl CallRecord {
    /// A call of no tool at `origin` with nothing recorded: what a batch gives for a row it
    /// took and then cannot read again (its readers check rows so that this never happens).
    pub(crate) fn bare(origin: Origin) -> CallRecord {
        CallRecord {
            ts: 0,
            server: super::source::UNKNOWN_SERVER.into(),
            grant: None,
            session: None,
            tool: "".into(),
            args: Args::Unrecorded,
            id: None,
            recorded: None,
            upstream: None,
            latency_ms: None,
            origin,
        }
    }

    /// Borrow the fields reports show.
    pub fn fields(&self) -> CallFields<'_> {
        CallFields {
            ts: self.ts,
            server: &self.server,
            grant: self.grant.as_deref(),
            session: self.session.as_deref(),
            tool: &self.tool,
            id: self.id.as_deref(),
            origin: self.origin,
            recorded: self.recorded.as_ref().and_then(|r| r.decision),
            upstream: self.upstream,
            args: Some(&self.args),
        }
    }

    /// Borrow the fields the evaluator reads.
    pub fn view(&self) -> CallView<'_> {
        CallView {
            ts: self.ts,
            server: &self.server,
            grant: self.grant.as_deref(),
            session: self.session.as_deref(),
            tool: &self.tool,
            args: (&self.args).into(),
            upstream: self.upstream,
            reply_at: self
                .latency_ms
                .and_then(|ms| crate::call::reply_time(self.ts, ms)),
            ids: None,
        }
    }
}

/// What reports show of a call, borrowed: from a [`CallRecord`], or straight from a batch's row
/// (per-call reports describe millions of calls and build no record for them).
#[derive(Debug, Clone, Copy)]
pub struct CallFields<'a> {
    /// When the gateway received the call.
    pub ts: Nanos,
    /// The MCP server.
    pub server: &'a str,
    /// Caller identity, when known.
    pub grant: Option<&'a str>,
    /// MCP session id, when known.
    pub session: Option<&'a str>,
    /// The tool.
    pub tool: &'a str,
    /// Request id, when recorded.
    pub id: Option<&'a str>,
    /// Where the record came from.
    pub origin: Origin,
    /// The decision the gateway recorded, if any.
    pub recorded: Option<RecordedDecision>,
    /// How the upstream call ended, when recorded.
    pub upstream: Option<Upstream>,
    /// The recorded arguments, when at hand (reports show them only with `--show-args`).
    pub args: Option<&'a Args>,
}

/// What the gateway did with a call when it was recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recorded {
    /// The recorded decision, normalised to mcpsim's names when possible.
    pub decision: Option<RecordedDecision>,
    /// The rule the gateway named.
    pub rule: Option<String>,
    /// The message the gateway returned.
    pub message: Option<String>,
    /// The policy version in force.
    pub policy_version: Option<String>,
}

/// A decision as a gateway recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordedDecision {
    /// Forwarded upstream.
    Allow,
    /// Refused by a rule.
    Deny,
    /// Refused by a limit.
    Throttle,
    /// Held for human approval.
    Approval,
}

impl RecordedDecision {
    /// The call-record name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedDecision::Allow => "allow",
            RecordedDecision::Deny => "deny",
            RecordedDecision::Throttle => "throttle",
            RecordedDecision::Approval => "approval",
        }
    }

    /// Parse the names gateways use (`allow`/`allowed`, `deny`/`denied`, …).
    pub fn parse(s: &str) -> Option<RecordedDecision> {
        match s.to_ascii_lowercase().as_str() {
            "allow" | "allowed" | "permit" | "permitted" | "forwarded" => {
                Some(RecordedDecision::Allow)
            }
            "deny" | "denied" | "block" | "blocked" | "hidden" => Some(RecordedDecision::Deny),
            "throttle" | "throttled" | "rate_limited" | "rate-limited" | "limited" => {
                Some(RecordedDecision::Throttle)
            }
            "approval" | "pending_approval" | "require_approval" | "held" => {
                Some(RecordedDecision::Approval)
            }
            _ => None,
        }
    }
}

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Origin {
    /// Index of the input file in the order the inputs were given.
    pub file: u32,
    /// 1-based line (or row) number in that file.
    pub line: u64,
}
