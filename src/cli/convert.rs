//! `mcpsim convert`: normalise any supported trace format to mcpsim call records.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

use super::common::{InputArgs, Reads};
use crate::trace::{TraceError, write_csv, write_jsonl, write_parquet};

/// The record formats `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertFormat {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
    /// Parquet.
    Parquet,
}

/// Arguments of `mcpsim convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Trace inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long)]
    pub to: ConvertFormat,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Run `convert`: records to `out` (or `--output`), warnings to `err`. Returns the exit code:
/// 0 on success, 2 for bad input (the message names file, line and field).
pub fn run(args: &ConvertArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    if args.to == ConvertFormat::Parquet && args.output.is_none() && std::io::stdout().is_terminal()
    {
        writeln!(
            err,
            "error: refusing to write Parquet to a terminal; use --output FILE"
        )?;
        return Ok(2);
    }
    let mut trace = match args.input.open() {
        Ok(t) => t,
        Err(e) => return input_error(err, &e),
    };
    let mut file_out;
    let sink: &mut dyn Write = match &args.output {
        Some(path) => {
            Reads::default().traces(&args.input.traces).refuse(path)?;
            file_out = BufWriter::new(
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            );
            &mut file_out
        }
        None => out,
    };
    let mut failure: Option<TraceError> = None;
    let records = std::iter::from_fn(|| match trace.next_record() {
        Ok(r) => r,
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    match args.to {
        ConvertFormat::Jsonl => write_jsonl(records, sink)?,
        ConvertFormat::Csv => write_csv(records, sink)?,
        ConvertFormat::Parquet => write_parquet(records, sink)?,
    };
    if let Some(e) = failure {
        return input_error(err, &e);
    }
    for line in trace.stats().warning_lines() {
        // Example lines are indented under the summary line they belong to.
        if line.starts_with(' ') {
            writeln!(err, "{line}")?;
        } else {
            writeln!(err, "warning: {line}")?;
        }
    }
    Ok(0)
}

fn input_error(err: &mut dyn Write, e: &TraceError) -> anyhow::Result<u8> {
    writeln!(err, "error: {e}")?;
    Ok(2)
}
