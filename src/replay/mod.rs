//! Feeds calls in time order through one engine per policy and builds the reports.
//!
//! A policy given as `FILE` applies to every server; `SERVER=FILE` to one server and wins over
//! the former for it. A call whose server has no policy is not evaluated and is counted as such.

pub mod lane;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use crate::engine::{Decision, Engine, EvalOptions, ExplainStep, Policy};
use crate::report::{
    CallInfo, Cause, Count, DiffBuilder, DiffReport, DiffRow, FileInput, InputSummary, NoPolicy,
    Outcome, PolicyRef, ReportOptions, RowSink, SimulateBuilder, SimulateReport, SkippedRecord,
    counts_by_frequency, row,
};
use crate::trace::{CallRecord, ReadStats, Trace, TraceError};

/// The policies of one side of a run: one for every server and/or one per server.
#[derive(Clone, Default)]
pub struct PolicySet {
    /// Applies to servers without their own policy.
    pub default: Option<(String, Arc<Policy>)>,
    /// Per server: (file, policy).
    pub per_server: BTreeMap<String, (String, Arc<Policy>)>,
}

impl PolicySet {
    /// The files, as reports list them.
    pub fn refs(&self) -> Vec<PolicyRef> {
        let mut v: Vec<PolicyRef> = self
            .default
            .iter()
            .map(|(file, _)| PolicyRef {
                server: None,
                file: file.clone(),
            })
            .collect();
        v.extend(self.per_server.iter().map(|(server, (file, _))| PolicyRef {
            server: Some(server.clone()),
            file: file.clone(),
        }));
        v
    }

    /// The policy that applies to a server's calls, as reports name it; `None` when there is none.
    pub fn policy_for(&self, server: &str) -> Option<PolicyRef> {
        match self.per_server.get(server) {
            Some((file, _)) => Some(PolicyRef {
                server: Some(server.to_owned()),
                file: file.clone(),
            }),
            None => self.default.as_ref().map(|(file, _)| PolicyRef {
                server: None,
                file: file.clone(),
            }),
        }
    }
}

/// One engine per policy of a [`PolicySet`], each with its own counters.
pub struct Replayer {
    default: Option<Engine>,
    // Looked up once or twice per call: Fx hashing, as server names are short and trusted.
    per_server: rustc_hash::FxHashMap<String, Engine>,
}

impl Replayer {
    /// Fresh engines (empty counters) for a policy set.
    pub fn new(set: &PolicySet, opts: EvalOptions) -> Replayer {
        Replayer {
            default: set
                .default
                .as_ref()
                .map(|(_, p)| Engine::new(p.clone(), opts)),
            per_server: set
                .per_server
                .iter()
                .map(|(s, (_, p))| (s.clone(), Engine::new(p.clone(), opts)))
                .collect(),
        }
    }

    fn engine(&mut self, server: &str) -> Option<&mut Engine> {
        match self.per_server.get_mut(server) {
            Some(e) => Some(e),
            None => self.default.as_mut(),
        }
    }

    /// Whether calls to this server have a policy.
    pub fn covers(&self, server: &str) -> bool {
        self.default.is_some() || self.per_server.contains_key(server)
    }

    fn engine_ref(&self, server: &str) -> Option<&Engine> {
        self.per_server.get(server).or(self.default.as_ref())
    }

    /// Evaluate one call; `None` when its server has no policy.
    pub fn decide(&mut self, call: &CallRecord) -> Option<Decision> {
        let view = call.view();
        self.engine(&call.server).map(|e| e.evaluate(&view))
    }

    /// Every rule and counter on the way to this call's decision, with counters as the calls
    /// decided so far left them; `None` when its server has no policy. Changes nothing: call it
    /// before [`Replayer::decide`] for the same call.
    pub fn explain(&self, call: &CallRecord) -> Option<Vec<ExplainStep>> {
        self.engine_ref(&call.server)
            .map(|e| e.explain(&call.view()))
    }
}

/// Reports progress (calls processed) during long runs; implemented by the CLI's progress bar.
pub trait Progress {
    /// Called every few thousand calls with the number processed so far.
    fn tick(&mut self, calls: u64);
}

/// No progress display.
pub struct NoProgress;

impl Progress for NoProgress {
    fn tick(&mut self, _calls: u64) {}
}

const TICK: u64 = 1 << 14;

