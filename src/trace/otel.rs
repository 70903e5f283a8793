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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{Map, Value};

use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER};
use super::time::kind_of;
use super::{Args, CallRecord, Nanos, Origin, TraceError, Upstream};

/// OTLP `SPAN_KIND_SERVER` and `SPAN_KIND_CLIENT`.
const KIND_SERVER: i64 = 2;
const KIND_CLIENT: i64 = 3;
/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: i64 = 2;

/// How long, in span end time, the client and server spans of one call are waited for
/// after each other. A client span ends after its server span, and exporters write spans
/// as they end, so the two arrive within the exporters' batching delays of each other,
/// however long the call ran.
pub(crate) const TWIN_WINDOW_NS: Nanos = 10 * 60 * 1_000_000_000;

/// What [`Ctx::ignore`] counts a client span under when its server span is read.
const CLIENT_TWIN: &str = "span tools/call (client side of a server span)";

/// What [`Ctx::ignore`] counts a client span under when its parent is a server `tools/call`
/// span: a gateway or proxy forwarding the call it received (the call is read once, from the
/// span of the call it received).
const OUTBOUND_LEG: &str = "span tools/call (a proxy forwarding a call it received)";

pub(crate) struct OtelSource {
    lines: Lines,
    file: u32,
    names: Interner,
    /// The document being gathered, read when the next one starts or the file ends.
    doc: Option<Chunk>,
    /// Calls ready to hand out, in the order they were settled.
    pending: VecDeque<CallRecord>,
    twins: Twins,
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

/// A span's identity: trace id and span id (span ids are unique within a trace).
type SpanKey = (String, String);

/// A client call held back: its span, its call and its parent span.
struct Held {
    key: SpanKey,
    rec: CallRecord,
    parent: Option<SpanKey>,
}

/// Matches the client and server spans of one call across the documents of a file, so the
/// call is read once, from its server span (the side a gateway sees). A client `tools/call`
/// span is held back until its server span is read (then it is dropped) or until spans
/// ending more than [`TWIN_WINDOW_NS`] after it have been read (then it is a call); the
/// parents of server spans are remembered for as long. Memory is bounded by the spans of
/// that window.
#[derive(Default)]
struct Twins {
    /// Parents of server spans read: key → end time.
    served: HashMap<SpanKey, Nanos>,
    served_by_end: BTreeSet<(Nanos, SpanKey)>,
    /// Client calls held back, by (end time, arrival).
    held: BTreeMap<(Nanos, u64), Held>,
    held_keys: HashMap<SpanKey, (Nanos, u64)>,
    /// The held client calls by their parent span: a server `tools/call` span read later
    /// makes its held children outbound legs.
    held_by_parent: HashMap<SpanKey, (SpanKey, String)>,
    /// Server `tools/call` spans read: key → (end time, tool); client spans under them
    /// calling the same tool are outbound legs.
    servers: HashMap<SpanKey, (Nanos, String)>,
    servers_by_end: BTreeSet<(Nanos, SpanKey)>,
    arrivals: u64,
    /// The latest span end time read.
    latest: Option<Nanos>,
}

impl Twins {
    /// A server span whose parent is `key` was read: drop the client call held for it.
    /// Returns whether one was dropped.
    fn served(&mut self, key: SpanKey, end: Nanos) -> bool {
        if let Some(at) = self.held_keys.remove(&key) {
            self.drop_held(at);
            return true;
        }
        if let Some(old) = self.served.insert(key.clone(), end) {
            self.served_by_end.remove(&(old, key.clone()));
        }
        self.served_by_end.insert((end, key));
        false
    }

    fn was_served(&self, key: &SpanKey) -> bool {
        self.served.contains_key(key)
    }

    fn drop_held(&mut self, at: (Nanos, u64)) {
        if let Some(Held {
            parent: Some(parent),
            ..
        }) = self.held.remove(&at)
        {
            self.held_by_parent.remove(&parent);
        }
    }

    /// A server `tools/call` span `key` calling `tool` was read: drop a client call of the
    /// same tool held under it (an outbound leg); returns whether one was dropped.
    fn server(&mut self, key: SpanKey, end: Nanos, tool: &str) -> bool {
        let child = match self.held_by_parent.get(&key) {
            Some((child, leg)) if forwards(tool, leg) => Some(child.clone()),
            _ => None,
        };
        let dropped = match child.and_then(|c| self.held_keys.remove(&c)) {
            Some(at) => {
                self.held_by_parent.remove(&key);
                self.held.remove(&at);
                true
            }
            None => false,
        };
        let value = (end, tool.to_string());
        if let Some((old, _)) = self.servers.insert(key.clone(), value) {
            self.servers_by_end.remove(&(old, key.clone()));
        }
        self.servers_by_end.insert((end, key));
        dropped
    }

