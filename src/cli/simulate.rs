//! `mcpsim simulate`: what would this policy do to this traffic?

use std::io::Write;

use super::common::{EvalArgs, InputArgs, OutputArgs, Spinner, load_policies, parse_kind};
use crate::engine::DecisionKind;
use crate::replay;
use crate::report::{self, RowSink, row_sink};
use crate::trace::Trace;

/// Arguments of `mcpsim simulate`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim simulate --policy fixtures/policies/candidate.json fixtures/traces/fortios.jsonl
  mcpsim simulate --policy files=files.json --policy fortios=fortios.json 'logs/*.jsonl.gz'
  mcpsim simulate --policy p.json trace.jsonl --fail-on deny,throttle --max-failures 10")]
pub struct SimulateArgs {
    /// Policy for every server (`FILE`), or for one server (`SERVER=FILE`); repeatable.
    #[arg(long, short = 'p', required = true, value_name = "[SERVER=]FILE")]
    pub policy: Vec<String>,
    /// Trace inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Evaluation switches.
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Report shape and destination.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Exit 1 when more than --max-failures calls get one of these decisions.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, value_name = "DECISIONS")]
    pub fail_on: Vec<DecisionKind>,
    /// How many failing calls `--fail-on` tolerates.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_failures: u64,
}

/// Run `simulate`; returns the exit code.
pub fn run(args: &SimulateArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let Some(policies) = load_policies(&args.policy, &args.eval.load_options(), err)? else {
        return Ok(2);
    };
    let mut trace = Trace::open(&args.input.traces, &args.input.read_options())?;
    let fail_on = (!args.fail_on.is_empty()).then(|| (args.fail_on.clone(), args.max_failures));
    let opts = args.output.report_options(fail_on);
    let mut dest = args.output.open(out)?;
    let mut sink = row_sink(args.output.format);
    let mut spinner = Spinner::new();
    let report = replay::simulate(
        &mut trace,
        &policies,
        args.eval.options(),
        opts,
        match sink.as_deref_mut() {
            Some(s) => Some((s as &mut dyn RowSink, &mut *dest as &mut dyn Write)),
            None => None,
        },
        &mut spinner,
    )?;
    drop(spinner);
    match sink {
        Some(sink) => {
            sink.finish(&mut dest)?;
            warn_skipped(&report.input, err)?;
        }
        None => report::write_simulate(&report, args.output.format, &mut dest)?,
    }
    dest.flush()?;
    Ok(match &report.gate {
        Some(g) if g.failed => {
            writeln!(
                err,
                "gate failed: {} calls {} (at most {} allowed)",
                g.failures,
                report::kinds_label(&g.fail_on),
                g.max
            )?;
            1
        }
        _ => 0,
    })
}

/// Per-call formats carry no summary: say on standard error what was skipped.
pub(super) fn warn_skipped(
    input: &report::InputSummary,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    if input.skipped > 0 {
        writeln!(err, "warning: {} malformed records skipped", input.skipped)?;
        for s in &input.skipped_examples {
            writeln!(err, "  {}:{}: {}", s.file, s.line, s.reason)?;
        }
    }
    let no_policy: u64 = input.no_policy.iter().map(|c| c.count).sum();
    if no_policy > 0 {
        writeln!(
            err,
            "warning: {no_policy} calls to servers without a policy were not evaluated"
        )?;
    }
    Ok(())
}
