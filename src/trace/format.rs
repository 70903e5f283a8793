//! The supported source formats and their detection from the first lines of a file.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::agentgateway::flatten;

/// A trace source format. Detection looks at the first non-empty lines; `--from` overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    /// mcpsim call records, one JSON object per line.
    Jsonl,
    /// mcpsim call records as CSV with a header row.
    Csv,
    /// mcpsim call records as Parquet.
    Parquet,
    /// MCP JSON-RPC messages, one per line, in a `{ts, dir, server, session, msg}` envelope.
    #[value(name = "jsonrpc")]
    JsonRpc,
    /// PolicyLayer decision-log export (JSON lines).
    #[value(name = "policylayer")]
    PolicyLayerLog,
    /// Intercept event log (JSON lines).
    #[value(name = "intercept")]
    InterceptLog,
    /// Claude Desktop MCP logs (`mcp.log`, `mcp-server-<name>.log`).
    #[value(name = "claude")]
    ClaudeLog,
    /// OpenTelemetry spans in OTLP JSON (`{"resourceSpans":[…]}` per line, or whole documents).
    #[value(name = "otel")]
    OtelSpans,
    /// agentgateway access logs (JSON lines, flat or nested `mcp.*` keys).
    #[value(name = "agentgateway")]
    AgentGatewayLog,
    /// ToolHive audit events (JSON lines, `type: mcp_tool_call`).
    #[value(name = "toolhive")]
    ToolHiveAudit,
    /// Claude Code session transcripts (`~/.claude/projects/<project>/<session>.jsonl`).
    #[value(name = "claude-code")]
    ClaudeCode,
    /// opencode JSON event streams (`opencode run --format json`).
    #[value(name = "opencode")]
    OpenCode,
    /// OpenAI Codex CLI session rollouts (`~/.codex/sessions/…/rollout-*.jsonl`).
    #[value(name = "codex")]
    Codex,
    /// Cline and Roo Code task histories (`tasks/<task id>/ui_messages.json`) and Cline 4
    /// sessions (`<id>.messages.json`).
    #[value(name = "cline")]
    Cline,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 14] = [
        Format::Jsonl,
        Format::Csv,
        Format::Parquet,
        Format::JsonRpc,
        Format::PolicyLayerLog,
        Format::InterceptLog,
        Format::ClaudeLog,
        Format::OtelSpans,
        Format::AgentGatewayLog,
        Format::ToolHiveAudit,
        Format::ClaudeCode,
        Format::OpenCode,
        Format::Codex,
        Format::Cline,
    ];

    /// The name used by `--from` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::JsonRpc => "jsonrpc",
            Format::PolicyLayerLog => "policylayer",
            Format::InterceptLog => "intercept",
            Format::ClaudeLog => "claude",
            Format::OtelSpans => "otel",
            Format::AgentGatewayLog => "agentgateway",
            Format::ToolHiveAudit => "toolhive",
            Format::ClaudeCode => "claude-code",
            Format::OpenCode => "opencode",
            Format::Codex => "codex",
            Format::Cline => "cline",
        }
    }

    /// Parse a `--from` name.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// How many non-empty lines detection looks at before giving up.
const DETECT_LINES: usize = 50;

pub(crate) static CLAUDE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4}-\d\d-\d\d[T ][^ ]+) \[([^\]]*)\] \[([^\]]*)\] (.*)$")
        .expect("a literal regex compiles")
});