    /// Whether `key` is a server `tools/call` span read that forwards a call of `tool`.
    fn forwarded_by(&self, key: &SpanKey, tool: &str) -> bool {
        self.servers
            .get(key)
            .is_some_and(|(_, received)| forwards(received, tool))
    }

    /// Hold a client call of `tool` (under `parent`, when it has one); `Some` gives it back
    /// when it cannot be held (its key is held already).
    fn hold(
        &mut self,
        key: SpanKey,
        parent: Option<SpanKey>,
        end: Nanos,
        rec: CallRecord,
        tool: &str,
    ) -> Option<CallRecord> {
        if self.held_keys.contains_key(&key) {
            return Some(rec);
        }
        let at = (end, self.arrivals);
        self.arrivals += 1;
        self.held_keys.insert(key.clone(), at);
        if let Some(parent) = &parent {
            (self.held_by_parent).insert(parent.clone(), (key.clone(), tool.to_string()));
        }
        self.held.insert(at, Held { key, rec, parent });
        None
    }

    fn saw(&mut self, end: Nanos) {
        self.latest = Some(self.latest.map_or(end, |l| l.max(end)));
    }

    /// Release the client calls, and forget the server spans, that ended more than the
    /// window before the latest span; all of them when `all`.
    fn expire(&mut self, all: bool, out: &mut VecDeque<CallRecord>) {
        let horizon = match (all, self.latest) {
            (true, _) => Nanos::MAX,
            (false, Some(l)) => l.saturating_sub(TWIN_WINDOW_NS),
            (false, None) => return,
        };
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 >= horizon {
                break;
            }
            let Held { key, rec, parent } = entry.remove();
            self.held_keys.remove(&key);
            if let Some(parent) = parent {
                self.held_by_parent.remove(&parent);
            }
            out.push_back(rec);
        }
        while let Some((end, key)) = self.served_by_end.first() {
            if *end >= horizon {
                break;
            }
            self.served.remove(key);
            self.served_by_end.pop_first();
        }
        while let Some((end, key)) = self.servers_by_end.first() {
            if *end >= horizon {
                break;
            }
            self.servers.remove(key);
            self.servers_by_end.pop_first();
        }
    }
}

