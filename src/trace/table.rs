//! The tabular form of call records shared by the CSV and Parquet readers and writers.
//!
//! Columns: `ts`, `server`, `grant`, `session`, `tool`, `args` (JSON text of the object),
//! `arg_keys` (JSON text of a list of strings), `id`, `recorded_decision`, `recorded_rule`,
//! `recorded_message`, `recorded_policy_version`, `upstream`, `latency_ms`. A null cell (an
//! unquoted empty CSV cell) is an absent field; an empty string (`""` in CSV) is an empty
//! `server`, `grant`, `session` or `id`, as in JSONL, and absent elsewhere. Unknown columns are
//! ignored.

use polars::prelude::*;
use polars_arrow::array::Utf8ViewArray;
use polars_arrow::datatypes::ArrowDataType;
use serde_json::Value;

use super::intern::Interner;
use super::jsonl::{normalise_recorded, parse_decision};
use super::source::{LineError, UNKNOWN_SERVER};
use super::time::{kind_of, parse_ts_str};
use super::{
    Args, CallRecord, Nanos, Origin, RawArgs, Recorded, RecordedDecision, Upstream,
    raw_object_parses,
};
use crate::call::object_certainly_parses;

/// Every column, in the order the writers emit them.
pub(crate) const COLUMNS: [&str; 14] = [
    "ts",
    "server",
    "grant",
    "session",
    "tool",
    "args",
    "arg_keys",
    "id",
    "recorded_decision",
    "recorded_rule",
    "recorded_message",
    "recorded_policy_version",
    "upstream",
    "latency_ms",
];

/// Rows handed to readers and writers at a time.
pub(crate) const BATCH_ROWS: usize = 16 * 1024;

/// Bytes of text a batch of rows read or written at once holds, if fewer than [`BATCH_ROWS`]
/// rows do: calls carrying whole files would otherwise take gigabytes a batch.
pub(crate) const BATCH_BYTES: usize = 16 << 20;

enum TsCol {
    Text(TextCol),
    /// Integer epoch; `Some(scale)` when the column type names the unit (Datetime).
    Int(Int64Chunked, Option<i64>),
}

enum FloatCol {
    Text(TextCol),
    Num(Float64Chunked),
}

/// One batch's columns, typed for row access.
pub(crate) struct Batch {
    ts: Option<TsCol>,
    latency: Option<FloatCol>,
    text: Vec<Option<TextCol>>,
    height: usize,
}

/// A text column as one array: a cell is found by its index, not by a search through the
/// chunks polars read it in (which took a sixth of the time of reading CSV).
struct TextCol(Utf8ViewArray);

impl TextCol {
    fn new(c: &Column) -> PolarsResult<TextCol> {
        let c = c.cast(&DataType::String)?;
        let arr = c.str()?.rechunk().downcast_iter().next().cloned();
        Ok(TextCol(arr.unwrap_or_else(|| {
            Utf8ViewArray::new_empty(ArrowDataType::Utf8View)
        })))
    }

    /// The cell of `row`; `None` when null (or past the end).
    #[inline]
    fn get(&self, row: usize) -> Option<&str> {
        if row < self.0.len() {
            self.0.get(row)
        } else {
            None
        }
    }
}

// Rows look columns up by these indices into TEXT_COLS: a per-cell name search was a measurable
// share of Parquet reading.
const SERVER: usize = 0;
const GRANT: usize = 1;
const SESSION: usize = 2;
const TOOL: usize = 3;
const ARGS: usize = 4;
const ARG_KEYS: usize = 5;
const ID: usize = 6;
const RECORDED_DECISION: usize = 7;
const RECORDED_RULE: usize = 8;
const RECORDED_MESSAGE: usize = 9;
const RECORDED_POLICY_VERSION: usize = 10;
const UPSTREAM: usize = 11;

