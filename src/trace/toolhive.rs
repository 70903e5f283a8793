//! ToolHive audit events (JSON lines), as its audit middleware logs them through `slog`
//! (`logged_at`, with `time`/`level`/`msg` beside) or marshals them directly (`loggedAt`).
//! `mcp_tool_call` events are calls; every other event type is counted and ignored.

use serde_json::{Map, Value};

use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, next_object_record};
use super::{Args, CallRecord, Nanos, Origin, Recorded, RecordedDecision, TraceError, Upstream};

pub(crate) struct ToolHiveSource {
    lines: Lines,
    file: u32,
    names: Interner,
}

impl ToolHiveSource {
    pub(crate) fn new(lines: Lines, file: u32) -> ToolHiveSource {
        ToolHiveSource {
            lines,
            file,
            names: Interner::default(),
        }
    }
}

impl Source for ToolHiveSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        let names = &mut self.names;
        next_object_record(&mut self.lines, self.file, cx, |obj, origin, cx| {
            audit_event(obj, origin, cx, names)
        })
    }
}

fn audit_event(
    obj: &Map<String, Value>,
    origin: Origin,
    cx: &mut Ctx<'_>,
    names: &mut Interner,
) -> Result<Option<CallRecord>, LineError> {
    let f = Fields::new(obj, "");
    // The audit log may share its stream with ToolHive's ordinary `slog` lines.
    if f.get("type").is_none() && f.opt_str("msg")?.is_some_and(|m| m != "audit_event") {
        cx.ignore("log line (not an audit event)");
        return Ok(None);
    }
    let kind = f.req_str("type")?;
    if kind != "mcp_tool_call" {
        cx.ignore(format!("event {kind}"));
        return Ok(None);
    }
    // `time` is when slog wrote the line; `logged_at` is the event's own instant, taken when
    // the reply was written (the call's time is `duration_ms` earlier, below).
    let logged = f.req_ts(&["logged_at", "loggedAt", "time"])?;
    // ToolHive writes the tool only when `params.name` is a string: a call without one is a
    // record without a tool, bad input.
    let tool = match f.opt_object("target")? {
        Some(target) => Fields::new(target, "target").opt_str("name")?,
        None => None,
    };
    let Some(tool) = tool else {
        return Err(LineError::missing("target.name"));
    };
    let tool = names.get(tool);
    let metadata = match f.opt_object("metadata")? {
        None => None,
        Some(m) => Fields::new(m, "metadata").opt_object("extra")?,
    };
    let metadata = metadata.map(|extra| Fields::new(extra, "metadata.extra"));
    // A virtual MCP server (vMCP) names itself as the component and the server it routed the
    // call to as `backend_name`.
    let backend = match &metadata {
        Some(m) => m.opt_str("backend_name")?,
        None => None,
    };
    let server = backend
        .or(f.opt_str("component")?)
        .unwrap_or(UNKNOWN_SERVER);
    let server = names.get(server);
    // ToolHive writes `user` = "anonymous" whenever the identity has no name (or preferred
    // username, or email), even when it has a subject (`user_id`): a service account's token.
    // The subject then names the caller; without one, "anonymous" is kept as the grant, so
    // unauthenticated traffic still forms one caller.
    let grant = match f.opt_object("subjects")? {
        None => None,
        Some(s) => {
            let s = Fields::new(s, "subjects");
            let (user, user_id) = (s.opt_str("user")?, s.opt_str("user_id")?);
            match (user, user_id) {
                (Some("anonymous"), Some(id)) => Some(id),
                (Some(u), _) => Some(u),
                (None, Some(id)) => Some(id),
                (None, None) => s.opt_str("client_name")?,
            }
        }
    }
    .map(|g| names.get(g));
    let session = match f.opt_object("source")? {
        None => None,
        Some(src) => match Fields::new(src, "source").opt_object("extra")? {
            None => None,
            Some(extra) => Fields::new(extra, "source.extra").opt_str("session_id")?,
        },
    }
    .map(|s| names.get(s));
    // Request bodies are in `data.request` only when the audit config includes request data;
    // a body that was not one JSON object (text, a batch) is kept as text or an array there
    // and says nothing reliable about this call's arguments.
    let request = match f.opt_object("data")? {
        None => None,
        Some(d) => d.get("request").and_then(Value::as_object),
    };
    let (id, args) = match request {
        None => (None, Args::Unrecorded),
        Some(r) => {
            let r = Fields::new(r, "data.request");
            let args = match r.opt_object("params")? {
                None => Args::Unrecorded,
                Some(p) => match Fields::new(p, "data.request.params").opt_object("arguments")? {
                    Some(a) => Args::Values(a.clone()),
                    None => Args::Values(Map::new()),
                },
            };
            (r.opt_id("id")?, args)
        }
    };
    let (duration_ms, transport) = match &metadata {
        Some(m) => (m.opt_f64("duration_ms")?, m.opt_str("transport")?),
        None => (None, None),
    };
    let (decision, mut upstream) = outcome(f.req_str("outcome")?)?;
    // Over the SSE transport the POST is answered `202 Accepted` once the message is handed
    // on; the reply comes later on the stream, which the event does not see: its outcome and
    // duration say nothing of how the call ended.
    let sse = transport == Some("sse");
    if sse && decision == Some(RecordedDecision::Allow) {
        upstream = None;
    }
    let latency_ms = duration_ms.filter(|_| !sse);
    let ts = match duration_ms {
        Some(d) if d.is_finite() && d > 0.0 => logged.saturating_sub((d * 1e6) as Nanos),
        _ => logged,
    };
    Ok(Some(CallRecord {
        ts,
        server,
        grant,
        session,
        tool,
        args,
        id,
        recorded: decision.map(|d| Recorded {
            decision: Some(d),
            ..Recorded::default()
        }),
        upstream,
        latency_ms,
        origin,
    }))
}

/// What an `outcome` says the gateway did and how the upstream call ended. ToolHive derives it
/// from the HTTP status: `success` (2xx) and `application_error` (a JSON-RPC error inside a
/// 2xx) were forwarded; `error` (5xx) failed on the way to or inside the server after being
/// let through; `denied` (401/403) was refused; `failure` (other 4xx) was rejected for a reason
/// the event does not give (mostly ToolHive's own middleware: a rate limit's 429, a tool filter's
/// 400, before the server saw it), so neither a decision nor an upstream outcome is recorded.
fn outcome(s: &str) -> Result<(Option<RecordedDecision>, Option<Upstream>), LineError> {
    Ok(match s {
        "success" => (Some(RecordedDecision::Allow), Some(Upstream::Ok)),
        "application_error" | "error" => (Some(RecordedDecision::Allow), Some(Upstream::Error)),
        "failure" => (None, None),
        other => match RecordedDecision::parse(other) {
            Some(d) => (Some(d), None),
            None => {
                return Err(LineError::at(
                    "bad value",
                    "outcome",
                    format!(
                        "unknown outcome {other:?} (expected success, application_error, error, failure or denied)"
                    ),
                ));
            }
        },
    })
}
