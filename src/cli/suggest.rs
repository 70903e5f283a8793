//! `mcpsim suggest`: a least-privilege policy.json with limits from observed peaks.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;

use super::common::{InputArgs, Reads, Spinner, open_output, warn_skipped};
use crate::engine::Scope;
use crate::replay::input_summary;
use crate::report::{self, NoPolicy, SuggestBuilder};

/// The scope of the suggested counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// One budget per (server, grant): the gateway's default.
    Grant,
    /// One budget per (server, grant, session).
    Session,
    /// One budget per server.
    Server,
    /// One budget for everything.
    Global,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Grant => Scope::Grant,
            ScopeArg::Session => Scope::Session,
            ScopeArg::Server => Scope::Server,
            ScopeArg::Global => Scope::Global,
        }
    }
}

fn parse_headroom(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(h) if (1.0..=1e6).contains(&h) => Ok(h),
        Ok(_) => Err(
            "headroom must be a number from 1 to 1000000 (1 = exactly the observed peak)"
                .to_owned(),
        ),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// Arguments of `mcpsim suggest`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim suggest fixtures/traces/fleet.jsonl --headroom 1.5 --output policy.json
  mcpsim suggest 'logs/*.jsonl.gz' --server fortios --scope session")]
pub struct SuggestArgs {
    /// Trace inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Each limit's max is ceil(observed peak × headroom); at least 1.
    #[arg(long, default_value_t = 1.5, value_parser = parse_headroom, value_name = "FACTOR")]
    pub headroom: f64,
    /// Scope of the suggested counters (peaks are counted per counter key of this scope).
    #[arg(long, value_enum, default_value = "grant", value_name = "SCOPE")]
    pub scope: ScopeArg,
    /// Only this server's calls (apply the result with --policy SERVER=FILE).
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// Also count the calls the trace records as refused by the gateway (deny, throttle),
    /// which are left out by default.
    #[arg(long)]
    pub include_refused: bool,
    /// Write the policy to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Run `suggest`; returns the exit code.
pub fn run(args: &SuggestArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let mut trace = args.input.open()?;
    let files = trace.files().to_vec();
    let mut builder =
        SuggestBuilder::new(args.scope.into(), args.server.clone(), args.include_refused);
    let mut servers = BTreeSet::new();
    let mut spinner = Spinner::new();
    let mut calls = 0u64;
    if args.scope != ScopeArg::Session {
        trace.skip_sessions();
    }
    while let Some(call) = trace.next_call()? {
        calls += 1;
        spinner.count(calls);
        if !builder.push(&call) && !servers.contains(&**call.server()) {
            servers.insert(call.server().to_string());
        }
    }
    drop(spinner);
    warn_skipped(
        &input_summary(&files, trace.stats(), NoPolicy::default()),
        err,
    )?;
    if builder.calls() == 0 {
        match &args.server {
            _ if builder.refused() > 0 => bail!(
                "no calls to suggest a policy from: all {} calls were recorded as refused by \
                 the gateway; give --include-refused to count them",
                builder.refused()
            ),
            Some(s) if !servers.is_empty() => bail!(
                "--server {s}: no calls to this server (servers in the trace: {})",
                servers.into_iter().collect::<Vec<_>>().join(", ")
            ),
            _ => bail!("no calls read: there is no traffic to suggest a policy from"),
        }
    }
    let policy = report::suggest(&builder, args.headroom);
    let reads = Reads::default().traces(&args.input.traces);
    let mut dest = open_output(args.output.as_deref(), &reads, out)?;
    report::write_suggested(&policy, &mut dest)?;
    dest.flush()?;
    let n = builder.refused();
    let refused = format!(
        "{n} {} recorded as refused {}",
        if n == 1 { "call" } else { "calls" },
        if builder.include_refused() {
            "included"
        } else {
            "left out"
        }
    );
    let count = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    writeln!(
        err,
        "suggested a policy for {} from {} (scope {}, headroom {}, {refused})",
        count(policy.tools.len() as u64, "tool", "tools"),
        count(builder.calls(), "call", "calls"),
        Scope::from(args.scope).as_str(),
        args.headroom
    )?;
    Ok(0)
}
