//! Reports: a model built once from the replay ([`model`]), rendered per format.
//!
//! Summary formats (`table`, `markdown`, `json`) render a whole [`SimulateReport`] or
//! [`DiffReport`]; per-call formats (`jsonl`, `csv`, `parquet`) write one row per call through a
//! [`RowSink`]. Renderers write to `&mut dyn Write` and never print.

mod build;
mod document;
pub use document::kinds_label;
mod markdown;
mod model;
mod rows;
mod table;

pub use build::{DiffBuilder, NoPolicy, ReportOptions, SimulateBuilder, row};
pub use document::{Block, Document, num};
pub use model::*;
pub use rows::{RowSink, row_sink};

use std::io::{self, Write};

/// Every output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables for a terminal.
    Table,
    /// Markdown, for pull-request comments.
    Markdown,
    /// One JSON document.
    Json,
    /// One JSON object per call, streamed.
    Jsonl,
    /// One CSV row per call.
    Csv,
    /// One Parquet row per call.
    Parquet,
}

impl OutputFormat {
    /// Whether the format writes one row per call rather than a summary.
    pub fn is_per_call(self) -> bool {
        matches!(
            self,
            OutputFormat::Jsonl | OutputFormat::Csv | OutputFormat::Parquet
        )
    }
}

/// Write a simulate report in a summary format (`table`, `markdown`, `json`).
pub fn write_simulate(
    r: &SimulateReport,
    format: OutputFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        OutputFormat::Json => write_json(r, out),
        OutputFormat::Markdown => markdown::write(&document::simulate(r), out),
        _ => table::write(&document::simulate(r), out),
    }
}

/// Write a diff report in a summary format (`table`, `markdown`, `json`).
pub fn write_diff(r: &DiffReport, format: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
    match format {
        OutputFormat::Json => write_json(r, out),
        OutputFormat::Markdown => markdown::write(&document::diff(r), out),
        _ => table::write(&document::diff(r), out),
    }
}

fn write_json<T: serde::Serialize>(r: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    out.write_all(b"\n")
}
