//! Command-line interface: clap types and one file per subcommand.
//!
//! Every subcommand's `run` writes to the writers it is given and returns the exit code:
//! 0 ok, 1 a gate failed, 2 bad input or usage. Errors returned as `Err` are printed by `main`
//! and exit 2.

pub mod check;
mod common;
pub mod convert;
pub mod diff;
pub mod explain;
pub mod generate;
pub mod merge;
pub mod partition_key;
pub mod simulate;
pub mod stats;
pub mod suggest;
pub mod sweep;
pub mod test;

use std::io::Write;

use clap::{Parser, Subcommand};

/// Replay recorded MCP tool-call traffic against candidate gateway policies.
#[derive(Parser, Debug)]
#[command(name = "mcpsim", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  mcpsim simulate --policy fixtures/policies/candidate.json fixtures/traces/fleet.jsonl
  mcpsim diff --base fixtures/policies/baseline.json --candidate fixtures/policies/candidate.json \\
      fixtures/traces/fleet.jsonl --format markdown --fail-on-new deny,throttle
  mcpsim check fixtures/policies/candidate.json fixtures/policies/baseline.json
  mcpsim explain --policy fixtures/policies/candidate.json fixtures/traces/fleet.jsonl --call '#35'
  mcpsim stats fixtures/traces/fleet.jsonl
  mcpsim suggest fixtures/traces/fleet.jsonl --headroom 1.5 --output policy.json";

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// What would this policy do to this traffic?
    Simulate(simulate::SimulateArgs),
    /// What changes if the base policy becomes the candidate?
    Diff(diff::DiffArgs),
    /// Validate and lint policies.
    Check(check::CheckArgs),
    /// Normalise traces of any supported format to mcpsim call records.
    Convert(convert::ConvertArgs),
    /// Why one call gets its decision: every rule and counter on the way.
    Explain(explain::ExplainArgs),
    /// Per tool and grant: calls, sessions, errors, peak calls per minute/hour/day.
    Stats(stats::StatsArgs),
    /// A least-privilege policy.json with limits from observed peaks.
    Suggest(suggest::SuggestArgs),
    /// Generate a deterministic synthetic trace (demos, load tests, benchmarks).
    Generate(generate::GenerateArgs),
    /// One limit at many values: throttles per max or window, over one read of the trace.
    Sweep(sweep::SweepArgs),
    /// Run the policy tests kept beside the policies: decision cases and report snapshots.
    Test(test::TestArgs),
    /// Combine the JSON summaries of a trace's parts into the summary of the whole.
    Merge(merge::MergeArgs),
    /// How a trace may be split for these policies so that its parts replay exactly.
    PartitionKey(partition_key::PartitionKeyArgs),
}

/// Run a parsed command line. Returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    match cli.command {
        Command::Simulate(a) => simulate::run(&a, out, err),
        Command::Diff(a) => diff::run(&a, out, err),
        Command::Check(a) => check::run(&a, out, err),
        Command::Convert(a) => convert::run(&a, out, err),
        Command::Explain(a) => explain::run(&a, out, err),
        Command::Stats(a) => stats::run(&a, out, err),
        Command::Suggest(a) => suggest::run(&a, out, err),
        Command::Generate(a) => generate::run(&a, out, err),
        Command::Sweep(a) => sweep::run(&a, out, err),
        Command::Test(a) => test::run(&a, out, err),
        Command::Merge(a) => merge::run(&a, out, err),
        Command::PartitionKey(a) => partition_key::run(&a, out, err),
    }
}
