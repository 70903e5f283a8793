//! Writers for mcpsim's own record formats (`mcpsim convert`).
//!
//! JSONL: one object per record, fields in the order of the call-record table, absent fields
//! omitted, `ts` as RFC 3339 UTC with the shortest exact fraction. CSV: the columns of
//! [`super::table`], `ts` as in JSONL, `args`/`arg_keys` as JSON text. Parquet: the same columns,
//! `ts` as a UTC timestamp in nanoseconds, `latency_ms` as float64, the rest as (large) strings
//! (see [`super::table_write`]).
//! The origin (file, line) is not written: converted records are new input.

use std::borrow::{Borrow, Cow};
use std::io::Write;
use std::sync::mpsc::{channel, sync_channel};

use polars::prelude::*;
use polars_arrow::array::Utf8ViewArray;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use serde::Serialize;
use serde_json::{Map, Value};

use super::table::{BATCH_BYTES, BATCH_ROWS, COLUMNS};
use super::table_write::{FrameWriter, Rows};
use super::time::format_ts_into;
use super::{Args, ArgsView, CallRecord, TraceError};
use super::{CsvRow, JsonObject};
use serde_json::value::RawValue;

/// Recorded arguments as written: the text they were read from when it is one line (so that
/// numbers keep their exact spelling: a big integer or `1.10` would not survive a float), an
/// object, or the JSON text of arguments that are not one.
#[derive(Serialize)]
#[serde(untagged)]
enum JsonArgs<'a> {
    Text(&'a RawValue),
    Object(&'a Map<String, Value>),
}

/// [`JsonArgs`] for `args`, when they are values. Raw text is written as read, without
/// building its map: [`RawArgs`](crate::call::RawArgs) only ever holds text that parses into
/// one.
fn json_args(args: &Args) -> Option<JsonArgs<'_>> {
    let text = match args {
        Args::Raw(raw) if raw.verbatim() => raw.text(),
        Args::NotObject(text) => text,
        Args::Raw(raw) => return raw.map().map(JsonArgs::Object),
        Args::Values(m) => return Some(JsonArgs::Object(m)),
        Args::Keys(_) | Args::Unrecorded => return None,
    };
    if !text.contains(['\n', '\r']) {
        if let Ok(v) = serde_json::from_str::<&RawValue>(text) {
            return Some(JsonArgs::Text(v));
        }
    }
    match args.view() {
        ArgsView::Values(m) => Some(JsonArgs::Object(m)),
        ArgsView::NotObject(text) => serde_json::from_str(text).ok().map(JsonArgs::Text),
        _ => None,
    }
}

/// The JSON text of `args`, when they are values (see [`JsonArgs`]).
fn args_text(args: &Args) -> Option<Cow<'_, str>> {
    if let Args::Raw(raw) = args
        && raw.verbatim()
    {
        // Checked when read: the text as it is, but for the whitespace after it that a
        // parse would leave out. (Byte by byte: spaces, tabs and line ends are ASCII.)
        let text = raw.text();
        let end = (text.bytes())
            .rposition(|b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let text = &text[..end];
        if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
            return Some(Cow::Borrowed(text));
        }
    }
    match json_args(args)? {
        JsonArgs::Text(v) => Some(Cow::Borrowed(v.get())),
        JsonArgs::Object(m) => serde_json::to_string(m).ok().map(Cow::Owned),
    }
}

/// The recorded top-level keys, when only they were recorded.
fn arg_keys(args: &Args) -> Option<&[String]> {
    match args {
        Args::Keys(k) => Some(k),
        _ => None,
    }
}

fn write_err(what: &'static str) -> impl Fn(&(dyn std::error::Error + 'static)) -> TraceError {
    move |e| TraceError::Write {
        what,
        reason: e.to_string(),
        broken_pipe: super::is_broken_pipe(e),
    }
}