/// What one span turned into.
enum Item {
    Call(Box<CallRecord>),
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
            twins: Twins::default(),
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
                    self.twins.expire(true, &mut self.pending);
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
        let mut items = Vec::new();
        let Spans { resources, spans } = match spans_of(doc, &mut items) {
            Ok(s) => s,
            Err(e) => return cx.skip(line, e),
        };
        for s in &spans {
            let end = span_end(s.span);
            if let Some(end) = end {
                self.twins.saw(end);
            }
            let tools_call = is_tools_call(s);
            let kind = span_kind(s.span);
            let parent = span_key(s.span, "parentSpanId");
            if tools_call && kind == Some(KIND_SERVER) {
                let end = end.or(self.twins.latest).unwrap_or(0);
                if let Some(parent) = parent.clone() {
                    if self.twins.served(parent, end) {
                        cx.ignore(CLIENT_TWIN);
                    }
                }
                if let (Some(key), Some(tool)) = (span_key(s.span, "spanId"), span_tool(s)) {
                    if self.twins.server(key, end, tool) {
                        cx.ignore(OUTBOUND_LEG);
                    }
                }
            }
            // The conventions let an agent put the client side's attributes on its own tool
            // execution span (`execute_tool <tool>`, INTERNAL): any tools/call span that is
            // not a server span plays the client's part.
            let client = if tools_call && kind != Some(KIND_SERVER) {
                span_key(s.span, "spanId")
            } else {
                None
            };
            if client.as_ref().is_some_and(|k| self.twins.was_served(k)) {
                items.push(Ok(Item::Ignored(CLIENT_TWIN.into())));
                continue;
            }
            let tool = span_tool(s).unwrap_or("");
            if client.is_some()
                && (parent.as_ref()).is_some_and(|p| self.twins.forwarded_by(p, tool))
            {
                items.push(Ok(Item::Ignored(OUTBOUND_LEG.into())));
                continue;
            }
            let item = self.span(s, &resources[s.resource], origin);
            if let Some(kind) = self.noted.take() {
                cx.ignore(kind);
            }
            match (item, client) {
                (Ok(Item::Call(rec)), Some(key)) => {
                    let end = end.unwrap_or(rec.ts);
                    if let Some(rec) = self.twins.hold(key, parent, end, *rec, tool) {
                        items.push(Ok(Item::Call(Box::new(rec))));
                    }
                }
                (item, _) => items.push(item),
            }
        }
        for item in items {
            match item {
                Ok(Item::Call(rec)) => self.pending.push_back(*rec),
                Ok(Item::Ignored(kind)) => cx.ignore(kind),
                Err(e) => cx.skip(line, e)?,
            }
        }
        self.twins.expire(false, &mut self.pending);
        Ok(())
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
        let server = server_name(&a, &r)?;
        // The end user names the caller best (a gateway's authenticated subject next); without
        // one, the agent, then the client software (which many agents share). Each is looked up
        // on the span, then its resource.
        let mut grant = None;
        for key in [
            "enduser.id",
            "jwt.sub",
            "gen_ai.agent.name",
            "mcp.client.name",
        ] {
            grant = match a.opt_str(key)? {
                Some(g) => Some(g),
                None => r.opt_str(key)?,
            };
            if grant.is_some() {
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
        let upstream = upstream_of(&f, &a)?;
        Ok(Item::Call(Box::new(CallRecord {
            ts,
            server: self.names.get(server),
            grant: grant.map(|g| self.names.get(g)),
            session: a.opt_str("mcp.session.id")?.map(|s| self.names.get(s)),
            tool: self.names.get(tool),
            args,
            id: a.opt_id("jsonrpc.request.id")?,
            recorded: None,
            upstream: Some(upstream),
            latency_ms: end.filter(|&e| e >= ts).map(|e| (e - ts) as f64 / 1e6),
            origin,
        })))
    }
}

/// How the call of span `f` (attributes `a`) ended: `error.type` `tool_error` is a tool
/// error, any other `error.type` or an error status an error; a gateway's span records the
/// upstream's JSON-RPC error as `mcp.error.code` (agentgateway).
///
/// FastMCP's server spans (`fastmcp.*` attributes) set an error status, without `error.type`,
/// when a tool raised; the server answers that with a result whose `isError` is true, so it
/// is a tool error.
fn upstream_of(f: &Fields<'_>, a: &Fields<'_>) -> Result<Upstream, LineError> {
    let fastmcp = a.obj.keys().any(|k| k.starts_with("fastmcp."));
    Ok(match a.opt_str("error.type")? {
        Some("tool_error") => Upstream::ToolError,
        Some(_) => Upstream::Error,
        None if status_code(f)? == Some(STATUS_ERROR) && fastmcp => Upstream::ToolError,
        None if status_code(f)? == Some(STATUS_ERROR) => Upstream::Error,
        None if a.get("mcp.error.code").is_some() => Upstream::Error,
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
        Ok(Item::Call(Box::new(CallRecord {
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
        })))
    }
}

/// The MCP server a span's call went to: the server the span names (`mcp.server.name`, as
/// ToolHive writes it; a gateway's `mcp.target`), else the resource's `service.name` (the
/// conventions' source), else the server name FastMCP writes (`fastmcp.server.name`,
/// `rpc.service`) when the service was left unnamed (`unknown_service…`, the SDKs' default).
fn server_name<'a>(a: &Fields<'a>, r: &Fields<'a>) -> Result<&'a str, LineError> {
    for key in ["mcp.server.name", "mcp.target"] {
        if let Some(name) = a.opt_str(key)? {
            return Ok(name);
        }
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
    bad: &mut Vec<Result<Item, LineError>>,
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
            // Logs or metrics in the same collector file, or not OTLP at all.
            let kind = ["resourceLogs", "resourceMetrics"]
                .into_iter()
                .find(|k| doc.contains_key(*k));
            bad.push(Ok(Item::Ignored(match kind {
                Some(k) => format!("document of {k}, not spans"),
                None => "document without resourceSpans".into(),
            })));
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
    Some((trace.to_string(), id.to_string()))
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

/// Whether a proxy that received a call of `received` forwards it as a call of `sent`: the
/// same tool, or a tool its name was prefixed from (a gateway multiplexing several servers
/// names `get_issue` of `github` `github_get_issue`).
fn forwards(received: &str, sent: &str) -> bool {
    received == sent
        || received
            .strip_suffix(sent)
            .is_some_and(|prefix| prefix.ends_with(['_', '-', '.', '/']))
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
            _ => None,
        },
        _ => None,
    }
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
