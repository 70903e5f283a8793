//! Writers for mcpsim's own record formats (`mcpsim convert`).
//!
//! JSONL: one object per record, fields in the order of the call-record table, absent fields
//! omitted, `ts` as RFC 3339 UTC with the shortest exact fraction. CSV: the columns of
//! [`super::table`], `ts` as in JSONL, `args`/`arg_keys` as JSON text. Parquet: the same columns,
//! `ts` as a UTC timestamp in nanoseconds, `latency_ms` as float64, the rest as (large) strings
//! (see [`super::parquet_write`]).
//! The origin (file, line) is not written: converted records are new input.

use std::borrow::Borrow;
use std::io::Write;

use polars::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use super::parquet_write::TableWriter;
use super::table::{BATCH_ROWS, COLUMNS};
use super::time::format_ts;
use super::{Args, ArgsView, CallRecord, TraceError};
use serde_json::value::RawValue;

#[derive(Serialize)]
struct JsonRecord<'a> {
    ts: String,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    tool: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<JsonArgs<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arg_keys: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<JsonRecorded<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
}

/// Recorded arguments as written: the text they were read from when it is one line (so that
/// numbers keep their exact spelling: a big integer or `1.10` would not survive a float), an
/// object, or the JSON text of arguments that are not one.
#[derive(Serialize)]
#[serde(untagged)]
enum JsonArgs<'a> {
    Text(Box<RawValue>),
    Object(&'a Map<String, Value>),
    Other(&'a RawValue),
}

/// [`JsonArgs`] for `args`, when they are values.
fn json_args(args: &Args) -> Option<JsonArgs<'_>> {
    if let Args::Raw(raw) = args {
        let text = raw.text();
        if !text.contains(['\n', '\r']) {
            if let Ok(v) = RawValue::from_string(text.to_string()) {
                return Some(JsonArgs::Text(v));
            }
        }
    }
    match args.view() {
        ArgsView::Values(m) => Some(JsonArgs::Object(m)),
        ArgsView::NotObject(text) => serde_json::from_str(text).ok().map(JsonArgs::Other),
        _ => None,
    }
}

/// The JSON text of `args`, when they are values (see [`JsonArgs`]).
fn args_text(args: &Args) -> Option<String> {
    match json_args(args)? {
        JsonArgs::Text(v) => Some(v.get().to_string()),
        JsonArgs::Object(m) => serde_json::to_string(m).ok(),
        JsonArgs::Other(v) => Some(v.get().to_string()),
    }
}

#[derive(Serialize)]
struct JsonRecorded<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_version: Option<&'a str>,
}

fn write_err(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> TraceError {
    move |e| TraceError::Write {
        what,
        reason: e.to_string(),
    }
}

/// Write records as mcpsim JSONL; returns how many were written.
pub fn write_jsonl<R: Borrow<CallRecord>>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let err = write_err("jsonl");
    let mut n = 0;
    for r in records {
        let r = r.borrow();
        let (args, arg_keys) = match r.args.view() {
            ArgsView::Values(_) | ArgsView::NotObject(_) => (json_args(&r.args), None),
            ArgsView::Keys(k) => (None, Some(k)),
            ArgsView::Unrecorded => (None, None),
        };
        let rec = JsonRecord {
            ts: format_ts(r.ts),
            server: &r.server,
            grant: r.grant.as_deref(),
            session: r.session.as_deref(),
            tool: &r.tool,
            args,
            arg_keys,
            id: r.id.as_deref(),
            recorded: r.recorded.as_ref().map(|c| JsonRecorded {
                decision: c.decision.map(|d| d.as_str()),
                rule: c.rule.as_deref(),
                message: c.message.as_deref(),
                policy_version: c.policy_version.as_deref(),
            }),
            upstream: r.upstream.map(|u| u.as_str()),
            latency_ms: r.latency_ms,
        };
        serde_json::to_writer(&mut *out, &rec).map_err(|e| err(&e))?;
        out.write_all(b"\n").map_err(|e| err(&e))?;
        n += 1;
    }
    out.flush().map_err(|e| err(&e))?;
    Ok(n)
}

/// How `ts` is stored in a table.
#[derive(Clone, Copy)]
enum TsAs {
    Text,
    Nanos,
}

