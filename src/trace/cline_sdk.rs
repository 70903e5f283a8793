//! Cline 4 sessions (`~/.cline/data/sessions/<id>/<id>.messages.json`), which Cline's SDK
//! writes in place of the task histories of earlier releases: one JSON object,
//! `{"version": 1, "sessionId", "messages": [{id, role, content: [blocks], ts (epoch ms),
//! modelInfo?}, …]}`, rewritten whole as the session goes on.
//!
//! An MCP call is a `tool_use` block of an assistant message named `<server>__<tool>` (Cline's
//! own tools have no `__`), its arguments in `input`; its result is the `tool_result` block
//! with the same `tool_use_id` in a later user message. A result with `is_error` is the
//! `{"error": "<reason>"}` of a call that threw (a JSON-RPC error, a lost connection) — or of
//! one the user denied, which was never sent; otherwise it is the server's `CallToolResult` as
//! JSON text, whose `isError` makes it a tool error. A "line" of this format is a message's
//! 1-based position in `messages`.

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Map, Value};

use super::agent::{AgentOptions, split_tool};
use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Source};
use super::time::parse_ts_value;
use super::{Args, CallRecord, Nanos, Origin, Replies, Skipped, TraceError, Upstream};

/// What Cline writes as the error of a call the user did not let run, and what it is counted
/// as.
const NOT_SENT: [(&str, &str); 3] = [
    (
        "User denied the tool execution",
        "tool result: refused by the user",
    ),
    ("The user denied this", "tool result: refused by the user"),
    (
        "Tool execution was cancelled",
        "tool result: cancelled by the user",
    ),
];

pub(crate) struct ClineSdkSource {
    reader: Option<Box<dyn Read + Send>>,
    file: u32,
    /// The session's working directory, from the manifest beside the messages file.
    cwd: Option<String>,
    opts: AgentOptions,
    calls: std::vec::IntoIter<CallRecord>,
}

impl ClineSdkSource {
    pub(crate) fn new(
        reader: Box<dyn Read + Send>,
        file: u32,
        cwd: Option<String>,
        opts: &AgentOptions,
    ) -> ClineSdkSource {
        let opts = opts.normalized();
        ClineSdkSource {
            reader: Some(reader),
            file,
            cwd,
            opts,
            calls: Vec::new().into_iter(),
        }
    }
}

/// The working directory a session's manifest (`<id>.json` beside `<id>.messages.json`)
/// names, if it can be read.
pub(crate) fn manifest_cwd(messages: &std::path::Path) -> Option<String> {
    let name = messages.file_name()?.to_str()?;
    let id = name.strip_suffix(".messages.json")?;
    let text = std::fs::read_to_string(messages.with_file_name(format!("{id}.json"))).ok()?;
    let manifest: Value = serde_json::from_str(&text).ok()?;
    Some(manifest.get("cwd")?.as_str()?.to_string())
}

impl Source for ClineSdkSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        if let Some(r) = self.reader.take() {
            let doc: Value = match serde_json::from_reader(std::io::BufReader::new(r)) {
                Ok(doc) => doc,
                Err(e) if e.is_io() => {
                    return Err(TraceError::Io {
                        file: cx.file.to_string(),
                        source: e.into(),
                    });
                }
                Err(e) => {
                    cx.skip(1, LineError::json(&e))?;
                    return Ok(None);
                }
            };
            let calls = self.session(&doc, cx)?;
            self.calls = calls.into_iter();
        }
        Ok(self.calls.next())
    }
}

/// A call waiting for its result: the call, its time, its message's position.
struct Waiting {
    rec: CallRecord,
    at: u64,
}

