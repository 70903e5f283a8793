//! Arguments and plumbing shared by the subcommands that replay traces.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::engine::{DecisionKind, EvalOptions};
use crate::policy::{self, Dialect, LoadOptions};
use crate::replay::{PolicySet, Progress, ReplayError};
use crate::report::{
    self, CallsShown, DiffReport, Gate, InputSummary, OutputFormat, ReportOptions, RowKind,
    RowSink, SimulateReport, SummaryFormat, TimelineDetail, row_sink,
};
use crate::trace::{AgentGrant, AgentOptions, Format, ReadOptions, Trace, TraceError};

/// Trace inputs.
#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// Trace files or globs, merged in time order; `-` reads standard input.
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<String>,
    /// Input format; detected from the first lines when omitted.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub from: Option<Format>,
    /// Stop at the first malformed record (exit 2) instead of skipping and counting it.
    #[arg(long)]
    pub strict: bool,
    /// Calls read ahead of the replay in a file found out of time order, so that late calls
    /// can be put in their place; 0 sorts each such file whole in memory.
    #[arg(long, value_name = "CALLS")]
    pub reorder_window: Option<u64>,
    /// Read timestamps written without a UTC offset as being at this one (`UTC`, `+02:00`).
    #[arg(long, value_parser = crate::trace::parse_offset, value_name = "OFFSET", allow_hyphen_values = true)]
    pub assume_tz: Option<chrono::FixedOffset>,
    /// How agent logs name servers and callers.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// How agent logs (Claude Code, opencode, Codex, Cline) name servers and callers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AgentArgs {
    /// An MCP server the agent was connected to (repeatable): agent logs join server and tool
    /// names, and a name given here is split off first. For opencode, when given, only these
    /// servers' tools are calls.
    #[arg(long = "mcp-server", value_name = "NAME")]
    pub mcp_servers: Vec<String>,
    /// What becomes the grant of an agent log's calls: project (the working directory),
    /// model, none, or fixed:NAME.
    #[arg(long, value_name = "GRANT", default_value = "project")]
    pub agent_grant: AgentGrant,
}

impl AgentArgs {
    pub fn options(&self) -> AgentOptions {
        AgentOptions {
            mcp_servers: self.mcp_servers.clone(),
            grant: self.agent_grant.clone(),
        }
    }
}

impl InputArgs {
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            from: self.from,
            strict: self.strict,
            reorder_window: self.reorder_window,
            agent: self.agent.options(),
        }
    }

    /// Open the inputs. Errors (no such file, unknown format…) come before any output. Opening
    /// can take a while (a recording with replies is read once to pair them), so a terminal
    /// shows a spinner meanwhile.
    pub fn open(&self) -> Result<Trace, TraceError> {
        if let Some(offset) = self.assume_tz {
            crate::trace::set_assume_tz(offset);
        }
        let _opening = Spinner::opening();
        Trace::open(&self.traces, &self.read_options())
    }
}

/// When a call's reservation is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RollbackOn {
    /// Only a JSON-RPC error response (the gateway's behaviour).
    JsonrpcError,
    /// Also a result with `isError: true` (newer gateway versions).
    ToolError,
}

/// What to assume about calls whose upstream outcome is not in the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AssumeUpstream {
    /// They succeeded (reservations are kept).
    Success,
    /// They failed (reservations are given back).
    Failure,
}

/// How undecidable calls count against limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AssumeUnknown {
    /// Like allowed calls: they consume quota if it fits.
    Allow,
    /// They consume nothing.
    Deny,
}

/// Where Intercept counters are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InterceptCounters {
    /// One store shared by every server and policy, keys `<tool>.<counter>` (the gateway's
    /// default: its instances share one state store).
    Shared,
    /// One store per server (instances with separate state stores).
    PerServer,
}