const TEXT_COLS: [&str; 12] = [
    "server",
    "grant",
    "session",
    "tool",
    "args",
    "arg_keys",
    "id",
    "recorded_decision",
    "recorded_rule",
    "recorded_message",
    "recorded_policy_version",
    "upstream",
];

impl Batch {
    /// Row `row`'s `latency_ms`.
    pub(crate) fn latency(&self, row: usize) -> Result<Option<f64>, LineError> {
        Ok(match &self.latency {
            None => None,
            Some(FloatCol::Num(c)) => c.get(row),
            Some(FloatCol::Text(c)) => match c.get(row).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(s.trim().parse::<f64>().map_err(|_| {
                    LineError::at(
                        "wrong type",
                        "latency_ms",
                        format!("expected a number, found {s:?}"),
                    )
                })?),
            },
        })
    }

    /// Type the columns of a polars batch; only a column polars cannot show as text fails.
    pub(crate) fn new(df: &DataFrame) -> PolarsResult<Batch> {
        let ts = match df.column("ts").ok() {
            None => None,
            Some(c) => Some(match c.dtype() {
                DataType::Datetime(unit, _) => {
                    let scale = match unit {
                        TimeUnit::Nanoseconds => 1,
                        TimeUnit::Microseconds => 1_000,
                        TimeUnit::Milliseconds => 1_000_000,
                    };
                    TsCol::Int(c.cast(&DataType::Int64)?.i64()?.clone(), Some(scale))
                }
                // Past i64::MAX a cast would leave the cell empty ("missing"): as text it is
                // reported out of range.
                DataType::UInt64 => TsCol::Text(TextCol::new(c)?),
                dt if dt.is_integer() => TsCol::Int(c.cast(&DataType::Int64)?.i64()?.clone(), None),
                _ => TsCol::Text(TextCol::new(c)?),
            }),
        };
        let latency = match df.column("latency_ms").ok() {
            None => None,
            Some(c) if c.dtype().is_primitive_numeric() => {
                Some(FloatCol::Num(c.cast(&DataType::Float64)?.f64()?.clone()))
            }
            Some(c) => Some(FloatCol::Text(TextCol::new(c)?)),
        };
        let text = TEXT_COLS
            .iter()
            .map(|name| match df.column(name).ok() {
                None => Ok(None),
                Some(c) => TextCol::new(c).map(Some),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok(Batch {
            ts,
            latency,
            text,
            height: df.height(),
        })
    }

    /// Read an integer `ts` as this many nanoseconds per unit (a column whose type named the
    /// unit) instead of by magnitude.
    pub(crate) fn with_ts_scale(mut self, scale: Option<i64>) -> Batch {
        if let (Some(k), Some(TsCol::Int(_, unit @ None))) = (scale, &mut self.ts) {
            *unit = Some(k);
        }
        self
    }

    pub(crate) fn height(&self) -> usize {
        self.height
    }

    /// Column `i` of [`TEXT_COLS`] at `row`; an empty cell is absent.
    fn text(&self, i: usize, row: usize) -> Option<&str> {
        self.name(i, row).filter(|s| !s.is_empty())
    }

    /// Column `i` of [`TEXT_COLS`] at `row` as a name: a null cell is absent, an empty one the
    /// empty name (as an empty string in JSONL; CSV writes it `""`).
    fn name(&self, i: usize, row: usize) -> Option<&str> {
        let col = self.text.get(i)?.as_ref()?;
        col.get(row)
    }

    /// The timestamp in `row`, or why it is bad or missing.
    fn ts(&self, row: usize) -> Result<Nanos, LineError> {
        let ts = match &self.ts {
            None => None,
            Some(TsCol::Text(c)) => match c.get(row).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => {
                    Some(parse_ts_str(s).map_err(|r| LineError::at("bad timestamp", "ts", r))?)
                }
            },
            Some(TsCol::Int(c, scale)) => match c.get(row) {
                None => None,
                Some(v) => Some(match scale {
                    Some(k) => v.checked_mul(*k).ok_or_else(|| {
                        LineError::at("bad timestamp", "ts", format!("{v} is out of range"))
                    })?,
                    None => super::time::parse_ts_value(&Value::from(v))
                        .map_err(|r| LineError::at("bad timestamp", "ts", r))?,
                }),
            },
        };
        ts.ok_or_else(|| LineError::missing("ts"))
    }

    /// Row `row` checked exactly as [`Batch::record`] checks it, with the fields a call batch
    /// keeps in columns, borrowed: the column readers build no record for a good row.
    pub(crate) fn row(&self, row: usize) -> Result<Row<'_>, LineError> {
        let ts = self.ts(row)?;
        let tool = (self.text(TOOL, row)).ok_or_else(|| LineError::missing("tool"))?;
        let args = self.arg_cell(row)?;
        let decision = match self.text(RECORDED_DECISION, row) {
            None => None,
            Some(d) => Some(parse_decision(d, "recorded_decision")?),
        };
        let upstream = match self.text(UPSTREAM, row) {
            None => None,
            Some(s) => Some(Upstream::parse(s).ok_or_else(|| {
                LineError::at(
                    "bad value",
                    "upstream",
                    format!("expected ok, error or tool_error, found {s:?}"),
                )
            })?),
        };
        let latency_ms = self.latency(row)?;
        Ok(Row {
            ts,
            server: self.name(SERVER, row).unwrap_or(UNKNOWN_SERVER),
            grant: self.name(GRANT, row),
            session: self.name(SESSION, row),
            tool,
            args,
            decision,
            upstream,
            latency_ms,
        })
    }

    /// The record in `row`, or why that row is bad.
    pub(crate) fn record(
        &self,
        row: usize,
        origin: Origin,
        names: &mut Interner,
    ) -> Result<CallRecord, LineError> {
        let r = self.row(row)?;
        let recorded = Recorded {
            decision: r.decision,
            rule: self.text(RECORDED_RULE, row).map(str::to_string),
            message: self.text(RECORDED_MESSAGE, row).map(str::to_string),
            policy_version: self.text(RECORDED_POLICY_VERSION, row).map(str::to_string),
        };
        Ok(CallRecord {
            ts: r.ts,
            server: names.get(r.server),
            grant: r.grant.map(|s| names.get(s)),
            session: r.session.map(|s| names.get(s)),
            tool: names.get(r.tool),
            args: r.args.into_args(),
            id: self.id(row),
            recorded: normalise_recorded(recorded),
            upstream: r.upstream,
            latency_ms: r.latency_ms,
            origin,
        })
    }

    /// The arguments in `row`, as [`Batch::record`] reads them.
    pub(crate) fn args(&self, row: usize) -> Result<Args, LineError> {
        self.arg_cell(row).map(ArgCell::into_args)
    }

    /// The request id in `row`.
    pub(crate) fn id(&self, row: usize) -> Option<String> {
        self.name(ID, row).map(str::to_string)
    }

    /// Whether `row` records anything of the gateway's decision.
    pub(crate) fn has_recorded(&self, row: usize) -> bool {
        let recorded = [
            RECORDED_DECISION,
            RECORDED_RULE,
            RECORDED_MESSAGE,
            RECORDED_POLICY_VERSION,
        ];
        recorded.iter().any(|&i| self.text(i, row).is_some())
    }

    /// The arguments in `row`, checked: argument text, else argument keys.
    fn arg_cell(&self, row: usize) -> Result<ArgCell<'_>, LineError> {
        Ok(match (self.text(ARGS, row), self.text(ARG_KEYS, row)) {
            // Checking the text is one JSON object is far cheaper than building its map, which
            // waits until a policy reads an argument.
            // The column readers' own check first: an object it vouches for passes both below.
            (Some(a), _) if a.starts_with('{') && object_certainly_parses(a.as_bytes()) => {
                ArgCell::Object(a)
            }
            (Some(a), _) if raw_object_parses(a) && is_json(a) => ArgCell::Object(a),
            // Parsed to be sure; kept as written (a number's spelling), as JSONL keeps it.
            (Some(a), _) => ArgCell::Built(match serde_json::from_str::<Value>(a) {
                Ok(Value::Object(_)) => Args::Raw(RawArgs::new(a.trim_matches(JSON_WS))),
                Ok(Value::Null) => Args::Unrecorded,
                Ok(_) => Args::NotObject(a.trim_matches(JSON_WS).into()),
                Err(e) => {
                    return Err(LineError::at(
                        "invalid JSON",
                        "args",
                        format!("invalid JSON: {e}"),
                    ));
                }
            }),
            (None, Some(k)) => ArgCell::Built(Args::Keys(parse_keys(k)?)),
            (None, None) => ArgCell::Built(Args::Unrecorded),
        })
    }
}

