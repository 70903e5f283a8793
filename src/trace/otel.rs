//! OpenTelemetry spans in OTLP JSON, as the OTLP file exporter and the collector's `file`
//! exporter write them: one `{"resourceSpans":[…]}` document per line, or whole documents
//! spread over many lines. Spans whose `mcp.method.name` is `tools/call` are calls, following
//! the OpenTelemetry MCP semantic conventions.
//!
//! A document starts at a line whose first character is `{` (a pretty-printer indents what is
//! inside), so a document that does not parse is skipped up to the next one and the read goes
//! on. Documents are read one at a time.
//!
//! A document holds many spans, so calls carry the line the document starts on and a bad span
//! is located by its JSON path (`resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano`);
//! one bad span does not spoil the others of its document.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::agentgateway;
use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER};
use super::span_links::{self, Links, SpanCall, SpanKey, SpanRole};
use super::time::kind_of;
use super::{Args, CallRecord, Nanos, Origin, TraceError, Upstream};

/// OTLP `SPAN_KIND_INTERNAL`, `SPAN_KIND_SERVER` and `SPAN_KIND_CLIENT`.
const KIND_INTERNAL: i64 = 1;
const KIND_SERVER: i64 = 2;
const KIND_CLIENT: i64 = 3;
/// Where a span's caller is read from, the best first: the end user, a gateway's authenticated
/// subject, the agent, the client software (which many agents share). Each is looked up on the
/// span, then its resource.
const GRANT_KEYS: [&str; 4] = [
    "enduser.id",
    "jwt.sub",
    "gen_ai.agent.name",
    "mcp.client.name",
];

/// The instrumentation scope of agentgateway's access log exported with OTLP.
const AGENTGATEWAY_ACCESS: &str = "agentgateway.access";

/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: i64 = 2;

pub(crate) struct OtelSource {
    lines: Lines,
    file: u32,
    names: Interner,
    /// The document being gathered, read when the next one starts or the file ends.
    doc: Option<Chunk>,
    /// Calls ready to hand out, in the order they were settled.
    pending: VecDeque<CallRecord>,
    links: Links,
    done: bool,
    /// What the span just read kept of itself besides its call (see [`ARGS_NOT_JSON`]).
    noted: Option<&'static str>,
}

/// A span whose arguments attribute is not whole JSON text: SDKs cut attribute values at a
/// length limit (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`), leaving the call without its arguments.
const ARGS_NOT_JSON: &str =
    "span arguments not whole JSON (cut at a length limit?): call kept without them";

/// A span whose arguments attribute is `key=value` text (ToolHive writes its arguments so,
/// cut and with secrets redacted): the call is kept without them.
const ARGS_KEY_VALUE: &str = "span arguments as key=value text, not JSON: call kept without them";

/// The lines from one document start to the next, blank lines put back so that the
/// parser's line numbers count file lines from `first`.
struct Chunk {
    first: u64,
    last: u64,
    text: String,
}

impl Chunk {
    fn new(line: u64, text: &str) -> Chunk {
        Chunk {
            first: line,
            last: line,
            text: text.to_string(),
        }
    }

    fn push(&mut self, line: u64, text: &str) {
        for _ in self.last..line {
            self.text.push('\n');
        }
        self.last = line;
        self.text.push_str(text);
    }
}

/// What one span turned into.
enum Item {
    Call(Box<SpanCall>),
    Ignored(String),
}

/// A span with what it needs from around it.
struct SpanAt<'a> {
    span: &'a Map<String, Value>,
    path: String,
    /// The span's decoded attributes; an error spoils this span only.
    attrs: Result<Map<String, Value>, LineError>,
    /// Index into [`Spans::resources`].
    resource: usize,
    /// The instrumentation scope's name.
    scope: Option<&'a str>,
}

impl OtelSource {
    pub(crate) fn new(lines: Lines, file: u32) -> OtelSource {
        OtelSource {
            lines,
            file,
            names: Interner::default(),
            doc: None,
            pending: VecDeque::new(),
            links: Links::default(),
            done: false,
            noted: None,
        }
    }
}