/// Evaluation switches (policy.md §1, steps 6–8).
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Which upstream outcomes give a call's reservation back.
    #[arg(long, value_enum, default_value = "jsonrpc-error", value_name = "WHAT")]
    pub rollback_on: RollbackOn,
    /// Upstream outcome assumed for calls the trace has none for (e.g. denied when recorded).
    #[arg(long, value_enum, default_value = "success", value_name = "OUTCOME")]
    pub assume_upstream: AssumeUpstream,
    /// How undecidable (`unknown`) calls count against limits.
    #[arg(long, value_enum, default_value = "allow", value_name = "AS")]
    pub assume_unknown: AssumeUnknown,
    /// Continue calls held for approval as if approved at once (they then count against limits).
    #[arg(long)]
    pub assume_approved: bool,
    /// Where Intercept-dialect counters are kept: one store shared by every server, or one per server.
    #[arg(long, value_enum, default_value = "shared", value_name = "WHERE")]
    pub intercept_counters: InterceptCounters,
    /// Reject mcpsim's extensions to the policy.json dialect.
    #[arg(long)]
    pub strict_dialect: bool,
    /// Read the policies that name no dialect (`FILE:DIALECT`) as `policylayer` (JSON) or
    /// `intercept` (YAML) instead of detecting it
    #[arg(long, value_name = "DIALECT")]
    pub dialect: Option<Dialect>,
}

impl EvalArgs {
    pub fn options(&self) -> EvalOptions {
        EvalOptions {
            rollback_on_tool_error: self.rollback_on == RollbackOn::ToolError,
            assume_upstream_failure: self.assume_upstream == AssumeUpstream::Failure,
            assume_unknown_deny: self.assume_unknown == AssumeUnknown::Deny,
            assume_approved: self.assume_approved,
            intercept_per_server: self.intercept_counters == InterceptCounters::PerServer,
        }
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            strict_dialect: self.strict_dialect,
            dialect: self.dialect,
        }
    }
}

/// Report shape and destination.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format: summaries (`table`, `markdown`, `json`, `html`) or one row per call (`jsonl`, `csv`, `parquet`).
    #[arg(
        long,
        short = 'f',
        value_enum,
        default_value = "table",
        value_name = "FORMAT"
    )]
    pub format: OutputFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which calls summaries list: `changed` (the first --max-calls not allowed / changed), `all`, or `none`.
    #[arg(long, value_enum, default_value = "changed", value_name = "WHICH")]
    pub calls: CallsShown,
    /// How many calls `--calls changed` lists.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_calls: usize,
    /// Include argument values in listed calls (hidden by default: they may hold secrets).
    #[arg(long)]
    pub show_args: bool,
}

impl OutputArgs {
    /// The options of the report; `fail_on`: the gate's decisions (each counted once, however
    /// often given) and how many calls it tolerates.
    pub fn report_options(&self, fail_on: Option<(Vec<DecisionKind>, u64)>) -> ReportOptions {
        let fail_on = fail_on.map(|(kinds, max)| {
            let mut once = Vec::with_capacity(kinds.len());
            for k in kinds {
                if !once.contains(&k) {
                    once.push(k);
                }
            }
            (once, max)
        });
        ReportOptions {
            calls_shown: self.calls,
            max_calls: self.max_calls,
            show_args: self.show_args,
            fail_on,
            timeline: match self.format {
                OutputFormat::Html => TimelineDetail::Counters,
                _ => TimelineDetail::Off,
            },
            part: false,
        }
    }

    /// The destination: `--output FILE` or standard output (refusing binary output to a
    /// terminal, and a file the command reads).
    pub fn open<'a>(
        &self,
        reads: &Reads,
        stdout: &'a mut dyn Write,
    ) -> anyhow::Result<Box<dyn Write + 'a>> {
        if self.output.is_none()
            && self.format == OutputFormat::Parquet
            && io::stdout().is_terminal()
        {
            anyhow::bail!(
                "parquet output is binary: give --output FILE or redirect standard output"
            );
        }
        open_output(self.output.as_deref(), reads, stdout)
    }
}

