//! `mcpsim stats`: per tool and per grant — calls, sessions, errors and peak calls per
//! calendar minute, hour and day.

use std::io::Write;

use super::common::{InputArgs, Reads, ServerFilter, Spinner, SummaryOutputArgs};
use crate::replay::input_summary;
use crate::report::{self, NoPolicy, StatsBuilder};

/// Arguments of `mcpsim stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim stats fixtures/traces/fleet.jsonl
  mcpsim stats 'logs/*.jsonl.gz' --format json --output stats.json")]
pub struct StatsArgs {
    /// Trace inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Only the calls of this server.
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// Report shape and destination.
    #[command(flatten)]
    pub output: SummaryOutputArgs,
}

/// Run `stats`; returns the exit code.
pub fn run(args: &StatsArgs, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<u8> {
    let mut trace = args.input.open()?;
    let files = trace.files().to_vec();
    let mut builder = StatsBuilder::new();
    let mut spinner = Spinner::new();
    let mut filter = ServerFilter::new(args.server.as_deref());
    while let Some(call) = trace.next_call()? {
        spinner.count(call.index);
        if filter.keeps(&call) {
            builder.push(call.ts(), call.ids(), call.session(), call.upstream());
        }
    }
    drop(spinner);
    filter.check()?;
    let mut input = input_summary(&files, trace.stats(), NoPolicy::default());
    // The calls of other servers are not counted.
    input.left_out = filter.left_out;
    input.calls_evaluated -= filter.left_out;
    let report = builder.finish(trace.names(), input);
    let mut dest = args
        .output
        .open(&Reads::default().traces(&args.input.traces), out)?;
    report::write_stats(&report, args.output.format, &mut dest)?;
    dest.flush()?;
    Ok(0)
}