impl Source for OtelSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            if let Some(rec) = self.pending.pop_front() {
                return Ok(Some(rec));
            }
            if self.done {
                return Ok(None);
            }
            match self.lines.next_line()? {
                None => {
                    self.done = true;
                    if let Some(doc) = self.doc.take() {
                        self.documents(&doc, cx)?;
                    }
                    self.links.release(true, &mut self.pending, cx);
                }
                Some((line, Err(e))) => cx.skip(line, e)?,
                Some((line, Ok(text))) if text.starts_with('{') => {
                    let next = Chunk::new(line, text);
                    if let Some(doc) = self.doc.replace(next) {
                        self.documents(&doc, cx)?;
                    }
                }
                Some((line, Ok(text))) => match &mut self.doc {
                    Some(doc) => doc.push(line, text),
                    None => self.doc = Some(Chunk::new(line, text)),
                },
            }
        }
    }
}

impl OtelSource {
    /// Read the documents of one chunk (one, or several written without a line break
    /// between them). One that does not parse is counted once, at the line it starts on,
    /// and the rest of the chunk is skipped with it.
    fn documents(&mut self, chunk: &Chunk, cx: &mut Ctx<'_>) -> Result<(), TraceError> {
        let text = &chunk.text;
        let mut docs = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let (mut offset, mut line) = (0, chunk.first);
        loop {
            let rest = &text[offset..];
            let start = offset + (rest.len() - rest.trim_start().len());
            // Counted piece by piece: from the start each time would be quadratic.
            line += text[offset..start].matches('\n').count() as u64;
            match docs.next() {
                None => return Ok(()),
                Some(Ok(Value::Object(doc))) => self.document(&doc, line, cx)?,
                Some(Ok(other)) => cx.skip(
                    line,
                    LineError::new(
                        "wrong type",
                        format!("expected a JSON object, found {}", kind_of(&other)),
                    ),
                )?,
                Some(Err(e)) => return cx.skip(line, unparsed(&e, line, chunk)),
            }
            let end = docs.byte_offset();
            line += text[start..end].matches('\n').count() as u64;
            offset = end;
        }
    }

    /// Queue the calls of one document, counting the spans that are not calls or are bad.
    fn document(
        &mut self,
        doc: &Map<String, Value>,
        line: u64,
        cx: &mut Ctx<'_>,
    ) -> Result<(), TraceError> {
        let origin = Origin {
            file: self.file,
            line,
        };
        if doc.contains_key("resourceLogs") {
            return self.access_logs(doc, origin, cx);
        }
        let mut items = Vec::new();
        let Spans { resources, spans } = match spans_of(doc, &mut items) {
            Ok(s) => s,
            Err(e) => return cx.skip(line, e),
        };
        for s in &spans {
            let end = span_end(s.span);
            if let Some(end) = end {
                self.links.saw(end);
            }
            let item = self.span(s, &resources[s.resource], origin);
            if let Some(kind) = self.noted.take() {
                cx.ignore(kind);
            }
            if let Some(tool) = fastmcp_delegate(s) {
                let role = SpanRole {
                    key: span_key(s.span, "spanId"),
                    parent: span_key(s.span, "parentSpanId"),
                    server: false,
                    end: end.or(self.links.latest()).unwrap_or(0),
                };
                self.links.bridge(role, self.names.get(tool), cx);
            }
            let call = match item {
                Ok(Item::Call(call)) => *call,
                Ok(Item::Ignored(kind)) => {
                    items.push(Ok(kind));
                    continue;
                }
                Err(e) => {
                    items.push(Err(e));
                    continue;
                }
            };
            let end = end.or(self.links.latest()).unwrap_or(call.rec.ts);
            if !is_tools_call(s) {
                self.links.alone(call, end);
                continue;
            }
            // The conventions let an agent put the client side's attributes on its own tool
            // execution span (`execute_tool <tool>`, INTERNAL): any tools/call span that is
            // not a server span plays the client's part.
            let role = SpanRole {
                key: span_key(s.span, "spanId"),
                parent: span_key(s.span, "parentSpanId"),
                server: span_kind(s.span) == Some(KIND_SERVER),
                end,
            };
            self.links.add(role, call, cx);
        }
        // What was not a call, after the document's spans (a bad one ends a strict read).
        for item in items {
            match item {
                Ok(kind) => cx.ignore(kind),
                Err(e) => cx.skip(line, e)?,
            }
        }
        self.links.release(false, &mut self.pending, cx);
        Ok(())
    }

