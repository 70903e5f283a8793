//! mcpsim's own call records, one JSON object per line.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::intern::Interner;
#[cfg(test)]
use super::source::{Ctx, Lines, Source};
use super::source::{Fields, LineError, UNKNOWN_SERVER, parse_object};
use super::{Args, CallRecord, Origin, RawArgs, Recorded, RecordedDecision, Upstream};

/// Reads call records line by line; nothing is buffered beyond the current line.
// Traces are read by `jsonl_batch::JsonlBatchSource`; this simple reader is the reference
// its tests compare against.
#[cfg(test)]
pub(crate) struct JsonlSource {
    lines: Lines,
    file: u32,
    names: Interner,
}

#[cfg(test)]
impl JsonlSource {
    pub(crate) fn new(lines: Lines, file: u32) -> JsonlSource {
        JsonlSource {
            lines,
            file,
            names: Interner::default(),
        }
    }
}

#[cfg(test)]
impl Source for JsonlSource {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, super::TraceError> {
        while let Some((line, text)) = self.lines.next_line()? {
            let origin = Origin {
                file: self.file,
                line,
            };
            let parsed = text.and_then(|t| record_from_line(t, origin, &mut self.names));
            match parsed {
                Ok(rec) => return Ok(Some(rec)),
                Err(e) => cx.skip(line, e)?,
            }
        }
        Ok(None)
    }
}

/// Read one line of mcpsim JSONL. The arguments and a numeric id keep the line's spelling, as
/// the line scanner keeps them: `convert` writes `1.10`, `123456789012345678901234567890` and an
/// id `1e2` back as they were, whichever code read the line.
pub(crate) fn record_from_line(
    text: &str,
    origin: Origin,
    names: &mut Interner,
) -> Result<CallRecord, LineError> {
    let obj = parse_object(text)?;
    let mut rec = record_from_object(&obj, origin, names)?;
    let number_id = matches!(obj.get("id"), Some(Value::Number(_)));
    let args = matches!(rec.args, Args::Values(_) | Args::NotObject(_));
    if number_id || args {
        // The same text parsed again, each member kept as written (the last of a repeated
        // key, as in the map).
        if let Ok(raw) = serde_json::from_str::<BTreeMap<String, &RawValue>>(text) {
            if let (true, Some(id)) = (number_id, raw.get("id")) {
                rec.id = Some(id.get().to_owned());
            }
            match (&rec.args, raw.get("args")) {
                (Args::Values(_), Some(a)) => rec.args = Args::Raw(RawArgs::new(a.get())),
                (Args::NotObject(_), Some(a)) => rec.args = Args::NotObject(a.get().into()),
                _ => {}
            }
        }
    }
    Ok(rec)
}

/// Build a record from a call-record object (the JSONL form).
fn record_from_object(
    obj: &Map<String, Value>,
    origin: Origin,
    names: &mut Interner,
) -> Result<CallRecord, LineError> {
    let f = Fields::new(obj, "");
    let ts = f.req_ts(&["ts"])?;
    // A tool must have a name: an empty one is missing, as in CSV and Parquet.
    let tool = match f.req_str("tool")? {
        "" => return Err(LineError::missing("tool")),
        tool => names.get(tool),
    };
    let server = names.get(f.opt_str("server")?.unwrap_or(UNKNOWN_SERVER));
    let grant = f.opt_str("grant")?.map(|s| names.get(s));
    let session = f.opt_str("session")?.map(|s| names.get(s));
    let args = match (f.get("args"), f.opt_string_list("arg_keys")?) {
        (Some(Value::Object(m)), _) => Args::Values(m.clone()),
        (Some(other), _) => Args::NotObject(other.to_string().into()),
        (None, Some(keys)) => Args::Keys(keys),
        (None, None) => Args::Unrecorded,
    };
    let id = f.opt_id("id")?;
    let recorded = match f.opt_object("recorded")? {
        None => None,
        Some(r) => recorded_from(
            &Fields::new(r, "recorded"),
            "decision",
            "rule",
            "message",
            "policy_version",
        )?,
    };
    let upstream = match f.opt_str("upstream")? {
        None => None,
        Some(s) => Some(Upstream::parse(s).ok_or_else(|| {
            LineError::at(
                "bad value",
                "upstream",
                format!("expected ok, error or tool_error, found {s:?}"),
            )
        })?),
    };
    let latency_ms = f.opt_f64("latency_ms")?;
    Ok(CallRecord {
        ts,
        server,
        grant,
        session,
        tool,
        args,
        id,
        recorded,
        upstream,
        latency_ms,
        origin,
    })
}

/// Read the recorded-decision fields; `None` when none of them is present.
pub(crate) fn recorded_from(
    f: &Fields<'_>,
    decision: &str,
    rule: &str,
    message: &str,
    policy_version: &str,
) -> Result<Option<Recorded>, LineError> {
    let decision = match f.opt_str(decision)? {
        None => None,
        Some(s) => Some(parse_decision(s, &f.name(decision))?),
    };
    let r = Recorded {
        decision,
        rule: f.opt_str(rule)?.map(str::to_string),
        message: f.opt_str(message)?.map(str::to_string),
        policy_version: f.opt_id(policy_version)?,
    };
    Ok(normalise_recorded(r))
}

pub(crate) fn parse_decision(s: &str, field: &str) -> Result<RecordedDecision, LineError> {
    RecordedDecision::parse(s).ok_or_else(|| {
        LineError::at(
            "bad value",
            field,
            format!("unknown decision {s:?} (expected allow, deny, throttle or approval)"),
        )
    })
}

/// An empty `recorded` carries nothing; it becomes `None` so every format round-trips.
pub(crate) fn normalise_recorded(r: Recorded) -> Option<Recorded> {
    if r == Recorded::default() {
        None
    } else {
        Some(r)
    }
}
