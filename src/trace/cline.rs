//! Cline and Roo Code task histories (`tasks/<task id>/ui_messages.json`): one JSON array of
//! the messages the extension showed, `{ts (epoch ms), type: "ask"|"say", ask|say, text}`.
//!
//! An MCP call is an `ask` (or, when auto-approved, a `say`) `use_mcp_server` message whose
//! `text` is `{"type":"use_mcp_tool","serverName",…,"toolName",…,"arguments":"<JSON>"}`. The
//! extension runs one tool at a time, so what follows answers it: `mcp_server_request_started`
//! (Cline: when the call was sent, after approval), then `mcp_server_response` (the result,
//! `Error:\n…` for a result with `isError`), or an `error` message `Error executing MCP tool:…`
//! when the call failed. A call followed by the next call, or by the end, without either never
//! got a result (refused, or the task ended).
//!
//! The array is read element by element as it is parsed, so memory holds the calls, not the
//! messages. A "line" of this format is a message's 1-based position in the array.

use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Source};
use super::time::parse_ts_value;
use super::{
    AgentGrant, AgentOptions, Args, CallRecord, Nanos, Origin, Replies, Skipped, Sym, TraceError,
    Upstream,
};

/// The result text of a tool that returned `isError: true`.
const TOOL_ERROR_PREFIX: &str = "Error:\n";
/// The `error` message of a call that failed (a JSON-RPC error, a lost connection).
const CALL_FAILED_PREFIX: &str = "Error executing MCP tool";
/// What Cline 3.26 and later tell the model of a call that failed, in the `request` of the
/// next `api_req_started` message (they write no `error` message for it).
const CALL_FAILED_RESULT: &str = "Result:\nError executing MCP tool";
/// What Cline tells the model of a call the user denied.
const DENIED_RESULT: &str = "The user denied this operation.";

pub(crate) struct ClineSource {
    reader: Option<Box<dyn Read + Send>>,
    file: u32,
    session: Option<String>,
    opts: AgentOptions,
    /// The calls, once the document was read.
    calls: std::vec::IntoIter<CallRecord>,
}

impl ClineSource {
    /// `session` is the task id (the name of the folder holding `ui_messages.json`).
    pub(crate) fn new(
        reader: Box<dyn Read + Send>,
        file: u32,
        session: Option<String>,
        opts: &AgentOptions,
    ) -> ClineSource {
        ClineSource {
            reader: Some(reader),
            file,
            session,
            opts: opts.clone(),
            calls: Vec::new().into_iter(),
        }
    }
}

impl Source for ClineSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        if let Some(r) = self.reader.take() {
            let mut names = Interner::default();
            let session = self.session.as_deref().map(|s| names.get(s));
            let mut task = Task {
                file: self.file,
                names,
                session,
                grant: self.opts.grant.clone(),
                model: None,
                resource: false,
                cancelled: false,
                pending: None,
                calls: Vec::new(),
                bad: Vec::new(),
                ignored: Vec::new(),
                index: 0,
                answered: 0,
                unanswered: Vec::new(),
            };
            let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(r));
            let read = (&mut de)
                .deserialize_seq(Messages(&mut task))
                .and_then(|()| de.end());
            if let Err(e) = read {
                if e.is_io() {
                    return Err(TraceError::Io {
                        file: cx.file.to_string(),
                        source: e.into(),
                    });
                }
                // The document is broken from here: what was read before stands.
                task.bad.push((task.index.max(1), LineError::json(&e)));
            }
            task.finish();
            for kind in task.ignored {
                cx.ignore(kind);
            }
            for (line, e) in task.bad {
                cx.skip(line, e)?;
            }
            let replies = Replies {
                paired: task.answered,
                requests_without_reply: task.unanswered.len() as u64,
                cancelled: 0,
                replies_without_request: 0,
                examples: task
                    .unanswered
                    .iter()
                    .take(5)
                    .map(|&(line, sent)| Skipped {
                        file: cx.file.to_string(),
                        line,
                        reason: if sent {
                            "call sent, but no result in the file (the task ended?)".into()
                        } else {
                            "call without a result: refused, or the task ended".into()
                        },
                    })
                    .collect(),
            };
            match &mut cx.stats.replies {
                Some(r) => r.absorb(replies),
                None => cx.stats.replies = Some(replies),
            }
            let mut calls = task.calls;
            calls.sort_by_key(|c| c.origin.line);
            self.calls = calls.into_iter();
        }
        Ok(self.calls.next())
    }
}

