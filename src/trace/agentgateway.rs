//! agentgateway access logs, in either of its log formats: JSON lines, whose request fields
//! are flat dotted keys (`"mcp.method.name":"tools/call"`) that log shippers often nest
//! (`"mcp":{"method":{"name":…}}`), and its default text format
//! (`<time>\tinfo\trequest mcp.method.name=tools/call …`). Every line becomes one map of
//! dotted keys first, so all spellings, and any mix of them, read the same. Lines whose MCP
//! method is `tools/call` are calls; other methods and plain HTTP requests are counted and
//! ignored.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::intern::Interner;
use super::source::{
    Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, next_parsed_record, parse_object,
};
use super::time::parse_ts_str;
use super::{Args, CallRecord, Nanos, Origin, Recorded, RecordedDecision, TraceError, Upstream};

pub(crate) struct AgentGatewaySource {
    lines: Lines,
    file: u32,
    names: Interner,
}

impl AgentGatewaySource {
    pub(crate) fn new(lines: Lines, file: u32) -> AgentGatewaySource {
        AgentGatewaySource {
            lines,
            file,
            names: Interner::default(),
        }
    }
}

impl Source for AgentGatewaySource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        let names = &mut self.names;
        let parse = |text: &str| match text.trim_start().starts_with('{') {
            true => parse_object(text),
            false => text_line(text),
        };
        next_parsed_record(&mut self.lines, self.file, cx, parse, |obj, origin, cx| {
            access_line(obj, origin, cx, names)
        })
    }
}

/// A line of agentgateway's text log format as the map a JSON line would give:
/// `<time>\t<level>\t<scope>` then, on request lines, ` key=value` pairs. Values are written
/// bare (`mcp.target=github`) or, for the fields agentgateway quotes (`error`,
/// `mcp.error.message`), as quoted strings. Other lines (`<time>\t<level>\t<module>\t<message>`)
/// keep their first three fields.
pub(crate) fn text_line(text: &str) -> Result<Map<String, Value>, LineError> {
    let not_text = || {
        LineError::new(
            "not a log line",
            "expected a JSON object or an agentgateway text log line (<time>, a tab, <level>, a tab, <scope>)",
        )
    };
    let mut parts = text.splitn(3, '\t');
    let (Some(time), Some(level), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(not_text());
    };
    if !time.starts_with(|c: char| c.is_ascii_digit()) || level.contains(' ') {
        return Err(not_text());
    }
    let scope_end = rest.find([' ', '\t']).unwrap_or(rest.len());
    let mut obj = Map::new();
    let text = |s: &str| Value::String(s.to_string());
    obj.insert("time".into(), text(time.trim()));
    obj.insert("level".into(), text(level.trim()));
    obj.insert("scope".into(), text(&rest[..scope_end]));
    if &rest[..scope_end] != "request" {
        return Ok(obj);
    }
    let mut rest = rest[scope_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            LineError::new(
                "not a log line",
                format!("expected key=value, found {rest:?}"),
            )
        })?;
        let key = &rest[..eq];
        let after = &rest[eq + 1..];
        let (value, next) = if after.starts_with('"') {
            quoted(after).ok_or_else(|| {
                LineError::at("bad value", key, "a quoted value without its closing quote")
            })?
        } else {
            let end = next_pair(after);
            (after[..end].trim_end().to_string(), &after[end..])
        };
        obj.insert(key.to_string(), Value::String(value));
        rest = next.trim_start();
    }
    Ok(obj)
}

/// Where a bare value ends: before the next ` key=` (a key is letters, digits, `.`, `_`, `-`),
/// or at the end. Bare values may hold spaces (a `jwt.sub` with one).
fn next_pair(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b' ' | b'\t') {
            let start = i + 1;
            let key_end = bytes[start..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
                .map_or(bytes.len(), |n| start + n);
            if key_end > start && bytes.get(key_end) == Some(&b'=') {
                return i;
            }
        }
        i += 1;
    }
    bytes.len()
}

/// A quoted value at the start of `s` (JSON's or Rust's escapes) and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'u' => {
                    // `\u{1F600}` (Rust) or `\u00e9` (JSON).
                    let rest = &s[i + 2..];
                    let (hex, used) = match rest.strip_prefix('{') {
                        Some(r) => (r.split('}').next()?, r.find('}')? + 2),
                        None => (rest.get(..4)?, 4),
                    };
                    out.push(
                        char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{FFFD}'),
                    );
                    for _ in 0..used {
                        chars.next();
                    }
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// agentgateway's `time` with its fraction read as it writes it: the microseconds of the
/// second as a number without leading zeros (`09:00:03.50Z` is 50 µs past 09:00:03, and
/// `…:03.41000Z` is 41 ms past). Fractions of six digits or more, and other forms, are read
/// as RFC 3339 says.
fn gateway_time(text: &str) -> Cow<'_, str> {
    let Some(body) = text.strip_suffix('Z') else {
        return Cow::Borrowed(text);
    };
    let Some(dot) = body.rfind('.') else {
        return Cow::Borrowed(text);
    };
    let fraction = &body[dot + 1..];
    let digits = fraction.len();
    if !(1..6).contains(&digits) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}.{fraction:0>6}Z", &body[..dot]))
}

