//! Per-call formats: JSON lines, CSV and Parquet, all streamed: CSV and Parquet rows are
//! collected into columns and written by polars every [`ROWS_PER_WRITE`] rows (a Parquet row
//! group each), so memory does not grow with the trace.

use std::io::{self, Write};

use polars::prelude::*;

use super::OutputFormat;
use super::model::{CallInfo, CallRow, Cause, DiffRow, Outcome};
use crate::trace::parse_ts_str;
use crate::trace::table_write::{FrameWriter, TableFormat};

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
        OutputFormat::Csv => Some(Box::new(Frame::new(false, kind))),
        OutputFormat::Parquet => Some(Box::new(Frame::new(true, kind))),
        _ => None,
    }
}

/// Rows written into a buffer of their own ([`super::json_row`]) and handed to the destination
/// in one write per [`JSON_BYTES_PER_WRITE`].
#[derive(Default)]
struct JsonLines(Vec<u8>);

const JSON_BYTES_PER_WRITE: usize = 1 << 16;

impl JsonLines {
    fn flush_full(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.0.push(b'\n');
        if self.0.len() >= JSON_BYTES_PER_WRITE {
            out.write_all(&self.0)?;
            self.0.clear();
        }
        Ok(())
    }
}

impl RowSink for JsonLines {
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()> {
        super::json_row::call_row(row, &mut self.0);
        self.flush_full(out)
    }

    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()> {
        super::json_row::diff_row(row, &mut self.0);
        self.flush_full(out)
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.0)
    }
}

/// One value of a row.
enum Cell {
    Int(u64),
    Text(Option<String>),
    Float(Option<f64>),
    Bool(bool),
}

/// One column, filled row by row.
enum Col {
    Int(Vec<u64>),
    Text(Vec<Option<String>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<bool>),
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

fn call_cells(c: &CallInfo) -> impl Iterator<Item = Cell> {
    [
        Cell::Int(c.index),
        Cell::Text(Some(c.ts.clone())),
        Cell::Text(Some(c.server.clone())),
        Cell::Text(c.grant.clone()),
        Cell::Text(c.session.clone()),
        Cell::Text(Some(c.tool.clone())),
        Cell::Text(c.id.clone()),
        Cell::Text(Some(c.origin.clone())),
        Cell::Text(c.recorded.clone()),
        Cell::Text(c.upstream.clone()),
        Cell::Text(c.args.as_ref().map(|a| a.to_string())),
    ]
    .into_iter()
}

fn outcome_cells(o: &Outcome) -> impl Iterator<Item = Cell> {
    let numbers = o.throttle.as_ref().map(|t| (t.used, t.max, t.increment));
    let (counter, key, window_start, retry_after) = match &o.throttle {
        Some(t) => (
            Some(t.counter.clone()),
            Some(t.key.clone()),
            Some(t.window_start.clone()),
            Some(t.retry_after.clone()),
        ),
        None => (None, None, None, None),
    };
    [
        Cell::Text(Some(o.decision.to_string())),
        Cell::Text(Some(o.rule.clone())),
        Cell::Text(Some(o.message.clone())),
        Cell::Text(counter),
        Cell::Text(key),
        Cell::Text(window_start),
        Cell::Text(retry_after),
        Cell::Float(numbers.map(|n| n.0)),
        Cell::Float(numbers.map(|n| n.1)),
        Cell::Float(numbers.map(|n| n.2)),
        Cell::Bool(o.approval_required),
    ]
    .into_iter()
}

/// Rows collected before they are written.
const ROWS_PER_WRITE: usize = 1 << 14;

/// Column-wise buffers for CSV and Parquet, handed to the table writer every
/// [`ROWS_PER_WRITE`] rows and at the end. The columns are fixed by the [`RowKind`], so an
/// empty replay still writes a header (CSV) or schema (Parquet).
struct Frame {
    parquet: bool,
    names: Vec<String>,
    cols: Vec<Col>,
    rows: usize,
    /// The table being written, once rows were.
    writer: Option<FrameWriter>,
}

impl Frame {
    fn new(parquet: bool, kind: RowKind) -> Frame {
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
        // Types follow the cells: the first call column is the index, outcomes end in three
        // numbers and a flag.
        let cols = names
            .iter()
            .map(|n| match n.as_str() {
                "index" => Col::Int(Vec::new()),
                n if n.ends_with("used") || n.ends_with("max") || n.ends_with("increment") => {
                    Col::Float(Vec::new())
                }
                n if n.ends_with("approval_required") => Col::Bool(Vec::new()),
                _ => Col::Text(Vec::new()),
            })
            .collect();
        Frame {
            parquet,
            names,
            cols,
            rows: 0,
            writer: None,
        }
    }

    fn push(&mut self, cells: impl Iterator<Item = Cell>, out: &mut dyn Write) -> io::Result<()> {
        for (col, cell) in self.cols.iter_mut().zip(cells) {
            match (col, cell) {
                (Col::Int(v), Cell::Int(x)) => v.push(x),
                (Col::Text(v), Cell::Text(x)) => v.push(x),
                (Col::Float(v), Cell::Float(x)) => v.push(x),
                (Col::Bool(v), Cell::Bool(x)) => v.push(x),
                _ => unreachable!("cells follow the column layout of Frame::new"),
            }
        }
        self.rows += 1;
        if self.rows == ROWS_PER_WRITE {
            self.write(out)?;
        }
        Ok(())
    }

    /// The rows collected so far, taken out of the buffers.
    fn take(&mut self) -> io::Result<DataFrame> {
        self.rows = 0;
        let parquet = self.parquet;
        let columns: Vec<Column> = (self.names.iter())
            .zip(&mut self.cols)
            .map(|(name, col)| {
                let is_ts = parquet && name == "ts";
                let name = name.as_str().into();
                match col {
                    // Parquet has a timestamp type: the call's instant exactly, as nanoseconds.
                    Col::Text(v) if is_ts => Column::new(
                        name,
                        std::mem::take(v)
                            .iter()
                            .map(|t| t.as_deref().and_then(|t| parse_ts_str(t).ok()))
                            .collect::<Vec<Option<i64>>>(),
                    ),
                    Col::Int(v) => Column::new(name, std::mem::take(v)),
                    Col::Text(v) => Column::new(name, std::mem::take(v)),
                    Col::Float(v) => Column::new(name, std::mem::take(v)),
                    Col::Bool(v) => Column::new(name, std::mem::take(v)),
                }
            })
            .collect();
        DataFrame::new_infer_height(columns).map_err(io::Error::other)
    }

    /// Write the rows collected so far.
    fn write(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let df = self.take()?;
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let format = if self.parquet {
                    TableFormat::Parquet
                } else {
                    TableFormat::Csv
                };
                // Encoded on the replay's thread (see `FrameWriter`).
                let w = FrameWriter::new(format, df.schema(), false).map_err(io::Error::other)?;
                self.writer.insert(w)
            }
        };
        writer.write(df, out).map_err(io::Error::other)
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
        self.push(
            call_cells(&row.call).chain(outcome_cells(&row.outcome)),
            out,
        )
    }

    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()> {
        let cause = row.cause.map(|c| match c {
            Cause::Direct => "direct".to_owned(),
            Cause::KnockOn => "knock-on".to_owned(),
        });
        self.push(
            call_cells(&row.call)
                .chain(outcome_cells(&row.base))
                .chain(outcome_cells(&row.candidate))
                .chain(std::iter::once(Cell::Text(cause))),
            out,
        )
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        Frame::finish(*self, out)
    }
}