/// `--output FILE` (buffered), or standard output. A file the command reads is refused before
/// anything is created: writing it would destroy what is being read.
pub fn open_output<'a>(
    path: Option<&Path>,
    reads: &Reads,
    stdout: &'a mut dyn Write,
) -> anyhow::Result<Box<dyn Write + 'a>> {
    match path {
        Some(path) => {
            reads.refuse(path)?;
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            Ok(Box::new(BufWriter::new(f)))
        }
        None => Ok(Box::new(BufWriter::new(stdout))),
    }
}

/// The files a command reads (traces, policies, parts, suites), so that none of its outputs
/// overwrites one of them. Compared as canonical paths: `./t.jsonl` and a link to it are the
/// file itself.
#[derive(Default)]
pub struct Reads(Vec<PathBuf>);

impl Reads {
    /// The files of trace arguments (globs expanded; standard input is none).
    pub fn traces(mut self, traces: &[String]) -> Reads {
        let files = crate::trace::expand_inputs(traces).unwrap_or_default();
        self.0
            .extend(files.into_iter().filter_map(|spec| match spec {
                crate::trace::InputSpec::File(p) => Some(p),
                crate::trace::InputSpec::Stdin => None,
            }));
        self
    }

    /// The files of `--policy` values (`FILE` or `SERVER=FILE`, with or without `:DIALECT`).
    pub fn policies(mut self, specs: &[String]) -> Reads {
        self.0.extend(
            specs
                .iter()
                .map(|s| PathBuf::from(PolicySpec::parse(s).file)),
        );
        self
    }

    /// Files named as they are.
    pub fn files<P: AsRef<Path>>(mut self, files: impl IntoIterator<Item = P>) -> Reads {
        self.0
            .extend(files.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// An error when `output` is one of the files read.
    pub fn refuse(&self, output: &Path) -> anyhow::Result<()> {
        let Ok(out) = output.canonicalize() else {
            // Not there yet: nothing reads it.
            return Ok(());
        };
        if self
            .0
            .iter()
            .any(|p| p.canonicalize().is_ok_and(|p| p == out))
        {
            anyhow::bail!(
                "{} is also an input: writing it would destroy what is being read",
                output.display()
            );
        }
        Ok(())
    }
}

/// Shape and destination of a report that has no per-call rows, in the formats `F` (those
/// of `explain` and `stats` unless said).
#[derive(clap::Args, Debug, Clone)]
pub struct SummaryOutputArgs<F = SummaryFormat>
where
    F: clap::ValueEnum + Clone + Send + Sync + 'static,
{
    /// Output format.
    #[arg(
        long,
        short = 'f',
        value_enum,
        default_value = "table",
        value_name = "FORMAT"
    )]
    pub format: F,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl<F: clap::ValueEnum + Clone + Send + Sync + 'static> SummaryOutputArgs<F> {
    /// The destination: `--output FILE` or standard output (refusing a file the command
    /// reads).
    pub fn open<'a>(
        &self,
        reads: &Reads,
        stdout: &'a mut dyn Write,
    ) -> anyhow::Result<Box<dyn Write + 'a>> {
        open_output(self.output.as_deref(), reads, stdout)
    }
}

/// `--server NAME`: only that server's calls count; the others are counted as left out. A name
/// that no call has is an error naming the servers seen.
pub struct ServerFilter<'a> {
    server: Option<&'a str>,
    /// Per server id: 0 not seen yet, 1 left out, 2 kept.
    seen: Vec<u8>,
    names: std::collections::BTreeSet<String>,
    kept: u64,
    /// Calls left out.
    pub left_out: u64,
}