impl ClineSdkSource {
    fn session(&self, doc: &Value, cx: &mut Ctx<'_>) -> Result<Vec<CallRecord>, TraceError> {
        let Some(obj) = doc.as_object() else {
            cx.skip(1, LineError::wrong_type("", "a session object", doc))?;
            return Ok(Vec::new());
        };
        let f = Fields::new(obj, "");
        let messages = match f.get("messages") {
            Some(Value::Array(m)) => m,
            Some(other) => {
                cx.skip(1, LineError::wrong_type("messages", "an array", other))?;
                return Ok(Vec::new());
            }
            None => {
                cx.skip(1, LineError::missing("messages"))?;
                return Ok(Vec::new());
            }
        };
        let mut names = Interner::default();
        let session = match f.opt_str("sessionId") {
            Ok(s) => s.map(|s| names.get(s)),
            Err(e) => {
                cx.skip(1, e)?;
                None
            }
        };
        let mut model: Option<String> = None;
        let mut waiting: HashMap<String, Waiting> = HashMap::new();
        let mut calls = Vec::new();
        let mut paired = 0;
        for (i, msg) in messages.iter().enumerate() {
            let line = i as u64 + 1;
            let origin = Origin {
                file: self.file,
                line,
            };
            let path = format!("messages[{i}]");
            let read = (msg.as_object())
                .ok_or_else(|| LineError::wrong_type(&path, "a message object", msg))
                .and_then(|m| {
                    let m = Fields::new(m, &path);
                    if let Some(id) =
                        (m.get("modelInfo").and_then(|i| i.get("id"))).and_then(Value::as_str)
                    {
                        model = Some(id.to_string());
                    }
                    let ts = || {
                        let v = m
                            .get("ts")
                            .ok_or_else(|| LineError::missing(&m.name("ts")))?;
                        (parse_ts_value(v))
                            .map_err(|r| LineError::at("bad timestamp", &m.name("ts"), r))
                    };
                    let blocks = match m.get("content") {
                        Some(Value::Array(b)) => b.as_slice(),
                        Some(Value::String(_)) | None => &[],
                        Some(other) => {
                            return Err(LineError::wrong_type(
                                &m.name("content"),
                                "an array",
                                other,
                            ));
                        }
                    };
                    match m.req_str("role")? {
                        "assistant" => {
                            let mut found = 0;
                            for (j, b) in blocks.iter().enumerate() {
                                if b.get("type").and_then(Value::as_str) != Some("tool_use") {
                                    continue;
                                }
                                found += 1;
                                let path = format!("{path}.content[{j}]");
                                let b = Fields::new(object(b, &path)?, &path);
                                let grant = (self.opts.grant)
                                    .pick(self.cwd.as_deref(), model.as_deref())
                                    .map(|g| names.get(g));
                                let call = CallOf {
                                    b: &b,
                                    ts: &ts,
                                    origin,
                                    session: &session,
                                    grant,
                                };
                                match self.call(call, &mut names, cx)? {
                                    Some(rec) => {
                                        let id = rec.id.clone().unwrap_or_default();
                                        waiting.insert(id, Waiting { rec, at: line });
                                    }
                                    None => continue,
                                }
                            }
                            if found == 0 {
                                cx.ignore("assistant message without a tool call");
                            }
                        }
                        "user" => {
                            let mut found = 0;
                            for (j, b) in blocks.iter().enumerate() {
                                if b.get("type").and_then(Value::as_str) != Some("tool_result") {
                                    continue;
                                }
                                found += 1;
                                let path = format!("{path}.content[{j}]");
                                let b = Fields::new(object(b, &path)?, &path);
                                let id = b.req_str("tool_use_id")?;
                                let Some(w) = waiting.remove(id) else {
                                    cx.ignore("tool result of a built-in tool");
                                    continue;
                                };
                                let mut rec = w.rec;
                                if let Some(upstream) = outcome(&b, cx)? {
                                    let at: Nanos = ts()?;
                                    rec.upstream = Some(upstream);
                                    rec.latency_ms =
                                        Some(at.saturating_sub(rec.ts).max(0) as f64 / 1e6);
                                    paired += 1;
                                }
                                calls.push(rec);
                            }
                            if found == 0 {
                                cx.ignore("user message without a tool result");
                            }
                        }
                        other => cx.ignore(format!("{other} message")),
                    }
                    Ok(())
                });
            if let Err(e) = read {
                cx.skip(line, e)?;
            }
        }
        let mut unanswered: Vec<Waiting> = waiting.into_values().collect();
        unanswered.sort_by_key(|w| w.at);
        let replies = Replies {
            paired,
            requests_without_reply: unanswered.len() as u64,
            cancelled: 0,
            replies_without_request: 0,
            examples: (unanswered.iter().take(5))
                .map(|w| Skipped {
                    file: cx.file.to_string(),
                    line: w.at,
                    reason: "call without a result in the session (the session ended?)".into(),
                })
                .collect(),
        };
        match &mut cx.stats.replies {
            Some(r) => r.absorb(replies),
            None => cx.stats.replies = Some(replies),
        }
        calls.extend(unanswered.into_iter().map(|w| w.rec));
        calls.sort_by_key(|c| c.origin.line);
        Ok(calls)
    }