    /// The calls of a document of OTLP logs: agentgateway's access log exported with OTLP
    /// (scope `agentgateway.access`), each record's attributes its log line's fields, read as
    /// its log lines are; the records of other scopes are counted.
    fn access_logs(
        &mut self,
        doc: &Map<String, Value>,
        origin: Origin,
        cx: &mut Ctx<'_>,
    ) -> Result<(), TraceError> {
        let line = origin.line;
        let resource_logs = match slice(doc, "", "resourceLogs") {
            Ok(r) => r,
            Err(e) => return cx.skip(line, e),
        };
        for (i, rl) in resource_logs.iter().enumerate() {
            let path = format!("resourceLogs[{i}]");
            let scope_logs = match object(rl, &path).and_then(|rl| slice(rl, &path, "scopeLogs")) {
                Ok(s) => s,
                Err(e) => {
                    cx.skip(line, e)?;
                    continue;
                }
            };
            for (j, sl) in scope_logs.iter().enumerate() {
                let path = format!("{path}.scopeLogs[{j}]");
                let records = match object(sl, &path).and_then(|o| slice(o, &path, "logRecords")) {
                    Ok(r) => r,
                    Err(e) => {
                        cx.skip(line, e)?;
                        continue;
                    }
                };
                let scope = (sl.get("scope").and_then(|s| s.get("name"))).and_then(Value::as_str);
                for (k, record) in records.iter().enumerate() {
                    if scope != Some(AGENTGATEWAY_ACCESS) {
                        cx.ignore("log record (not agentgateway's access log)");
                        continue;
                    }
                    let path = format!("{path}.logRecords[{k}]");
                    match self.access_record(record, &path, origin, cx) {
                        Ok(Some(rec)) => {
                            let end = rec.ts;
                            self.links.alone(
                                SpanCall {
                                    rec,
                                    grant_rank: u8::MAX,
                                },
                                end,
                            );
                        }
                        Ok(None) => {}
                        Err(e) => cx.skip(line, e)?,
                    }
                }
            }
        }
        self.links.release(false, &mut self.pending, cx);
        Ok(())
    }

    /// The call of one record of agentgateway's access log exported with OTLP. The record's
    /// time (else the time it was observed, which the exporter sets when the line is
    /// written) stands for its log line's `time`, as nanoseconds since the epoch.
    fn access_record(
        &mut self,
        record: &Value,
        path: &str,
        origin: Origin,
        cx: &mut Ctx<'_>,
    ) -> Result<Option<CallRecord>, LineError> {
        let record = object(record, path)?;
        let f = Fields::new(record, path);
        let time = match unix_nanos(&f, "timeUnixNano")? {
            Some(t) => Some(t),
            None => unix_nanos(&f, "observedTimeUnixNano")?,
        };
        let mut attrs = attributes(record, path)?;
        if let Some(t) = time {
            attrs.insert("timestamp".into(), Value::from(t));
        }
        agentgateway::access_line(&attrs, origin, cx, &mut self.names)
    }

