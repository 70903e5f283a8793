//! opencode JSON event streams (`opencode run --format json`): one event per line,
//! `{type, timestamp, sessionID, part}`. A `tool_use` event is written once a tool part has
//! ended (`part.state.status` `completed` or `error`), so each holds a whole call: the tool
//! (`part.tool`, an MCP tool as `<server>_<tool>`), its input, and when it started and ended
//! (`part.state.time`, epoch milliseconds). Other events (`step_start`, `text`, …) and
//! built-in tools (bash, read, edit, …) are counted as ignored.

use serde_json::{Map, Value};

use super::agent::{AgentOptions, split_tool};
use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Lines, Source, next_object_record};
use super::time::parse_ts_value;
use super::{Args, CallRecord, Nanos, Origin, TraceError, Upstream};

/// opencode's own tools: never MCP calls.
const BUILT_IN: &[&str] = &[
    "apply_patch",
    "bash",
    "batch",
    "codesearch",
    "edit",
    "glob",
    "grep",
    "invalid",
    "list",
    "lsp",
    "lsp_diagnostics",
    "lsp_hover",
    "multiedit",
    "patch",
    "plan_enter",
    "plan_exit",
    "question",
    "read",
    "skill",
    "task",
    "todoread",
    "todowrite",
    "webfetch",
    "websearch",
    "write",
];

/// How opencode words an error of the MCP client for a JSON-RPC error of the server (a
/// timeout included): the SDK's `McpError` as `toString()` gives it, `McpError: MCP error
/// -32602: …`; without its class name in some releases.
const JSONRPC_ERROR_PREFIXES: [&str; 2] = ["McpError: MCP error ", "MCP error "];

/// How opencode words a call the user did not let run (permission refused, with or without
/// feedback after it): the server never saw it.
const REFUSED: &str = "The user rejected permission to use this specific tool call";

/// What opencode writes into a tool part still running when the session is aborted: its
/// result never came.
const ABORTED: &str = "Tool execution aborted";

pub(crate) struct OpenCodeSource {
    lines: Lines,
    file: u32,
    names: Interner,
    opts: AgentOptions,
}

impl OpenCodeSource {
    pub(crate) fn new(lines: Lines, file: u32, opts: &AgentOptions) -> OpenCodeSource {
        // opencode writes a server's name with every character outside `[A-Za-z0-9_-]` as `_`.
        let opts = opts.normalized();
        OpenCodeSource {
            lines,
            file,
            names: Interner::default(),
            opts,
        }
    }
}

impl Source for OpenCodeSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        let (names, opts) = (&mut self.names, &self.opts);
        next_object_record(&mut self.lines, self.file, cx, |obj, origin, cx| {
            event(names, opts, obj, origin, cx)
        })
    }
}

fn event(
    names: &mut Interner,
    opts: &AgentOptions,
    obj: &Map<String, Value>,
    origin: Origin,
    cx: &mut Ctx<'_>,
) -> Result<Option<CallRecord>, LineError> {
    let f = Fields::new(obj, "");
    let kind = f.req_str("type")?;
    if kind != "tool_use" {
        cx.ignore(format!("{kind} event"));
        return Ok(None);
    }
    let part = f
        .opt_object("part")?
        .ok_or_else(|| LineError::missing("part"))?;
    let p = Fields::new(part, "part");
    let name = p.req_str("tool")?;
    let Some((server, tool)) = split(name, opts) else {
        cx.ignore(if BUILT_IN.contains(&name) {
            format!("built-in tool {name}")
        } else if opts.mcp_servers.is_empty() {
            format!("tool {name} (no server in its name)")
        } else {
            format!("tool {name} (of no --mcp-server)")
        });
        return Ok(None);
    };
    let state = p
        .opt_object("state")?
        .ok_or_else(|| LineError::missing("part.state"))?;
    let s = Fields::new(state, "part.state");
    let status = s.req_str("status")?;
    let upstream = match status {
        "completed" => Some(Upstream::Ok),
        "error" => match s.opt_str("error")? {
            Some(e) if e.starts_with(ABORTED) => None,
            Some(e) if is_refused(e) => {
                cx.ignore("tool result: refused by the user");
                None
            }
            Some(e) if JSONRPC_ERROR_PREFIXES.iter().any(|p| e.starts_with(p)) => {
                Some(Upstream::Error)
            }
            _ => Some(Upstream::ToolError),
        },
        // Written only once ended; a part still pending or running has no result.
        "pending" | "running" => None,
        other => {
            return Err(LineError::at(
                "bad value",
                "part.state.status",
                format!("unknown status {other:?} (expected completed, error, pending or running)"),
            ));
        }
    };
    let (start, end) = match s.opt_object("time")? {
        None => (None, None),
        Some(t) => {
            let t = Fields::new(t, "part.state.time");
            (epoch_ms(&t, "start")?, epoch_ms(&t, "end")?)
        }
    };
    // The call's time is when the tool started; the event's `timestamp` (when it was written,
    // after the tool ended) only when the part has none.
    let ts = match start {
        Some(ts) => ts,
        None => f.req_ts(&["timestamp"])?,
    };
    let latency_ms = match (start, end, upstream) {
        (Some(a), Some(b), Some(_)) => Some((b.saturating_sub(a)).max(0) as f64 / 1e6),
        _ => None,
    };
    let args = match s.get("input") {
        Some(Value::Object(m)) => Args::Values(m.clone()),
        Some(other) => Args::NotObject(other.to_string().into()),
        None => Args::Values(Map::new()),
    };
    let session = match f.opt_str("sessionID")? {
        Some(s) => Some(s),
        None => p.opt_str("sessionID")?,
    }
    .map(|s| names.get(s));
    let id = match p.opt_str("callID")? {
        Some(id) => Some(id.to_string()),
        None => p.opt_str("id")?.map(str::to_string),
    };
    // The events name neither the project directory nor the model.
    let grant = opts.grant.pick(None, None).map(|g| names.get(g));
    Ok(Some(CallRecord {
        ts,
        server: names.get(server),
        grant,
        session,
        tool: names.get(tool),
        args,
        id,
        recorded: None,
        upstream,
        latency_ms,
        origin,
    }))
}

/// Whether a part's error is the user's refusal (`Error: ` before it when written through
/// `toString()`).
fn is_refused(error: &str) -> bool {
    let e = error.strip_prefix("Error: ").unwrap_or(error);
    e.starts_with(REFUSED)
}

/// (server, tool) of an MCP tool's name: with `--mcp-server`, only a named server's tools;
/// otherwise any tool but the built-in ones, split at the first `_`.
fn split<'a>(name: &'a str, opts: &AgentOptions) -> Option<(&'a str, &'a str)> {
    if opts.mcp_servers.is_empty() {
        if BUILT_IN.contains(&name) {
            return None;
        }
        return split_tool(name, "_", &[]);
    }
    let known = &opts.mcp_servers;
    let (server, tool) = split_tool(name, "_", known)?;
    known.iter().any(|k| k == server).then_some((server, tool))
}

fn epoch_ms(t: &Fields<'_>, key: &str) -> Result<Option<Nanos>, LineError> {
    match t.get(key) {
        None => Ok(None),
        Some(v @ Value::Number(_)) => parse_ts_value(v)
            .map(Some)
            .map_err(|r| LineError::at("bad timestamp", &t.name(key), r)),
        Some(other) => Err(LineError::wrong_type(
            &t.name(key),
            "epoch milliseconds",
            other,
        )),
    }
}
