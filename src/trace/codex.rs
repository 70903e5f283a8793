//! OpenAI Codex CLI session rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`): one
//! `{timestamp, type, payload}` object per line. `session_meta` names the session and its
//! working directory, `turn_context` the model; `response_item` lines hold what went to and
//! from the model.
//!
//! An MCP call is a `function_call` item named `mcp__<server>__<tool>` (releases before that
//! prefix wrote `<server>__<tool>`; newer ones write the tool in `name` and `mcp__<server>__`
//! in `namespace`) with its arguments as a JSON string; its result is the `mcp_tool_call_end`
//! event with the same `call_id` (which says how the call ended), or, in releases that do not
//! keep that event, the `function_call_output` item, however many lines later (see
//! [`super::pairing`]). Codex's own tools (`shell`, `apply_patch`, `update_plan`, …) are
//! counted as ignored, by tool.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::agent::{AgentOptions, split_tool};
use super::intern::Interner;
use super::pairing::{Exchange, Message};
use super::source::{Ctx, Fields, LineError, parse_object};
use super::{Args, CallRecord, Origin, Sym, Upstream};

/// The `call_id` (`call_…`).
type Key = String;

const MCP_PREFIX: &str = "mcp__";

/// How Codex words a call its MCP client could not complete (a JSON-RPC error of the server,
/// a timeout): `err: <error>`.
const CLIENT_ERROR_PREFIX: &str = "err: ";

pub(crate) struct Codex {
    names: Interner,
    opts: AgentOptions,
    session: Option<Sym>,
    cwd: Option<String>,
    model: Option<String>,
    /// MCP calls whose end event and output are not both read yet.
    mcp_calls: HashSet<Key>,
    /// Of those, the ones whose end event (the reply) was read, and whose output was.
    ended: HashSet<Key>,
    output_read: HashSet<Key>,
}

impl Codex {
    pub(crate) fn new(opts: &AgentOptions) -> Codex {
        let opts = opts.normalized();
        Codex {
            names: Interner::default(),
            opts,
            session: None,
            cwd: None,
            model: None,
            mcp_calls: HashSet::new(),
            ended: HashSet::new(),
            output_read: HashSet::new(),
        }
    }
}

impl Exchange for Codex {
    type Key = Key;

    fn message(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let obj = parse_object(text)?;
        let f = Fields::new(&obj, "");
        let kind = f.req_str("type")?;
        let payload = f
            .opt_object("payload")?
            .ok_or_else(|| LineError::missing("payload"))?;
        let p = Fields::new(payload, "payload");
        match kind {
            "session_meta" => {
                self.session = p.opt_str("id")?.map(|s| self.names.get(s));
                if let Some(cwd) = p.opt_str("cwd")? {
                    self.cwd = Some(cwd.to_string());
                }
                cx.ignore("session_meta line");
                Ok(Message::Other)
            }
            "turn_context" => {
                if let Some(cwd) = p.opt_str("cwd")? {
                    self.cwd = Some(cwd.to_string());
                }
                if let Some(model) = p.opt_str("model")? {
                    self.model = Some(model.to_string());
                }
                cx.ignore("turn_context line");
                Ok(Message::Other)
            }
            "response_item" => self.item(&f, &p, origin, index, cx),
            "event_msg" => {
                let event = p.opt_str("type")?.unwrap_or("(untyped)");
                if event == "mcp_tool_call_end" {
                    return self.call_end(&f, &p, cx);
                }
                cx.ignore(format!("event {event}"));
                Ok(Message::Other)
            }
            other => {
                cx.ignore(format!("{other} line"));
                Ok(Message::Other)
            }
        }
    }
}

impl Codex {
    fn item(
        &mut self,
        f: &Fields<'_>,
        p: &Fields<'_>,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let kind = p.req_str("type")?;
        match kind {
            "function_call" => {}
            "custom_tool_call" => {
                cx.ignore(format!("built-in tool {}", p.req_str("name")?));
                return Ok(Message::Request(p.req_str("call_id")?.to_string()));
            }
            "function_call_output" | "custom_tool_call_output" => {
                let key = p.req_str("call_id")?.to_string();
                if self.ended.remove(&key) {
                    // The end event replied for it already.
                    self.mcp_calls.remove(&key);
                    cx.ignore("function_call_output (its mcp_tool_call_end read first)");
                    return Ok(Message::Other);
                }
                if self.mcp_calls.contains(&key) {
                    self.output_read.insert(key.clone());
                }
                return Ok(Message::Reply {
                    key,
                    ts: f.req_ts(&["timestamp"])?,
                    outcome: outcome(p)?,
                });
            }
            other => {
                cx.ignore(format!("{other} item"));
                return Ok(Message::Other);
            }
        }
        let name = p.req_str("name")?;
        let call_id = p.req_str("call_id")?.to_string();
        let full = match p.opt_str("namespace")? {
            Some(ns) => joined(ns, name),
            None => name.to_string(),
        };
        let rest = full.strip_prefix(MCP_PREFIX).unwrap_or(&full);
        let Some((server, tool)) = split_tool(rest, "__", &self.opts.mcp_servers) else {
            cx.ignore(format!("built-in tool {full}"));
            return Ok(Message::Request(call_id));
        };
        self.mcp_calls.insert(call_id.clone());
        let ts = f.req_ts(&["timestamp"])?;
        let args = if index {
            Args::Unrecorded
        } else {
            arguments(p)?
        };
        let grant = self
            .opts
            .grant
            .pick(self.cwd.as_deref(), self.model.as_deref())
            .map(|g| self.names.get(g));
        Ok(Message::Call {
            key: Some(call_id.clone()),
            rec: Box::new(CallRecord {
                ts,
                server: self.names.get(server),
                grant,
                session: self.session.clone(),
                tool: self.names.get(tool),
                args,
                id: Some(call_id),
                recorded: None,
                upstream: None,
                latency_ms: None,
                origin,
            }),
        })
    }
}