    fn span(
        &mut self,
        s: &SpanAt<'_>,
        resource: &Map<String, Value>,
        origin: Origin,
    ) -> Result<Item, LineError> {
        let f = Fields::new(s.span, &s.path);
        let attrs = s.attrs.as_ref().map_err(Clone::clone)?;
        let attrs_path = format!("{}.attributes", s.path);
        let a = Fields::new(attrs, &attrs_path);
        let Some(method) = a.opt_str("mcp.method.name")? else {
            if is_openllmetry_tool(s) {
                return self.openllmetry_tool(&f, &a, origin);
            }
            return Ok(Item::Ignored("span without mcp.method.name".into()));
        };
        if method != "tools/call" {
            return Ok(Item::Ignored(format!("span {method}")));
        }
        let ts = unix_nanos(&f, "startTimeUnixNano")?
            .ok_or_else(|| LineError::missing(&f.name("startTimeUnixNano")))?;
        let end = unix_nanos(&f, "endTimeUnixNano")?;
        a.opt_str("gen_ai.tool.name")?;
        f.opt_str("name")?;
        let tool = span_tool(s).ok_or_else(|| LineError::missing(&a.name("gen_ai.tool.name")))?;
        let r = Fields::new(resource, "resource.attributes");
        let client = matches!(span_kind(s.span), Some(KIND_CLIENT | KIND_INTERNAL));
        let server = server_name(&a, &r, client)?;
        let (mut grant, mut grant_rank) = (None, u8::MAX);
        for (rank, key) in GRANT_KEYS.into_iter().enumerate() {
            grant = match a.opt_str(key)? {
                Some(g) => Some(g),
                None => r.opt_str(key)?,
            };
            if grant.is_some() {
                grant_rank = rank as u8;
                break;
            }
        }
        // As in JSON-RPC recordings, arguments that are not an object are kept (the gateway
        // forwards such calls); text that is not whole JSON, most often cut at a length limit,
        // says nothing reliable of them: the call is kept with its arguments unrecorded.
        let args = match a.get("gen_ai.tool.call.arguments") {
            None => Args::Unrecorded,
            Some(Value::Object(m)) => Args::Values(m.clone()),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Args::Values(m),
                Ok(_) => Args::NotObject(text.as_str().into()),
                Err(_) => {
                    self.noted = Some(if looks_key_value(text) {
                        ARGS_KEY_VALUE
                    } else {
                        ARGS_NOT_JSON
                    });
                    Args::Unrecorded
                }
            },
            Some(v) => Args::NotObject(v.to_string().into()),
        };
        let (recorded, upstream) = match agentgateway::http_status(&a)? {
            // agentgateway's span of a call it received: its status says what it did, as in
            // its access log, and its error is the span status's message.
            Some(status) => {
                let error = match status_code(&f)? {
                    Some(STATUS_ERROR) => status_message(&f),
                    _ => None,
                };
                agentgateway::outcome(Some(status), error, a.get("mcp.error.code").is_some())
            }
            None => (None, Some(upstream_of(&f, &a)?)),
        };
        let rec = CallRecord {
            ts,
            server: self.names.get(server),
            grant: grant.map(|g| self.names.get(g)),
            session: a.opt_str("mcp.session.id")?.map(|s| self.names.get(s)),
            tool: self.names.get(tool),
            args,
            id: a.opt_id("jsonrpc.request.id")?,
            recorded,
            upstream,
            latency_ms: end.filter(|&e| e >= ts).map(|e| (e - ts) as f64 / 1e6),
            origin,
        };
        Ok(Item::Call(Box::new(SpanCall { rec, grant_rank })))
    }
}

/// How the call of span `f` (attributes `a`) ended: `error.type` `tool_error` is a tool
/// error, any other `error.type` an error; so is a JSON-RPC error code, which the conventions
/// record as `rpc.response.status_code` and a gateway's span (agentgateway) as
/// `mcp.error.code`; else an error status is an error.
///
/// FastMCP's server spans (`fastmcp.*` attributes) set an error status, without `error.type`,
/// when a tool raised; the server answers that with a result whose `isError` is true, so it
/// is a tool error.
fn upstream_of(f: &Fields<'_>, a: &Fields<'_>) -> Result<Upstream, LineError> {
    let fastmcp = a.obj.keys().any(|k| k.starts_with("fastmcp."));
    let code = |key: &str| {
        a.get(key).is_some_and(|v| match v {
            Value::Number(n) => n.as_i64() != Some(0),
            Value::String(s) => !matches!(s.trim(), "" | "0"),
            _ => false,
        })
    };
    let rpc_error = code("rpc.response.status_code") || code("mcp.error.code");
    Ok(match a.opt_str("error.type")? {
        Some("tool_error") => Upstream::ToolError,
        Some(_) => Upstream::Error,
        None if rpc_error => Upstream::Error,
        None if status_code(f)? == Some(STATUS_ERROR) && fastmcp => Upstream::ToolError,
        None if status_code(f)? == Some(STATUS_ERROR) => Upstream::Error,
        None => Upstream::Ok,
    })
}

