//! `mcpsim partition-key`: how a trace may be split so that its parts replay to the
//! decisions of one run.

use std::io::Write;

use super::common::{EvalArgs, load_policies, with_policy_dir};
use crate::engine::{Policy, Scope};
use crate::replay::PolicySet;

/// Arguments of `mcpsim partition-key`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Prints the columns to split a trace by (`server,grant`, `server,grant,session` or `server`)
and exits 0, or says why no split is exact and exits 1.

Examples:
  mcpsim partition-key --policy fixtures/policies/candidate.json
  mcpsim partition-key --policy github=github.yaml --intercept-counters per-server")]
pub struct PartitionKeyArgs {
    /// Policy for every server (`FILE`), or for one server (`SERVER=FILE`); as `simulate`.
    #[arg(
        long,
        short = 'p',
        required_unless_present = "policy_dir",
        value_name = "[SERVER=]FILE[:DIALECT]"
    )]
    pub policy: Vec<String>,
    /// Bind every policy file of DIR to the server its name gives, as `simulate`.
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<std::path::PathBuf>,
    /// Evaluation switches (`--intercept-counters` decides where Intercept counters live).
    #[command(flatten)]
    pub eval: EvalArgs,
}

/// How a trace may be split for the policies of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKey {
    /// By these columns: calls with equal values share every counter instance.
    Columns(&'static str),
    /// No split is exact: a counter every call of some server may draw on spans servers.
    None(String),
}

/// The partition key of a policy set: the key of the coarsest counter scope. A counter of
/// scope grant is kept per (server, grant), session per (server, grant, session), server per
/// server; `global` is one for every call its engine decides: a `SERVER=FILE` PolicyLayer
/// binding's engine sees one server, so its `global` is a server scope.
pub fn partition_key(set: &PolicySet, intercept_per_server: bool) -> PartitionKey {
    // (coarseness, file, counter, policy) of the coarsest counter.
    let mut coarsest: Option<(u8, &str, std::sync::Arc<str>, &Policy)> = None;
    let bound =
        (set.default.iter().map(|b| (false, b))).chain(set.per_server.values().map(|b| (true, b)));
    for (one_server, (file, policy)) in bound {
        for (scope, counter) in policy.counter_scopes(intercept_per_server) {
            let scope = match (&**policy, scope) {
                (Policy::PolicyLayer(_), Scope::Global) if one_server => Scope::Server,
                _ => scope,
            };
            let rank = match scope {
                Scope::Session => 0,
                Scope::Grant => 1,
                Scope::Server => 2,
                Scope::Global => 3,
            };
            if coarsest.as_ref().is_none_or(|c| rank > c.0) {
                coarsest = Some((rank, file, counter, policy));
            }
        }
    }
    match coarsest {
        None | Some((0, ..)) => PartitionKey::Columns("server,grant,session"),
        Some((1, ..)) => PartitionKey::Columns("server,grant"),
        Some((2, ..)) => PartitionKey::Columns("server"),
        Some((_, file, counter, policy)) => PartitionKey::None(match policy {
            Policy::Intercept(_) => format!(
                "{file}: Intercept counter `{counter}` lives in the store every server shares \
                 (--intercept-counters shared): every call may draw on it"
            ),
            Policy::PolicyLayer(_) => format!(
                "{file}: counter `{counter}` has scope global: every call{} draws on one budget",
                if set.default.as_ref().is_some_and(|(f, _)| f == file)
                    && !set.per_server.is_empty()
                {
                    " of the servers without a policy of their own"
                } else {
                    ""
                }
            ),
        }),
    }
}

/// Run `partition-key`; returns the exit code: 0 with the key on `out`, 1 when no split is
/// exact (the reason on `err`).
pub fn run(
    args: &PartitionKeyArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let specs = with_policy_dir(&args.policy, args.policy_dir.as_deref())?;
    let Some(policies) = load_policies(&specs, &args.eval.load_options(), err)? else {
        return Ok(2);
    };
    match partition_key(&policies, args.eval.options().intercept_per_server) {
        PartitionKey::Columns(key) => {
            writeln!(out, "{key}")?;
            Ok(0)
        }
        PartitionKey::None(why) => {
            writeln!(err, "no exact split: {why}")?;
            Ok(1)
        }
    }
}