/// A call waiting for what answers it.
struct Pending {
    rec: CallRecord,
    started: Option<Nanos>,
}

struct Task {
    file: u32,
    names: Interner,
    session: Option<Sym>,
    grant: AgentGrant,
    /// The model of the latest message that names one (`modelInfo.modelId`, newer Cline).
    model: Option<String>,
    /// A resource read is waiting for its messages (they answer no call).
    resource: bool,
    /// The latest API request was cancelled: a call the model was still writing was cut off.
    cancelled: bool,
    pending: Option<Pending>,
    calls: Vec<CallRecord>,
    bad: Vec<(u64, LineError)>,
    ignored: Vec<String>,
    /// 1-based position of the message being read.
    index: u64,
    /// Calls answered, and the positions of those never answered (and whether they were sent).
    answered: u64,
    unanswered: Vec<(u64, bool)>,
}

impl Task {
    fn message(&mut self, obj: &Map<String, Value>) -> Result<(), LineError> {
        let f = Fields::new(obj, "");
        let kind = f.req_str("type")?;
        let what = match kind {
            "ask" => f.req_str("ask")?,
            "say" => f.req_str("say")?,
            other => {
                return Err(LineError::at(
                    "bad value",
                    "type",
                    format!("unknown message type {other:?} (expected ask or say)"),
                ));
            }
        };
        if f.get("partial").and_then(Value::as_bool) == Some(true) {
            self.ignored.push("partial message".into());
            return Ok(());
        }
        if let Some(model) =
            (f.get("modelInfo").and_then(|m| m.get("modelId"))).and_then(Value::as_str)
        {
            self.model = Some(model.to_string());
        }
        let ts = || {
            let v = f.get("ts").ok_or_else(|| LineError::missing("ts"))?;
            parse_ts_value(v).map_err(|r| LineError::at("bad timestamp", "ts", r))
        };
        match what {
            "use_mcp_server" => self.call(&f, ts()?),
            "mcp_server_request_started" | "mcp_server_response" if self.resource => {
                self.resource = what == "mcp_server_request_started";
                self.ignored
                    .push(format!("{kind} {what} (of a resource read)"));
                Ok(())
            }
            "mcp_server_request_started" => {
                let at = ts()?;
                match &mut self.pending {
                    Some(p) => p.started = Some(at),
                    None => self.ignored.push(format!("{kind} {what}")),
                }
                Ok(())
            }
            "api_req_started" => {
                self.api_request(f.opt_str("text")?.unwrap_or(""), ts()?);
                self.ignored.push(format!("{kind} {what}"));
                Ok(())
            }
            "mcp_server_response" => {
                let text = f.opt_str("text")?.unwrap_or("");
                let outcome = if text.starts_with(TOOL_ERROR_PREFIX) {
                    Upstream::ToolError
                } else {
                    Upstream::Ok
                };
                self.answer(ts()?, outcome, kind, what);
                Ok(())
            }
            "error"
                if self.pending.is_some()
                    && f.opt_str("text")?
                        .is_some_and(|t| t.starts_with(CALL_FAILED_PREFIX)) =>
            {
                self.answer(ts()?, Upstream::Error, kind, what);
                Ok(())
            }
            _ => {
                self.ignored.push(format!("{kind} {what}"));
                Ok(())
            }
        }
    }