/// A tool call span of OpenLLMetry's MCP instrumentation (scope
/// `opentelemetry.instrumentation.mcp…`, `traceloop.span.kind` `tool`), which predates the
/// MCP conventions: no `mcp.method.name`, the tool in `traceloop.entity.name`, the call's
/// `{"tool_name":…,"arguments":{…}}` in `traceloop.entity.input`.
fn is_openllmetry_tool(s: &SpanAt<'_>) -> bool {
    s.scope
        .is_some_and(|n| n.starts_with("opentelemetry.instrumentation.mcp"))
        && (s.attrs.as_ref())
            .is_ok_and(|a| a.get("traceloop.span.kind").and_then(Value::as_str) == Some("tool"))
}

impl OtelSource {
    /// The call of an OpenLLMetry tool span ([`is_openllmetry_tool`]). It is written by the
    /// agent's side and names no server, so the server is `unknown` unless the span names it.
    fn openllmetry_tool(
        &mut self,
        f: &Fields<'_>,
        a: &Fields<'_>,
        origin: Origin,
    ) -> Result<Item, LineError> {
        let ts = unix_nanos(f, "startTimeUnixNano")?
            .ok_or_else(|| LineError::missing(&f.name("startTimeUnixNano")))?;
        let end = unix_nanos(f, "endTimeUnixNano")?;
        let tool = a
            .opt_str("traceloop.entity.name")?
            .ok_or_else(|| LineError::missing(&a.name("traceloop.entity.name")))?;
        let server = match a.opt_str("mcp.server.name")? {
            Some(name) => name,
            None => UNKNOWN_SERVER,
        };
        let input = a.opt_str("traceloop.entity.input")?;
        let args = match input.map(serde_json::from_str::<Value>) {
            None => Args::Unrecorded,
            Some(Ok(Value::Object(mut m))) => match m.remove("arguments") {
                Some(Value::Object(args)) => Args::Values(args),
                None | Some(Value::Null) => Args::Values(Map::new()),
                Some(other) => Args::NotObject(other.to_string().into()),
            },
            Some(_) => {
                self.noted = Some(ARGS_NOT_JSON);
                Args::Unrecorded
            }
        };
        let upstream = upstream_of(f, a)?;
        let rec = CallRecord {
            ts,
            server: self.names.get(server),
            grant: None,
            session: None,
            tool: self.names.get(tool),
            args,
            id: None,
            recorded: None,
            upstream: Some(upstream),
            latency_ms: end.filter(|&e| e >= ts).map(|e| (e - ts) as f64 / 1e6),
            origin,
        };
        let grant_rank = u8::MAX;
        Ok(Item::Call(Box::new(SpanCall { rec, grant_rank })))
    }
}

/// The MCP server a span's call went to: the server the span names (`mcp.server.name`, as
/// ToolHive writes it; a gateway's `mcp.target`), else the resource's `service.name` (the
/// conventions' source), else the server name FastMCP writes (`fastmcp.server.name`,
/// `rpc.service`) when the service was left unnamed (`unknown_service…`, the SDKs' default).
///
/// The resource of a `client` span (CLIENT, or the agent's own INTERNAL tool span) is the
/// agent's, and its service names the agent, not the server: such a span names its server
/// by the keys above or `server.address`, else the server is unknown.
fn server_name<'a>(a: &Fields<'a>, r: &Fields<'a>, client: bool) -> Result<&'a str, LineError> {
    for key in ["mcp.server.name", "mcp.target"] {
        if let Some(name) = a.opt_str(key)? {
            return Ok(name);
        }
    }
    if client {
        for key in ["fastmcp.server.name", "rpc.service", "server.address"] {
            if let Some(name) = a.opt_str(key)? {
                return Ok(name);
            }
        }
        return Ok(UNKNOWN_SERVER);
    }
    let service = r.opt_str("service.name")?;
    if let Some(name) = service.filter(|s| !s.starts_with("unknown_service")) {
        return Ok(name);
    }
    for key in ["fastmcp.server.name", "rpc.service"] {
        if let Some(name) = a.opt_str(key)? {
            return Ok(name);
        }
    }
    Ok(service.unwrap_or(UNKNOWN_SERVER))
}

