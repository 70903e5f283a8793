//! The borrowed view of a call the evaluator reads.

use super::{ArgsRef, Nanos, Upstream};

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
    pub args: ArgsRef<'a>,
    /// How the upstream call ended, when the trace says.
    pub upstream: Option<Upstream>,
    /// When the upstream reply arrived (the call's time plus its recorded latency), when the
    /// trace says; the Intercept dialect gives a failed call's reservation back then.
    pub reply_at: Option<Nanos>,
    /// The server, grant and tool as ids the caller interned, when it did (see [`CallIds`]).
    pub ids: Option<CallIds>,
}

/// Server, grant and tool of a call as ids of the caller's own symbol table (such as a trace
/// reader's symbol table), so the engine neither hashes nor compares those names.
///
/// An engine keys its counters by these ids when a call has them and by the names otherwise:
/// give ids with every call of an engine's life or with none. Equal ids must mean equal names,
/// one table per kind of name is not required (a server and a grant may share an id).
/// Sessions have no id: a trace may name a new one on every call, so the engine keeps the
/// names of the sessions its counters hold and forgets the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallIds {
    /// Id of [`CallView::server`].
    pub server: u32,
    /// Id of [`CallView::grant`], [`CallIds::ABSENT`] when there is none.
    pub grant: u32,
    /// Id of [`CallView::tool`].
    pub tool: u32,
}

impl CallIds {
    /// The id of an absent grant (a reader's symbol table uses the same value).
    pub const ABSENT: u32 = u32::MAX;
}

/// When a reply recorded `latency_ms` after a call at `ts` arrived; `None` for a latency that
/// is negative or not finite. Fractions of a nanosecond are dropped.
pub fn reply_time(ts: Nanos, latency_ms: f64) -> Option<Nanos> {
    (latency_ms.is_finite() && latency_ms >= 0.0)
        .then(|| ts.saturating_add((latency_ms * 1e6) as i64))
}