/// Guess the format from the first bytes of a (decompressed) file.
pub(crate) fn detect(head: &[u8]) -> Result<Format, String> {
    if head.starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    let head = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    if starts_otlp_document(head) {
        return Ok(Format::OtelSpans);
    }
    if starts_cline_messages(head) || starts_cline_session(head) {
        return Ok(Format::Cline);
    }
    let mut seen = 0;
    // What the first line looked like, without its values (which can be argument values).
    let mut first: Option<String> = None;
    // The last line of the head may be cut short; only complete lines are judged.
    let complete = match memchr::memrchr(b'\n', head) {
        Some(i) if i + 1 < head.len() => &head[..=i],
        _ => head,
    };
    for raw in complete.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        seen += 1;
        if seen > DETECT_LINES {
            // A Claude Desktop server log may open with more lines of the server's own output
            // than that (a banner, an environment dump): its lines are looked for further.
            if CLAUDE_LINE.is_match(line) {
                return Ok(Format::ClaudeLog);
            }
            continue;
        }
        if first.is_none() {
            first = Some(describe(line));
        }
        if let Some(f) = detect_line(line, seen == 1) {
            return Ok(f);
        }
    }
    // A cut-off multi-byte character at the end is not binary; an invalid one is.
    let invalid_utf8 = matches!(std::str::from_utf8(complete), Err(e) if e.error_len().is_some());
    if invalid_utf8 || complete.contains(&0) {
        return Err(
            "the input is not text: binary data, or compressed in a way other than gzip or zstd"
                .into(),
        );
    }
    match first {
        None => Err("the input is empty".into()),
        Some(l) => Err(l),
    }
}

/// The first line for an error: its shape and top-level keys, never a value.
fn describe(line: &str) -> String {
    match top_level(line) {
        Some(fields) if fields.is_empty() => "the first line is an empty JSON object".into(),
        Some(fields) => {
            let keys: Vec<&str> = fields.iter().take(12).map(|(k, _)| k.as_str()).collect();
            let more = if fields.len() > keys.len() { ", …" } else { "" };
            format!(
                "the first line is a JSON object with keys {}{more}, which no format has",
                keys.join(", ")
            )
        }
        None => "the first line is neither JSON, nor a CSV header with ts and tool, nor a Claude Desktop log line".into(),
    }
}

fn detect_line(line: &str, is_first: bool) -> Option<Format> {
    if line.starts_with('{') {
        return detect_object(&shallow_object(line)?);
    }
    if CLAUDE_LINE.is_match(line) {
        return Some(Format::ClaudeLog);
    }
    if is_agentgateway_text(line) {
        return Some(Format::AgentGatewayLog);
    }
    if is_first {
        let cols: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"'))
            .collect();
        if cols.contains(&"ts") && cols.contains(&"tool") {
            return Some(Format::Csv);
        }
    }
    None
}

/// The top-level fields of the JSON object `line` opens, each value parsed when it parses
/// (deep or cut-off values stand in as an empty object, array or string, or null): what
/// detection needs, from a line nested deeper than a parser's limit or longer than the
/// detection window (the keys seen before the cut count).
fn shallow_object(line: &str) -> Option<Map<String, Value>> {
    let fields = top_level(line)?;
    let mut obj = Map::new();
    for (key, raw) in fields {
        let value = serde_json::from_str(raw).unwrap_or(match raw.as_bytes().first() {
            Some(b'{') => Value::Object(Map::new()),
            Some(b'[') => Value::Array(Vec::new()),
            Some(b'"') => Value::String(String::new()),
            _ => Value::Null,
        });
        obj.insert(key, value);
    }
    Some(obj)
}

/// The top-level keys of the JSON object `line` opens and their values' text, scanned without
/// recursion; `None` when `line` is not such an object (up to where it ends or is cut).
fn top_level(line: &str) -> Option<Vec<(String, &str)>> {
    let b = line.as_bytes();
    let ws = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    // The index after the string opening at `i`, `None` when it does not end.
    let string_end = |mut i: usize| -> Option<usize> {
        i += 1;
        loop {
            match *b.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    };
    let mut fields = Vec::new();
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(fields);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return (i >= b.len()).then_some(fields);
        }
        let Some(end) = string_end(i) else {
            return Some(fields);
        };
        let key: String = serde_json::from_str(&line[i..end]).ok()?;
        i = ws(end);
        if i >= b.len() {
            return Some(fields);
        }
        if b[i] != b':' {
            return None;
        }
        let start = ws(i + 1);
        // The value: up to the comma or brace that closes it at depth 0.
        let mut j = start;
        let mut depth = 0usize;
        let mut cut = false;
        loop {
            match b.get(j) {
                None => {
                    cut = true;
                    break;
                }
                Some(b'"') => match string_end(j) {
                    Some(e) => j = e,
                    None => {
                        cut = true;
                        break;
                    }
                },
                Some(b'{' | b'[') => {
                    depth += 1;
                    j += 1;
                }
                Some(b'}' | b']') if depth > 0 => {
                    depth -= 1;
                    j += 1;
                }
                Some(b',' | b'}') if depth == 0 => break,
                Some(_) => j += 1,
            }
        }
        fields.push((key, line[start..j].trim_end()));
        if cut {
            return Some(fields);
        }
        match b[j] {
            b',' => i = ws(j + 1),
            _ => return Some(fields),
        }
    }
}