/// `r` as one mcpsim JSONL object (no line end): the fields of the call-record table in its
/// order, absent ones left out.
fn jsonl_line(r: &CallRecord, out: &mut Vec<u8>) {
    let mut o = JsonObject::new(out);
    let mut ts = String::with_capacity(32);
    format_ts_into(&mut ts, r.ts);
    o.str(b"\"ts\":", &ts);
    o.str(b"\"server\":", &r.server);
    if let Some(g) = &r.grant {
        o.str(b"\"grant\":", g);
    }
    if let Some(s) = &r.session {
        o.str(b"\"session\":", s);
    }
    o.str(b"\"tool\":", &r.tool);
    match json_args(&r.args) {
        Some(JsonArgs::Text(v)) => o.key(b"\"args\":").extend_from_slice(v.get().as_bytes()),
        Some(JsonArgs::Object(m)) => o.value(b"\"args\":", m),
        None => {}
    }
    if let Some(keys) = arg_keys(&r.args) {
        o.value(b"\"arg_keys\":", &keys);
    }
    if let Some(id) = &r.id {
        o.str(b"\"id\":", id);
    }
    if let Some(c) = &r.recorded {
        let mut inner = JsonObject::new(o.key(b"\"recorded\":"));
        if let Some(d) = c.decision {
            inner.str(b"\"decision\":", d.as_str());
        }
        for (key, text) in [
            (&b"\"rule\":"[..], &c.rule),
            (b"\"message\":", &c.message),
            (b"\"policy_version\":", &c.policy_version),
        ] {
            if let Some(t) = text {
                inner.str(key, t);
            }
        }
        inner.end();
    }
    if let Some(u) = r.upstream {
        o.str(b"\"upstream\":", u.as_str());
    }
    if let Some(ms) = r.latency_ms {
        o.value(b"\"latency_ms\":", &ms);
    }
    o.end();
}

/// Write records as mcpsim JSONL; returns how many were written.
pub fn write_jsonl<R: Borrow<CallRecord> + Send>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    write_lines(records, out, "jsonl", Vec::new(), |r, text| {
        jsonl_line(r, text);
        text.push(b'\n');
    })
}

/// `r` as one CSV row of the call-record table's columns (with its line end).
fn csv_line(r: &CallRecord, out: &mut Vec<u8>, ts: &mut String) {
    let mut row = CsvRow::new(out);
    ts.clear();
    format_ts_into(ts, r.ts);
    row.text(Some(ts));
    row.text(Some(&r.server));
    row.text(r.grant.as_deref());
    row.text(r.session.as_deref());
    row.text(Some(&r.tool));
    row.text(args_text(&r.args).as_deref());
    let keys = arg_keys(&r.args).and_then(|k| serde_json::to_string(k).ok());
    row.text(keys.as_deref());
    row.text(r.id.as_deref());
    let recorded = r.recorded.as_ref();
    row.text(recorded.and_then(|c| c.decision).map(|d| d.as_str()));
    row.text(recorded.and_then(|c| c.rule.as_deref()));
    row.text(recorded.and_then(|c| c.message.as_deref()));
    row.text(recorded.and_then(|c| c.policy_version.as_deref()));
    row.text(r.upstream.map(|u| u.as_str()));
    row.float(r.latency_ms);
    row.end();
}

/// Write records as CSV with a header row; returns how many were written.
pub fn write_csv<R: Borrow<CallRecord> + Send>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let mut header = Vec::new();
    CsvRow::header(&COLUMNS, &mut header);
    let mut ts = String::with_capacity(32);
    write_lines(records, out, "csv", header, move |r, text| {
        csv_line(r, text, &mut ts);
    })
}

/// Records gathered for [`write_lines`] at once, at most.
const LINE_BATCH_ROWS: usize = 1024;

/// Bytes of arguments records gathered for [`write_lines`] hold at once, if fewer than
/// [`LINE_BATCH_ROWS`] do.
const LINE_BATCH_BYTES: usize = 1 << 20;

