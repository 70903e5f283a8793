//! Per-call formats: JSON lines (streamed), CSV and Parquet (columns collected, written by polars).

use std::io::{self, Write};

use polars::prelude::*;

use super::OutputFormat;
use super::model::{CallInfo, CallRow, Cause, DiffRow, Outcome};

/// Receives one row per call and writes it in a per-call format.
pub trait RowSink {
    /// One call of a simulation.
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()>;
    /// One call of a diff.
    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()>;
    /// Write whatever was collected.
    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()>;
}

/// The sink for a per-call format; `None` for summary formats.
pub fn row_sink(format: OutputFormat) -> Option<Box<dyn RowSink>> {
    match format {
        OutputFormat::Jsonl => Some(Box::new(JsonLines)),
        OutputFormat::Csv => Some(Box::new(Frame::new(false))),
        OutputFormat::Parquet => Some(Box::new(Frame::new(true))),
        _ => None,
    }
}

struct JsonLines;

impl RowSink for JsonLines {
    fn simulate_row(&mut self, row: &CallRow, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer(&mut *out, row)?;
        out.write_all(b"\n")
    }

    fn diff_row(&mut self, row: &DiffRow, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer(&mut *out, row)?;
        out.write_all(b"\n")
    }

    fn finish(self: Box<Self>, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

/// Column-wise buffers; every column is optional text or number so one type serves both commands.
#[derive(Default)]
struct Frame {
    parquet: bool,
    names: Vec<&'static str>,
    text: Vec<Vec<Option<String>>>,
    ints: Vec<(&'static str, Vec<u64>)>,
    floats: Vec<(&'static str, Vec<Option<f64>>)>,
    bools: Vec<(&'static str, Vec<bool>)>,
}

impl Frame {
    fn new(parquet: bool) -> Frame {
        Frame {
            parquet,
            ..Frame::default()
        }
    }

    fn text_col(&mut self, i: usize, name: &'static str, v: Option<String>) {
        if self.names.len() <= i {
            self.names.push(name);
            self.text.push(Vec::new());
        }
        self.text[i].push(v);
    }

    fn call(&mut self, c: &CallInfo) -> usize {
        if self.ints.is_empty() {
            self.ints.push(("index", Vec::new()));
        }
        self.ints[0].1.push(c.index);
        let cols = [
            ("ts", Some(c.ts.clone())),
            ("server", Some(c.server.clone())),
            ("grant", c.grant.clone()),
            ("session", c.session.clone()),
            ("tool", Some(c.tool.clone())),
            ("id", c.id.clone()),
            ("origin", Some(c.origin.clone())),
            ("recorded", c.recorded.clone()),
            ("upstream", c.upstream.clone()),
            ("args", c.args.as_ref().map(|a| a.to_string())),
        ];
        let n = cols.len();
        for (i, (name, v)) in cols.into_iter().enumerate() {
            self.text_col(i, name, v);
        }
        n
    }

    fn outcome(&mut self, start: usize, prefix: usize, o: &Outcome) -> usize {
        const NAMES: [[&str; 7]; 3] = [
            [
                "decision",
                "rule",
                "message",
                "counter",
                "counter_key",
                "window_start",
                "retry_after",
            ],
            [
                "base_decision",
                "base_rule",
                "base_message",
                "base_counter",
                "base_counter_key",
                "base_window_start",
                "base_retry_after",
            ],
            [
                "candidate_decision",
                "candidate_rule",
                "candidate_message",
                "candidate_counter",
                "candidate_counter_key",
                "candidate_window_start",
                "candidate_retry_after",
            ],
        ];
        const NUMS: [[&str; 3]; 3] = [
            ["used", "max", "increment"],
            ["base_used", "base_max", "base_increment"],
            ["candidate_used", "candidate_max", "candidate_increment"],
        ];
        const FLAGS: [&str; 3] = [
            "approval_required",
            "base_approval_required",
            "candidate_approval_required",
        ];
        let t = o.throttle.as_ref();
        let cols = [
            Some(o.decision.to_string()),
            Some(o.rule.clone()),
            Some(o.message.clone()),
            t.map(|t| t.counter.clone()),
            t.map(|t| t.key.clone()),
            t.map(|t| t.window_start.clone()),
            t.map(|t| t.retry_after.clone()),
        ];
        for (i, v) in cols.into_iter().enumerate() {
            self.text_col(start + i, NAMES[prefix][i], v);
        }
        let nums = [t.map(|t| t.used), t.map(|t| t.max), t.map(|t| t.increment)];
        let base = (prefix.max(1) - 1) * 3;
        for (i, v) in nums.into_iter().enumerate() {
            let slot = if prefix == 0 { i } else { base + i };
            if self.floats.len() <= slot {
                self.floats.push((NUMS[prefix][i], Vec::new()));
            }
            self.floats[slot].1.push(v);
        }
        let slot = prefix.max(1) - 1;
        if self.bools.len() <= slot {
            self.bools.push((FLAGS[prefix], Vec::new()));
        }
        self.bools[slot].1.push(o.approval_required);
        start + 7
    }

    fn write(self, out: &mut dyn Write) -> io::Result<()> {
        let mut columns: Vec<Column> = Vec::new();
        for (name, v) in self.ints {
            columns.push(Column::new(name.into(), v));
        }
        for (name, v) in self.names.iter().zip(self.text) {
            columns.push(Column::new((*name).into(), v));
        }
        for (name, v) in self.floats {
            columns.push(Column::new(name.into(), v));
        }
        for (name, v) in self.bools {
            columns.push(Column::new(name.into(), v));
        }
        let mut df = DataFrame::new_infer_height(columns).map_err(io::Error::other)?;
        if self.parquet {
            ParquetWriter::new(out)
                .finish(&mut df)
                .map_err(io::Error::other)?;
        } else {
            CsvWriter::new(out)
                .finish(&mut df)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }
}

impl RowSink for Frame {
    fn simulate_row(&mut self, row: &CallRow, _out: &mut dyn Write) -> io::Result<()> {
        let n = self.call(&row.call);
        self.outcome(n, 0, &row.outcome);
        Ok(())
    }

    fn diff_row(&mut self, row: &DiffRow, _out: &mut dyn Write) -> io::Result<()> {
        let n = self.call(&row.call);
        let n = self.outcome(n, 1, &row.base);
        let n = self.outcome(n, 2, &row.candidate);
        let cause = row.cause.map(|c| match c {
            Cause::Direct => "direct".to_owned(),
            Cause::KnockOn => "knock-on".to_owned(),
        });
        self.text_col(n, "cause", cause);
        Ok(())
    }

    fn finish(self: Box<Self>, out: &mut dyn Write) -> io::Result<()> {
        (*self).write(out)
    }
}