/// The object with every nested object replaced by its leaves under dotted keys.
pub(crate) fn flatten(obj: &Map<String, Value>) -> Map<String, Value> {
    fn walk(prefix: &str, obj: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (k, v) in obj {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(inner) if !inner.is_empty() => walk(&key, inner, out),
                _ => {
                    out.insert(key, v.clone());
                }
            }
        }
    }
    let mut out = Map::new();
    walk("", obj, &mut out);
    out
}

pub(crate) fn access_line(
    obj: &Map<String, Value>,
    origin: Origin,
    cx: &mut Ctx<'_>,
    names: &mut Interner,
) -> Result<Option<CallRecord>, LineError> {
    let flat = flatten(obj);
    let f = Fields::new(&flat, "");
    // Releases before the OpenTelemetry MCP conventions wrote `mcp.method` and named the tool
    // only in `mcp.resource.name`.
    // Releases 0.7 to 0.9 wrote no method, and `mcp.tool` only for tool calls.
    let method = match f.opt_str("mcp.method.name")? {
        Some(m) => Some(m),
        None if f.get("mcp.tool").is_some() => Some("tools/call"),
        None => f.opt_str("mcp.method")?,
    };
    let Some(method) = method else {
        // Request lines (`scope: request`) of plain HTTP traffic, and agentgateway's other
        // log lines (startup, config, warnings) that share the stream.
        let request = f.opt_str("scope")? == Some("request") || f.get("http.method").is_some();
        // A rate limit of the route refuses a request before its MCP fields are read: the
        // refused call, maybe a tools/call, is counted apart so that it is not lost unseen.
        let limited = request && http_status(&f)? == Some(429);
        cx.ignore(match (request, limited) {
            (true, true) => "request refused by a rate limit before its MCP fields were read (429)",
            (true, false) => "request without mcp.method.name",
            (false, _) => "other log line",
        });
        return Ok(None);
    };
    if method != "tools/call" {
        cx.ignore(format!("method {method}"));
        return Ok(None);
    }
    let logged = match f.opt_str("time")? {
        Some(time) => parse_ts_str(&gateway_time(time))
            .map_err(|reason| LineError::at("bad timestamp", "time", reason))?,
        None => f.req_ts(&["time", "timestamp"])?,
    };
    // The line is written when the request ends: the call was made `duration` earlier.
    let latency_ms = duration_ms(&f, "duration")?;
    let ts = match latency_ms {
        Some(d) if d > 0.0 => logged.saturating_sub((d * 1e6).round() as Nanos),
        _ => logged,
    };
    let tool = match f.opt_str("gen_ai.tool.name")? {
        Some(t) => t,
        None => match f.opt_str("mcp.resource.name")?.or(f.opt_str("mcp.tool")?) {
            Some(t) => t,
            // Some releases (1.1) left the tool out of their log, and a call whose multiplexed
            // name names no target has none: a record without a tool, bad input.
            None => return Err(LineError::missing("gen_ai.tool.name")),
        },
    };
    let status = http_status(&f)?;
    // The upstream's JSON-RPC error (releases from 1.4.1 on); a forwarded call has no `error`.
    let rpc_error = f.get("mcp.error.code").is_some();
    let (recorded, upstream) = outcome(status, f.opt_str("error")?, rpc_error);
    Ok(Some(CallRecord {
        ts,
        server: names.get(f.opt_str("mcp.target")?.unwrap_or(UNKNOWN_SERVER)),
        grant: f.opt_str("jwt.sub")?.map(|s| names.get(s)),
        session: f.opt_str("mcp.session.id")?.map(|s| names.get(s)),
        tool: names.get(tool),
        args: Args::Unrecorded,
        id: f.opt_id("jsonrpc.request.id")?,
        recorded,
        upstream,
        latency_ms,
        origin,
    }))
}

