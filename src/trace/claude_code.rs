//! Claude Code session transcripts (`~/.claude/projects/<project>/<session>.jsonl`): one JSON
//! object per line, `type` `user`, `assistant`, `summary`, `system`, … .
//!
//! An MCP call is a `tool_use` block of an `assistant` line named `mcp__<server>__<tool>`; its
//! result is a `tool_result` block with the same id (`tool_use_id`) in a later `user` line,
//! `is_error: true` when it failed. A line may carry several calls (parallel calls in one
//! message) or several results, and newer versions write one message over several lines, one
//! content block each; calls pair with results by id whatever lines they are on (see
//! [`super::pairing`]). Subagent (`isSidechain: true`) lines are read like the others: their
//! calls went to the same servers. Built-in tools (Bash, Read, Edit, …) are not MCP calls: they
//! are counted as ignored, by tool.

use serde_json::{Map, Value};

use super::agent::{AgentOptions, split_tool};
use super::intern::Interner;
use super::pairing::{Exchange, Message};
use super::source::{Ctx, Fields, LineError, parse_object};
use super::{Args, CallRecord, Origin, Upstream};

/// The tool-use id (`toolu_…`), unique across sessions.
type Key = String;

const MCP_PREFIX: &str = "mcp__";

/// The result of a call the user interrupted while it ran.
const INTERRUPTED: &str = "[Request interrupted by user for tool use]";

/// How Claude Code words a tool result for a JSON-RPC error of the server (rather than a
/// result with `isError: true`).
const JSONRPC_ERROR_PREFIX: &str = "MCP error ";

/// The results Claude Code writes itself for a call that never reached the server or whose
/// result never came: refused at the permission prompt, cancelled or interrupted by the user,
/// denied by a permission rule or mode, blocked by a hook, or refused before it was sent (an
/// unknown tool, arguments that fail the tool's schema).
const NOT_ANSWERED: [(&str, &str); 7] = [
    (
        "The user doesn't want to proceed with this tool use.",
        "tool result: refused by the user",
    ),
    (
        "The user doesn't want to take this action right now.",
        "tool result: cancelled by the user",
    ),
    (INTERRUPTED, "tool result: interrupted by the user"),
    (
        "Permission to use ",
        "tool result: denied by a permission rule or mode",
    ),
    (
        "Claude requested permissions to use ",
        "tool result: permission not granted (no prompt in a non-interactive run)",
    ),
    ("PreToolUse:", "tool result: blocked by a PreToolUse hook"),
    (
        "<tool_use_error>",
        "tool result: refused before it was sent (tool_use_error)",
    ),
];

pub(crate) struct ClaudeCode {
    names: Interner,
    opts: AgentOptions,
}

impl ClaudeCode {
    pub(crate) fn new(opts: &AgentOptions) -> ClaudeCode {
        let opts = opts.normalized();
        ClaudeCode {
            names: Interner::default(),
            opts,
        }
    }
}

impl Exchange for ClaudeCode {
    type Key = Key;

    fn messages(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Message<Key>>,
    ) -> Result<(), LineError> {
        let obj = parse_object(text)?;
        let f = Fields::new(&obj, "");
        let kind = f.req_str("type")?;
        match kind {
            "assistant" => self.assistant(&f, origin, index, cx, out),
            "user" => user(&f, cx, out),
            other => {
                cx.ignore(format!("{other} line"));
                Ok(())
            }
        }
    }
}