    fn call(&mut self, f: &Fields<'_>, ts: Nanos) -> Result<(), LineError> {
        let text = f.req_str("text")?;
        let body = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(other) => return Err(LineError::wrong_type("text", "a JSON object", &other)),
            Err(e) => {
                return Err(LineError::at(
                    "invalid JSON",
                    "text",
                    format!("invalid JSON: {e}"),
                ));
            }
        };
        let b = Fields::new(&body, "text");
        if b.req_str("type")? != "use_mcp_tool" {
            // What follows answers the resource read, not the call before it.
            self.flush();
            self.resource = true;
            self.ignored.push("MCP resource read".into());
            return Ok(());
        }
        self.resource = false;
        let server = b.req_str("serverName")?;
        let tool = b.req_str("toolName")?;
        let args = match b.opt_str("arguments")? {
            None => Args::Values(Map::new()),
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(m)) => Args::Values(m),
                Ok(other) => Args::NotObject(other.to_string().into()),
                // The model was still writing the call when the request was cancelled: the
                // message was saved as it stood, and the call never made.
                Err(_) if self.cancelled => {
                    self.ignored
                        .push("call cut off while the model wrote it (not sent)".into());
                    return Ok(());
                }
                Err(e) => {
                    return Err(LineError::at(
                        "invalid JSON",
                        "text.arguments",
                        format!("invalid JSON: {e}"),
                    ));
                }
            },
        };
        let grant = (self.grant.pick(None, self.model.as_deref())).map(|g| self.names.get(g));
        // A call still waiting when the next one is made never got its answer.
        self.flush();
        let rec = CallRecord {
            ts,
            server: self.names.get(server),
            grant,
            session: self.session.clone(),
            tool: self.names.get(tool),
            args,
            id: None,
            recorded: None,
            upstream: None,
            latency_ms: None,
            origin: Origin {
                file: self.file,
                line: self.index,
            },
        };
        self.pending = Some(Pending { rec, started: None });
        Ok(())
    }

    fn answer(&mut self, at: Nanos, outcome: Upstream, kind: &str, what: &str) {
        let Some(Pending { mut rec, started }) = self.pending.take() else {
            self.ignored
                .push(format!("{kind} {what} (no call waits for it)"));
            return;
        };
        // Sent once approved: the call's time is when it went out, where recorded.
        if let Some(s) = started {
            rec.ts = s;
        }
        self.answered += 1;
        rec.upstream = Some(outcome);
        rec.latency_ms = Some((at.saturating_sub(rec.ts)).max(0) as f64 / 1e6);
        self.calls.push(rec);
    }

    /// An `api_req_started` message: Cline's next request to the model, whose `request` text
    /// tells the model how the call before ended (Cline 3.26 and later write no `error` message
    /// for a failed call), and whose `cancelReason` says the request was cancelled.
    fn api_request(&mut self, text: &str, at: Nanos) {
        let body = serde_json::from_str::<Value>(text).ok();
        let field = |k: &str| body.as_ref().and_then(|b| b.get(k));
        self.cancelled = field("cancelReason").is_some_and(|v| !v.is_null());
        let sent = self.pending.as_ref().is_some_and(|p| p.started.is_some());
        let request = field("request").and_then(Value::as_str).unwrap_or("");
        if sent && request.contains(CALL_FAILED_RESULT) {
            self.answer(at, Upstream::Error, "say", "api_req_started");
        } else if request.contains(DENIED_RESULT) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(Pending { mut rec, started }) = self.pending.take() {
            self.unanswered.push((rec.origin.line, started.is_some()));
            if let Some(s) = started {
                rec.ts = s;
            }
            self.calls.push(rec);
        }
    }

    fn finish(&mut self) {
        self.flush();
    }
}

/// Reads the array's messages one at a time into the task.
struct Messages<'a>(&'a mut Task);

impl<'de> Visitor<'de> for Messages<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.0.index += 1;
            let Some(v) = seq.next_element_seed(OneMessage)? else {
                self.0.index -= 1;
                return Ok(());
            };
            let read = match &v {
                Value::Object(m) => self.0.message(m),
                other => Err(LineError::new(
                    "wrong type",
                    format!(
                        "expected a JSON object, found {}",
                        super::time::kind_of(other)
                    ),
                )),
            };
            if let Err(e) = read {
                self.0.bad.push((self.0.index, e));
            }
        }
    }
}

struct OneMessage;

impl<'de> DeserializeSeed<'de> for OneMessage {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}