    /// The call of a `tool_use` block, if it is an MCP tool's (Cline's own are counted).
    fn call(
        &self,
        c: CallOf<'_, '_>,
        names: &mut Interner,
        cx: &mut Ctx<'_>,
    ) -> Result<Option<CallRecord>, LineError> {
        let name = c.b.req_str("name")?;
        let id = c.b.req_str("id")?;
        let Some((server, tool)) = split_tool(name, "__", &self.opts.mcp_servers) else {
            cx.ignore(format!("built-in tool {name}"));
            return Ok(None);
        };
        let args = match c.b.get("input") {
            None | Some(Value::Null) => Args::Values(Map::new()),
            Some(Value::Object(m)) => Args::Values(m.clone()),
            Some(other) => Args::NotObject(other.to_string().into()),
        };
        Ok(Some(CallRecord {
            ts: (c.ts)()?,
            server: names.get(server),
            grant: c.grant,
            session: c.session.clone(),
            tool: names.get(tool),
            args,
            id: Some(id.to_string()),
            recorded: None,
            upstream: None,
            latency_ms: None,
            origin: c.origin,
        }))
    }
}

/// What a `tool_use` block becomes a call with.
struct CallOf<'a, 'b> {
    b: &'a Fields<'b>,
    ts: &'a dyn Fn() -> Result<Nanos, LineError>,
    origin: Origin,
    session: &'a Option<super::Sym>,
    grant: Option<super::Sym>,
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, LineError> {
    v.as_object()
        .ok_or_else(|| LineError::wrong_type(path, "an object", v))
}

/// How the call a `tool_result` block answers ended; `None` for a call the user did not let
/// run (counted by why).
fn outcome(b: &Fields<'_>, cx: &mut Ctx<'_>) -> Result<Option<Upstream>, LineError> {
    let is_error = b.opt_bool("is_error")?.unwrap_or(false);
    // The content is text (the error object or the result as JSON), or kept as it was.
    let parsed = match b.get("content") {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
        Some(other) => Some(other.clone()),
        None => None,
    };
    if is_error {
        let reason = match (&parsed, b.get("content")) {
            (Some(v), _) => v.get("error").and_then(Value::as_str).unwrap_or(""),
            (None, Some(Value::String(text))) => text.as_str(),
            _ => "",
        };
        if let Some((_, kind)) = NOT_SENT.iter().find(|(m, _)| reason.starts_with(m)) {
            cx.ignore(*kind);
            return Ok(None);
        }
        return Ok(Some(Upstream::Error));
    }
    let tool_error = parsed
        .as_ref()
        .and_then(|v| v.get("isError"))
        .and_then(Value::as_bool)
        == Some(true);
    Ok(Some(if tool_error {
        Upstream::ToolError
    } else {
        Upstream::Ok
    }))
}