impl ClaudeCode {
    fn assistant(
        &mut self,
        f: &Fields<'_>,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Message<Key>>,
    ) -> Result<(), LineError> {
        let msg = f
            .opt_object("message")?
            .ok_or_else(|| LineError::missing("message"))?;
        let m = Fields::new(msg, "message");
        let Some(content) = content_blocks(&m)? else {
            cx.ignore("assistant message without a tool call");
            return Ok(());
        };
        let before = out.len();
        for (i, block) in content.iter().enumerate() {
            let Some(block) = block.as_object() else {
                continue;
            };
            if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                continue;
            }
            let path = format!("message.content[{i}]");
            let b = Fields::new(block, &path);
            let id = b.req_str("id")?.to_string();
            let name = b.req_str("name")?;
            let split = name
                .strip_prefix(MCP_PREFIX)
                .and_then(|rest| split_tool(rest, "__", &self.opts.mcp_servers));
            let Some((server, tool)) = split else {
                cx.ignore(if name.starts_with(MCP_PREFIX) {
                    format!("tool {name} (no server in its name)")
                } else {
                    format!("built-in tool {name}")
                });
                // Its result pairs with it and is counted as a reply to another request.
                out.push(Message::Request(id));
                continue;
            };
            // The line's time is when the message that made the call was written.
            let ts = f.req_ts(&["timestamp"])?;
            let args = match b.get("input") {
                _ if index => Args::Unrecorded,
                Some(Value::Object(m)) => Args::Values(m.clone()),
                Some(other) => Args::NotObject(other.to_string().into()),
                None => Args::Values(Map::new()),
            };
            let grant = self
                .opts
                .grant
                .pick(f.opt_str("cwd")?, m.opt_str("model")?)
                .map(|g| self.names.get(g));
            let session = f.opt_str("sessionId")?.map(|s| self.names.get(s));
            out.push(Message::Call {
                key: Some(id.clone()),
                rec: Box::new(CallRecord {
                    ts,
                    server: self.names.get(server),
                    grant,
                    session,
                    tool: self.names.get(tool),
                    args,
                    id: Some(id),
                    recorded: None,
                    upstream: None,
                    latency_ms: None,
                    origin,
                }),
            });
        }
        if out.len() == before {
            cx.ignore("assistant message without a tool call");
        }
        Ok(())
    }
}

/// A `user` line: tool results (each a reply) or what the user typed.
fn user(f: &Fields<'_>, cx: &mut Ctx<'_>, out: &mut Vec<Message<Key>>) -> Result<(), LineError> {
    let msg = f
        .opt_object("message")?
        .ok_or_else(|| LineError::missing("message"))?;
    let m = Fields::new(msg, "message");
    // Newer releases say on the line that Claude Code did not run the call, and why.
    let denial = f.opt_str("toolDenialKind")?;
    let mut results = 0;
    if let Some(content) = content_blocks(&m)? {
        for (i, block) in content.iter().enumerate() {
            let Some(block) = block.as_object() else {
                continue;
            };
            if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                continue;
            }
            results += 1;
            let path = format!("message.content[{i}]");
            let b = Fields::new(block, &path);
            let key = b.req_str("tool_use_id")?.to_string();
            let Some(outcome) = outcome(&b, denial, cx)? else {
                // Claude Code answered it itself (the reason counted): no outcome. A call
                // interrupted while it ran was sent, and waits for the reply that never came;
                // the others were never sent.
                if !first_text(&b).unwrap_or("").starts_with(INTERRUPTED) {
                    out.push(Message::Unsent(key));
                }
                continue;
            };
            let ts = f.req_ts(&["timestamp"])?;
            out.push(Message::Reply { key, ts, outcome });
        }
    }
    if results == 0 {
        cx.ignore("user message without a tool result");
    }
    Ok(())
}

/// The first text of a tool result.
fn first_text<'a>(b: &Fields<'a>) -> Option<&'a str> {
    match b.get("content") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Array(items)) => items
            .iter()
            .find_map(|i| i.get("text").and_then(Value::as_str)),
        _ => None,
    }
}

/// `message.content` when it is a list of blocks; a plain string holds none.
fn content_blocks<'a>(m: &Fields<'a>) -> Result<Option<&'a Vec<Value>>, LineError> {
    match m.get("content") {
        None | Some(Value::String(_)) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(LineError::wrong_type(
            &m.name("content"),
            "a string or a list of content blocks",
            other,
        )),
    }
}

/// `is_error: true` is a failed call: a JSON-RPC error when Claude Code worded the result as
/// one (`MCP error -32602: …`), otherwise a tool error (the server's `isError: true`). `None`
/// for the results Claude Code wrote itself because no answer came ([`NOT_ANSWERED`], or a
/// line whose `toolDenialKind` says the call was not run).
fn outcome(
    b: &Fields<'_>,
    denial: Option<&str>,
    cx: &mut Ctx<'_>,
) -> Result<Option<Upstream>, LineError> {
    let is_error = b.opt_bool("is_error")?.unwrap_or(false);
    if !is_error {
        return Ok(Some(Upstream::Ok));
    }
    let text = first_text(b).unwrap_or("");
    if let Some((_, kind)) = NOT_ANSWERED.iter().find(|(m, _)| text.starts_with(m)) {
        cx.ignore(*kind);
        return Ok(None);
    }
    if let Some(kind) = denial {
        cx.ignore(format!("tool result: not run ({kind})"));
        return Ok(None);
    }
    Ok(Some(if text.starts_with(JSONRPC_ERROR_PREFIX) {
        Upstream::Error
    } else {
        Upstream::ToolError
    }))
}
