//! Per-call formats: JSON lines, CSV and Parquet, all streamed: JSON and CSV lines are written
//! into a buffer handed to the destination every [`BYTES_PER_WRITE`], Parquet rows are collected
//! into columns and written by polars every [`ROWS_PER_WRITE`] rows (a row group each), so
//! memory does not grow with the trace.

use std::io::{self, Write};

use polars::prelude::*;
use polars_arrow::array::{BooleanArray, MutableBinaryViewArray, PrimitiveArray};

use super::OutputFormat;
use super::model::{ArgsJson, CallInfo, CallRow, Cause, DiffRow, Outcome};
use crate::trace::table_write::{FrameWriter, Rows};
use crate::trace::{CsvRow, parse_ts_str};

/// Receives one row per call and writes it in a per-call format.
pub trait RowSink {
    /// One call of a simulation.
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()>;
    /// One call of a diff.
    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()>;
    /// Write whatever was collected.
    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()>;
}

/// Which report the rows belong to; it fixes the columns of CSV and Parquet output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// One decision per call.
    Simulate,
    /// Two decisions and a cause per call.
    Diff,
}

/// The sink for a per-call format; `None` for summary formats.
pub fn row_sink(format: OutputFormat, kind: RowKind) -> Option<Box<dyn RowSink>> {
    match format {
        OutputFormat::Jsonl => Some(Box::new(JsonLines::default())),
        OutputFormat::Csv => Some(Box::new(CsvLines::new(kind))),
        OutputFormat::Parquet => Some(Box::new(Frame::new(kind))),
        _ => None,
    }
}

/// Rows written into a buffer of their own ([`super::json_row`]) and handed to the destination
/// in one write per [`BYTES_PER_WRITE`].
#[derive(Default)]
struct JsonLines(Vec<u8>);

/// Bytes of JSON or CSV lines handed to the destination at once.
const BYTES_PER_WRITE: usize = 1 << 16;

/// Hand `buf` to `out` once it holds [`BYTES_PER_WRITE`].
fn flush_full(buf: &mut Vec<u8>, out: &mut dyn Write) -> io::Result<()> {
    if buf.len() >= BYTES_PER_WRITE {
        out.write_all(buf)?;
        buf.clear();
    }
    Ok(())
}

impl RowSink for JsonLines {
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()> {
        super::json_row::call_row(row, &mut self.0);
        self.0.push(b'\n');
        flush_full(&mut self.0, out)
    }

    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()> {
        super::json_row::diff_row(row, &mut self.0);
        self.0.push(b'\n');
        flush_full(&mut self.0, out)
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.0)
    }
}

/// One value of a row, borrowed from the row.
enum Cell<'a> {
    Int(u64),
    Text(Option<&'a str>),
    Float(Option<f64>),
    Bool(bool),
}

/// One column of Parquet rows, filled row by row as the Arrow array it is written from.
enum Col {
    Int(Vec<u64>),
    /// The call's instant (nanoseconds): Parquet has a timestamp type.
    Ts(Vec<Option<i64>>),
    Text(MutableBinaryViewArray<str>),
    Float(Vec<Option<f64>>),
    Bool(Vec<bool>),
}

impl Col {
    fn dtype(&self) -> DataType {
        match self {
            Col::Int(_) => DataType::UInt64,
            Col::Ts(_) => DataType::Int64,
            Col::Text(_) => DataType::String,
            Col::Float(_) => DataType::Float64,
            Col::Bool(_) => DataType::Boolean,
        }
    }

    /// The array of the rows so far; the column is left empty.
    fn take(&mut self) -> ArrayRef {
        match self {
            Col::Int(v) => PrimitiveArray::from_vec(std::mem::take(v)).boxed(),
            Col::Ts(v) => PrimitiveArray::<i64>::from(std::mem::take(v)).boxed(),
            Col::Text(v) => std::mem::take(v).freeze().boxed(),
            Col::Float(v) => PrimitiveArray::<f64>::from(std::mem::take(v)).boxed(),
            Col::Bool(v) => BooleanArray::from_slice(std::mem::take(v)).boxed(),
        }
    }
}

const CALL_COLUMNS: [&str; 11] = [
    "index", "ts", "server", "grant", "session", "tool", "id", "origin", "recorded", "upstream",
    "args",
];

