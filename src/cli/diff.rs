//! `mcpsim diff`: what changes if the base policy becomes the candidate?

use std::io::Write;

use super::common::{
    EvalArgs, InputArgs, OutputArgs, load_policies, parse_kind, replay_and_report,
};
use crate::engine::DecisionKind;
use crate::replay;

/// Arguments of `mcpsim diff`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim diff --base fixtures/policies/baseline.json --candidate fixtures/policies/candidate.json \\
      fixtures/traces/fleet.jsonl
  mcpsim diff --base old.json --candidate new.json 'traces/*.jsonl' --format markdown \\
      --fail-on-new deny,throttle --max-new 5 > diff.md")]
pub struct DiffArgs {
    /// The policy in force: `FILE` or `SERVER=FILE`, each with an optional
    /// `:DIALECT`; repeatable.
    #[arg(long, required = true, value_name = "[SERVER=]FILE[:DIALECT]")]
    pub base: Vec<String>,
    /// The proposed policy: `FILE` or `SERVER=FILE`, each with an optional
    /// `:DIALECT`; repeatable.
    #[arg(long, required = true, value_name = "[SERVER=]FILE[:DIALECT]")]
    pub candidate: Vec<String>,
    /// Trace inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Evaluation switches.
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Report shape and destination.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Exit 1 when more than --max-new calls newly get one of these decisions.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, value_name = "DECISIONS")]
    pub fail_on_new: Vec<DecisionKind>,
    /// How many newly failing calls `--fail-on-new` tolerates.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_new: u64,
}

/// Run `diff`; returns the exit code.
pub fn run(args: &DiffArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let load = args.eval.load_options();
    let base = load_policies(&args.base, &load, err)?;
    let candidate = load_policies(&args.candidate, &load, err)?;
    let (Some(base), Some(candidate)) = (base, candidate) else {
        return Ok(2);
    };
    let fail_on = (!args.fail_on_new.is_empty()).then(|| (args.fail_on_new.clone(), args.max_new));
    let opts = args.output.report_options(fail_on);
    let mut trace = args.input.open()?;
    let eval = args.eval.options();
    replay_and_report(&args.output, out, err, |rows, progress| {
        replay::diff(&mut trace, &base, &candidate, eval, opts, rows, progress)
    })
}