/// Whether the input opens an OTLP document: `{` then `"resourceSpans"` (or `"resourceLogs"`),
/// on one line or pretty-printed over several. Looking at the first bytes only also recognises a first line
/// too long to end inside the detection window (a large export batch).
fn starts_otlp_document(head: &[u8]) -> bool {
    let rest = head.trim_ascii_start();
    let rest = rest.strip_prefix(b"{").map(<[u8]>::trim_ascii_start);
    rest.is_some_and(|r| r.starts_with(b"\"resourceSpans\"") || r.starts_with(b"\"resourceLogs\""))
}

/// Whether the input opens a Cline 4 session (`<id>.messages.json`): an object whose first key
/// is `version`, with `updated_at` and `sessionId` or `messages` among the first bytes.
fn starts_cline_session(head: &[u8]) -> bool {
    let compact: Vec<u8> = (head.iter())
        .copied()
        .take(4096)
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let has = |key: &[u8]| memchr::memmem::find(&compact, key).is_some();
    compact.starts_with(b"{\"version\":")
        && has(b"\"updated_at\":")
        && (has(b"\"sessionId\":") || has(b"\"messages\":["))
}

/// Whether the input opens a Cline/Roo Code message array: `[` then `{"ts":`, with `"type":"say"`
/// or `"type":"ask"` in the first bytes (whitespace between the tokens allowed: a file
/// pretty-printed). The array is usually one long line, so only the first bytes are looked at.
fn starts_cline_messages(head: &[u8]) -> bool {
    let Some(rest) = head.trim_ascii_start().strip_prefix(b"[") else {
        return false;
    };
    // Compact as Cline writes it, or pretty-printed (`jq .`): `{`, `"ts"`, `:`.
    let Some(rest) = rest.trim_ascii_start().strip_prefix(b"{") else {
        return false;
    };
    let Some(rest) = rest.trim_ascii_start().strip_prefix(b"\"ts\"") else {
        return false;
    };
    if !rest.trim_ascii_start().starts_with(b":") {
        return false;
    }
    let compact: Vec<u8> = (head.iter())
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    memchr::memmem::find(&compact, b"\"type\":\"say\"").is_some()
        || memchr::memmem::find(&compact, b"\"type\":\"ask\"").is_some()
}