/// A replay failed: reading the trace (strict mode, I/O) or writing per-call output.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trace could not be read.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Per-call output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Summarise what was read; `evaluated` and `no_policy` come from the replay.
pub fn input_summary(files: &[String], stats: &ReadStats, no_policy: NoPolicy) -> InputSummary {
    let evaluated = stats.calls - no_policy.total();
    InputSummary {
        files: stats
            .per_file
            .iter()
            .map(|(name, format, calls)| FileInput {
                name: name.clone(),
                format: format.as_str().to_owned(),
                calls: *calls,
            })
            .collect(),
        calls_read: stats.calls,
        calls_evaluated: evaluated,
        no_policy: no_policy.into_counts(),
        out_of_order: stats.out_of_order,
        skipped: stats.skipped,
        skipped_by_reason: counts_by_frequency(&stats.skipped_by_reason),
        skipped_examples: stats
            .skipped_examples
            .iter()
            .map(|s| SkippedRecord {
                file: s.file.clone(),
                line: s.line,
                reason: s.reason.clone(),
            })
            .collect(),
        ignored: stats
            .ignored
            .iter()
            .map(|(name, &count)| Count {
                name: name.clone(),
                count,
            })
            .collect(),
    }
    .with_files_fallback(files)
}

impl InputSummary {
    fn with_files_fallback(mut self, files: &[String]) -> InputSummary {
        if self.files.is_empty() {
            self.files = files
                .iter()
                .map(|f| FileInput {
                    name: f.clone(),
                    format: "unknown".to_owned(),
                    calls: 0,
                })
                .collect();
        }
        self
    }
}

/// Replay a trace through one policy set.
///
/// With a `sink`, every evaluated call is also written as a per-call row to `out`.
pub fn simulate(
    trace: &mut Trace,
    policies: &PolicySet,
    eval: EvalOptions,
    opts: ReportOptions,
    mut sink: Option<(&mut dyn RowSink, &mut dyn Write)>,
    progress: &mut dyn Progress,
) -> Result<SimulateReport, ReplayError> {
    let mut replayer = Replayer::new(policies, eval);
    let show_args = opts.show_args;
    let mut builder = SimulateBuilder::new(opts);
    let mut no_policy = NoPolicy::default();
    let mut index = 0u64;
    let files = trace.files().to_vec();
    while let Some(call) = trace.next_call()? {
        index += 1;
        if index % TICK == 0 {
            progress.tick(index);
        }
        let Some(decision) = replayer.decide(&call) else {
            no_policy.add(&call);
            continue;
        };
        builder.push(index, &call, &decision, &files);
        if let Some((sink, out)) = sink.as_mut() {
            sink.simulate_row(&row(index, &call, &decision, &files, show_args), *out)?;
        }
    }
    progress.tick(index);
    let input = input_summary(&files, trace.stats(), no_policy);
    Ok(builder.finish(policies.refs(), input))
}

/// Replay a trace through two policy sets side by side and compare.
pub fn diff(
    trace: &mut Trace,
    base: &PolicySet,
    candidate: &PolicySet,
    eval: EvalOptions,
    opts: ReportOptions,
    mut sink: Option<(&mut dyn RowSink, &mut dyn Write)>,
    progress: &mut dyn Progress,
) -> Result<DiffReport, ReplayError> {
    let mut b = Replayer::new(base, eval);
    let mut c = Replayer::new(candidate, eval);
    let show_args = opts.show_args;
    let mut builder = DiffBuilder::new(opts);
    let mut no_policy = NoPolicy::default();
    let mut index = 0u64;
    let files = trace.files().to_vec();
    while let Some(call) = trace.next_call()? {
        index += 1;
        if index % TICK == 0 {
            progress.tick(index);
        }
        // A call is compared only when both sides have a policy for its server.
        if !b.covers(&call.server) || !c.covers(&call.server) {
            no_policy.add(&call);
            continue;
        }
        let (Some(bd), Some(cd)) = (b.decide(&call), c.decide(&call)) else {
            no_policy.add(&call);
            continue;
        };
        let cause = (bd.kind != cd.kind).then(|| cause(&b, &c, &call));
        builder.push(index, &call, &bd, &cd, cause, &files);
        if let Some((sink, out)) = sink.as_mut() {
            let row = DiffRow {
                call: CallInfo::new(index, &call, &files, show_args),
                base: Outcome::new(&bd, &call),
                candidate: Outcome::new(&cd, &call),
                cause,
            };
            sink.diff_row(&row, *out)?;
        }
    }
    progress.tick(index);
    let input = input_summary(&files, trace.stats(), no_policy);
    Ok(builder.finish(base.refs(), candidate.refs(), input))
}

/// Direct when the rules and limits that apply to the call differ between the two policies;
/// knock-on when they are the same and only counter state (moved by earlier calls) differs.
fn cause(base: &Replayer, candidate: &Replayer, call: &CallRecord) -> Cause {
    let view = call.view();
    match (
        base.engine_ref(&call.server),
        candidate.engine_ref(&call.server),
    ) {
        (Some(b), Some(c)) if b.static_outcome(&view) == c.static_outcome(&view) => Cause::KnockOn,
        _ => Cause::Direct,
    }
}