/// Whether argument text reads as `key=value` pairs rather than JSON cut short.
fn looks_key_value(text: &str) -> bool {
    let t = text.trim_start();
    !t.starts_with(['{', '[', '"'])
        && t.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

/// The spans of a document with their decoded attributes, and the decoded attributes of each
/// resource (which [`SpanAt::resource`] indexes). A malformed resource or scope becomes a bad
/// item in `bad` (its spans are skipped and counted once with it).
struct Spans<'a> {
    resources: Vec<Map<String, Value>>,
    spans: Vec<SpanAt<'a>>,
}

fn spans_of<'a>(
    doc: &'a Map<String, Value>,
    bad: &mut Vec<Result<String, LineError>>,
) -> Result<Spans<'a>, LineError> {
    let mut out = Spans {
        resources: Vec::new(),
        spans: Vec::new(),
    };
    if !doc.contains_key("resourceSpans") {
        // One `ResourceSpans` written bare (Java's `logging-otlp` exporter writes one a line).
        if doc.contains_key("scopeSpans") || doc.contains_key("instrumentationLibrarySpans") {
            if let Err(e) = resource_spans(doc, "", &mut out) {
                bad.push(Err(e));
            }
        } else {
            // Metrics in the same collector file, or not OTLP at all (logs are read apart).
            bad.push(Ok(match doc.contains_key("resourceMetrics") {
                true => "document of resourceMetrics, not spans".into(),
                false => "document without resourceSpans".into(),
            }));
        }
        return Ok(out);
    }
    for (i, rs) in slice(doc, "", "resourceSpans")?.iter().enumerate() {
        let path = format!("resourceSpans[{i}]");
        if let Err(e) = object(rs, &path).and_then(|rs| resource_spans(rs, &path, &mut out)) {
            bad.push(Err(e));
        }
    }
    Ok(out)
}

fn resource_spans<'a>(
    rs: &'a Map<String, Value>,
    path: &str,
    out: &mut Spans<'a>,
) -> Result<(), LineError> {
    let f = Fields::new(rs, path);
    let resource = match f.opt_object("resource")? {
        None => Map::new(),
        Some(r) => attributes(r, &f.name("resource"))?,
    };
    // `instrumentationLibrarySpans` is the name before OTLP 0.15.
    let key = if f.get("scopeSpans").is_some() {
        "scopeSpans"
    } else {
        "instrumentationLibrarySpans"
    };
    let mut spans = Vec::new();
    for (j, ss) in slice(rs, path, key)?.iter().enumerate() {
        let ss_path = format!("{}[{j}]", join(path, key));
        let ss = object(ss, &ss_path)?;
        let scope = (ss.get("scope").or(ss.get("instrumentationLibrary")))
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str);
        for (k, span) in slice(ss, &ss_path, "spans")?.iter().enumerate() {
            let span_path = format!("{ss_path}.spans[{k}]");
            let span = object(span, &span_path)?;
            let attrs = attributes(span, &span_path);
            spans.push(SpanAt {
                span,
                path: span_path,
                attrs,
                resource: out.resources.len(),
                scope,
            });
        }
    }
    out.resources.push(resource);
    out.spans.extend(spans);
    Ok(())
}