impl Codex {
    /// An `mcp_tool_call_end` event: the reply of its call, unless the call's output was read
    /// first (releases that write the output before the event).
    fn call_end(
        &mut self,
        f: &Fields<'_>,
        p: &Fields<'_>,
        cx: &mut Ctx<'_>,
    ) -> Result<Message<Key>, LineError> {
        let key = p.req_str("call_id")?.to_string();
        if self.output_read.remove(&key) {
            self.mcp_calls.remove(&key);
            cx.ignore("event mcp_tool_call_end (its output read first)");
            return Ok(Message::Other);
        }
        self.ended.insert(key.clone());
        Ok(Message::Reply {
            key,
            ts: f.req_ts(&["timestamp"])?,
            outcome: end_outcome(p)?,
        })
    }
}

/// A function call's full name from a newer release's `namespace` and `name`:
/// `mcp__github__` + `get_issue`; also `mcp__github` + `get_issue`, and an app's
/// `mcp__codex_apps__gmail` + `_create_event`.
fn joined(namespace: &str, name: &str) -> String {
    if namespace.ends_with("__") || name.starts_with('_') {
        format!("{namespace}{name}")
    } else {
        format!("{namespace}__{name}")
    }
}

/// How an `mcp_tool_call_end` event says the call ended: `result` `{"Ok": <CallToolResult>}`
/// (a tool error when its `isError` is true) or `{"Err": "<why>"}` (the MCP client could not
/// complete the call: a JSON-RPC error, a timeout).
fn end_outcome(p: &Fields<'_>) -> Result<Upstream, LineError> {
    let Some(result) = p.opt_object("result")? else {
        return Ok(Upstream::Ok);
    };
    if result.contains_key("Err") {
        return Ok(Upstream::Error);
    }
    let is_error = (result.get("Ok").and_then(Value::as_object))
        .and_then(|ok| ok.get("isError").or(ok.get("is_error")))
        .and_then(Value::as_bool);
    Ok(match is_error {
        Some(true) => Upstream::ToolError,
        _ => Upstream::Ok,
    })
}

/// The arguments: a string holding JSON, as the model wrote them.
fn arguments(p: &Fields<'_>) -> Result<Args, LineError> {
    let raw = match p.get("arguments") {
        None => return Ok(Args::Values(Map::new())),
        Some(Value::String(s)) => s,
        Some(Value::Object(m)) => return Ok(Args::Values(m.clone())),
        Some(other) => {
            return Err(LineError::wrong_type(
                &p.name("arguments"),
                "a string holding JSON",
                other,
            ));
        }
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(Args::Values(m)),
        Ok(other) => Ok(Args::NotObject(other.to_string().into())),
        Err(e) => Err(LineError::at(
            "invalid JSON",
            &p.name("arguments"),
            format!("invalid JSON: {e}"),
        )),
    }
}

/// `err: …` is a call the MCP client could not complete (a JSON-RPC error, a timeout); an
/// output object with `success: false` (older releases) is a tool error; anything else ends
/// ok — newer releases write a failed tool's output as a plain string, without the flag.
fn outcome(p: &Fields<'_>) -> Result<Upstream, LineError> {
    Ok(match p.get("output") {
        Some(Value::String(s)) if s.starts_with(CLIENT_ERROR_PREFIX) => Upstream::Error,
        Some(Value::Object(o)) => {
            let o = Fields::new(o, "payload.output");
            let content = o.opt_str("content")?.unwrap_or("");
            match o.get("success") {
                _ if content.starts_with(CLIENT_ERROR_PREFIX) => Upstream::Error,
                Some(Value::Bool(false)) => Upstream::ToolError,
                _ => Upstream::Ok,
            }
        }
        _ => Upstream::Ok,
    })
}
