//! PolicyLayer decision-log exports (JSON lines). Only `method == "tools/call"` rows are calls;
//! argument values are never stored, only the sorted top-level keys.

use serde_json::{Map, Value};

use super::intern::Interner;
use super::jsonl::recorded_from;
use super::source::{Ctx, Fields, LineError, Lines, Source, UNKNOWN_SERVER, next_object_record};
use super::{Args, CallRecord, Origin, TraceError, Upstream};

pub(crate) struct PolicyLayerSource {
    lines: Lines,
    file: u32,
    names: Interner,
}

impl PolicyLayerSource {
    pub(crate) fn new(lines: Lines, file: u32) -> PolicyLayerSource {
        PolicyLayerSource {
            lines,
            file,
            names: Interner::default(),
        }
    }
}

impl Source for PolicyLayerSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        let names = &mut self.names;
        next_object_record(&mut self.lines, self.file, cx, |obj, origin, cx| {
            row(names, obj, origin, cx)
        })
    }
}

fn row(
    names: &mut Interner,
    obj: &Map<String, Value>,
    origin: Origin,
    cx: &mut Ctx<'_>,
) -> Result<Option<CallRecord>, LineError> {
    let f = Fields::new(obj, "");
    let method = f.req_str("method")?;
    if method != "tools/call" {
        cx.ignore(format!("method {method}"));
        return Ok(None);
    }
    let ts = f.req_ts(&["timestamp"])?;
    let tool = names.get(f.req_str("tool")?);
    let server = names.get(f.opt_str("server")?.unwrap_or(UNKNOWN_SERVER));
    // A grant with an empty label is named by its id, as one with none.
    let grant = match f.opt_str("grant_label")? {
        Some(g) if !g.is_empty() => Some(g),
        _ => f.opt_str("grant_id")?,
    }
    .map(|g| names.get(g));
    let args = match f.opt_string_list("arg_keys")? {
        Some(keys) => Args::Keys(keys),
        None => Args::Unrecorded,
    };
    let recorded = recorded_from(&f, "decision", "rule", "message", "policy_version")?;
    let upstream = match f.get("upstream_status") {
        None => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(200..=299) => Some(Upstream::Ok),
            Some(_) => Some(Upstream::Error),
            None => {
                return Err(LineError::at(
                    "bad value",
                    "upstream_status",
                    format!("expected an HTTP status, found {n}"),
                ));
            }
        },
        Some(v) => return Err(LineError::wrong_type("upstream_status", "a number", v)),
    };
    Ok(Some(CallRecord {
        ts,
        server,
        grant,
        session: f.opt_str("session")?.map(|s| names.get(s)),
        tool,
        args,
        id: f.opt_id("request_id")?,
        recorded,
        upstream,
        latency_ms: f.opt_f64("latency_ms")?,
        origin,
    }))
}
