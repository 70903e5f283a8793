//! The fast lane: a summary replay of inputs read as [`CallBatch`]es, names as ids.
//!
//! [`simulate`](super::simulate) takes every call as a [`CallRecord`]; for large files of
//! mcpsim JSONL or Parquet, building those records costs more than deciding the calls. This
//! lane instead walks the columns of the fast readers' batches, hands the engines calls whose
//! names are already ids ([`CallIds`]), counts per tool and per grant by id, and builds a
//! record only for the few calls the report lists. Its report is the one
//! [`simulate`](super::simulate) would produce, byte for byte; the tests hold it to that.
//!
//! Several inputs are merged in time order as they stream (equal times keep the order the
//! inputs were given, then line order). The lane declines (returns `None`, and the caller
//! replays with [`Trace`]) when it cannot promise the general path's report: standard input,
//! `--strict` (the first bad line must end the run before any output), a format without a
//! batch reader, per-call output, an input whose calls turn out not to be in time order (the
//! general path sorts them), or bad lines in one of several inputs (which of them the report
//! lists as examples depends on how the general path reads). The last two are found while
//! streaming, and what the lane did so far is dropped.
//!
//! [`Trace`]: crate::trace::Trace

use std::sync::Arc;

use super::{PolicySet, Progress, ReplayError, TICK, input_summary};
use crate::engine::{CallIds, CallView, Decision, DecisionKind, Engine, EvalOptions};
use crate::report::{
    Cause, DiffBuilder, DiffGroup, DiffReport, NoPolicy, ReportOptions, SimulateBuilder,
    SimulateReport, Tally,
};
use crate::trace::{
    Args, BatchInput, CallBatch, Ctx, NO_SYM, Nanos, ReadOptions, ReadStats, Sym, Symbols,
    TraceError, open_batches,
};

/// Inputs opened for the lane.
pub struct Lane {
    input: Vec<BatchInput>,
    symbols: Arc<Symbols>,
}

impl Lane {
    /// Open `inputs` for the lane; `None` when it cannot take them (see the module docs).
    /// Errors are those [`Trace::open`] would give for the same inputs (no such file, unknown
    /// format…).
    ///
    /// [`Trace::open`]: crate::trace::Trace::open
    pub fn open(inputs: &[String], read: &ReadOptions) -> Result<Option<Lane>, TraceError> {
        Lane::open_with(inputs, read, false)
    }

    /// [`Lane::open`], optionally reading formats without a batch reader through their record
    /// reader (so that tests can hold the lane to the general path on every format).
    pub(crate) fn open_with(
        inputs: &[String],
        read: &ReadOptions,
        any_format: bool,
    ) -> Result<Option<Lane>, TraceError> {
        let symbols = Symbols::new();
        Ok(open_batches(inputs, read, &symbols, any_format)?.map(|input| Lane { input, symbols }))
    }

