//! The fast lane: a summary replay of one input read as [`CallBatch`]es, names as ids.
//!
//! [`simulate`](super::simulate) takes every call as a [`CallRecord`]; for one large file of
//! mcpsim JSONL or Parquet, building those records costs more than deciding the calls. This
//! lane instead walks the columns of the fast readers' batches, hands the engines calls whose
//! names are already ids ([`CallIds`]), counts per tool and per grant by id, and builds a
//! record only for the few calls the report lists. Its report is the one
//! [`simulate`](super::simulate) would produce, byte for byte; the tests hold it to that.
//!
//! The lane declines (returns `None`, and the caller replays with [`Trace`]) when it cannot
//! promise that: several inputs (they need merging), standard input, `--strict` (the first bad
//! line must end the run before any output), a format without a batch reader, per-call output,
//! or a file whose calls turn out not to be in time order (the general path sorts them; the
//! lane finds out while streaming, and what it did so far is dropped).
//!
//! [`Trace`]: crate::trace::Trace

use std::sync::Arc;

use super::{PolicySet, Progress, ReplayError, TICK, input_summary};
use crate::engine::{CallIds, CallView, Decision, Engine, EvalOptions};
use crate::report::{NoPolicy, ReportOptions, SimulateBuilder, SimulateReport, Tally};
use crate::trace::{
    Args, BatchInput, CallBatch, Ctx, NO_SYM, Nanos, ReadOptions, ReadStats, Sym, Symbols,
    TraceError, open_batches,
};

/// One input opened for the lane.
pub struct Lane {
    input: BatchInput,
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

    /// Replay the input through `policies`; `None` when the calls turn out not to be in time
    /// order (see the module docs).
    pub fn simulate(
        self,
        policies: &PolicySet,
        eval: EvalOptions,
        opts: ReportOptions,
        progress: &mut dyn Progress,
    ) -> Result<Option<SimulateReport>, ReplayError> {
        run(self.input, &self.symbols, policies, eval, opts, progress)
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
    /// Make sure every id of `batch` has its name.
    fn sync(&mut self, batch: &CallBatch) {
        let max = [&batch.server, &batch.grant, &batch.session, &batch.tool]
            .iter()
            .flat_map(|c| c.iter().copied().filter(|&id| id != NO_SYM).max())
            .max();
        if let Some(max) = max {
            if max as usize >= self.names.len() {
                self.symbols.extend_names(&mut self.names);
            }
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

/// Tallies by id, grown on demand.
#[derive(Default)]
struct Tallies(Vec<Tally>);

impl Tallies {
    #[inline]
    fn add(&mut self, id: u32, d: &Decision) {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, Tally::default());
        }
        self.0[i].add(d);
    }
}

fn run(
    input: BatchInput,
    symbols: &Arc<Symbols>,
    policies: &PolicySet,
    eval: EvalOptions,
    opts: ReportOptions,
    progress: &mut dyn Progress,
) -> Result<Option<SimulateReport>, ReplayError> {
    let BatchInput {
        name,
        format,
        mut source,
    } = input;
    let files = vec![name.clone()];
    let mut stats = ReadStats {
        per_file: vec![(name.clone(), format, 0)],
        ..ReadStats::default()
    };
    let needs_args = policies
        .default
        .iter()
        .chain(policies.per_server.values())
        .any(|(_, p)| p.reads_args());
    let mut engines = Engines::new(policies, eval);
    let mut names = Names {
        symbols: Arc::clone(symbols),
        names: Vec::new(),
    };
    let mut builder = SimulateBuilder::new(opts);
    let mut per_tool = Tallies::default();
    let mut per_grant = Tallies::default();
    let mut no_grant = Tally::default();
    let mut no_policy: Vec<u64> = Vec::new();
    let unrecorded = Args::Unrecorded;
    let mut d = Decision::allow();
    let mut latest = Nanos::MIN;
    let mut index = 0u64;
    while let Some(batch) = source.next_batch()? {
        let mut cx = Ctx {
            stats: &mut stats,
            strict: false,
            file: &name,
        };
        for (line, e) in &batch.skipped {
            cx.skip(*line, e.clone())?;
        }
        for kind in &batch.ignored {
            cx.ignore(kind.as_str());
        }
        names.sync(&batch);
        for i in 0..batch.len() {
            let ts = batch.ts[i];
            if ts < latest {
                // Out of order: the general path sorts; nothing of this run is kept.
                return Ok(None);
            }
            latest = ts;
            index += 1;
            if index % TICK == 0 {
                progress.tick(index);
            }
            let server = batch.server[i];
            let server_name = names.get(server);
            let Some(engine) = engines.get(server, server_name) else {
                let s = server as usize;
                if no_policy.len() <= s {
                    no_policy.resize(s + 1, 0);
                }
                no_policy[s] += 1;
                continue;
            };
            let args_built;
            let args = if needs_args {
                args_built = batch.rows.args(i);
                &args_built
            } else {
                &unrecorded
            };
            let (grant, session, tool) = (batch.grant[i], batch.session[i], batch.tool[i]);
            let view = CallView {
                ts,
                server: server_name,
                grant: names.opt(grant),
                session: names.opt(session),
                tool: names.get(tool),
                args,
                upstream: batch.upstream[i],
                ids: Some(CallIds {
                    server,
                    grant,
                    session,
                    tool,
                }),
            };
            engine.evaluate_into(&view, &mut d);
            per_tool.add(tool, &d);
            if grant == NO_SYM {
                no_grant.add(&d);
            } else {
                per_grant.add(grant, &d);
            }
            builder.push_ungrouped(
                index,
                &d,
                batch.recorded[i],
                || {
                    let mut rec = batch.rows.record(i);
                    rec.origin.file = 0;
                    rec
                },
                &files,
            );
        }
    }
    progress.tick(index);
    if let Some(more) = source.take_stats() {
        stats.absorb(more);
    }
    stats.calls = index;
    stats.per_file[0].2 = index;
    let tools = per_tool
        .0
        .iter()
        .enumerate()
        .filter(|(_, t)| t.calls > 0)
        .map(|(id, t)| (names.get(id as u32), t));
    let grants = per_grant
        .0
        .iter()
        .enumerate()
        .filter(|(_, t)| t.calls > 0)
        .map(|(id, t)| (Some(names.get(id as u32)), t))
        .chain((no_grant.calls > 0).then_some((None, &no_grant)));
    builder.add_group_tallies(tools, grants);
    let mut unmatched = NoPolicy::default();
    for (id, &n) in no_policy.iter().enumerate() {
        if n > 0 {
            unmatched.add_calls(names.get(id as u32), n);
        }
    }
    let input = input_summary(&files, &stats, unmatched);
    Ok(Some(builder.finish(policies.refs(), input)))
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
            .expect("the lane takes one file")
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
    fn the_lane_declines_what_it_cannot_take() {
        let read = ReadOptions::default();
        let two = [fixture("traces/fleet.jsonl"), fixture("traces/fleet.csv")];
        assert!(Lane::open_with(&two, &read, true).expect("opens").is_none());
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