/// Why a document does not parse, naming the file line where the parser stopped and the
/// lines skipped with it (from `start`, where the document starts, to the next document).
fn unparsed(e: &serde_json::Error, start: u64, chunk: &Chunk) -> LineError {
    let mut err = LineError::json(e);
    if e.line() > 0 {
        // The parser counts lines from the chunk's first; the message names file lines.
        let relative = format!(" at line {} column {}", e.line(), e.column());
        if let Some(head) = err.reason.strip_suffix(&relative) {
            let at = chunk.first + e.line() as u64 - 1;
            err.reason = format!("{head} at line {at} column {}", e.column());
        }
    }
    if chunk.last > start {
        err.reason
            .push_str(&format!("; lines {start} to {} skipped", chunk.last));
    }
    err
}

/// The span's `traceId` with its id field `key` (`spanId` or `parentSpanId`), if set.
fn span_key(span: &Map<String, Value>, key: &str) -> Option<SpanKey> {
    let id = span
        .get(key)
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())?;
    let trace = span.get("traceId").and_then(Value::as_str).unwrap_or("");
    Some(span_links::span_key(trace, id))
}

/// When the span ended (else started), if either time reads; a bad time is reported
/// with the span's call, not here.
fn span_end(span: &Map<String, Value>) -> Option<Nanos> {
    let f = Fields::new(span, "");
    let time = |key| unix_nanos(&f, key).ok().flatten();
    time("endTimeUnixNano").or_else(|| time("startTimeUnixNano"))
}

/// The tool a span calls: `gen_ai.tool.name`, else its name after `tools/call ` (the
/// conventions name a span `tools/call <tool>`; older instrumentations set only the name,
/// some with a prefix of their own, `MCP send tools/call <tool>`).
fn span_tool<'s>(s: &'s SpanAt<'_>) -> Option<&'s str> {
    let attrs = s.attrs.as_ref().ok()?;
    if let Some(t) = attrs.get("gen_ai.tool.name").and_then(Value::as_str) {
        return Some(t);
    }
    let name = s.span.get("name").and_then(Value::as_str)?;
    let (_, tool) = name.split_once("tools/call ")?;
    Some(tool.trim()).filter(|t| !t.is_empty())
}

/// The tool of FastMCP's `delegate <tool>` span, which stands between a server's `tools/call`
/// span and the `tools/call` span of the mounted server it hands the call to.
fn fastmcp_delegate<'s>(s: &'s SpanAt<'_>) -> Option<&'s str> {
    let attrs = s.attrs.as_ref().ok()?;
    if !attrs.contains_key("fastmcp.provider.type") && !attrs.contains_key("fastmcp.component.key")
    {
        return None;
    }
    let name = s.span.get("name").and_then(Value::as_str)?;
    Some(name.strip_prefix("delegate ")?.trim()).filter(|t| !t.is_empty())
}

fn is_tools_call(s: &SpanAt<'_>) -> bool {
    s.attrs
        .as_ref()
        .is_ok_and(|a| a.get("mcp.method.name").and_then(Value::as_str) == Some("tools/call"))
}

/// The span kind as a number; the JSON mapping allows the enum's name too.
fn span_kind(span: &Map<String, Value>) -> Option<i64> {
    match span.get("kind")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.as_str() {
            "SPAN_KIND_SERVER" => Some(KIND_SERVER),
            "SPAN_KIND_CLIENT" => Some(KIND_CLIENT),
            "SPAN_KIND_INTERNAL" => Some(KIND_INTERNAL),
            _ => None,
        },
        _ => None,
    }
}

/// The span status's message, if it has one (its code is checked by [`status_code`]).
fn status_message<'a>(f: &Fields<'a>) -> Option<&'a str> {
    f.obj.get("status")?.get("message")?.as_str()
}

fn status_code(f: &Fields<'_>) -> Result<Option<i64>, LineError> {
    let Some(status) = f.opt_object("status")? else {
        return Ok(None);
    };
    let path = f.name("status");
    let s = Fields::new(status, &path);
    match s.get("code") {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_i64()),
        Some(Value::String(c)) => Ok(match c.as_str() {
            "STATUS_CODE_ERROR" => Some(STATUS_ERROR),
            "STATUS_CODE_OK" => Some(1),
            _ => Some(0),
        }),
        Some(v) => Err(LineError::wrong_type(&s.name("code"), "a status code", v)),
    }
}