    /// Replay the inputs through `policies`; `None` when the lane declines midway (an input
    /// out of time order, or bad lines in one of several inputs: see the module docs).
    pub fn simulate(
        self,
        policies: &PolicySet,
        eval: EvalOptions,
        opts: ReportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Option<SimulateReport>, ReplayError> {
        run(self.input, &self.symbols, policies, eval, opts, progress)
    }

    /// Replay the inputs through two policy sets side by side and compare; `None` when the
    /// lane declines midway (see [`Lane::simulate`]).
    pub fn diff(
        self,
        base: &PolicySet,
        candidate: &PolicySet,
        eval: EvalOptions,
        opts: ReportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Option<DiffReport>, ReplayError> {
        run_diff(
            self.input,
            &self.symbols,
            (base, candidate),
            eval,
            opts,
            progress,
        )
    }
}

/// Which engine decides a server's calls.
#[derive(Debug, Clone, Copy)]
enum Route {
    Unseen,
    NoPolicy,
    Default,
    Server(usize),
}

/// The engines of a [`PolicySet`], found by server id.
struct Engines {
    default: Option<Engine>,
    per_server: Vec<Engine>,
    per_server_names: Vec<String>,
    routes: Vec<Route>,
}

impl Engines {
    fn new(set: &PolicySet, opts: EvalOptions) -> Engines {
        Engines {
            default: set
                .default
                .as_ref()
                .map(|(_, p)| Engine::new(p.clone(), opts)),
            per_server: set
                .per_server
                .values()
                .map(|(_, p)| Engine::new(p.clone(), opts))
                .collect(),
            per_server_names: set.per_server.keys().cloned().collect(),
            routes: Vec::new(),
        }
    }

    #[inline]
    fn get(&mut self, server: u32, name: &str) -> Option<&mut Engine> {
        let i = server as usize;
        let route = match self.routes.get(i) {
            Some(Route::Unseen) | None => {
                let route = match self.per_server_names.iter().position(|n| n == name) {
                    Some(k) => Route::Server(k),
                    None if self.default.is_some() => Route::Default,
                    None => Route::NoPolicy,
                };
                if self.routes.len() <= i {
                    self.routes.resize(i + 1, Route::Unseen);
                }
                self.routes[i] = route;
                route
            }
            Some(&route) => route,
        };
        match route {
            Route::Server(k) => self.per_server.get_mut(k),
            Route::Default => self.default.as_mut(),
            Route::NoPolicy | Route::Unseen => None,
        }
    }
}

/// Names by id, copied from the shared table as new ids appear, so looking one up takes no
/// lock.
struct Names {
    symbols: Arc<Symbols>,
    names: Vec<Sym>,
}

impl Names {
    /// Make sure every id handed out so far (so every id of the batch just received) has its
    /// name.
    fn sync(&mut self) {
        if self.symbols.len() > self.names.len() {
            self.symbols.extend_names(&mut self.names);
        }
    }

    #[inline]
    fn get(&self, id: u32) -> &Sym {
        &self.names[id as usize]
    }

    #[inline]
    fn opt(&self, id: u32) -> Option<&str> {
        (id != NO_SYM).then(|| &**self.get(id))
    }
}

/// Counts by id, grown on demand.
struct ById<T>(Vec<T>);

impl<T: Default + Clone> ById<T> {
    fn new() -> ById<T> {
        ById(Vec::new())
    }

    #[inline]
    fn at(&mut self, id: u32) -> &mut T {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, T::default());
        }
        &mut self.0[i]
    }
}

/// The decisions of one tool or grant by kind (at `DecisionKind as usize`), then how many of
/// them needed approval: two additions a call, made a [`Tally`] at the end.
#[derive(Debug, Clone, Copy, Default)]
struct Counts([u64; 6]);

impl Counts {
    #[inline]
    fn add(&mut self, d: &Decision) {
        self.0[d.kind as usize] += 1;
        self.0[5] += u64::from(d.approval_required);
    }

    fn calls(&self) -> u64 {
        self.0[..5].iter().sum()
    }

    fn tally(&self) -> Tally {
        let of = |kind: DecisionKind| self.0[kind as usize];
        Tally {
            calls: self.calls(),
            allow: of(DecisionKind::Allow),
            deny: of(DecisionKind::Deny),
            throttle: of(DecisionKind::Throttle),
            approval: of(DecisionKind::Approval),
            unknown: of(DecisionKind::Unknown),
            approval_required: self.0[5],
        }
    }
}

/// Per-tool and per-grant counts of a replay, by id (grant `None` for calls without one).
struct Groups<T> {
    tools: ById<T>,
    grants: ById<T>,
    no_grant: T,
}

impl<T: Default + Clone> Groups<T> {
    fn new() -> Groups<T> {
        Groups {
            tools: ById::new(),
            grants: ById::new(),
            no_grant: T::default(),
        }
    }

    #[inline]
    fn count(&mut self, tool: u32, grant: u32, mut f: impl FnMut(&mut T)) {
        f(self.tools.at(tool));
        f(if grant == NO_SYM {
            &mut self.no_grant
        } else {
            self.grants.at(grant)
        });
    }

    /// The counts with names, leaving out ids no call counted in (`used`).
    #[allow(clippy::type_complexity)]
    fn named<'a>(
        &'a self,
        names: &'a Names,
        used: impl Fn(&T) -> bool + Copy + 'a,
    ) -> (
        impl Iterator<Item = (&'a Arc<str>, &'a T)>,
        impl Iterator<Item = (Option<&'a Arc<str>>, &'a T)>,
    ) {
        let tools = (self.tools.0.iter().enumerate())
            .filter(move |(_, t)| used(t))
            .map(|(id, t)| (names.get(id as u32), t));
        let grants = (self.grants.0.iter().enumerate())
            .filter(move |(_, t)| used(t))
            .map(|(id, t)| (Some(names.get(id as u32)), t))
            .chain(used(&self.no_grant).then_some((None, &self.no_grant)));
        (tools, grants)
    }
}

