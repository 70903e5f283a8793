//! Reports: a model built once from the replay ([`model`]), rendered per format.
//!
//! Summary formats (`table`, `markdown`, `json`) render a whole [`SimulateReport`] or
//! [`DiffReport`]; per-call formats (`jsonl`, `csv`, `parquet`) write one row per call through a
//! [`RowSink`]. Renderers write to `&mut dyn Write` and never print.

mod build;
mod document;
pub use document::kinds_label;
mod explain;
mod html;
mod json_row;
mod markdown;
mod model;
mod parts;
mod rows;
mod suggest;
mod svg;
mod sweep;
mod table;
mod timeline;
mod traffic;

pub use build::{DiffBuilder, NoPolicy, ReportOptions, SimulateBuilder, TimelineDetail, row};
pub use document::{Block, Document, num};
pub use explain::{ExplainReport, LimitState, StepInfo, StepKind, StepResult, window_name};
pub use model::*;
pub use parts::{BindingUse, CombineError, PartInfo, PartSettings, combine, unused_tool_warnings};
pub use rows::{RowKind, RowSink, row_sink};
pub use suggest::{
    SuggestBuilder, SuggestedLimit, SuggestedPolicy, SuggestedRules, scaled_max, suggest,
};
pub use sweep::{SweepParameter, SweepReport, SweepTarget, SweepValue, duration, sweep_value};
pub use timeline::{CounterUse, MINUTE, Timeline, TimelineBuilder, UseKey};
pub use traffic::{PEAK_WINDOWS, Peak, StatsBuilder, StatsReport, TrafficStats, WindowPeaks};

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
    /// One self-contained HTML page with charts.
    Html,
}

/// The formats of `sweep` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SweepFormat {
    /// Tables for a terminal.
    Table,
    /// Markdown, for pull-request comments.
    Markdown,
    /// One JSON document.
    Json,
    /// One row per value.
    Csv,
    /// One self-contained HTML page with the sweep curve.
    Html,
}

/// The formats of reports that have no per-call rows (`explain`, `stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// Tables for a terminal.
    Table,
    /// Markdown, for pull-request comments.
    Markdown,
    /// One JSON document.
    Json,
}

impl From<SummaryFormat> for OutputFormat {
    fn from(f: SummaryFormat) -> OutputFormat {
        match f {
            SummaryFormat::Table => OutputFormat::Table,
            SummaryFormat::Markdown => OutputFormat::Markdown,
            SummaryFormat::Json => OutputFormat::Json,
        }
    }
}

/// Write a report as JSON, or laid out by `layout` as Markdown, as HTML with `charts` above
/// it, or (for every other format) as a terminal table.
fn write_summary<T: serde::Serialize>(
    r: &T,
    layout: fn(&T) -> Document,
    charts: fn(&T) -> Vec<String>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        OutputFormat::Json => write_json(r, out),
        OutputFormat::Markdown => markdown::write(&layout(r), out),
        OutputFormat::Html => html::write(&layout(r), &charts(r), out),
        _ => table::write(layout(r), out),
    }
}

/// No charts (reports with no HTML form).
fn no_charts<T>(_: &T) -> Vec<String> {
    Vec::new()
}

/// Write a simulate report in a summary format (`table`, `markdown`, `json`).
pub fn write_simulate(
    r: &SimulateReport,
    format: OutputFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_summary(r, document::simulate, html::simulate_charts, format, out)
}

/// Write a diff report in a summary format (`table`, `markdown`, `json`).
pub fn write_diff(r: &DiffReport, format: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
    write_summary(r, document::diff, html::diff_charts, format, out)
}

/// Write a sweep report.
pub fn write_sweep(r: &SweepReport, format: SweepFormat, out: &mut dyn Write) -> io::Result<()> {
    let format = match format {
        SweepFormat::Csv => return sweep::write_csv(r, out),
        SweepFormat::Html => OutputFormat::Html,
        SweepFormat::Json => OutputFormat::Json,
        SweepFormat::Markdown => OutputFormat::Markdown,
        SweepFormat::Table => OutputFormat::Table,
    };
    write_summary(r, sweep::document, html::sweep_charts, format, out)
}

/// Write an explain report.
pub fn write_explain(
    r: &ExplainReport,
    format: SummaryFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    write_summary(r, explain::document, no_charts, format.into(), out)
}

/// Write a stats report.
pub fn write_stats(r: &StatsReport, format: SummaryFormat, out: &mut dyn Write) -> io::Result<()> {
    write_summary(r, traffic::document, no_charts, format.into(), out)
}

/// Write a suggested policy as pretty-printed `policy.json`.
pub fn write_suggested(p: &SuggestedPolicy, out: &mut dyn Write) -> io::Result<()> {
    write_json(p, out)
}

fn write_json<T: serde::Serialize>(r: &T, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    out.write_all(b"\n")
}
