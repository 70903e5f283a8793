//! The borrowed view of a call the evaluator reads.

use crate::trace::{Args, CallRecord, Nanos, Upstream};

/// What the evaluator needs from a call, borrowed so callers need not build records.
///
/// A missing `grant` or `session` is its own key value: every call without a grant shares one
/// grant-scoped counter per server (distinct from a grant recorded as the empty string).
#[derive(Debug, Clone, Copy)]
pub struct CallView<'a> {
    /// The call's timestamp: the evaluator's clock.
    pub ts: Nanos,
    /// The MCP server.
    pub server: &'a str,
    /// Caller identity, when known.
    pub grant: Option<&'a str>,
    /// Session id, when known.
    pub session: Option<&'a str>,
    /// Tool name.
    pub tool: &'a str,
    /// What the trace recorded of the arguments.
    pub args: &'a Args,
    /// How the upstream call ended, when the trace says.
    pub upstream: Option<Upstream>,
}

impl CallRecord {
    /// Borrow the fields the evaluator reads.
    pub fn view(&self) -> CallView<'_> {
        CallView {
            ts: self.ts,
            server: &self.server,
            grant: self.grant.as_deref(),
            session: self.session.as_deref(),
            tool: &self.tool,
            args: &self.args,
            upstream: self.upstream,
        }
    }
}