const OUTCOME_COLUMNS: [&str; 11] = [
    "decision",
    "rule",
    "message",
    "counter",
    "counter_key",
    "window_start",
    "retry_after",
    "used",
    "max",
    "increment",
    "approval_required",
];

fn call_cells(c: &CallInfo) -> impl Iterator<Item = Cell<'_>> {
    [
        Cell::Int(c.index),
        Cell::Text(Some(&c.ts)),
        Cell::Text(Some(&c.server)),
        Cell::Text(c.grant.as_deref()),
        Cell::Text(c.session.as_deref()),
        Cell::Text(Some(&c.tool)),
        Cell::Text(c.id.as_deref()),
        Cell::Text(Some(&c.origin)),
        Cell::Text(c.recorded.as_deref()),
        Cell::Text(c.upstream.as_deref()),
        Cell::Text(c.args.as_ref().map(ArgsJson::as_str)),
    ]
    .into_iter()
}

fn outcome_cells(o: &Outcome) -> impl Iterator<Item = Cell<'_>> {
    let numbers = o.throttle.as_ref().map(|t| (t.used, t.max, t.increment));
    let t = o.throttle.as_ref();
    [
        Cell::Text(Some(o.decision.as_str())),
        Cell::Text(Some(&o.rule)),
        Cell::Text(Some(&o.message)),
        Cell::Text(t.map(|t| t.counter.as_str())),
        Cell::Text(t.map(|t| t.key.as_str())),
        Cell::Text(t.map(|t| t.window_start.as_str())),
        Cell::Text(t.map(|t| t.retry_after.as_str())),
        Cell::Float(numbers.map(|n| n.0)),
        Cell::Float(numbers.map(|n| n.1)),
        Cell::Float(numbers.map(|n| n.2)),
        Cell::Bool(o.approval_required),
    ]
    .into_iter()
}

/// The columns of a report's rows, fixed by its [`RowKind`].
fn column_names(kind: RowKind) -> Vec<String> {
    let mut names: Vec<String> = CALL_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    let prefixes: &[&str] = match kind {
        RowKind::Simulate => &[""],
        RowKind::Diff => &["base_", "candidate_"],
    };
    for prefix in prefixes {
        names.extend(OUTCOME_COLUMNS.iter().map(|c| format!("{prefix}{c}")));
    }
    if kind == RowKind::Diff {
        names.push("cause".to_owned());
    }
    names
}

/// The cells of a simulation's row.
fn simulate_cells(row: &CallRow) -> impl Iterator<Item = Cell<'_>> {
    call_cells(&row.call).chain(outcome_cells(&row.outcome))
}

/// The cells of a diff's row.
fn diff_cells(row: &DiffRow) -> impl Iterator<Item = Cell<'_>> {
    let cause = row.cause.map(|c| match c {
        Cause::Direct => "direct",
        Cause::KnockOn => "knock-on",
    });
    call_cells(&row.call)
        .chain(outcome_cells(&row.base))
        .chain(outcome_cells(&row.candidate))
        .chain(std::iter::once(Cell::Text(cause)))
}

/// CSV lines ([`CsvRow`]), the header first, written into a buffer of their own and handed to
/// the destination in one write per [`BYTES_PER_WRITE`]. An empty replay still writes the
/// header.
struct CsvLines {
    buf: Vec<u8>,
}

impl CsvLines {
    fn new(kind: RowKind) -> CsvLines {
        let mut buf = Vec::with_capacity(BYTES_PER_WRITE + 4096);
        CsvRow::header(&column_names(kind), &mut buf);
        CsvLines { buf }
    }

    fn push<'a>(
        &mut self,
        cells: impl Iterator<Item = Cell<'a>>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut row = CsvRow::new(&mut self.buf);
        for cell in cells {
            match cell {
                Cell::Int(n) => row.int(n),
                Cell::Text(t) => row.text(t),
                Cell::Float(x) => row.float(x),
                Cell::Bool(b) => row.bool(b),
            }
        }
        row.end();
        flush_full(&mut self.buf, out)
    }
}

impl RowSink for CsvLines {
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()> {
        self.push(simulate_cells(row), out)
    }

    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()> {
        self.push(diff_cells(row), out)
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.buf)
    }
}

/// Rows collected before they are written.
const ROWS_PER_WRITE: usize = 1 << 14;

/// Bytes of text collected before the rows are written, if fewer than [`ROWS_PER_WRITE`].
const WRITE_BYTES: usize = 16 << 20;