impl<'a> ServerFilter<'a> {
    pub fn new(server: Option<&'a str>) -> ServerFilter<'a> {
        ServerFilter {
            server,
            seen: Vec::new(),
            names: Default::default(),
            kept: 0,
            left_out: 0,
        }
    }

    /// Whether `call` is one of the server's (always, without `--server`).
    #[inline]
    pub fn keeps(&mut self, call: &crate::trace::Call<'_>) -> bool {
        let Some(server) = self.server else {
            return true;
        };
        let id = call.ids().server as usize;
        if self.seen.len() <= id {
            self.seen.resize(id + 1, 0);
        }
        if self.seen[id] == 0 {
            let name = call.server();
            self.seen[id] = 1 + u8::from(&**name == server);
            self.names.insert(name.to_string());
        }
        let keep = self.seen[id] == 2;
        if keep {
            self.kept += 1;
        } else {
            self.left_out += 1;
        }
        keep
    }

    /// After the read: an error when `--server` named a server no call has.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.server {
            Some(s) if self.kept == 0 && !self.names.is_empty() => {
                let near = crate::policy::nearest_name(s, self.names.iter().map(String::as_str))
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "--server {s}: no call has this server (servers in the trace: {}){near}",
                    self.names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            }
            _ => Ok(()),
        }
    }
}

/// Parse `deny,throttle,unknown` into decision kinds.
pub fn parse_kind(s: &str) -> Result<DecisionKind, String> {
    // `--fail-on 'deny, throttle'`: the space after a comma is not part of the name.
    let s = s.trim();
    DecisionKind::parse(s).ok_or_else(|| {
        format!("unknown decision `{s}` (expected allow, deny, throttle, approval or unknown)")
    })
}

/// `--policy` values plus one `SERVER=FILE` for each policy file of `dir` (`--policy-dir`):
/// `DIR/<server>.json`, `.yaml` or `.yml`, in name order. A directory without one is an error.
pub fn with_policy_dir(specs: &[String], dir: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let mut all = specs.to_vec();
    let Some(dir) = dir else { return Ok(all) };
    for path in policy_files(dir)? {
        if let Some(server) = path.file_stem().and_then(|s| s.to_str()) {
            all.push(format!("{server}={}", path.display()));
        }
    }
    Ok(all)
}

/// The policy files of a directory, in name order: `.json`, `.yaml` and `.yml` files, policy
/// tests (`*_test.yaml`…, which live beside the policies) left out. None is an error.
pub fn policy_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let policy = !crate::suite::is_test_file(name)
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            );
        if policy && path.is_file() && path.file_stem().and_then(|s| s.to_str()).is_some() {
            found.push(path);
        }
    }
    if found.is_empty() {
        anyhow::bail!(
            "{}: no policy files (<server>.json, .yaml or .yml) in this directory",
            dir.display()
        );
    }
    found.sort();
    Ok(found)
}

/// Load `--policy` values: `FILE` for every server, `SERVER=FILE` for one, either followed by
/// `:intercept` or `:policylayer` to set that file's dialect (else `opts.dialect`, else
/// detected from the content).
///
/// Diagnostics of invalid policies are written to `err`; the result is then `Ok(None)`.
pub fn load_policies(
    specs: &[String],
    opts: &LoadOptions,
    err: &mut dyn Write,
) -> anyhow::Result<Option<PolicySet>> {
    let mut set = PolicySet::default();
    let mut ok = true;
    for spec in specs {
        let PolicySpec {
            server,
            file,
            dialect,
        } = PolicySpec::parse(spec);
        let opts = LoadOptions {
            dialect: dialect.or(opts.dialect),
            ..*opts
        };
        match policy::load_policy_file_with(Path::new(file), &opts) {
            Ok(p) => {
                let entry = (file.to_owned(), Arc::new(p));
                match server {
                    Some(s) => {
                        if set.per_server.insert(s.to_owned(), entry).is_some() {
                            anyhow::bail!("two policies given for server `{s}`");
                        }
                    }
                    None => {
                        if set.default.replace(entry).is_some() {
                            anyhow::bail!(
                                "two policies given for every server; use SERVER=FILE for per-server policies"
                            );
                        }
                    }
                }
            }
            Err(e) => {
                // Show the errors like `mcpsim check` does: with the offending line and a caret.
                let src = std::fs::read_to_string(file).unwrap_or_default();
                let mut diags = e.errors.clone();
                diags.extend(e.warnings.iter().cloned());
                policy::render_diagnostics(&src, &e.file, &diags, err)?;
                let n = e.errors.len();
                writeln!(
                    err,
                    "error: {}: {n} error{}",
                    e.file,
                    if n == 1 { "" } else { "s" }
                )?;
                ok = false;
            }
        }
    }
    Ok(ok.then_some(set))
}