/// Write `header`, then each record as `line` writes it (line end included). Records are
/// handed over in batches to a thread of their own that writes their text and drops them,
/// while the caller's thread reads the next ones (reading a record costs about as much as
/// writing it); the caller's thread hands the text to `out`. At most three batches are in
/// memory. Returns how many records were written; `what` names the format in errors.
fn write_lines<R: Borrow<CallRecord> + Send>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
    what: &'static str,
    header: Vec<u8>,
    mut line: impl FnMut(&CallRecord, &mut Vec<u8>) + Send,
) -> Result<u64, TraceError> {
    let err = write_err(what);
    out.write_all(&header).map_err(|e| err(&e))?;
    let n = std::thread::scope(|scope| -> std::io::Result<u64> {
        let (batches, to_write) = sync_channel::<Vec<R>>(1);
        let (texts, written) = channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name(format!("write-{what}"))
            .spawn_scoped(scope, move || {
                for batch in to_write {
                    let mut text = Vec::with_capacity(batch.len() * 256);
                    for r in &batch {
                        line(r.borrow(), &mut text);
                    }
                    drop(batch);
                    if texts.send(text).is_err() {
                        return;
                    }
                }
            })?;
        // Ends early (the writing thread sees its channel close) when `out` fails.
        let n = batches_of(records, LINE_BATCH_ROWS, LINE_BATCH_BYTES, |batch| {
            if batches.send(batch).is_err() {
                return Err(std::io::Error::other("the writing thread stopped"));
            }
            written.try_iter().try_for_each(|text| out.write_all(&text))
        })?;
        drop(batches);
        written.iter().try_for_each(|text| out.write_all(&text))?;
        Ok(n)
    })
    .map_err(|e| err(&e))?;
    out.flush().map_err(|e| err(&e))?;
    Ok(n)
}

/// A column of a batch of rows: built by polars, or (names) an Arrow dictionary.
enum Built {
    Column(Column),
    Array(ArrayRef),
}

/// The columns of `batch`, `ts` as nanoseconds; with `dictionaries`, the columns of names
/// (server, grant, session, tool, upstream, recorded decision) as dictionaries (see [`names`]).
fn columns(batch: &[&CallRecord], dictionaries: bool) -> Vec<Built> {
    // Text columns are built from borrowed cells: no string per cell.
    let text = |name: &str, f: &dyn Fn(&CallRecord) -> Option<&str>| -> Built {
        Built::Column(
            StringChunked::from_iter_options(name.into(), batch.iter().map(|r| f(r))).into_column(),
        )
    };
    let name = |name: &str, f: &dyn Fn(&CallRecord) -> Option<&str>| -> Built {
        if dictionaries {
            Built::Array(names(batch, f))
        } else {
            text(name, f)
        }
    };
    let ts = Column::new(
        "ts".into(),
        batch.iter().map(|r| r.ts).collect::<Vec<i64>>(),
    );
    let args =
        StringChunked::from_iter_options("args".into(), batch.iter().map(|r| args_text(&r.args)))
            .into_column();
    let keys: Vec<Option<String>> = batch
        .iter()
        .map(|r| arg_keys(&r.args).and_then(|k| serde_json::to_string(k).ok()))
        .collect();
    vec![
        Built::Column(ts),
        name("server", &|r| Some(&r.server)),
        name("grant", &|r| r.grant.as_deref()),
        name("session", &|r| r.session.as_deref()),
        name("tool", &|r| Some(&r.tool)),
        Built::Column(args),
        Built::Column(Column::new("arg_keys".into(), keys)),
        text("id", &|r| r.id.as_deref()),
        name("recorded_decision", &|r| {
            r.recorded
                .as_ref()
                .and_then(|c| c.decision)
                .map(|d| d.as_str())
        }),
        text("recorded_rule", &|r| {
            r.recorded.as_ref().and_then(|c| c.rule.as_deref())
        }),
        text("recorded_message", &|r| {
            r.recorded.as_ref().and_then(|c| c.message.as_deref())
        }),
        text("recorded_policy_version", &|r| {
            r.recorded
                .as_ref()
                .and_then(|c| c.policy_version.as_deref())
        }),
        name("upstream", &|r| r.upstream.map(|u| u.as_str())),
        Built::Column(Column::new(
            "latency_ms".into(),
            batch
                .iter()
                .map(|r| r.latency_ms)
                .collect::<Vec<Option<f64>>>(),
        )),
    ]
}