fn detect_object(obj: &Map<String, Value>) -> Option<Format> {
    let has = |k: &str| obj.contains_key(k);
    // A bare `ResourceSpans` (one per line, as Java's `logging-otlp` exporter writes them).
    // Logs exported with OTLP read with the spans: agentgateway's access log among them.
    if has("resourceSpans") || (has("scopeSpans") && has("resource")) || has("resourceLogs") {
        return Some(Format::OtelSpans);
    }
    // A bare JSON-RPC message's `jsonrpc` is the string "2.0"; a nested agentgateway line has
    // a `jsonrpc` object (`jsonrpc.request.id`).
    let message = |m: &Value| m.get("jsonrpc").is_some_and(Value::is_string);
    // Other recorders' envelopes: GitHub's agentic-workflow MCP gateway (`payload` and
    // `server_id`), MCPSpy (the message as JSON text in `raw`, beside `transport_type`).
    let gateway_rpc = obj.get("payload").is_some_and(Value::is_object)
        && (has("server_id")
            || obj
                .get("_schema")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("rpc-message")));
    let mcpspy = obj.get("raw").is_some_and(Value::is_string) && has("transport_type");
    if gateway_rpc
        || mcpspy
        || obj.get("msg").is_some_and(Value::is_object)
        || obj.get("jsonrpc").is_some_and(Value::is_string)
        // A batch: an array of messages.
        || (obj.get("msg").and_then(Value::as_array))
            .is_some_and(|b| !b.is_empty() && b.iter().all(message))
    {
        return Some(Format::JsonRpc);
    }
    // ToolHive's `type` would otherwise pass for an Intercept event's; Intercept events carry
    // `instance` and never `logged_at`.
    if obj.get("type").is_some_and(Value::is_string)
        && (has("logged_at") || has("loggedAt") || has("audit_id"))
    {
        return Some(Format::ToolHiveAudit);
    }
    if has("instance") && has("type") {
        return Some(Format::InterceptLog);
    }
    if let Some(f) = detect_agent_log(obj) {
        return Some(f);
    }
    if is_agentgateway(obj) {
        return Some(Format::AgentGatewayLog);
    }
    if has("request_id") || has("grant_id") || has("grant_label") || has("upstream_status") {
        return Some(Format::PolicyLayerLog);
    }
    if has("timestamp") && has("method") && has("decision") {
        return Some(Format::PolicyLayerLog);
    }
    if has("ts") && has("tool") {
        return Some(Format::Jsonl);
    }
    None
}

/// Agent logs: every line has a string `type`, and keys no gateway format uses.
fn detect_agent_log(obj: &Map<String, Value>) -> Option<Format> {
    let has = |k: &str| obj.contains_key(k);
    let kind = obj.get("type")?.as_str()?;
    // Claude Code: conversation lines thread by `parentUuid`/`isSidechain`; `summary` lines
    // carry `leafUuid`, snapshot and queue lines their own keys.
    if has("isSidechain")
        || has("parentUuid")
        || (kind == "summary" && has("leafUuid"))
        || (kind == "file-history-snapshot" && has("snapshot"))
        || (kind == "queue-operation" && has("sessionId"))
    {
        return Some(Format::ClaudeCode);
    }
    // opencode: `{type, timestamp, sessionID, part}` (errors carry `error` instead of `part`).
    if has("sessionID") && (has("part") || has("error")) {
        return Some(Format::OpenCode);
    }
    // Codex: `{timestamp, type, payload}` with the rollout's item kinds.
    let codex_kind = matches!(
        kind,
        "session_meta" | "response_item" | "event_msg" | "turn_context" | "compacted"
    );
    if codex_kind && has("payload") && has("timestamp") {
        return Some(Format::Codex);
    }
    None
}

/// An agentgateway line names an MCP field (`mcp.method.name`, `mcp.target`, …) or the tool
/// (`gen_ai.tool.name`), flat or nested; no other format uses those keys. A request line of
/// plain HTTP traffic (`"scope":"request"` with `http.*` fields) is one too: a log may open
/// with many health checks.
fn is_agentgateway(obj: &Map<String, Value>) -> bool {
    let mcp_key = |k: &str| k.starts_with("mcp.") || k == "gen_ai.tool.name";
    let request = obj.get("scope").and_then(Value::as_str) == Some("request")
        && (obj.keys().any(|k| k.starts_with("http.")) || obj.get("http").is_some());
    request
        || obj.keys().any(|k| mcp_key(k))
        || obj.get("mcp").is_some_and(Value::is_object) && flatten(obj).keys().any(|k| mcp_key(k))
}

