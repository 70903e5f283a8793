//! OpenTelemetry spans in OTLP JSON, as the OTLP file exporter and the collector's `file`
//! exporter write them: one `{"resourceSpans":[…]}` document per line, or whole documents
//! spread over many lines (a first line that is just `{`). Spans whose `mcp.method.name` is
//! `tools/call` are calls, following the OpenTelemetry MCP semantic conventions.
//!
//! A document holds many spans, so calls carry the line the document starts on and a bad span
//! is located by its JSON path (`resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano`);
//! one bad span does not spoil the others of its document.

use std::collections::{HashSet, VecDeque};

use serde_json::{Map, Value};

use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, parse_object};
use super::time::kind_of;
use super::{Args, CallRecord, Nanos, Origin, TraceError, Upstream};

/// OTLP `SPAN_KIND_SERVER` and `SPAN_KIND_CLIENT`.
const KIND_SERVER: i64 = 2;
const KIND_CLIENT: i64 = 3;
/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: i64 = 2;

pub(crate) struct OtelSource {
    lines: Lines,
    file: u32,
    names: Interner,
    /// Calls of the documents read so far, in document order.
    pending: VecDeque<CallRecord>,
    seen_first: bool,
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
}

impl OtelSource {
    pub(crate) fn new(lines: Lines, file: u32) -> OtelSource {
        OtelSource {
            lines,
            file,
            names: Interner::default(),
            pending: VecDeque::new(),
            seen_first: false,
        }
    }
}

impl Source for OtelSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            if let Some(rec) = self.pending.pop_front() {
                return Ok(Some(rec));
            }
            let Some((line, text)) = self.lines.next_line()? else {
                return Ok(None);
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    cx.skip(line, e)?;
                    continue;
                }
            };
            let first = !std::mem::replace(&mut self.seen_first, true);
            if first && text.trim() == "{" {
                let text = text.to_string();
                self.whole_documents(text, line, cx)?;
                continue;
            }
            match parse_object(text) {
                Ok(doc) => self.document(&doc, line, cx)?,
                Err(e) => cx.skip(line, e)?,
            }
        }
    }
}

impl OtelSource {
    /// Read the rest of the file as whole (pretty-printed, possibly concatenated) documents.
    /// A document that does not parse ends the read of this file, since what follows it cannot
    /// be told apart; it is counted as one bad record at the line the parser stopped.
    fn whole_documents(
        &mut self,
        first: String,
        first_line: u64,
        cx: &mut Ctx<'_>,
    ) -> Result<(), TraceError> {
        // Blank lines are put back (also those before the first) so that the parser's
        // positions, and the line its messages name, are file lines.
        let mut text = "\n".repeat(usize::try_from(first_line - 1).unwrap_or(0));
        text.push_str(&first);
        let mut last = first_line;
        while let Some((line, t)) = self.lines.next_line()? {
            for _ in last..line {
                text.push('\n');
            }
            last = line;
            match t {
                Ok(t) => text.push_str(t),
                Err(e) => cx.skip(line, e)?,
            }
        }
        let mut docs = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
        let (mut offset, mut line) = (0, 1);
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
                Some(Err(e)) => {
                    return cx.skip(e.line() as u64, LineError::json(&e));
                }
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
        // A client and a server span for the same call (the server span's parent is the
        // client span) would count the call twice; the server side is the one a gateway sees.
        let served: HashSet<&str> = spans
            .iter()
            .filter(|s| is_tools_call(s) && span_kind(s.span) == Some(KIND_SERVER))
            .filter_map(|s| s.span.get("parentSpanId").and_then(Value::as_str))
            .filter(|p| !p.is_empty())
            .collect();
        for s in &spans {
            let client_twin = span_kind(s.span) == Some(KIND_CLIENT)
                && s.span
                    .get("spanId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| served.contains(id));
            items.push(if client_twin && is_tools_call(s) {
                Ok(Item::Ignored(
                    "span tools/call (client side of a server span)".into(),
                ))
            } else {
                self.span(s, &resources[s.resource], origin)
            });
        }
        for item in items {
            match item {
                Ok(Item::Call(rec)) => self.pending.push_back(*rec),
                Ok(Item::Ignored(kind)) => cx.ignore(kind),
                Err(e) => cx.skip(line, e)?,
            }
        }
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
            return Ok(Item::Ignored("span without mcp.method.name".into()));
        };
        if method != "tools/call" {
            return Ok(Item::Ignored(format!("span {method}")));
        }
        let ts = unix_nanos(&f, "startTimeUnixNano")?
            .ok_or_else(|| LineError::missing(&f.name("startTimeUnixNano")))?;
        let end = unix_nanos(&f, "endTimeUnixNano")?;
        // The conventions name a tools/call span `tools/call <tool>`; older instrumentations
        // set only the name.
        let tool = match a.opt_str("gen_ai.tool.name")? {
            Some(t) => t,
            None => f
                .opt_str("name")?
                .and_then(|n| n.strip_prefix("tools/call "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| LineError::missing(&a.name("gen_ai.tool.name")))?,
        };
        let r = Fields::new(resource, "resource.attributes");
        let server = r.opt_str("service.name")?.unwrap_or(UNKNOWN_SERVER);
        // The end user names the caller best; without one, the agent, then the client
        // software (which many agents share). Each is looked up on the span, then its resource.
        let mut grant = None;
        for key in ["enduser.id", "gen_ai.agent.name", "mcp.client.name"] {
            grant = match a.opt_str(key)? {
                Some(g) => Some(g),
                None => r.opt_str(key)?,
            };
            if grant.is_some() {
                break;
            }
        }
        let args = match a.get("gen_ai.tool.call.arguments") {
            None => Args::Unrecorded,
            Some(Value::Object(m)) => Args::Values(m.clone()),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => Args::Values(m),
                Ok(other) => {
                    return Err(LineError::wrong_type(
                        &a.name("gen_ai.tool.call.arguments"),
                        "a JSON object",
                        &other,
                    ));
                }
                Err(e) => {
                    return Err(LineError::at(
                        "invalid JSON",
                        &a.name("gen_ai.tool.call.arguments"),
                        format!("invalid JSON: {e}"),
                    ));
                }
            },
            Some(v) => {
                return Err(LineError::wrong_type(
                    &a.name("gen_ai.tool.call.arguments"),
                    "JSON text",
                    v,
                ));
            }
        };
        let upstream = match a.opt_str("error.type")? {
            Some("tool_error") => Upstream::ToolError,
            Some(_) => Upstream::Error,
            None if status_code(&f)? == Some(STATUS_ERROR) => Upstream::Error,
            None => Upstream::Ok,
        };
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
    for (i, rs) in slice(doc, "", "resourceSpans")?.iter().enumerate() {
        let path = format!("resourceSpans[{i}]");
        if let Err(e) = resource_spans(rs, &path, &mut out) {
            bad.push(Err(e));
        }
    }
    Ok(out)
}

fn resource_spans<'a>(rs: &'a Value, path: &str, out: &mut Spans<'a>) -> Result<(), LineError> {
    let rs = object(rs, path)?;
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
        let ss_path = format!("{path}.{key}[{j}]");
        let ss = object(ss, &ss_path)?;
        for (k, span) in slice(ss, &ss_path, "spans")?.iter().enumerate() {
            let span_path = format!("{ss_path}.spans[{k}]");
            let span = object(span, &span_path)?;
            let attrs = attributes(span, &span_path);
            spans.push(SpanAt {
                span,
                path: span_path,
                attrs,
                resource: out.resources.len(),
            });
        }
    }
    out.resources.push(resource);
    out.spans.extend(spans);
    Ok(())
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