/// A `…UnixNano` field: nanoseconds since the epoch as a number or a decimal string (the
/// OTLP JSON mapping writes 64-bit integers as strings). 0 means unset.
fn unix_nanos(f: &Fields<'_>, key: &str) -> Result<Option<Nanos>, LineError> {
    let bad = |found: String| {
        LineError::at(
            "bad timestamp",
            &f.name(key),
            format!("expected nanoseconds since the epoch, found {found}"),
        )
    };
    let ns = match f.get(key) {
        None => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| bad(format!("{s:?}")))?,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| bad(n.to_string()))?,
        Some(v) => {
            return Err(LineError::wrong_type(
                &f.name(key),
                "nanoseconds since the epoch",
                v,
            ));
        }
    };
    Ok((ns != 0).then_some(ns))
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, LineError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(LineError::wrong_type(path, "an object", other)),
    }
}

/// The array `key` of `obj` (at `path`); absent counts as empty (the OTLP JSON mapping omits
/// empty lists).
fn slice<'a>(obj: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a [Value], LineError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(v) => Err(LineError::wrong_type(&join(path, key), "an array", v)),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// An OTLP `attributes` list (`[{"key":…,"value":{AnyValue}}]`) as a map of plain JSON values.
fn attributes(obj: &Map<String, Value>, path: &str) -> Result<Map<String, Value>, LineError> {
    let mut out = Map::new();
    for (i, kv) in slice(obj, path, "attributes")?.iter().enumerate() {
        let path = format!("{}[{i}]", join(path, "attributes"));
        let (key, value) = key_value(kv, &path)?;
        out.insert(key, value);
    }
    Ok(out)
}

fn key_value(kv: &Value, path: &str) -> Result<(String, Value), LineError> {
    let kv = Fields::new(object(kv, path)?, path);
    let key = kv.req_str("key")?.to_string();
    let value = match kv.get("value") {
        None => Value::Null,
        Some(v) => any_value(v, &kv.name("value"))?,
    };
    Ok((key, value))
}

/// Decode an OTLP `AnyValue` (`{"stringValue":"x"}`, `{"intValue":"42"}`, …) to plain JSON.
fn any_value(v: &Value, path: &str) -> Result<Value, LineError> {
    let m = object(v, path)?;
    let Some((kind, inner)) = m.iter().next() else {
        return Ok(Value::Null);
    };
    let field = format!("{path}.{kind}");
    let wrong = |expected: &str| LineError::wrong_type(&field, expected, inner);
    Ok(match (kind.as_str(), inner) {
        ("stringValue" | "bytesValue", Value::String(_))
        | ("boolValue", Value::Bool(_))
        | ("intValue" | "doubleValue", Value::Number(_)) => inner.clone(),
        ("intValue", Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => {
                return Err(LineError::at(
                    "bad value",
                    &field,
                    format!("expected an integer, found {s:?}"),
                ));
            }
        },
        ("arrayValue", Value::Object(a)) => {
            let decoded: Result<Vec<Value>, LineError> = slice(a, &field, "values")?
                .iter()
                .enumerate()
                .map(|(i, item)| any_value(item, &format!("{field}.values[{i}]")))
                .collect();
            Value::Array(decoded?)
        }
        ("kvlistValue", Value::Object(l)) => {
            let mut out = Map::new();
            for (i, kv) in slice(l, &field, "values")?.iter().enumerate() {
                let (k, v) = key_value(kv, &format!("{field}.values[{i}]"))?;
                out.insert(k, v);
            }
            Value::Object(out)
        }
        ("stringValue" | "bytesValue", _) => return Err(wrong("a string")),
        ("boolValue", _) => return Err(wrong("a boolean")),
        ("intValue", _) => return Err(wrong("an integer")),
        ("doubleValue", _) => return Err(wrong("a number")),
        ("arrayValue" | "kvlistValue", _) => return Err(wrong("an object")),
        (other, _) => {
            return Err(LineError::at(
                "bad value",
                path,
                format!("unknown AnyValue kind {other:?}"),
            ));
        }
    })
}
