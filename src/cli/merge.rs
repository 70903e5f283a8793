//! `mcpsim merge`: combine the summaries of a trace's parts into the summary of the whole.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::common::{Reads, SummaryOutputArgs, gate_exit};
use crate::engine::{EvalOptions, Policy};
use crate::replay::{self, PolicySet};
use crate::report::{self, PartSettings, ReportOptions, SimulateReport, SummaryFormat};

/// Arguments of `mcpsim merge`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim simulate --policy p.json part-1.jsonl --format json --part-summary part-1.json
  mcpsim simulate --policy p.json part-2.jsonl --format json --part-summary part-2.json
  mcpsim merge part-1.json part-2.json --format json --output summary.json")]
pub struct MergeArgs {
    /// Part summaries written by `mcpsim simulate --part-summary`.
    #[arg(required = true, value_name = "SUMMARY")]
    pub summaries: Vec<PathBuf>,
    /// Write a part summary again (to merge with more parts later; it is JSON, so
    /// `--format json` is required): the checks of the whole run (every `SERVER=FILE` binding
    /// matched a call, some call was evaluated) wait for the last merge.
    #[arg(long)]
    pub partial: bool,
    /// Report shape and destination.
    #[command(flatten)]
    pub output: SummaryOutputArgs,
}

/// Run `merge`; returns the exit code.
pub fn run(args: &MergeArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    // A part summary written as a table or Markdown could not be merged again: say so now,
    // not at the last merge of a tree.
    if args.partial && args.output.format != SummaryFormat::Json {
        anyhow::bail!(
            "`--partial` writes a part summary to merge again, which is JSON: add `--format json`"
        );
    }
    let mut parts = Vec::with_capacity(args.summaries.len());
    for path in &args.summaries {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
        let report: SimulateReport = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{}:{}: not a simulate summary: {e}",
                e.line(),
                e.column()
            )
        })?;
        parts.push((name, report));
    }
    let merged = report::combine(parts, args.partial)?;
    if !args.partial {
        replay::check_combined(&merged)?;
    }
    let mut dest = args
        .output
        .open(&Reads::default().files(&args.summaries), out)?;
    report::write_simulate(&merged, args.output.format.into(), &mut dest)?;
    dest.flush()?;
    Ok(gate_exit(merged.gate.as_ref(), "calls", err)?)
}

/// The settings a part summary records: each policy's dialect and the digest of its file,
/// the evaluation switches, and how the summary lists calls.
pub(super) fn part_settings(
    policies: &PolicySet,
    eval: EvalOptions,
    opts: &ReportOptions,
) -> anyhow::Result<PartSettings> {
    let mut digests = Vec::new();
    let bound = (policies.default.iter()).chain(policies.per_server.values());
    for (file, policy) in bound {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {file}"))?;
        let dialect = match &**policy {
            Policy::PolicyLayer(_) => "policylayer",
            Policy::Intercept(_) => "intercept",
        };
        digests.push(format!("{dialect}:{:016x}", fnv1a(&bytes)));
    }
    Ok(PartSettings {
        policies: digests,
        eval: format!("{eval:?}"),
        max_calls: opts.max_calls,
        show_args: opts.show_args,
    })
}

/// 64-bit FNV-1a: tells two versions of a policy file apart (not a defence against forgery).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