/// What agentgateway did with a call it answered with HTTP `status` and its own `error` (the
/// upstream's JSON-RPC error in `rpc_error`): its decision, and how the forwarded call ended.
pub(crate) fn outcome(
    status: Option<u64>,
    error: Option<&str>,
    rpc_error: bool,
) -> (Option<Recorded>, Option<Upstream>) {
    let (decision, upstream) = match status {
        None => (
            None,
            (error.is_some() || rpc_error).then_some(Upstream::Error),
        ),
        // The gateway's own refusal answered in-band: a guardrail (`mcpGuardrails rejected`).
        Some(200..=299) if error.is_some() => (Some(RecordedDecision::Deny), None),
        Some(200..=299) if rpc_error => (Some(RecordedDecision::Allow), Some(Upstream::Error)),
        Some(200..=299) => (Some(RecordedDecision::Allow), Some(Upstream::Ok)),
        Some(401 | 403) => (Some(RecordedDecision::Deny), None),
        Some(429) => (Some(RecordedDecision::Throttle), None),
        // MCP authorization hides the tool: `mcp: Unknown tool: <name>`, 400 (500 in 1.0).
        Some(_) if error.is_some_and(is_authorization_error) => {
            (Some(RecordedDecision::Deny), None)
        }
        Some(_) => (None, Some(Upstream::Error)),
    };
    let recorded = decision.map(|d| Recorded {
        decision: Some(d),
        // The gateway's reason for refusing.
        message: error
            .filter(|_| d != RecordedDecision::Allow)
            .map(str::to_string),
        ..Recorded::default()
    });
    (recorded, upstream)
}

/// agentgateway's error for a call its MCP authorization refused: it answers as if the tool did
/// not exist (`Unknown tool: <name>`, under the `mcp: ` of its proxy errors).
fn is_authorization_error(error: &str) -> bool {
    let e = error.strip_prefix("mcp: ").unwrap_or(error);
    e.starts_with("Unknown tool: ")
}

/// `http.status` as a number or a numeric string.
pub(crate) fn http_status(f: &Fields<'_>) -> Result<Option<u64>, LineError> {
    const KEY: &str = "http.status";
    let bad = |found: &str| {
        LineError::at(
            "bad value",
            KEY,
            format!("expected an HTTP status, found {found}"),
        )
    };
    match f.get(KEY) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| bad(&n.to_string())),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(&format!("{s:?}"))),
        Some(v) => Err(LineError::wrong_type(KEY, "an HTTP status", v)),
    }
}

/// A duration in milliseconds: a number of milliseconds, or text with units as agentgateway
/// writes it (`41ms`, `1.5s`, `900us`, `120ns`), composite forms included (`1m2.5s` as Go
/// prints durations, `1h 2m` as humantime does).
fn duration_ms(f: &Fields<'_>, key: &str) -> Result<Option<f64>, LineError> {
    let Some(Value::String(s)) = f.get(key) else {
        return f.opt_f64(key);
    };
    parse_duration_ms(s).map(Some).ok_or_else(|| {
        LineError::at(
            "bad value",
            key,
            format!("expected a duration such as \"41ms\", found {s:?}"),
        )
    })
}

/// `text` as milliseconds: a plain number is milliseconds; otherwise numbers each followed by a
/// unit (`h`, `m`, `s`, `ms`, `us`, `µs`, `ns`), added up.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        return (v.is_finite() && v >= 0.0).then_some(v);
    }
    let units: [(&str, f64); 7] = [
        ("ms", 1.0),
        ("us", 1e-3),
        ("µs", 1e-3),
        ("ns", 1e-6),
        ("h", 3.6e6),
        ("m", 6e4),
        ("s", 1e3),
    ];
    let (mut rest, mut total) = (t, 0.0);
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let (unit, scale) = units.iter().find(|(u, _)| after.starts_with(u))?;
        total += number * scale;
        rest = after[unit.len()..].trim_start();
    }
    if t.is_empty() || !total.is_finite() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations_read_as_agentgateway_go_and_humantime_print_them() {
        let ms = |t: &str| parse_duration_ms(t);
        assert_eq!(ms("41ms"), Some(41.0));
        assert_eq!(ms("1.5s"), Some(1500.0));
        assert_eq!(ms("900us"), Some(0.9));
        assert_eq!(ms("900µs"), Some(0.9));
        assert_eq!(ms("120ns"), Some(120.0 * 1e-6));
        assert_eq!(ms("1m2.5s"), Some(62_500.0));
        assert_eq!(ms("1h 2m"), Some(3_720_000.0));
        assert_eq!(ms("2h0m0s"), Some(7_200_000.0));
        assert_eq!(ms("250"), Some(250.0));
        for bad in [
            "",
            "-5ms",
            "5min",
            "1.2.3s",
            "ms",
            "5 parsecs",
            "inf",
            "NaN",
        ] {
            assert_eq!(ms(bad), None, "{bad}");
        }
    }
}