/// What a replay loop over the batches read, besides the calls it handed on.
struct Read {
    files: Vec<String>,
    stats: ReadStats,
    names: Names,
    no_policy: NoPolicy,
}

/// One call of a batch, as the lane hands it to a replay.
struct Call<'a> {
    index: u64,
    batch: &'a CallBatch,
    row: usize,
    /// The ids of `view`'s server, grant and tool.
    server: u32,
    grant: u32,
    tool: u32,
    view: CallView<'a>,
}

impl Call<'_> {
    /// The call's whole record, for the report's listed calls.
    fn record(&self) -> crate::trace::CallRecord {
        let mut rec = self.batch.rows.record(self.row);
        rec.origin.file = self.batch.file;
        rec
    }
}

/// One input being walked: its current batch and row.
struct Feed {
    input: BatchInput,
    batch: Option<CallBatch>,
    row: usize,
    /// Timestamp of the input's last call, for the order check.
    latest: Nanos,
}

/// What [`Feed::fill`] found.
enum Fill {
    Row,
    End,
    /// Bad lines in one of several inputs: the general path orders their examples.
    Decline,
}

impl Feed {
    /// Make the current row a call, reading batches as needed. Their bad and ignored lines
    /// are counted in `stats` (under input `file`).
    fn fill(
        &mut self,
        stats: &mut ReadStats,
        names: &mut Names,
        several: bool,
    ) -> Result<Fill, ReplayError> {
        while self.batch.as_ref().is_none_or(|b| self.row >= b.len()) {
            let Some(batch) = self.input.source.next_batch()? else {
                self.batch = None;
                return Ok(Fill::End);
            };
            if several && !batch.skipped.is_empty() {
                return Ok(Fill::Decline);
            }
            let mut cx = Ctx {
                stats: &mut *stats,
                strict: false,
                file: &self.input.name,
            };
            for (line, e) in &batch.skipped {
                cx.skip(*line, e.clone())?;
            }
            for kind in &batch.ignored {
                cx.ignore(kind.as_str());
            }
            names.sync();
            self.batch = Some(batch);
            self.row = 0;
        }
        Ok(Fill::Row)
    }

    /// The merge key of the current row: time, then input order, then line.
    fn key(&self, file: usize) -> Option<std::cmp::Reverse<(Nanos, usize, u64)>> {
        let b = self.batch.as_ref()?;
        Some(std::cmp::Reverse((
            *b.ts.get(self.row)?,
            file,
            *b.line.get(self.row)?,
        )))
    }
}

