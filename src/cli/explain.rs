//! `mcpsim explain`: why one call gets its decision — every rule and counter on the way.

use std::io::Write;

use anyhow::bail;

use super::common::{
    EvalArgs, InputArgs, Reads, ServerFilter, Spinner, SummaryOutputArgs, load_policies,
    warn_skipped,
};
use crate::call::ArgsRef;
use crate::replay::{Engines, by_name, input_summary, view_of};
use crate::report::{self, CallInfo, ExplainReport, NoPolicy};

/// Which call to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRef {
    /// The call whose record has this `id`.
    Id(String),
    /// The N-th call in time order, 1-based (the `#N` of simulate and diff reports).
    Index(u64),
}

/// `#N` (N ≥ 1) is a position; anything else is a request id.
pub fn parse_call_ref(s: &str) -> Result<CallRef, String> {
    match s.strip_prefix('#').map(str::parse::<u64>) {
        Some(Ok(0)) => Err("positions start at #1".to_owned()),
        Some(Ok(n)) => Ok(CallRef::Index(n)),
        _ if s.is_empty() => Err("give a request id or a position #N".to_owned()),
        _ => Ok(CallRef::Id(s.to_owned())),
    }
}

/// Arguments of `mcpsim explain`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim explain --policy fixtures/policies/candidate.json fixtures/traces/fleet.jsonl --call '#35'
  mcpsim explain --policy fixtures/policies/candidate.json fixtures/traces/fleet.jsonl --call r-042 --show-args")]
pub struct ExplainArgs {
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
    /// The call: its request id, or `#N` for the N-th call in time order (as simulate lists it).
    #[arg(long, required = true, value_parser = parse_call_ref, value_name = "ID|#N")]
    pub call: CallRef,
    /// Match `--call ID` among this server's calls only (ids repeat across servers).
    #[arg(long, value_name = "NAME")]
    pub server: Option<String>,
    /// Evaluation switches.
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Report shape and destination.
    #[command(flatten)]
    pub output: SummaryOutputArgs,
    /// Show argument values (the call's, and the value each predicate read).
    #[arg(long)]
    pub show_args: bool,
}

/// Run `explain`; returns the exit code.
pub fn run(args: &ExplainArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let Some(policies) = load_policies(&args.policy, &args.eval.load_options(), err)? else {
        return Ok(2);
    };
    let mut trace = args.input.open()?;
    let files = trace.files().to_vec();
    let mut engines = Engines::new(&policies, args.eval.options());
    let needs_args = policies.reads_args();
    let mut index = 0u64;
    let mut found = None;
    let mut matches = Vec::new();
    // The servers of the calls with the id asked for: `--server` tells them apart only when
    // they are several.
    let mut match_servers = std::collections::BTreeSet::new();
    let mut spinner = Spinner::new();
    let mut filter = ServerFilter::new(args.server.as_deref());
    // Calls per server id, with the server's name: a `SERVER=FILE` binding that matches no
    // call is a misspelt server, refused as `simulate` refuses it.
    let mut per_server: Vec<(u64, String)> = Vec::new();
    // Read to the end even past the call: skipped lines are counted, and other calls may
    // have the same id.
    while let Some(call) = trace.next_call()? {
        index = call.index;
        spinner.count(index);
        let server = call.ids().server as usize;
        if per_server.len() <= server {
            per_server.resize(server + 1, (0, String::new()));
        }
        if per_server[server].0 == 0 {
            per_server[server].1 = call.server().to_string();
        }
        per_server[server].0 += 1;
        let of_server = filter.keeps(&call);
        let target = match &args.call {
            CallRef::Index(n) => index == *n,
            CallRef::Id(id) => of_server && call.id().as_deref() == Some(id.as_str()),
        };
        if target {
            matches.push(index);
            if matches!(args.call, CallRef::Id(_)) && match_servers.len() < 2 {
                match_servers.insert(call.server().to_string());
            }
        }
        if found.is_some() {
            continue;
        }
        let ids = call.ids();
        let Some(engine) = engines.get(ids.server, call.server()) else {
            if target {
                found = Some(ExplainReport::no_policy(CallInfo::new(
                    index,
                    &call.record().fields(),
                    &files,
                    args.show_args,
                )));
            }
            continue;
        };
        if !target {
            let mut slot = None;
            let args = if needs_args {
                call.args_ref(&mut slot)
            } else {
                ArgsRef::unrecorded()
            };
            engine.evaluate(&by_name(view_of(&call, args)));
            continue;
        }
        let record = call.record();
        let info = CallInfo::new(index, &record.fields(), &files, args.show_args);
        let call_args = call.args();
        let view = by_name(view_of(&call, (&call_args).into()));
        // Steps first: they read the counters as they stand before this call is decided.
        let mut steps = engine.explain(&view);
        let mut decision = engine.evaluate(&view);
        engines.name_key(ids.server, &mut decision);
        engines.name_step_keys(ids.server, &mut steps);
        found = Some(match policies.policy_for(&record.server) {
            Some(policy) => {
                ExplainReport::new(info, &record, policy, &steps, &decision, args.show_args)
            }
            None => ExplainReport::no_policy(info),
        });
    }
    drop(spinner);
    filter.check()?;
    let mut seen: Vec<(String, u64)> = (per_server.into_iter())
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| (name, n))
        .collect();
    seen.sort();
    let bound =
        (policies.per_server.iter()).map(|(server, (file, _))| (server.as_str(), file.as_str()));
    crate::replay::check_bindings_matched(bound, &seen)?;
    warn_skipped(
        &input_summary(&files, trace.stats(), NoPolicy::default()),
        err,
    )?;
    let report = match (found, &args.call) {
        (Some(r), CallRef::Index(_)) => r,
        (Some(r), CallRef::Id(_)) if matches.len() == 1 => r,
        (Some(_), CallRef::Id(id)) => {
            let shown: Vec<String> = matches.iter().take(10).map(|i| format!("#{i}")).collect();
            let more = if matches.len() > 10 { ", …" } else { "" };
            let by_server = if match_servers.len() > 1 && args.server.is_none() {
                ", or name its server with --server"
            } else {
                ""
            };
            bail!(
                "--call {id}: {} calls have this id ({}{more}); pick one by position, e.g. --call '#{}'{by_server}",
                matches.len(),
                shown.join(", "),
                matches[0]
            );
        }
        (None, CallRef::Index(n)) => {
            bail!("--call #{n}: the trace has only {index} calls")
        }
        (None, CallRef::Id(id)) => bail!(
            "--call {id}: no call has this id ({index} calls read); ids match exactly, or give a position as #N"
        ),
    };
    let reads = Reads::default()
        .traces(&args.input.traces)
        .policies(&args.policy);
    let mut dest = args.output.open(&reads, out)?;
    report::write_explain(&report, args.output.format, &mut dest)?;
    dest.flush()?;
    Ok(0)
}
