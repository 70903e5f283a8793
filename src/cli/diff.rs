//! `mcpsim diff`: what changes if the base policy becomes the candidate?

use std::io::Write;

use super::common::{
    EvalArgs, InputArgs, OutputArgs, Reads, load_policies, parse_kind, replay_and_report,
    with_policy_dir,
};
use crate::engine::DecisionKind;
use crate::replay;
use crate::report::{PolicyChangeRow, PolicyRef};

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
    #[arg(
        long,
        required_unless_present = "base_dir",
        value_name = "[SERVER=]FILE[:DIALECT]"
    )]
    pub base: Vec<String>,
    /// Base policies by server: every `DIR/<server>.json|yaml|yml` (as `--policy-dir`).
    #[arg(long, value_name = "DIR")]
    pub base_dir: Option<std::path::PathBuf>,
    /// The proposed policy: `FILE` or `SERVER=FILE`, each with an optional
    /// `:DIALECT`; repeatable.
    #[arg(
        long,
        required_unless_present = "candidate_dir",
        value_name = "[SERVER=]FILE[:DIALECT]"
    )]
    pub candidate: Vec<String>,
    /// Candidate policies by server: every `DIR/<server>.json|yaml|yml` (as `--policy-dir`).
    #[arg(long, value_name = "DIR")]
    pub candidate_dir: Option<std::path::PathBuf>,
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
    #[arg(long, default_value_t = 0, value_name = "N", requires = "fail_on_new")]
    pub max_new: u64,
}

/// Run `diff`; returns the exit code.
pub fn run(args: &DiffArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let load = args.eval.load_options();
    let base = with_policy_dir(&args.base, args.base_dir.as_deref())?;
    let candidate = with_policy_dir(&args.candidate, args.candidate_dir.as_deref())?;
    let reads = Reads::default()
        .traces(&args.input.traces)
        .policies(&base)
        .policies(&candidate);
    let base = load_policies(&base, &load, err)?;
    let candidate = load_policies(&candidate, &load, err)?;
    let (Some(base), Some(candidate)) = (base, candidate) else {
        return Ok(2);
    };
    let fail_on = (!args.fail_on_new.is_empty()).then(|| (args.fail_on_new.clone(), args.max_new));
    let opts = args.output.report_options(fail_on);
    let mut trace = args.input.open()?;
    let eval = args.eval.options();
    let changes = policy_changes(&base.refs(), &candidate.refs());
    replay_and_report(&args.output, &reads, out, err, |rows, progress| {
        let mut report = replay::diff(&mut trace, &base, &candidate, eval, opts, rows, progress)?;
        report.policy_changes = changes;
        Ok(report)
    })
}

/// The structural changes of every binding: policies paired by server (the one for every
/// server with its like); a binding on one side only is a whole policy added or removed.
fn policy_changes(base: &[PolicyRef], candidate: &[PolicyRef]) -> Vec<PolicyChangeRow> {
    let mut rows = Vec::new();
    let whole =
        |server: &Option<String>, change, b: Option<&str>, c: Option<&str>| PolicyChangeRow {
            server: server.clone(),
            path: String::new(),
            change,
            base: b.map(str::to_owned),
            candidate: c.map(str::to_owned),
        };
    for b in base {
        match candidate.iter().find(|c| c.server == b.server) {
            Some(c) => match crate::policy::policy_changes(&b.file, &c.file) {
                Some(changes) => rows.extend(changes.into_iter().map(|ch| PolicyChangeRow {
                    server: b.server.clone(),
                    path: ch.path,
                    change: ch.change,
                    base: ch.base,
                    candidate: ch.candidate,
                })),
                None => rows.push(whole(&b.server, "changed", Some(&b.file), Some(&c.file))),
            },
            None => rows.push(whole(&b.server, "removed", Some(&b.file), None)),
        }
    }
    for c in candidate {
        if !base.iter().any(|b| b.server == c.server) {
            rows.push(whole(&c.server, "added", None, Some(&c.file)));
        }
    }
    rows
}