/// Column-wise buffers for Parquet, handed to the table writer every [`ROWS_PER_WRITE`] rows
/// (a row group) and at the end. The columns are fixed by the [`RowKind`], so an empty replay
/// still writes the schema.
struct Frame {
    names: Vec<String>,
    cols: Vec<Col>,
    rows: usize,
    /// The table being written, once rows were.
    writer: Option<FrameWriter>,
}

impl Frame {
    fn new(kind: RowKind) -> Frame {
        let names = column_names(kind);
        // Types follow the cells: the first call column is the index, outcomes end in three
        // numbers and a flag.
        let cols = names
            .iter()
            .map(|n| match n.as_str() {
                "index" => Col::Int(Vec::new()),
                "ts" => Col::Ts(Vec::new()),
                n if n.ends_with("used") || n.ends_with("max") || n.ends_with("increment") => {
                    Col::Float(Vec::new())
                }
                n if n.ends_with("approval_required") => Col::Bool(Vec::new()),
                _ => Col::Text(MutableBinaryViewArray::new()),
            })
            .collect();
        Frame {
            names,
            cols,
            rows: 0,
            writer: None,
        }
    }

    fn push<'a>(
        &mut self,
        cells: impl Iterator<Item = Cell<'a>>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        for (col, cell) in self.cols.iter_mut().zip(cells) {
            match (col, cell) {
                (Col::Int(v), Cell::Int(x)) => v.push(x),
                (Col::Ts(v), Cell::Text(x)) => v.push(x.and_then(|t| parse_ts_str(t).ok())),
                (Col::Text(v), Cell::Text(x)) => v.push(x),
                (Col::Float(v), Cell::Float(x)) => v.push(x),
                (Col::Bool(v), Cell::Bool(x)) => v.push(x),
                _ => unreachable!("cells follow the column layout of Frame::new"),
            }
        }
        self.rows += 1;
        // Also every WRITE_BYTES of text: calls listed with their arguments can be tens of
        // kilobytes each, and a Parquet row group is what one write holds.
        if self.rows == ROWS_PER_WRITE || self.text_bytes() >= WRITE_BYTES {
            self.write(out)?;
        }
        Ok(())
    }

    /// Bytes of text collected so far.
    fn text_bytes(&self) -> usize {
        (self.cols.iter())
            .map(|c| match c {
                Col::Text(t) => t.total_bytes_len(),
                _ => 0,
            })
            .sum()
    }

    /// Write the rows collected so far as a row group.
    fn write(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let schema: Schema = (self.names.iter().zip(&self.cols))
                    .map(|(name, col)| Field::new(name.as_str().into(), col.dtype()))
                    .collect();
                // Encoded on the replay's thread (see `FrameWriter`).
                let w = FrameWriter::new(&schema, false).map_err(io::Error::other)?;
                self.writer.insert(w)
            }
        };
        let rows = std::mem::take(&mut self.rows);
        let arrays = self.cols.iter_mut().map(Col::take).collect();
        writer
            .write(Rows::Arrays { rows, arrays }, out)
            .map_err(io::Error::other)
    }

    /// Write the last rows and end the file.
    fn finish(mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.rows > 0 || self.writer.is_none() {
            self.write(out)?;
        }
        match self.writer.take() {
            Some(mut w) => w.finish(out).map_err(io::Error::other),
            None => Ok(()),
        }
    }
}

impl RowSink for Frame {
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()> {
        self.push(simulate_cells(row), out)
    }

    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()> {
        self.push(diff_cells(row), out)
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        Frame::finish(*self, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Argument cells are compact JSON, quoted as CSV quotes any text; a null stays empty.
    #[test]
    fn json_cells_are_compact_json() {
        let v = ArgsJson::from(serde_json::json!({"b": [1, "x\"y"], "a": null}));
        let mut csv = CsvLines::new(RowKind::Simulate);
        csv.buf.clear();
        let cells = [
            Cell::Text(Some(v.as_str())),
            Cell::Text(None),
            Cell::Text(Some("")),
        ];
        csv.push(cells.into_iter(), &mut Vec::new()).unwrap();
        assert_eq!(
            String::from_utf8(csv.buf).unwrap(),
            "\"{\"\"a\"\":null,\"\"b\"\":[1,\"\"x\\\"\"y\"\"]}\",,\"\"\n"
        );
    }
}