/// The whitespace JSON allows around a value.
pub(crate) const JSON_WS: &[char] = &[' ', '\t', '\n', '\r'];

/// A row of a [`Batch`] that [`Batch::row`] found good.
pub(crate) struct Row<'a> {
    pub(crate) ts: Nanos,
    pub(crate) server: &'a str,
    pub(crate) grant: Option<&'a str>,
    pub(crate) session: Option<&'a str>,
    pub(crate) tool: &'a str,
    pub(crate) args: ArgCell<'a>,
    pub(crate) decision: Option<RecordedDecision>,
    pub(crate) upstream: Option<Upstream>,
    pub(crate) latency_ms: Option<f64>,
}

/// A row's arguments: object text kept as it is, or what anything else was read into.
pub(crate) enum ArgCell<'a> {
    Object(&'a str),
    Built(Args),
}

impl ArgCell<'_> {
    pub(crate) fn into_args(self) -> Args {
        match self {
            ArgCell::Object(a) => Args::Raw(RawArgs::new(a)),
            ArgCell::Built(args) => args,
        }
    }
}

fn parse_keys(text: &str) -> Result<Vec<String>, LineError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| LineError::at("invalid JSON", "arg_keys", format!("invalid JSON: {e}")))?;
    let Value::Array(items) = v else {
        return Err(LineError::wrong_type("arg_keys", "a list of strings", &v));
    };
    items
        .into_iter()
        .map(|i| match i {
            Value::String(s) => Ok(s),
            other => Err(LineError::at(
                "wrong type",
                "arg_keys",
                format!(
                    "expected a list of strings, found an item that is {}",
                    kind_of(&other)
                ),
            )),
        })
        .collect()
}