/// A column of names as an Arrow dictionary of string views, its keys found by where each name
/// is stored (a trace's records share one copy of each name) and only then by its text: polars'
/// Parquet encoder then need not estimate how many values are distinct nor hash them all again.
/// The dictionary is the one that encoder makes (distinct values in order of first
/// appearance), and like it, a column whose rows are nearly all distinct (more than three in
/// four, of more than 128) is left plain instead.
fn names(batch: &[&CallRecord], f: &dyn Fn(&CallRecord) -> Option<&str>) -> ArrayRef {
    use polars_arrow::array::{DictionaryArray, MutableBinaryViewArray, PrimitiveArray};
    use polars_arrow::bitmap::MutableBitmap;
    use rustc_hash::FxHashMap;

    let mut by_place: FxHashMap<(usize, usize), u32> = FxHashMap::default();
    let mut by_text: FxHashMap<&str, u32> = FxHashMap::default();
    let mut values = MutableBinaryViewArray::<str>::new();
    let mut keys = Vec::with_capacity(batch.len());
    let mut valid = MutableBitmap::with_capacity(batch.len());
    for r in batch {
        let Some(name) = f(r) else {
            keys.push(0);
            valid.push(false);
            continue;
        };
        let key = *by_place
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert_with(|| {
                *by_text.entry(name).or_insert_with(|| {
                    values.push_value(name);
                    (values.len() - 1) as u32
                })
            });
        keys.push(key);
        valid.push(true);
    }
    let plain = || -> ArrayRef {
        let plain: Utf8ViewArray =
            MutableBinaryViewArray::<str>::from_iter(batch.iter().map(|r| f(r))).into();
        plain.boxed()
    };
    let valid = (valid.unset_bits() > 0).then(|| valid.freeze());
    if batch.len() > 128 && values.len() * 4 > batch.len() * 3 {
        return plain();
    }
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), valid);
    let values: Utf8ViewArray = values.into();
    let dtype = ArrowDataType::Dictionary(
        IntegerType::UInt32,
        Box::new(ArrowDataType::Utf8View),
        false,
    );
    // Every key was handed out for a value pushed.
    match DictionaryArray::try_new(dtype, keys, values.boxed()) {
        Ok(d) => d.boxed(),
        Err(_) => plain(),
    }
}

/// `batch` as a data frame of plain columns.
fn frame(batch: &[&CallRecord]) -> PolarsResult<DataFrame> {
    let columns: Vec<Column> = columns(batch, false)
        .into_iter()
        .filter_map(|c| match c {
            Built::Column(c) => Some(c),
            Built::Array(_) => None,
        })
        .collect();
    debug_assert!(columns.iter().map(|c| c.name().as_str()).eq(COLUMNS));
    DataFrame::new_infer_height(columns)
}

/// The schema of the Parquet table: the call-record table's columns.
fn schema() -> PolarsResult<Schema> {
    Ok(frame(&[])?.schema().as_ref().clone())
}

/// The rows of `batch` as Arrow arrays, names as dictionaries.
fn arrays<R: Borrow<CallRecord>>(batch: &[R]) -> Rows {
    let batch: Vec<&CallRecord> = batch.iter().map(Borrow::borrow).collect();
    let arrays = columns(&batch, true)
        .into_iter()
        .map(|c| match c {
            Built::Column(c) => c
                .as_materialized_series()
                .rechunk()
                .to_arrow(0, CompatLevel::newest()),
            Built::Array(a) => a,
        })
        .collect();
    Rows::Arrays {
        rows: batch.len(),
        arrays,
    }
}

/// Write records as Parquet (via polars, one row group per batch of [`BATCH_ROWS`], encoded on
/// a thread of its own); returns how many.
pub fn write_parquet<R: Borrow<CallRecord>>(
    records: impl IntoIterator<Item = R>,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let err = write_err("parquet");
    let schema = schema().map_err(|e| err(&e))?;
    let mut w = FrameWriter::new(&schema, true).map_err(|e| err(&e))?;
    let n = batches_of(records, BATCH_ROWS, BATCH_BYTES, |b| {
        w.write(arrays(&b), &mut *out)
    })
    .map_err(|e| err(&e))?;
    w.finish(&mut *out).map_err(|e| err(&e))?;
    out.flush().map_err(|e| err(&e))?;
    Ok(n)
}