/// A request line of agentgateway's text log format: `<time>\t<level>\trequest key=value …`.
fn is_agentgateway_text(line: &str) -> bool {
    let mut parts = line.splitn(3, '\t');
    let (Some(time), Some(level), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let levels = ["trace", "debug", "info", "warn", "error"];
    time.len() >= 20
        && time.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && time.as_bytes()[10] == b'T'
        && levels.contains(&level)
        && rest
            .strip_prefix("request")
            .is_some_and(|r| r.starts_with([' ', '\t']) && r.contains('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_first_line() {
        let cases: [(&str, Format); 7] = [
            (
                r#"{"ts":"2026-08-01T10:00:00Z","server":"s","tool":"t"}"#,
                Format::Jsonl,
            ),
            ("ts,server,grant,tool\n", Format::Csv),
            ("PAR1xxxx", Format::Parquet),
            (
                r#"{"ts":1,"dir":"c2s","msg":{"jsonrpc":"2.0","id":1,"method":"x"}}"#,
                Format::JsonRpc,
            ),
            (
                r#"{"timestamp":"x","request_id":"r","method":"tools/call","decision":"allow"}"#,
                Format::PolicyLayerLog,
            ),
            (
                r#"{"ts":"x","type":"startup","instance":"a1"}"#,
                Format::InterceptLog,
            ),
            (
                "2026-08-01T10:00:00.120Z [files] [info] Initializing server...",
                Format::ClaudeLog,
            ),
        ];
        for (head, want) in cases {
            assert_eq!(detect(format!("{head}\n").as_bytes()), Ok(want), "{head}");
        }
    }

    #[test]
    fn bom_is_not_part_of_the_first_line() {
        assert_eq!(detect(b"\xef\xbb\xbfts,server,tool\n"), Ok(Format::Csv));
    }

    #[test]
    fn detects_the_gateway_and_telemetry_formats() {
        let cases: [(&str, Format); 10] = [
            (
                r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[]}]}"#,
                Format::OtelSpans,
            ),
            // Pretty-printed: the first line alone is `{`.
            ("{\n  \"resourceSpans\": [\n    {\n", Format::OtelSpans),
            // Logs exported with OTLP (agentgateway's access log among them).
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"scope":{"name":"agentgateway.access"}}]}]}"#,
                Format::OtelSpans,
            ),
            ("{\n  \"resourceLogs\": [\n    {\n", Format::OtelSpans),
            (
                r#"{"level":"info","time":"2026-08-01T09:00:02Z","http.status":200,"mcp.method.name":"tools/call","mcp.target":"fortios","gen_ai.tool.name":"t"}"#,
                Format::AgentGatewayLog,
            ),
            (
                r#"{"time":"2026-08-01T09:00:02Z","mcp":{"method":{"name":"tools/list"}}}"#,
                Format::AgentGatewayLog,
            ),
            // Older agentgateway releases: `mcp.method` and `mcp.resource.name`.
            (
                r#"{"time":"2026-08-01T09:00:02Z","mcp.method":"tools/call","mcp.resource.name":"t"}"#,
                Format::AgentGatewayLog,
            ),
            (
                r#"{"time":"2026-08-01T09:00:02Z","level":"INFO+2","msg":"audit_event","audit_id":"a1","type":"mcp_tool_call","logged_at":"2026-08-01T09:00:02Z","outcome":"success","component":"fortios"}"#,
                Format::ToolHiveAudit,
            ),
            (
                r#"{"metadata":{"auditId":"a1"},"type":"mcp_tool_call","loggedAt":"2026-08-01T09:00:02Z","outcome":"denied"}"#,
                Format::ToolHiveAudit,
            ),
            // A first line longer than the detection window still opens an OTLP document.
            (
                r#"{ "resourceSpans":[{"resource":{"attributes":[{"key":"service.name""#,
                Format::OtelSpans,
            ),
        ];
        for (head, want) in cases {
            assert_eq!(detect(format!("{head}\n").as_bytes()), Ok(want), "{head}");
        }
        assert_eq!(
            detect(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"cut here"#),
            Ok(Format::OtelSpans)
        );
    }

    /// Lines that carry keys of two formats at once go to the format whose keys are
    /// distinctive; each row is a line one format writes that shares a key with another.
    #[test]
    fn formats_sharing_keys_are_told_apart() {
        let cases: [(&str, Format); 9] = [
            // ToolHive's `msg` is a string, JSON-RPC's envelope `msg` is an object.
            (
                r#"{"time":"2026-08-01T09:00:02Z","msg":"audit_event","type":"mcp_tool_call","logged_at":"2026-08-01T09:00:02Z"}"#,
                Format::ToolHiveAudit,
            ),
            (
                r#"{"ts":"2026-08-01T09:00:02Z","msg":{"jsonrpc":"2.0","id":1,"method":"tools/call"},"type":"x","logged_at":"y"}"#,
                Format::JsonRpc,
            ),
            // Both have `type`; only Intercept has `instance`, only ToolHive `logged_at`.
            (
                r#"{"ts":"2026-08-01T09:00:02Z","type":"tool_call","instance":"a1","tool":"t","result":"allowed"}"#,
                Format::InterceptLog,
            ),
            // A call record that happens to name a tool is not an agentgateway line…
            (
                r#"{"ts":"2026-08-01T09:00:02Z","server":"fortios","tool":"t","type":"x"}"#,
                Format::Jsonl,
            ),
            // …but an agentgateway line with `ts` and `tool` keys beside `mcp.*` is.
            (
                r#"{"ts":"2026-08-01T09:00:02Z","tool":"t","mcp.method.name":"tools/call"}"#,
                Format::AgentGatewayLog,
            ),
            // A nested agentgateway line has a `jsonrpc` object; a bare JSON-RPC message the
            // string "2.0".
            (
                r#"{"time":"2026-08-01T09:00:02Z","jsonrpc":{"request":{"id":2}},"mcp":{"method":{"name":"tools/call"}}}"#,
                Format::AgentGatewayLog,
            ),
            (
                r#"{"ts":"2026-08-01T09:00:02Z","jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"mcp.target"}}"#,
                Format::JsonRpc,
            ),
            // PolicyLayer rows name the method in `method`, never in `mcp.*`.
            (
                r#"{"timestamp":"2026-08-01T09:00:02Z","request_id":"r","method":"tools/call","decision":"allow","tool":"t"}"#,
                Format::PolicyLayerLog,
            ),
            // An OTLP document mentions `mcp.method.name` only inside attribute lists.
            (
                r#"{"resourceSpans":[],"mcp.method.name":"tools/call","jsonrpc":"2.0"}"#,
                Format::OtelSpans,
            ),
        ];
        for (head, want) in cases {
            assert_eq!(detect(format!("{head}\n").as_bytes()), Ok(want), "{head}");
        }
        // A Claude log line is not JSON, and an agentgateway text log line is not a Claude line.
        assert!(
            detect(b"2026-08-01T09:00:02.000Z info request gateway=default mcp.method.name=tools/call\n")
                .is_err()
        );
        // agentgateway's text format separates its first fields with tabs.
        assert_eq!(
            detect(b"2026-08-01T09:00:02.41000Z\tinfo\trequest gateway=default mcp.method.name=tools/call\n"),
            Ok(Format::AgentGatewayLog)
        );
        // A log that opens with requests of plain HTTP traffic (health checks) is still found.
        let checks = r#"{"level":"info","time":"2026-08-01T09:00:00.1Z","scope":"request","http.method":"GET","http.path":"/healthz","http.status":200,"duration":"0ms"}"#;
        assert_eq!(
            detect(format!("{checks}\n").as_bytes()),
            Ok(Format::AgentGatewayLog)
        );
    }

    #[test]
    fn detects_agent_logs_from_any_of_their_first_lines() {
        let cases: [(&str, Format); 7] = [
            (
                r#"{"type":"summary","summary":"Fix the export","leafUuid":"b9d3e0f2"}"#,
                Format::ClaudeCode,
            ),
            (
                r#"{"type":"file-history-snapshot","messageId":"m1","snapshot":{"messageId":"m1","trackedFileBackups":{},"timestamp":"2026-08-01T09:00:00Z"},"isSnapshotUpdate":false}"#,
                Format::ClaudeCode,
            ),
            (
                r#"{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/p","sessionId":"s","type":"user","message":{"role":"user","content":"hi"},"uuid":"u","timestamp":"2026-08-01T09:00:00Z"}"#,
                Format::ClaudeCode,
            ),
            (
                r#"{"type":"queue-operation","operation":"dequeue","timestamp":"2026-08-01T09:00:00Z","sessionId":"s"}"#,
                Format::ClaudeCode,
            ),
            (
                r#"{"type":"step_start","timestamp":1785574801200,"sessionID":"ses_1","part":{"type":"step-start"}}"#,
                Format::OpenCode,
            ),
            (
                r#"{"type":"error","timestamp":1785574801200,"sessionID":"ses_1","error":{"name":"APIError"}}"#,
                Format::OpenCode,
            ),
            (
                r#"{"timestamp":"2026-08-01T09:00:00.000Z","type":"session_meta","payload":{"id":"0199","cwd":"/p"}}"#,
                Format::Codex,
            ),
        ];
        // A Cline 4 session, compact or pretty-printed as its SDK writes it.
        assert_eq!(
            detect(br#"{"version":1,"updated_at":"2026-08-01T09:00:00.000Z","agent":"lead","sessionId":"1785_ab","messages":[{"#),
            Ok(Format::Cline)
        );
        assert_eq!(
            detect(b"{\n  \"version\": 1,\n  \"updated_at\": \"2026-08-01T09:00:00Z\",\n  \"sessionId\": \"s\",\n"),
            Ok(Format::Cline)
        );
        // A Cline message array is one long line, often longer than the detection window.
        assert_eq!(
            detect(br#"[{"ts":1785574800000,"type":"say","say":"text","text":"cut here"#),
            Ok(Format::Cline)
        );
        for (head, want) in cases {
            assert_eq!(detect(format!("{head}\n").as_bytes()), Ok(want), "{head}");
        }
    }

    #[test]
    fn every_format_name_parses_back_and_matches_the_cli_value() {
        use clap::ValueEnum;
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
            let value = f.to_possible_value().expect("no format is hidden");
            assert_eq!(value.get_name(), f.as_str());
        }
        assert_eq!(Format::value_variants().len(), Format::ALL.len());
    }

    /// A first line nested deeper than the JSON parser goes, or longer than the detection
    /// window, is detected from its top-level keys; the error for a line of no format names
    /// its keys, never its values.
    #[test]
    fn deep_and_cut_off_first_lines_are_detected_from_their_keys() {
        let deep = format!(
            r#"{{"ts":"2026-08-01T10:00:00Z","server":"s","tool":"t","args":{}1{}}}"#,
            r#"{"k":"#.repeat(500),
            "}".repeat(500)
        );
        assert_eq!(detect(format!("{deep}\n").as_bytes()), Ok(Format::Jsonl));
        let cut = r#"{"ts":"2026-08-01T10:00:00Z","tool":"t","args":{"secret":"hunter2 and more"#;
        assert_eq!(detect(cut.as_bytes()), Ok(Format::Jsonl));
        assert_eq!(
            detect(b"{\"when\":\"x\",\"args\":{\"secret\":\"hunter2\"}}\n"),
            Err(
                "the first line is a JSON object with keys when, args, which no format has"
                    .to_string()
            )
        );
        let err = detect(b"password=hunter2\n").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn skips_unrecognisable_lines_before_deciding() {
        let head = "Traceback (most recent call last):\n2026-08-01T10:00:00Z [f] [info] Server started and connected successfully\n";
        assert_eq!(detect(head.as_bytes()), Ok(Format::ClaudeLog));
        // Past the 50 lines, only a Claude Desktop log line is looked for.
        let banner = "│ FastMCP 2.0 │\n".repeat(80);
        let late = format!("{banner}2026-08-01T10:00:00Z [f] [info] Message from server: {{}}\n");
        assert_eq!(detect(late.as_bytes()), Ok(Format::ClaudeLog));
        let late_json = format!("{banner}{{\"ts\":\"2026-08-01T10:00:00Z\",\"tool\":\"t\"}}\n");
        assert!(detect(late_json.as_bytes()).is_err());
        assert!(detect(b"hello\nworld\n").is_err());
        assert!(detect(b"").is_err());
    }
}
