//! `mcpsim simulate`: what would this policy do to this traffic?

use std::io::Write;

use super::common::{
    EvalArgs, InputArgs, OutputArgs, load_policies, parse_kind, replay_and_report,
};
use crate::engine::DecisionKind;
use crate::replay;

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
        required = true,
        value_name = "[SERVER=]FILE[:DIALECT]"
    )]
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
    let fail_on = (!args.fail_on.is_empty()).then(|| (args.fail_on.clone(), args.max_failures));
    let opts = args.output.report_options(fail_on);
    let mut trace = args.input.open()?;
    let eval = args.eval.options();
    replay_and_report(&args.output, out, err, |rows, progress| {
        replay::simulate(&mut trace, &policies, eval, opts, rows, progress)
    })
}