/// One `--policy` value, `[SERVER=]FILE[:DIALECT]`.
#[derive(Debug, PartialEq)]
struct PolicySpec<'a> {
    server: Option<&'a str>,
    file: &'a str,
    dialect: Option<Dialect>,
}

impl PolicySpec<'_> {
    /// A value that names an existing file is that file, `=` and `:` included; so is what is
    /// left of it after `:DIALECT`.
    fn parse(spec: &str) -> PolicySpec<'_> {
        let whole = |file, dialect| PolicySpec {
            server: None,
            file,
            dialect,
        };
        if Path::new(spec).exists() {
            return whole(spec, None);
        }
        let (rest, dialect) = match spec.rsplit_once(':') {
            Some((rest, name)) if !rest.is_empty() => match name.parse::<Dialect>() {
                Ok(d) => (rest, Some(d)),
                Err(_) => (spec, None),
            },
            _ => (spec, None),
        };
        if Path::new(rest).exists() {
            return whole(rest, dialect);
        }
        match rest.split_once('=') {
            Some((server, file)) if !server.is_empty() => PolicySpec {
                server: Some(server),
                file,
                dialect,
            },
            _ => whole(rest, dialect),
        }
    }
}

/// A spinner on standard error counting calls, only when standard error is a terminal and
/// not under CI.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn new() -> Spinner {
        let interactive = io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Spinner(interactive.then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {human_pos} calls replayed ({elapsed})",
                )
                .expect("static template"),
            );
            pb
        }))
    }

    /// A spinner that turns on its own while the inputs are opened, gone when dropped.
    fn opening() -> Spinner {
        let spinner = Spinner::new();
        if let Some(pb) = &spinner.0 {
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} opening the traces ({elapsed})")
                    .expect("static template"),
            );
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
        }
        spinner
    }

    /// Show `calls` every few thousand calls (cheap to call on every call).
    pub fn count(&mut self, calls: u64) {
        if calls % (1 << 14) == 0 {
            self.tick(calls);
        }
    }
}