/// Whether `text` is exactly one JSON value (surrounding whitespace allowed), checked without
/// building it.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod column_index_tests {
    use super::*;

    #[test]
    fn column_indices_name_their_columns() {
        let named = [
            (SERVER, "server"),
            (GRANT, "grant"),
            (SESSION, "session"),
            (TOOL, "tool"),
            (ARGS, "args"),
            (ARG_KEYS, "arg_keys"),
            (ID, "id"),
            (RECORDED_DECISION, "recorded_decision"),
            (RECORDED_RULE, "recorded_rule"),
            (RECORDED_MESSAGE, "recorded_message"),
            (RECORDED_POLICY_VERSION, "recorded_policy_version"),
            (UPSTREAM, "upstream"),
        ];
        for (i, name) in named {
            assert_eq!(TEXT_COLS[i], name);
        }
    }

    #[test]
    fn argument_text_is_kept_raw_only_when_it_is_certainly_an_object() {
        let df = df!(
            "ts" => [1_785_578_400_000_000_000i64; 5],
            "tool" => ["t"; 5],
            "args" => [r#"{"b":[1,2],"a":"x"}"#, r#"{"n":1e3}"#, "[1]", "{nope", r#"{"n":1e400}"#],
        );
        let batch = df
            .map_err(|e| e.to_string())
            .and_then(|df| Batch::new(&df).map_err(|e| e.to_string()));
        let Ok(batch) = batch else {
            panic!("batch: {batch:?}", batch = batch.err());
        };
        let mut names = Interner::default();
        let rows: Vec<_> = (0..5)
            .map(|i| {
                batch
                    .record(i, Origin::default(), &mut names)
                    .map(|r| r.args)
            })
            .collect();
        let want = serde_json::json!({"a": "x", "b": [1, 2]});
        assert!(matches!(&rows[0], Ok(Args::Raw(_))), "{:?}", rows[0]);
        assert_eq!(
            rows[0].as_ref().ok().and_then(Args::values),
            want.as_object()
        );
        // A number with an exponent: kept as written too.
        let thousand = serde_json::json!({"n": 1e3});
        assert!(matches!(&rows[1], Ok(Args::Raw(r)) if r.text().contains("1e3")));
        assert_eq!(
            rows[1].as_ref().ok().and_then(Args::values),
            thousand.as_object()
        );
        let blame = |i: usize| {
            rows[i]
                .as_ref()
                .err()
                .map(|e| (e.kind, e.field.clone(), e.reason.clone()))
        };
        // Arguments that are not an object are kept as their text.
        assert!(
            matches!(&rows[2], Ok(Args::NotObject(t)) if &**t == "[1]"),
            "{:?}",
            rows[2]
        );
        for i in [3, 4] {
            assert!(
                matches!(blame(i), Some(("invalid JSON", Some(f), _)) if f == "args"),
                "{:?}",
                blame(i)
            );
        }
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    /// polars reads CSV in several chunks per column: cells are found across them, nulls and
    /// empty cells stay apart.
    #[test]
    fn cells_are_read_across_chunks() {
        let part = |ts: &[&str], tool: &[Option<&str>], grant: &[Option<&str>]| {
            df!("ts" => ts, "tool" => tool, "grant" => grant).map_err(|e| e.to_string())
        };
        let a = part(
            &["2026-08-01T00:00:00Z", "2026-08-01T00:00:01Z"],
            &[Some("a"), Some("b")],
            &[Some("g1"), None],
        );
        let b = part(
            &["2026-08-01T00:00:02Z", "2026-08-01T00:00:03Z"],
            &[None, Some("d")],
            &[Some(""), Some("g4")],
        );
        let df = a.and_then(|mut a| {
            a.vstack_mut(&b?).map_err(|e| e.to_string())?;
            Ok(a)
        });
        let Ok(df) = df else {
            panic!("frame: {df:?}", df = df.err());
        };
        assert_eq!(df.column("tool").map(|c| c.n_chunks()).ok(), Some(2));
        let Ok(batch) = Batch::new(&df) else {
            panic!("batch");
        };
        let mut names = Interner::default();
        let got: Vec<_> = (0..4)
            .map(|i| match batch.record(i, Origin::default(), &mut names) {
                Ok(r) => Ok((
                    r.ts % 10_000_000_000,
                    r.tool.to_string(),
                    r.grant.map(|g| g.to_string()),
                )),
                Err(e) => Err((e.kind, e.field)),
            })
            .collect();
        assert_eq!(
            got,
            [
                Ok((0, "a".to_string(), Some("g1".to_string()))),
                Ok((1_000_000_000, "b".to_string(), None)),
                Err(("missing field", Some("tool".to_string()))),
                Ok((3_000_000_000, "d".to_string(), Some("g4".to_string()))),
            ]
        );
        // Past the end: no cell, as for a null one.
        let past = batch.record(4, Origin::default(), &mut names);
        assert_eq!(
            past.err().map(|e| (e.kind, e.field)),
            Some(("missing field", Some("ts".to_string())))
        );
    }
}
