//! agentgateway access logs (JSON lines). agentgateway writes its request fields as flat
//! dotted keys (`"mcp.method.name":"tools/call"`); log shippers often nest them
//! (`"mcp":{"method":{"name":…}}`). Each line is flattened to dotted keys first, so both
//! spellings, and any mix of them, read the same. Lines whose MCP method is `tools/call` are
//! calls; other methods and plain HTTP requests are counted and ignored.

use serde_json::{Map, Value};

use super::intern::Interner;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, next_object_record};
use super::{Args, CallRecord, Origin, Recorded, RecordedDecision, TraceError, Upstream};

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
        next_object_record(&mut self.lines, self.file, cx, |obj, origin, cx| {
            access_line(obj, origin, cx, names)
        })
    }
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

fn access_line(
    obj: &Map<String, Value>,
    origin: Origin,
    cx: &mut Ctx<'_>,
    names: &mut Interner,
) -> Result<Option<CallRecord>, LineError> {
    let flat = flatten(obj);
    let f = Fields::new(&flat, "");
    // Releases before the OpenTelemetry MCP conventions wrote `mcp.method` and named the tool
    // only in `mcp.resource.name`.
    let method = match f.opt_str("mcp.method.name")? {
        Some(m) => Some(m),
        None => f.opt_str("mcp.method")?,
    };
    let Some(method) = method else {
        // Request lines (`scope: request`) of plain HTTP traffic, and agentgateway's other
        // log lines (startup, config, warnings) that share the stream.
        let request = f.opt_str("scope")? == Some("request") || f.get("http.method").is_some();
        cx.ignore(if request {
            "request without mcp.method.name"
        } else {
            "other log line"
        });
        return Ok(None);
    };
    if method != "tools/call" {
        cx.ignore(format!("method {method}"));
        return Ok(None);
    }
    let ts = f.req_ts(&["time", "timestamp"])?;
    let tool = match f.opt_str("gen_ai.tool.name")? {
        Some(t) => t,
        None => f
            .opt_str("mcp.resource.name")?
            .ok_or_else(|| LineError::missing("gen_ai.tool.name"))?,
    };
    let status = http_status(&f)?;
    let error = f.opt_str("error")?;
    let (decision, upstream) = match status {
        None => (None, error.map(|_| Upstream::Error)),
        Some(200..=299) if error.is_some() => {
            (Some(RecordedDecision::Allow), Some(Upstream::Error))
        }
        Some(200..=299) => (Some(RecordedDecision::Allow), Some(Upstream::Ok)),
        Some(401 | 403) => (Some(RecordedDecision::Deny), None),
        Some(429) => (Some(RecordedDecision::Throttle), None),
        Some(_) => (None, Some(Upstream::Error)),
    };
    let recorded = decision.map(|d| Recorded {
        decision: Some(d),
        // The gateway's reason for refusing; for forwarded calls `error` is the upstream's.
        message: error
            .filter(|_| d != RecordedDecision::Allow)
            .map(str::to_string),
        ..Recorded::default()
    });
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
        latency_ms: duration_ms(&f, "duration")?,
        origin,
    }))
}

/// `http.status` as a number or a numeric string.
fn http_status(f: &Fields<'_>) -> Result<Option<u64>, LineError> {
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