impl Progress for Spinner {
    fn tick(&mut self, calls: u64) {
        if let Some(pb) = &self.0 {
            pb.set_position(calls);
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// What the shared output path needs to know of a finished report.
pub trait Finished {
    /// How the gate message names failing calls ("calls" or "calls newly").
    const GATE_WHAT: &'static str;
    /// The per-call rows this report writes.
    const ROWS: RowKind;
    /// What was read.
    fn input(&self) -> &InputSummary;
    /// The report's warnings.
    fn warnings(&self) -> &[String];
    /// The gate, if one was asked for.
    fn gate(&self) -> Option<&Gate>;
    /// Render in a summary format.
    fn write_summary(&self, format: OutputFormat, out: &mut dyn Write) -> io::Result<()>;
}

impl Finished for SimulateReport {
    const GATE_WHAT: &'static str = "calls";
    const ROWS: RowKind = RowKind::Simulate;
    fn input(&self) -> &InputSummary {
        &self.input
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn gate(&self) -> Option<&Gate> {
        self.gate.as_ref()
    }
    fn write_summary(&self, format: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
        report::write_simulate(self, format, out)
    }
}

impl Finished for DiffReport {
    const GATE_WHAT: &'static str = "calls newly";
    const ROWS: RowKind = RowKind::Diff;
    fn input(&self) -> &InputSummary {
        &self.input
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn gate(&self) -> Option<&Gate> {
        self.gate.as_ref()
    }
    fn write_summary(&self, format: OutputFormat, out: &mut dyn Write) -> io::Result<()> {
        report::write_diff(self, format, out)
    }
}

/// Run a replay with the output the arguments ask for: per-call rows streamed to the
/// destination, or a summary rendered at the end; then apply the gate. Returns the exit code.
pub fn replay_and_report<R: Finished>(
    output: &OutputArgs,
    reads: &Reads,
    out: &mut dyn Write,
    err: &mut dyn Write,
    replay: impl FnOnce(
        Option<(&mut dyn RowSink, &mut dyn Write)>,
        &mut dyn Progress,
    ) -> Result<R, ReplayError>,
) -> anyhow::Result<u8> {
    let mut dest = output.open(reads, out)?;
    let mut sink = row_sink(output.format, R::ROWS);
    let mut spinner = Spinner::new();
    let rows = sink
        .as_deref_mut()
        .map(|s| -> (&mut dyn RowSink, &mut dyn Write) { (s, &mut *dest) });
    let report = replay(rows, &mut spinner)?;
    drop(spinner);
    match sink {
        Some(sink) => {
            sink.finish(&mut dest)?;
            for w in report.warnings() {
                writeln!(err, "warning: {w}")?;
            }
            warn_skipped(report.input(), err)?;
        }
        None => report.write_summary(output.format, &mut dest)?,
    }
    dest.flush()?;
    Ok(gate_exit(report.gate(), R::GATE_WHAT, err)?)
}

/// The exit code of a run with this gate: 1 (said on `err`) when it failed, else 0.
pub fn gate_exit(gate: Option<&Gate>, what: &str, err: &mut dyn Write) -> io::Result<u8> {
    Ok(match gate {
        Some(g) if g.failed => {
            writeln!(
                err,
                "gate failed: {} {what} {} (at most {} allowed)",
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
pub(super) fn warn_skipped(input: &InputSummary, err: &mut dyn Write) -> io::Result<()> {
    if input.skipped > 0 {
        writeln!(err, "warning: {} malformed records skipped", input.skipped)?;
        for s in &input.skipped_examples {
            writeln!(err, "  {}:{}: {}", s.file, s.line, s.reason)?;
        }
    }
    if let Some(r) = &input.replies {
        if r.requests_without_reply > 0 || r.replies_without_request > 0 {
            let n =
                |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            writeln!(
                err,
                "warning: {} without a reply{}, {} without a request",
                n(r.requests_without_reply, "request", "requests"),
                crate::trace::cancelled_note(r.cancelled),
                n(r.replies_without_request, "reply", "replies"),
            )?;
            for s in &r.examples {
                writeln!(err, "  {}:{}: {}", s.file, s.line, s.reason)?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_spec_names_server_file_and_dialect() {
        let spec = |server, file, dialect| PolicySpec {
            server,
            file,
            dialect,
        };
        let rows = [
            ("p.json", spec(None, "p.json", None)),
            ("s=p.json", spec(Some("s"), "p.json", None)),
            (
                "s=p.yaml:intercept",
                spec(Some("s"), "p.yaml", Some(Dialect::Intercept)),
            ),
            (
                "p.yaml:json",
                spec(None, "p.yaml", Some(Dialect::PolicyLayer)),
            ),
            // Not a dialect: part of the file name.
            ("s=p:v2", spec(Some("s"), "p:v2", None)),
            ("=p.json", spec(None, "=p.json", None)),
        ];
        for (value, want) in rows {
            assert_eq!(PolicySpec::parse(value), want, "{value}");
        }
        // An existing file is itself, `=` and `:intercept` included.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a=b.yaml:intercept");
        std::fs::write(&odd, "version: \"1\"\n").unwrap();
        let odd = odd.to_str().unwrap();
        assert_eq!(PolicySpec::parse(odd), spec(None, odd, None));
        let with = format!("{odd}:policylayer");
        assert_eq!(
            PolicySpec::parse(&with),
            spec(None, odd, Some(Dialect::PolicyLayer))
        );
    }
}