fn frame<R: Borrow<CallRecord>>(batch: &[R], ts_as: TsAs) -> PolarsResult<DataFrame> {
    let batch: Vec<&CallRecord> = batch.iter().map(Borrow::borrow).collect();
    let text = |f: &dyn Fn(&CallRecord) -> Option<String>| -> Vec<Option<String>> {
        batch.iter().map(|r| f(r)).collect()
    };
    let ts = match ts_as {
        TsAs::Text => Column::new("ts".into(), text(&|r| Some(format_ts(r.ts)))),
        TsAs::Nanos => Column::new(
            "ts".into(),
            batch.iter().map(|r| r.ts).collect::<Vec<i64>>(),
        ),
    };
    let columns = vec![
        ts,
        Column::new("server".into(), text(&|r| Some(r.server.to_string()))),
        Column::new(
            "grant".into(),
            text(&|r| r.grant.as_deref().map(str::to_string)),
        ),
        Column::new(
            "session".into(),
            text(&|r| r.session.as_deref().map(str::to_string)),
        ),
        Column::new("tool".into(), text(&|r| Some(r.tool.to_string()))),
        Column::new("args".into(), text(&|r| args_text(&r.args))),
        Column::new(
            "arg_keys".into(),
            text(&|r| match r.args.view() {
                ArgsView::Keys(k) => serde_json::to_string(k).ok(),
                _ => None,
            }),
        ),
        Column::new("id".into(), text(&|r| r.id.clone())),
        Column::new(
            "recorded_decision".into(),
            text(&|r| {
                r.recorded
                    .as_ref()
                    .and_then(|c| c.decision)
                    .map(|d| d.as_str().to_string())
            }),
        ),
        Column::new(
            "recorded_rule".into(),
            text(&|r| r.recorded.as_ref().and_then(|c| c.rule.clone())),
        ),
        Column::new(
            "recorded_message".into(),
            text(&|r| r.recorded.as_ref().and_then(|c| c.message.clone())),
        ),
        Column::new(
            "recorded_policy_version".into(),
            text(&|r| r.recorded.as_ref().and_then(|c| c.policy_version.clone())),
        ),
        Column::new(
            "upstream".into(),
            text(&|r| r.upstream.map(|u| u.as_str().to_string())),
        ),
        Column::new(
            "latency_ms".into(),
            batch
                .iter()
                .map(|r| r.latency_ms)
                .collect::<Vec<Option<f64>>>(),
        ),
    ];
    debug_assert!(columns.iter().map(|c| c.name().as_str()).eq(COLUMNS));
    DataFrame::new_infer_height(columns)
}

fn schema(ts_as: TsAs) -> PolarsResult<Schema> {
    Ok(frame::<CallRecord>(&[], ts_as)?.schema().as_ref().clone())
}

/// Write records as CSV with a header row (via polars, in batches); returns how many.
pub fn write_csv<R: Borrow<CallRecord>>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let err = write_err("csv");
    let schema = schema(TsAs::Text).map_err(|e| err(&e))?;
    let mut w = CsvWriter::new(&mut *out)
        .include_header(true)
        .batched(&schema)
        .map_err(|e| err(&e))?;
    let n = batches(records, |b| w.write_batch(&frame(b, TsAs::Text)?)).map_err(|e| err(&e))?;
    w.finish().map_err(|e| err(&e))?;
    drop(w);
    out.flush().map_err(|e| err(&e))?;
    Ok(n)
}

/// Write records as Parquet (via polars, one row group per batch); returns how many.
pub fn write_parquet<R: Borrow<CallRecord>>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let err = write_err("parquet");
    let schema = schema(TsAs::Nanos).map_err(|e| err(&e))?;
    // Row groups encoded on this thread, one at a time as records come: parallel encoding held
    // more memory than it saved time.
    let mut w = TableWriter::new(&mut *out, &schema, &["ts"]).map_err(|e| err(&e))?;
    let n = batches(records, |b| w.write(&frame(b, TsAs::Nanos)?)).map_err(|e| err(&e))?;
    w.finish().map_err(|e| err(&e))?;
    drop(w);
    out.flush().map_err(|e| err(&e))?;
    Ok(n)
}

fn batches<R: Borrow<CallRecord>>(
    records: impl IntoIterator<Item = R>,
    mut write: impl FnMut(&[R]) -> PolarsResult<()>,
) -> PolarsResult<u64> {
    let mut buf: Vec<R> = Vec::with_capacity(BATCH_ROWS);
    let mut n = 0;
    for r in records {
        buf.push(r);
        if buf.len() == BATCH_ROWS {
            write(&buf)?;
            n += buf.len() as u64;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        write(&buf)?;
        n += buf.len() as u64;
    }
    Ok(n)
}