/// Records handed to `write` in batches of `rows` or fewer: as many as hold about `bytes` of
/// arguments (calls carrying whole files would otherwise buffer gigabytes, and a Parquet row
/// group as large). Returns how many.
fn batches_of<R: Borrow<CallRecord>, E>(
    records: impl IntoIterator<Item = R>,
    rows: usize,
    bytes: usize,
    mut write: impl FnMut(Vec<R>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut batch: Vec<R> = Vec::with_capacity(rows);
    let (mut n, mut held) = (0, 0);
    for r in records {
        held += r.borrow().args.text_len();
        batch.push(r);
        if batch.len() == rows || held >= bytes {
            n += batch.len() as u64;
            write(std::mem::replace(&mut batch, Vec::with_capacity(rows)))?;
            held = 0;
        }
    }
    if !batch.is_empty() {
        n += batch.len() as u64;
        write(batch)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::generate::{GenConfig, Generator};
    use crate::trace::time::format_ts;
    use crate::trace::{Origin, RawArgs, Recorded, RecordedDecision, Upstream};

    // The reference for [`jsonl_line`]: a record as serde_json writes its derived `Serialize`.
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

    fn by_serde(r: &CallRecord) -> String {
        let rec = JsonRecord {
            ts: format_ts(r.ts),
            server: &r.server,
            grant: r.grant.as_deref(),
            session: r.session.as_deref(),
            tool: &r.tool,
            args: json_args(&r.args),
            arg_keys: arg_keys(&r.args),
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
        serde_json::to_string(&rec).expect("serialises")
    }

    /// Arguments of every kind, from `text` and `n`.
    fn args_of(kind: u8, text: &str, n: f64) -> Args {
        let object = serde_json::json!({ "p": text, "n": n, "l": [1, null, true] });
        match kind {
            0 => Args::Unrecorded,
            1 => Args::Keys(vec![text.to_string(), "b".into()]),
            2 => Args::Values(object.as_object().cloned().unwrap_or_default()),
            3 => Args::Raw(RawArgs::new(object.to_string())),
            4 => Args::Raw(RawArgs::normalised(object.to_string())),
            5 => Args::Raw(RawArgs::new(" { \"p\" : 1e2 ,\n\"q\":1.10}\t")),
            6 => Args::NotObject(serde_json::to_string(&[text]).unwrap_or_default().into()),
            _ => Args::NotObject("12".into()),
        }
    }

    proptest! {
        /// Every record reads, byte for byte, as serde_json writes it.
        #[test]
        fn jsonl_lines_are_written_as_serde_json_writes_them(
            texts in prop::collection::vec("(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}])*", 1..8),
            ts in any::<i64>(),
            present in any::<[bool; 9]>(),
            kind in 0u8..8,
            n in prop_oneof![any::<f64>(), (0u32..1000).prop_map(f64::from)],
            latency in prop_oneof![any::<f64>(), (0u32..100000).prop_map(|t| f64::from(t) / 10.0)],
        ) {
            let t = |i: usize| texts[i % texts.len()].clone();
            let o = |i: usize| present[i].then(|| t(i));
            let r = CallRecord {
                ts,
                server: t(0).into(),
                grant: o(1).map(Into::into),
                session: o(2).map(Into::into),
                tool: t(3).into(),
                args: args_of(kind, &t(4), n),
                id: o(5),
                recorded: present[6].then(|| Recorded {
                    decision: present[7].then_some(RecordedDecision::Throttle),
                    rule: o(7),
                    message: o(8),
                    policy_version: o(4),
                }),
                upstream: present[7].then_some(Upstream::ToolError),
                latency_ms: present[8].then_some(latency),
                origin: Origin::default(),
            };
            let mut out = Vec::new();
            jsonl_line(&r, &mut out);
            prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), by_serde(&r));
        }
    }

    /// Parquet of `records` with the columns of names as [`names`] builds them, and as polars'
    /// encoder finds them in plain text columns.
    fn both_ways(records: &[CallRecord]) -> (Vec<u8>, Vec<u8>) {
        let write = |dictionaries: bool| -> Vec<u8> {
            let schema = schema().unwrap();
            let mut w = FrameWriter::new(&schema, false).unwrap();
            let mut out = Vec::new();
            for batch in records.chunks(1_000) {
                let rows = if dictionaries {
                    arrays(batch)
                } else {
                    let batch: Vec<&CallRecord> = batch.iter().collect();
                    Rows::Frame(frame(&batch).unwrap())
                };
                assert!(matches!(rows, Rows::Arrays { .. }) == dictionaries);
                w.write(rows, &mut out).unwrap();
            }
            w.finish(&mut out).unwrap();
            out
        };
        (write(true), write(false))
    }

    /// The dictionaries of names are the ones polars' encoder makes (values in order of first
    /// appearance, nulls apart, statistics), and a column of nearly distinct names is left
    /// plain as it leaves it: the files are the same bytes. Names are found by their text
    /// when records do not share them.
    #[test]
    fn names_as_dictionaries_write_the_bytes_of_polars_own_encoding() {
        let config = GenConfig {
            calls: 6_000,
            grants: 30,
            session_calls: Some(3),
            ..GenConfig::default()
        };
        let mut records: Vec<CallRecord> = Generator::new(&config).unwrap().collect();
        for (i, r) in records.iter_mut().enumerate() {
            match i / 1_000 {
                // Every session its own: left plain.
                1 => r.session = Some(format!("own-{i}").into()),
                // Nulls, and names of their own copies (found by text).
                2 => {
                    if i % 3 == 0 {
                        r.grant = None;
                        r.session = None;
                    }
                    r.server = r.server.to_string().into();
                    r.tool = format!("{}", r.tool).into();
                }
                // Recorded decisions and upstream outcomes, some absent.
                3 => {
                    r.recorded = (i % 4 != 0).then(|| Recorded {
                        decision: Some([RecordedDecision::Allow, RecordedDecision::Deny][i % 2]),
                        ..Recorded::default()
                    });
                    r.upstream = [None, Some(Upstream::Ok), Some(Upstream::Error)][i % 3];
                }
                // Seven distinct sessions in eight: plain.
                4 => r.session = Some(format!("s-{}", if i % 8 == 0 { i - 1 } else { i }).into()),
                // Two in three: a dictionary.
                5 => r.session = Some(format!("s-{}", i / 3 * 2 + (i % 3).min(1)).into()),
                _ => {}
            }
        }
        let (dictionaries, polars) = both_ways(&records);
        assert!(dictionaries == polars, "the files differ");
        // A batch of 128 rows or fewer gets a dictionary however distinct its names.
        let (dictionaries, polars) = both_ways(&records[1_000..1_100]);
        assert!(dictionaries == polars, "the files of 100 rows differ");
    }

    /// Records of many batches, some carrying large arguments (a batch ends early), written
    /// on the writing thread: the text of each record in order, as written one by one.
    #[test]
    fn lines_of_many_batches_come_out_in_order() {
        let config = GenConfig {
            calls: 5_000,
            ..GenConfig::default()
        };
        let mut records: Vec<CallRecord> = Generator::new(&config).unwrap().collect();
        let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(300_000));
        for r in records.iter_mut().step_by(700) {
            r.args = Args::Raw(RawArgs::new(big.as_str()).checked());
        }
        let mut expected = Vec::new();
        let mut ts = String::new();
        CsvRow::header(&COLUMNS, &mut expected);
        for r in &records {
            csv_line(r, &mut expected, &mut ts);
        }
        let mut out = Vec::new();
        assert_eq!(write_csv(&records, &mut out).unwrap(), 5_000);
        assert!(out == expected, "CSV differs");
        let mut expected = Vec::new();
        for r in &records {
            jsonl_line(r, &mut expected);
            expected.push(b'\n');
        }
        let mut out = Vec::new();
        assert_eq!(write_jsonl(records, &mut out).unwrap(), 5_000);
        assert!(out == expected, "JSON lines differ");
    }

    /// A destination that fails after some bytes: the error names the format, and the writing
    /// thread stops with the caller.
    #[test]
    fn a_failing_destination_stops_the_writing() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "closed",
                    ));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let config = GenConfig {
            calls: 20_000,
            ..GenConfig::default()
        };
        let records = Generator::new(&config).unwrap();
        let err = write_csv(records, &mut Full(100_000)).unwrap_err();
        assert_eq!(err.to_string(), "writing csv: closed");
        assert!(err.is_broken_pipe());
        let records = Generator::new(&config).unwrap();
        let err = write_jsonl(records, &mut Full(0)).unwrap_err();
        assert!(err.is_broken_pipe(), "{err}");
    }
}