/// Walk the inputs' batches, merged in time order (equal times keep the order the inputs were
/// given, then line order, as [`Trace`](crate::trace::Trace) does): count skipped and ignored
/// lines, check that each input is in time order, number the calls, and hand every call to
/// `each`, which says whether the call's server has a policy (those without are counted as
/// such). `None` when an input turns out not to be in time order, or when one of several
/// inputs has bad lines (the general path decides which of them the report shows).
fn drive(
    inputs: Vec<BatchInput>,
    symbols: &Arc<Symbols>,
    needs_args: bool,
    progress: &mut dyn Progress,
    mut each: impl FnMut(&Call<'_>) -> bool,
) -> Result<Option<Read>, ReplayError> {
    let files: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let mut stats = ReadStats {
        per_file: inputs
            .iter()
            .map(|i| (i.name.clone(), i.format, 0))
            .collect(),
        ..ReadStats::default()
    };
    let mut names = Names {
        symbols: Arc::clone(symbols),
        names: Vec::new(),
    };
    let several = inputs.len() > 1;
    let mut feeds: Vec<Feed> = inputs
        .into_iter()
        .map(|input| Feed {
            input,
            batch: None,
            row: 0,
            latest: Nanos::MIN,
        })
        .collect();
    let mut heap = std::collections::BinaryHeap::new();
    for (f, feed) in feeds.iter_mut().enumerate() {
        match feed.fill(&mut stats, &mut names, several)? {
            Fill::Row => heap.extend(feed.key(f)),
            Fill::End => {}
            Fill::Decline => return Ok(None),
        }
    }
    let mut no_policy = ById::<u64>::new();
    let unrecorded = Args::Unrecorded;
    let mut index = 0u64;
    loop {
        // One input needs no merge: its rows are taken in turn.
        let f = if several {
            match heap.pop() {
                Some(std::cmp::Reverse((_, f, _))) => f,
                None => break,
            }
        } else if feeds[0].batch.is_some() {
            0
        } else {
            break;
        };
        let feed = &mut feeds[f];
        let Some(batch) = feed.batch.as_ref() else {
            break;
        };
        let len = batch.len();
        let first = feed.row;
        // Rows are taken in runs: the rest of the batch for one input; for several, the rows
        // that come before every other input's next row.
        let others = if several {
            heap.peek().map(|k| k.0)
        } else {
            None
        };
        let (ts_col, line_col, server_col) =
            (&batch.ts[..len], &batch.line[..len], &batch.server[..len]);
        let (grant_col, session_col, tool_col) = (
            &batch.grant[..len],
            &batch.session[..len],
            &batch.tool[..len],
        );
        let upstream_col = &batch.upstream[..len];
        let mut row = first;
        while row < len {
            let ts = ts_col[row];
            if let Some(next) = others {
                if row > first && (ts, f, line_col[row]) > next {
                    break;
                }
            }
            if ts < feed.latest {
                // Out of order: the general path sorts; nothing of this run is kept.
                return Ok(None);
            }
            feed.latest = ts;
            index += 1;
            if index % TICK == 0 {
                progress.tick(index);
            }
            let server = server_col[row];
            let args_built;
            let args = if needs_args {
                args_built = batch.rows.args(row);
                &args_built
            } else {
                &unrecorded
            };
            let (grant, session, tool) = (grant_col[row], session_col[row], tool_col[row]);
            let view = CallView {
                ts,
                server: names.get(server),
                grant: names.opt(grant),
                session: names.opt(session),
                tool: names.get(tool),
                args,
                upstream: upstream_col[row],
                ids: Some(CallIds {
                    server,
                    grant,
                    session,
                    tool,
                }),
            };
            let call = Call {
                index,
                batch,
                row,
                server,
                grant,
                tool,
                view,
            };
            if !each(&call) {
                *no_policy.at(server) += 1;
            }
            row += 1;
        }
        stats.per_file[f].2 += (row - first) as u64;
        feed.row = row;
        if row < len {
            if several {
                heap.extend(feed.key(f));
            }
            continue;
        }
        match feed.fill(&mut stats, &mut names, several)? {
            Fill::Row if several => heap.extend(feed.key(f)),
            Fill::Row | Fill::End => {}
            Fill::Decline => return Ok(None),
        }
    }
    progress.tick(index);
    for feed in &mut feeds {
        if let Some(more) = feed.input.source.take_stats() {
            if several && more.skipped > 0 {
                return Ok(None);
            }
            stats.absorb(more);
        }
    }
    stats.calls = index;
    let mut unmatched = NoPolicy::default();
    for (id, &n) in no_policy.0.iter().enumerate() {
        if n > 0 {
            unmatched.add_calls(names.get(id as u32), n);
        }
    }
    Ok(Some(Read {
        files,
        stats,
        names,
        no_policy: unmatched,
    }))
}

fn reads_args(sets: &[&PolicySet]) -> bool {
    sets.iter()
        .flat_map(|set| set.default.iter().chain(set.per_server.values()))
        .any(|(_, p)| p.reads_args())
}

/// Tell the inputs that no session ids are needed, when no policy of `sets` reads sessions: the
/// lane's reports name no session but in records, which are read whole.
fn skip_sessions_unless_read(input: &mut [BatchInput], sets: &[&PolicySet]) {
    let read = sets
        .iter()
        .flat_map(|set| set.default.iter().chain(set.per_server.values()))
        .any(|(_, p)| p.reads_sessions());
    if !read {
        for i in input {
            i.source.skip_sessions();
        }
    }
}

fn run(
    mut input: Vec<BatchInput>,
    symbols: &Arc<Symbols>,
    policies: &PolicySet,
    eval: EvalOptions,
    opts: ReportOptions,
    progress: &mut dyn Progress,
) -> Result<Option<SimulateReport>, ReplayError> {
    skip_sessions_unless_read(&mut input, &[policies]);
    let mut engines = Engines::new(policies, eval);
    let mut builder = SimulateBuilder::new(opts);
    let mut groups = Groups::<Counts>::new();
    let mut d = Decision::allow();
    let files: Vec<String> = input.iter().map(|i| i.name.clone()).collect();
    let read = drive(input, symbols, reads_args(&[policies]), progress, |call| {
        let Some(engine) = engines.get(call.server, call.view.server) else {
            return false;
        };
        engine.evaluate_into(&call.view, &mut d);
        groups.count(call.tool, call.grant, |t| t.add(&d));
        let recorded = call.batch.recorded[call.row];
        builder.push_untallied(call.index, &d, recorded, || call.record(), &files);
        true
    })?;
    let Some(read) = read else { return Ok(None) };
    let (tools, grants) = groups.named(&read.names, |t| t.calls() > 0);
    let tools: Vec<_> = tools.map(|(name, c)| (name, c.tally())).collect();
    let grants: Vec<_> = grants.map(|(name, c)| (name, c.tally())).collect();
    // Every call evaluated is counted under exactly one tool.
    let mut totals = Tally::default();
    for (_, t) in &tools {
        totals.merge(t);
    }
    builder.add_totals(&totals);
    builder.add_group_tallies(
        tools.iter().map(|(name, t)| (*name, t)),
        grants.iter().map(|(name, t)| (*name, t)),
    );
    let input = input_summary(&read.files, &read.stats, read.no_policy);
    Ok(Some(builder.finish(policies.refs(), input)))
}

fn run_diff(
    mut input: Vec<BatchInput>,
    symbols: &Arc<Symbols>,
    (base, candidate): (&PolicySet, &PolicySet),
    eval: EvalOptions,
    opts: ReportOptions,
    progress: &mut dyn Progress,
) -> Result<Option<DiffReport>, ReplayError> {
    skip_sessions_unless_read(&mut input, &[base, candidate]);
    let mut b = Engines::new(base, eval);
    let mut c = Engines::new(candidate, eval);
    let mut builder = DiffBuilder::new(opts);
    let mut groups = Groups::<DiffGroup>::new();
    let (mut bd, mut cd) = (Decision::allow(), Decision::allow());
    let files: Vec<String> = input.iter().map(|i| i.name.clone()).collect();
    let read = drive(
        input,
        symbols,
        reads_args(&[base, candidate]),
        progress,
        |call| {
            // A call is compared only when both sides have a policy for its server.
            let server = call.server;
            let Some(be) = b.get(server, call.view.server) else {
                return false;
            };
            let Some(ce) = c.get(server, call.view.server) else {
                return false;
            };
            be.evaluate_into(&call.view, &mut bd);
            ce.evaluate_into(&call.view, &mut cd);
            let cause = (bd.kind != cd.kind).then(|| {
                if be.static_outcome(&call.view) == ce.static_outcome(&call.view) {
                    Cause::KnockOn
                } else {
                    Cause::Direct
                }
            });
            groups.count(call.tool, call.grant, |g| g.count(&bd, &cd, cause));
            builder.push_ungrouped(call.index, &bd, &cd, cause, || call.record(), &files);
            true
        },
    )?;
    let Some(read) = read else { return Ok(None) };
    let (tools, grants) = groups.named(&read.names, |g| g.calls > 0);
    builder.add_groups(tools, grants);
    let input = input_summary(&read.files, &read.stats, read.no_policy);
    Ok(Some(builder.finish(base.refs(), candidate.refs(), input)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::CallsShown;
    use crate::trace::Trace;

    fn fixture(rel: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel)
            .to_string_lossy()
            .into_owned()
    }

    fn policy(rel: &str) -> Arc<crate::engine::Policy> {
        match crate::policy::load_policy_file(Path::new(&fixture(rel))) {
            Ok(p) => Arc::new(p),
            Err(e) => panic!("{rel}: {e}"),
        }
    }

    fn everywhere(rel: &str) -> PolicySet {
        PolicySet {
            default: Some((rel.to_owned(), policy(rel))),
            ..PolicySet::default()
        }
    }

    /// Which fixture policies let the lane skip sessions: the comparisons below cover both.
    #[test]
    fn sessions_are_skipped_only_for_policies_that_never_read_them() {
        assert!(!policy("policies/bench.json").reads_sessions());
        assert!(!policy("policies/candidate.json").reads_sessions());
        assert!(policy("policies/everything.json").reads_sessions());
        assert!(policy("policies/intercept/github.yaml").reads_sessions());
    }

    /// The lane's report and the general path's, as JSON; `None` for the lane when it declined.
    fn both(
        inputs: &[String],
        policies: &PolicySet,
        eval: EvalOptions,
        opts: &ReportOptions,
    ) -> (Option<String>, String) {
        let read = ReadOptions::default();
        let lane = Lane::open_with(inputs, &read, true)
            .expect("opens")
            .expect("the lane takes files")
            .simulate(policies, eval, opts.clone(), &mut super::super::NoProgress)
            .expect("replays")
            .map(|r| serde_json::to_string_pretty(&r).expect("serialises"));
        let mut trace = Trace::open(inputs, &read).expect("opens");
        let general = super::super::simulate(
            &mut trace,
            policies,
            eval,
            opts.clone(),
            None,
            &mut super::super::NoProgress,
        )
        .expect("replays");
        (
            lane,
            serde_json::to_string_pretty(&general).expect("serialises"),
        )
    }

    const TRACES: &[&str] = &[
        "traces/agentgateway.jsonl",
        "traces/bad.jsonl",
        "traces/fleet.csv",
        "traces/fleet.jsonl",
        "traces/fleet.parquet",
        "traces/intercept-github.jsonl",
        "traces/intercept-stripe.jsonl",
        "traces/intercept.jsonl",
        "traces/jsonrpc.jsonl",
        "traces/mcp-server-fortios.log",
        "traces/otel-spans.jsonl",
        "traces/policylayer.jsonl",
        "traces/toolhive-audit.jsonl",
    ];

    #[test]
    fn the_lane_reports_what_the_general_path_reports() {
        let sets = [
            everywhere("policies/everything.json"),
            everywhere("policies/candidate.json"),
            everywhere("policies/bench.json"),
            everywhere("policies/intercept/github.yaml"),
            PolicySet {
                default: None,
                per_server: [(
                    "fortios".to_owned(),
                    (
                        "policies/baseline.json".to_owned(),
                        policy("policies/baseline.json"),
                    ),
                )]
                .into(),
            },
        ];
        let evals = [
            EvalOptions::default(),
            EvalOptions {
                rollback_on_tool_error: true,
                assume_upstream_failure: true,
                assume_unknown_deny: true,
                assume_approved: true,
            },
        ];
        let shown = [
            ReportOptions::default(),
            ReportOptions {
                calls_shown: CallsShown::All,
                show_args: true,
                fail_on: Some((vec![crate::engine::DecisionKind::Deny], 3)),
                ..ReportOptions::default()
            },
        ];
        let mut laned = 0;
        for trace in TRACES {
            let inputs = [fixture(trace)];
            for set in &sets {
                for eval in evals {
                    for opts in &shown {
                        let (lane, general) = both(&inputs, set, eval, opts);
                        if let Some(lane) = lane {
                            laned += 1;
                            assert_eq!(lane, general, "{trace} {:?} {eval:?}", set.refs());
                        }
                    }
                }
            }
        }
        // Only files out of time order are left to the general path.
        assert!(
            laned >= 10 * sets.len() * evals.len() * shown.len(),
            "{laned}"
        );
    }

    #[test]
    fn the_lane_compares_what_the_general_path_compares() {
        let pairs = [
            ("policies/baseline.json", "policies/candidate.json"),
            ("policies/candidate.json", "policies/everything.json"),
            ("policies/everything.json", "policies/intercept/github.yaml"),
            ("policies/bench.json", "policies/baseline.json"),
        ];
        let opts = [
            ReportOptions::default(),
            ReportOptions {
                calls_shown: CallsShown::All,
                show_args: true,
                fail_on: Some((vec![crate::engine::DecisionKind::Throttle], 0)),
                ..ReportOptions::default()
            },
        ];
        let read = ReadOptions::default();
        let mut laned = 0;
        for trace in TRACES {
            let inputs = [fixture(trace)];
            for (b, c) in pairs {
                let (base, candidate) = (everywhere(b), everywhere(c));
                for opts in &opts {
                    let eval = EvalOptions::default();
                    let lane = Lane::open_with(&inputs, &read, true)
                        .expect("opens")
                        .expect("the lane takes one file")
                        .diff(
                            &base,
                            &candidate,
                            eval,
                            opts.clone(),
                            &mut super::super::NoProgress,
                        )
                        .expect("replays");
                    let mut trace_ = Trace::open(&inputs, &read).expect("opens");
                    let general = super::super::diff(
                        &mut trace_,
                        &base,
                        &candidate,
                        eval,
                        opts.clone(),
                        None,
                        &mut super::super::NoProgress,
                    )
                    .expect("replays");
                    if let Some(lane) = lane {
                        laned += 1;
                        let json = |r| serde_json::to_string_pretty(r).expect("serialises");
                        assert_eq!(json(&lane), json(&general), "{trace} {b} {c}");
                    }
                }
            }
        }
        assert!(laned >= 10 * pairs.len() * opts.len(), "{laned}");
    }

    #[test]
    fn several_inputs_are_merged_as_the_general_path_merges_them() {
        let sets = [
            everywhere("policies/everything.json"),
            everywhere("policies/candidate.json"),
        ];
        let listed = ReportOptions {
            calls_shown: CallsShown::All,
            show_args: true,
            ..ReportOptions::default()
        };
        let groups: [&[&str]; 4] = [
            // The same calls twice: every timestamp ties across the inputs.
            &["traces/fleet.jsonl", "traces/fleet.parquet"],
            &[
                "traces/fleet.parquet",
                "traces/fleet.jsonl",
                "traces/fleet.csv",
            ],
            &[
                "traces/intercept-github.jsonl",
                "traces/fleet.jsonl",
                "traces/intercept-stripe.jsonl",
            ],
            &[
                "traces/jsonrpc.jsonl",
                "traces/policylayer.jsonl",
                "traces/mcp-server-fortios.log",
                "traces/intercept.jsonl",
            ],
        ];
        for group in groups {
            let inputs: Vec<String> = group.iter().map(|t| fixture(t)).collect();
            for set in &sets {
                let (lane, general) = both(&inputs, set, EvalOptions::default(), &listed);
                let lane = lane.unwrap_or_else(|| panic!("{group:?}: the lane declined"));
                assert_eq!(lane, general, "{group:?}");
            }
        }
        // Bad lines in one of several inputs: the general path decides the examples.
        let inputs = [fixture("traces/fleet.jsonl"), fixture("traces/bad.jsonl")];
        let (lane, general) = both(&inputs, &sets[0], EvalOptions::default(), &listed);
        assert_eq!(lane, None);
        assert!(general.contains("\"skipped\": 6"), "{general}");
    }

    #[test]
    fn the_lane_declines_what_it_cannot_take() {
        let read = ReadOptions::default();
        let strict = ReadOptions {
            strict: true,
            ..ReadOptions::default()
        };
        let one = [fixture("traces/fleet.jsonl")];
        assert!(
            Lane::open_with(&one, &strict, true)
                .expect("opens")
                .is_none()
        );
        let missing = [fixture("traces/no-such-file.jsonl")];
        assert!(Lane::open_with(&missing, &read, true).is_err());
    }

    #[test]
    fn calls_out_of_time_order_leave_the_lane() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("late.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"ts":"2026-01-01T00:00:02Z","server":"s","tool":"a"}"#,
                "\n",
                r#"{"ts":"2026-01-01T00:00:01Z","server":"s","tool":"a"}"#,
                "\n"
            ),
        )
        .expect("writes");
        let inputs = [path.to_string_lossy().into_owned()];
        let (lane, general) = both(
            &inputs,
            &everywhere("policies/candidate.json"),
            EvalOptions::default(),
            &ReportOptions::default(),
        );
        assert_eq!(lane, None);
        assert!(general.contains("\"out_of_order\": 1"), "{general}");
    }
}
