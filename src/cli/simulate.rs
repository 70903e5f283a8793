//! `mcpsim simulate`: what would this policy do to this traffic?

use std::io::Write;

use super::common::{
    EvalArgs, InputArgs, OutputArgs, Reads, load_policies, parse_kind, replay_and_report,
    with_policy_dir,
};
use super::merge::part_settings;
use crate::engine::DecisionKind;
use crate::replay;
use crate::report::SimulateReport;

/// Arguments of `mcpsim simulate`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim simulate --policy fixtures/policies/candidate.json fixtures/traces/fleet.jsonl
  mcpsim simulate --policy files=files.json --policy fortios=fortios.json 'logs/*.jsonl.gz'
  mcpsim simulate --policy p.json trace.jsonl --fail-on deny,throttle --max-failures 10")]
pub struct SimulateArgs {
    /// Policy for every server (`FILE`), or for one server (`SERVER=FILE`); `:intercept` or
    /// `:policylayer` after FILE sets its dialect; repeatable.
    #[arg(
        long,
        short = 'p',
        required_unless_present = "policy_dir",
        value_name = "[SERVER=]FILE[:DIALECT]"
    )]
    pub policy: Vec<String>,
    /// Bind every policy file of DIR to the server its name gives: `DIR/github.json` is
    /// `--policy github=DIR/github.json` (`.json`, `.yaml`, `.yml`).
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<std::path::PathBuf>,
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
    #[arg(long, default_value_t = 0, value_name = "N", requires = "fail_on")]
    pub max_failures: u64,
    /// The traces are one part of a larger trace: also write this part's JSON summary, with
    /// what `mcpsim merge` needs to combine it with the other parts', to FILE.
    #[arg(long, value_name = "FILE")]
    pub part_summary: Option<std::path::PathBuf>,
}

/// Run `simulate`; returns the exit code.
pub fn run(args: &SimulateArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let specs = with_policy_dir(&args.policy, args.policy_dir.as_deref())?;
    let reads = Reads::default().traces(&args.input.traces).policies(&specs);
    if let Some(path) = &args.part_summary {
        reads.refuse(path)?;
    }
    let Some(policies) = load_policies(&specs, &args.eval.load_options(), err)? else {
        return Ok(2);
    };
    let fail_on = (!args.fail_on.is_empty()).then(|| (args.fail_on.clone(), args.max_failures));
    let mut opts = args.output.report_options(fail_on);
    let eval = args.eval.options();
    let part = match &args.part_summary {
        Some(path) => Some((path, part_settings(&policies, eval, &opts)?)),
        None => None,
    };
    opts.part = part.is_some();
    let mut trace = args.input.open()?;
    replay_and_report(&args.output, &reads, out, err, |rows, progress| {
        let mut report = replay::simulate(&mut trace, &policies, eval, opts, rows, progress)?;
        if let Some((path, settings)) = part {
            if let Some(info) = report.part.as_mut() {
                info.settings = settings;
            }
            write_part(path, &report)?;
            // A part's gate is decided by `merge`, on the whole run's counts.
            report.part = None;
            report.gate = None;
        }
        Ok(report)
    })
}

/// Write a part's summary (JSON) to `path`.
fn write_part(path: &std::path::Path, report: &SimulateReport) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
    })?);
    crate::report::write_simulate(report, crate::report::OutputFormat::Json, &mut f)?;
    f.flush()
}
