//! Feeds calls in time order through one engine per policy and builds the reports.
//!
//! A policy given as `FILE` applies to every server; `SERVER=FILE` to one server and wins over
//! the former for it. A call whose server has no policy is not evaluated and is counted as such.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use crate::call::{ArgsRef, CallIds, CallView, Upstream};
use crate::engine::{
    Decision, DecisionKind, Engine, EvalOptions, ExplainStep, InterceptStore, Policy, Scope,
    StepOutcome,
};
use crate::report::{
    BindingUse, CallInfo, CallRow, CallsShown, Cause, Count, DiffBuilder, DiffGroup, DiffReport,
    DiffRow, FileInput, InputSummary, NoPolicy, Outcome, PartInfo, PartSettings, PolicyRef,
    ReplyPairing, ReportOptions, RowSink, SimulateBuilder, SimulateReport, SkippedRecord, Tally,
    Timeline, TimelineBuilder, TimelineDetail, counts_by_frequency, unused_tool_warnings,
};
use crate::trace::{Args, Call, NO_SYM, Names, ReadStats, Trace, TraceError};

mod prescreen;

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

    /// How many policies are bound.
    pub fn len(&self) -> usize {
        usize::from(self.default.is_some()) + self.per_server.len()
    }

    /// Whether no policy is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The policies with how reports name their binding (`SERVER=FILE` or `FILE`), in the
    /// order of [`Engines::binding`]: the per-server ones, then the default.
    fn bindings(&self) -> impl Iterator<Item = (String, &Arc<Policy>)> {
        (self.per_server.iter())
            .map(|(server, (file, p))| (format!("{server}={file}"), p))
            .chain(self.default.iter().map(|(file, p)| (file.clone(), p)))
    }

    /// Whether any of the policies reads arguments.
    pub fn reads_args(&self) -> bool {
        reads_args(&[self])
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

/// Which engine decides a server's calls.
#[derive(Debug, Clone, Copy)]
enum Route {
    Unseen,
    NoPolicy,
    Default,
    Server(usize),
}

/// One engine per policy of a [`PolicySet`], found by server id. PolicyLayer engines keep
/// counters of their own (a `global` counter is one per binding); Intercept engines share one
/// [`InterceptStore`], as the gateway's instances share one state store.
pub struct Engines {
    default: Option<Engine>,
    per_server: Vec<Engine>,
    per_server_names: Vec<String>,
    routes: Vec<Route>,
    /// Per engine (the per-server ones, then the default), per tool id: 0 not asked yet, 1 the
    /// tool's calls are decided without their arguments, 2 they may be read.
    reads_args: Vec<Vec<u8>>,
}

impl Engines {
    /// Fresh engines (empty counters) for a policy set.
    pub fn new(set: &PolicySet, opts: EvalOptions) -> Engines {
        let store = InterceptStore::new();
        Engines {
            default: set
                .default
                .as_ref()
                .map(|(_, p)| Engine::with_store(p.clone(), opts, &store)),
            per_server: set
                .per_server
                .values()
                .map(|(_, p)| Engine::with_store(p.clone(), opts, &store))
                .collect(),
            per_server_names: set.per_server.keys().cloned().collect(),
            routes: Vec::new(),
            reads_args: vec![Vec::new(); set.per_server.len() + 1],
        }
    }

    /// Whether the engine that decides server `server`'s calls (see [`Engines::get`], asked
    /// first) may read the arguments of a call of tool `tool` (named `name`): when it cannot,
    /// they need not be built. `screened`: steps 1–5 of the call were worked out ahead (then
    /// only limits that charge an argument read them).
    #[inline]
    pub fn reads_args(&mut self, server: u32, tool: u32, name: &str, screened: bool) -> bool {
        let (k, engine) = match self.routes.get(server as usize) {
            Some(&Route::Server(k)) => (k, self.per_server.get(k)),
            Some(Route::Default) => (self.per_server.len(), self.default.as_ref()),
            _ => return false,
        };
        let Some(engine) = engine else { return false };
        let known = &mut self.reads_args[k];
        let t = tool as usize;
        if known.len() <= t {
            known.resize(t + 1, 0);
        }
        // 1: never; 2: in steps 1–5 only; 3: in the limits.
        if known[t] == 0 {
            let policy = engine.policy();
            known[t] = match (policy.reads_args_of(name), policy.limits_read_args_of(name)) {
                (false, _) => 1,
                (true, false) => 2,
                (true, true) => 3,
            };
        }
        known[t] == 3 || (known[t] == 2 && !screened)
    }

    /// Which policy decides the calls of server `server` (after [`Engines::get`] saw it): its
    /// place in [`PolicySet::bindings`].
    fn binding(&self, server: usize) -> Option<usize> {
        match self.routes.get(server)? {
            Route::Server(k) => Some(*k),
            Route::Default => Some(self.per_server.len()),
            Route::NoPolicy | Route::Unseen => None,
        }
    }

    /// Name the counter key a throttle really used. A PolicyLayer engine bound to one server
    /// (`SERVER=FILE`) sees only that server's calls, so its `global` counters are that
    /// server's: reported as scope `server`. (Intercept engines share one store: their
    /// `global` is the whole run's.)
    #[inline]
    pub fn name_key(&self, server: u32, d: &mut Decision) {
        if let Some(t) = d.throttle.as_mut() {
            t.scope = self.scope_used(server, t.scope);
        }
    }

    /// [`Engines::name_key`] for the limit steps of an explanation.
    pub fn name_step_keys(&self, server: u32, steps: &mut [ExplainStep]) {
        for step in steps {
            if let StepOutcome::Limit { spec, .. } = &mut step.outcome {
                spec.scope = self.scope_used(server, spec.scope);
            }
        }
    }

    fn scope_used(&self, server: u32, scope: Scope) -> Scope {
        if scope != Scope::Global {
            return scope;
        }
        match self.routes.get(server as usize) {
            Some(&Route::Server(k))
                if matches!(
                    self.per_server.get(k).map(|e| &**e.policy()),
                    Some(Policy::PolicyLayer(_))
                ) =>
            {
                Scope::Server
            }
            _ => scope,
        }
    }

    /// The engine that decides the calls of server `server` (named `name`); `None` when the
    /// server has no policy.
    #[inline]
    pub fn get(&mut self, server: u32, name: &str) -> Option<&mut Engine> {
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

/// Counts by id, grown on demand.
#[derive(Clone)]
struct ById<T>(Vec<T>);

impl<T> Default for ById<T> {
    fn default() -> Self {
        ById(Vec::new())
    }
}

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

/// Counts of a group of calls (per tool, per server, …) that add up.
trait Merge: Default + Clone {
    fn merge(&mut self, other: &Self);
    /// Calls counted.
    fn calls(&self) -> u64;
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

impl Merge for Counts {
    fn merge(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    fn calls(&self) -> u64 {
        Counts::calls(self)
    }
}

impl Merge for DiffGroup {
    fn merge(&mut self, other: &DiffGroup) {
        DiffGroup::merge(self, other);
    }

    fn calls(&self) -> u64 {
        self.calls
    }
}

/// Per-tool (by server), per-server and per-grant counts of a replay, by id (grant `None`
/// for calls without one).
struct Groups<T> {
    /// By server id, then tool id.
    tools: ById<ById<T>>,
    servers: ById<T>,
    grants: ById<T>,
    no_grant: T,
}

/// [`Groups`] with names: tools with their server when kept apart by server.
#[allow(clippy::type_complexity)]
struct Named<'a, T> {
    tools: Vec<(Option<&'a Arc<str>>, &'a Arc<str>, T)>,
    servers: Vec<(&'a Arc<str>, T)>,
    grants: Vec<(Option<&'a Arc<str>>, T)>,
}

impl<T: Merge> Groups<T> {
    fn new() -> Groups<T> {
        Groups {
            tools: ById::new(),
            servers: ById::new(),
            grants: ById::new(),
            no_grant: T::default(),
        }
    }

    #[inline]
    fn count(&mut self, ids: CallIds, mut f: impl FnMut(&mut T)) {
        f(self.tools.at(ids.server).at(ids.tool));
        f(self.servers.at(ids.server));
        f(if ids.grant == NO_SYM {
            &mut self.no_grant
        } else {
            self.grants.at(ids.grant)
        });
    }

    /// The tool ids of server `server` that calls used.
    fn tools_of(&self, server: usize) -> impl Iterator<Item = u32> + '_ {
        (self.tools.0.get(server).into_iter())
            .flat_map(|tools| tools.0.iter().enumerate())
            .filter(|(_, t)| t.calls() > 0)
            .map(|(id, _)| id as u32)
    }

    /// Calls of server `server`.
    fn calls_of(&self, server: usize) -> u64 {
        self.servers.0.get(server).map_or(0, T::calls)
    }

    /// The counts with names, leaving out ids no call counted in; tools are kept apart by
    /// server when `by_server`, else added up across servers.
    fn named<'a>(&'a self, names: &'a Names, by_server: bool) -> Named<'a, T> {
        let used = |t: &T| t.calls() > 0;
        let mut tools = Vec::new();
        let mut merged: ById<T> = ById::new();
        for (server, per_tool) in self.tools.0.iter().enumerate() {
            for (tool, t) in per_tool.0.iter().enumerate().filter(|(_, t)| used(t)) {
                if by_server {
                    tools.push((
                        Some(names.get(server as u32)),
                        names.get(tool as u32),
                        t.clone(),
                    ));
                } else {
                    merged.at(tool as u32).merge(t);
                }
            }
        }
        if !by_server {
            tools = (merged.0.into_iter().enumerate())
                .filter(|(_, t)| used(t))
                .map(|(tool, t)| (None, names.get(tool as u32), t))
                .collect();
        }
        let servers = (self.servers.0.iter().enumerate())
            .filter(|(_, t)| used(t))
            .map(|(id, t)| (names.get(id as u32), t.clone()))
            .collect();
        let grants = (self.grants.0.iter().enumerate())
            .filter(|(_, t)| used(t))
            .map(|(id, t)| (Some(names.get(id as u32)), t.clone()))
            .chain(used(&self.no_grant).then(|| (None, self.no_grant.clone())))
            .collect();
        Named {
            tools,
            servers,
            grants,
        }
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
    /// A `SERVER=FILE` binding matched no call: a misspelt server would pass every gate.
    #[error("{}", unbound_message(.bindings, .seen))]
    UnmatchedBinding {
        /// The bindings, as `SERVER=FILE`.
        bindings: Vec<String>,
        /// The servers the trace has, with their calls.
        seen: Vec<(String, u64)>,
    },
    /// No call was evaluated: nothing was checked.
    #[error("no call was evaluated, so nothing was checked: {0}")]
    NothingEvaluated(String),
    /// Under a gate, calls of a server with a policy on one side only: a candidate that denies
    /// them would pass unseen.
    #[error(
        "{0}; the gate cannot judge them: bind a policy for that server on both sides (one that allows every tool stands for none)"
    )]
    OneSided(String),
}

fn unbound_message(bindings: &[String], seen: &[(String, u64)]) -> String {
    let servers: Vec<String> = seen.iter().map(|(s, n)| format!("{s} ({n})")).collect();
    let hints: Vec<String> = bindings
        .iter()
        .filter_map(|b| {
            let server = b.split_once('=').map_or(b.as_str(), |(s, _)| s);
            crate::policy::nearest_name(server, seen.iter().map(|(s, _)| s.as_str()))
                .map(|near| format!("`{server}`: did you mean `{near}`?"))
        })
        .collect();
    format!(
        "policy binding{} {} matched no call; servers in the trace (calls): {}{}",
        if bindings.len() == 1 { "" } else { "s" },
        bindings
            .iter()
            .map(|b| format!("`{b}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if servers.is_empty() {
            "none".to_owned()
        } else {
            servers.join(", ")
        },
        if hints.is_empty() {
            String::new()
        } else {
            format!("; {}", hints.join("; "))
        }
    )
}

/// After a replay: fail when a `SERVER=FILE` binding of `sets` matched no call or when no
/// call was evaluated (unless `part`: one part of a trace need not have every server's
/// calls); else, per binding of every set, its tools and the tools its calls used.
fn check_coverage<T: Merge>(
    sets: &[(&PolicySet, &Engines)],
    groups: &Groups<T>,
    unmatched: &Unmatched,
    names: &Names,
    stats: &ReadStats,
    part: bool,
) -> Result<Vec<BindingUse>, ReplayError> {
    let servers = groups.servers.0.len().max(unmatched.0.0.len());
    let mut seen: Vec<(String, u64)> = (0..servers)
        .map(|s| {
            let n = groups.calls_of(s) + unmatched.0.0.get(s).copied().unwrap_or(0);
            (s, n)
        })
        .filter(|&(_, n)| n > 0)
        .map(|(s, n)| (names.get(s as u32).to_string(), n))
        .collect();
    seen.sort();
    if !part {
        let bound = (sets.iter()).flat_map(|(set, _)| {
            (set.per_server.iter()).map(|(server, (file, _))| (server.as_str(), file.as_str()))
        });
        check_bindings_matched(bound, &seen)?;
        if !groups.servers.0.iter().any(|t| t.calls() > 0) {
            return Err(ReplayError::NothingEvaluated(nothing_reason(
                stats,
                &seen,
                sets.len(),
            )));
        }
    }
    let mut bindings = Vec::new();
    for (set, engines) in sets {
        for (k, (binding, policy)) in set.bindings().enumerate() {
            let mut tools: Vec<String> = Vec::new();
            for server in 0..groups.tools.0.len() {
                if engines.binding(server) == Some(k) {
                    tools.extend(groups.tools_of(server).map(|t| names.get(t).to_string()));
                }
            }
            tools.sort_unstable();
            tools.dedup();
            bindings.push(BindingUse {
                binding,
                tools: policy.tool_names().into_iter().map(str::to_owned).collect(),
                seen: tools,
            });
        }
    }
    Ok(bindings)
}

/// Fail when a `SERVER=FILE` binding (`(server, file)`) matched none of the servers `seen`
/// (sorted, with their calls): a misspelt server would pass every gate.
pub(crate) fn check_bindings_matched<'a>(
    bound: impl IntoIterator<Item = (&'a str, &'a str)>,
    seen: &[(String, u64)],
) -> Result<(), ReplayError> {
    let mut unbound = Vec::new();
    for (server, file) in bound {
        if !seen.iter().any(|(s, _)| s == server) {
            unbound.push(format!("{server}={file}"));
        }
    }
    if unbound.is_empty() {
        Ok(())
    } else {
        Err(ReplayError::UnmatchedBinding {
            bindings: unbound,
            seen: seen.to_vec(),
        })
    }
}

/// The checks of a replay's coverage on the summary combined from its parts (`mcpsim
/// merge`): every `SERVER=FILE` binding matched a call of some part, and some part evaluated
/// a call.
pub fn check_combined(report: &SimulateReport) -> Result<(), ReplayError> {
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for g in &report.per_server {
        *seen.entry(&g.name).or_default() += g.tally.calls;
    }
    for c in &report.input.no_policy {
        *seen.entry(&c.name).or_default() += c.count;
    }
    let seen: Vec<(String, u64)> = (seen.into_iter())
        .filter(|&(_, n)| n > 0)
        .map(|(s, n)| (s.to_owned(), n))
        .collect();
    let bound =
        (report.policies.iter()).filter_map(|p| Some((p.server.as_deref()?, p.file.as_str())));
    check_bindings_matched(bound, &seen)?;
    if report.totals.calls == 0 {
        let input = &report.input;
        let stats = ReadStats {
            calls: input.calls_read,
            skipped: input.skipped,
            skipped_examples: (input.skipped_examples.iter())
                .map(|s| crate::trace::Skipped {
                    file: s.file.clone(),
                    line: s.line,
                    reason: s.reason.clone(),
                })
                .collect(),
            ..ReadStats::default()
        };
        return Err(ReplayError::NothingEvaluated(nothing_reason(
            &stats, &seen, 1,
        )));
    }
    Ok(())
}

/// Why no call was evaluated, in a few words; `sets`: how many policy sets each call needs a
/// policy of (`diff`: the base and the candidate).
fn nothing_reason(stats: &ReadStats, seen: &[(String, u64)], sets: usize) -> String {
    if stats.calls > 0 {
        let servers: Vec<String> = seen.iter().map(|(s, n)| format!("{s} ({n})")).collect();
        let each = match sets {
            1 => "",
            2 => " in both the base and the candidate",
            _ => " in every policy set",
        };
        return format!(
            "none of the {} calls read has a policy for its server{each}; servers in the trace (calls): {}",
            stats.calls,
            servers.join(", ")
        );
    }
    match stats.skipped_examples.first() {
        Some(first) => format!(
            "every record was skipped ({} skipped; the first at {}:{}: {})",
            stats.skipped, first.file, first.line, first.reason
        ),
        None => "the input holds no tools/call".to_owned(),
    }
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
        left_out: 0,
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
        replies: stats.replies.as_ref().map(|r| ReplyPairing {
            paired: r.paired,
            requests_without_reply: r.requests_without_reply,
            cancelled: r.cancelled,
            replies_without_request: r.replies_without_request,
            examples: r
                .examples
                .iter()
                .map(|s| SkippedRecord {
                    file: s.file.clone(),
                    line: s.line,
                    reason: s.reason.clone(),
                })
                .collect(),
        }),
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

/// Whether any policy of `sets` reads arguments: otherwise no call's arguments are built.
fn reads_args(sets: &[&PolicySet]) -> bool {
    policies(sets).any(|p| p.reads_args())
}

fn policies<'a>(sets: &'a [&'a PolicySet]) -> impl Iterator<Item = &'a Arc<Policy>> {
    sets.iter()
        .flat_map(|set| set.default.iter().chain(set.per_server.values()))
        .map(|(_, p)| p)
}

/// Leave sessions unread when no policy of `sets` keeps a counter per session and no per-call
/// row shows them (a summary names sessions only in listed calls, whose records are read whole).
fn skip_sessions_unless_read(trace: &mut Trace, sets: &[&PolicySet], rows: bool) {
    if !rows && !policies(sets).any(|p| p.reads_sessions()) {
        trace.skip_sessions();
    }
}

/// Servers without a policy, with their calls, by id.
struct Unmatched(ById<u64>);

impl Unmatched {
    fn into_no_policy(self, names: &Names) -> NoPolicy {
        let mut unmatched = NoPolicy::default();
        for (id, &n) in self.0.0.iter().enumerate() {
            if n > 0 {
                unmatched.add_calls(names.get(id as u32), n);
            }
        }
        unmatched
    }
}

/// With per-call rows, the report is not rendered: it lists no calls (they are in the rows),
/// so memory does not grow with them.
fn summary_options(mut opts: ReportOptions, rows: bool) -> ReportOptions {
    if rows && !opts.part {
        opts.calls_shown = CallsShown::None;
    }
    opts
}

/// The arguments of `call` (built into `slot` when the batch does not hold them as text), read
/// only when a policy reads them.
#[inline]
fn args_of<'b>(call: &'b Call<'_>, needed: bool, slot: &'b mut Option<Args>) -> ArgsRef<'b> {
    if needed {
        call.args_ref(slot)
    } else {
        ArgsRef::unrecorded()
    }
}

/// What the engine reads of `call`. The reply time is looked up only for calls whose upstream
/// failed, the only ones whose reply changes counters.
#[inline]
pub(crate) fn view_of<'a>(call: &'a Call<'_>, args: ArgsRef<'a>) -> CallView<'a> {
    let mut view = call.view(args);
    if matches!(view.upstream, Some(Upstream::Error | Upstream::ToolError)) {
        view.reply_at = call.reply_at();
    }
    view
}

/// Policy sets run side by side over one read of a trace, each with engines of its own
/// (`diff`: base and candidate; `sweep`: one set per value). A call is evaluated only when
/// every set has a policy for its server.
struct Lanes {
    engines: Vec<Engines>,
    needs_args: bool,
}

impl Lanes {
    fn new(sets: &[&PolicySet], eval: EvalOptions) -> Lanes {
        Lanes {
            engines: sets.iter().map(|set| Engines::new(set, eval)).collect(),
            needs_args: reads_args(sets),
        }
    }

    /// Whether every set has a policy for the call's server; a call that lacks one is
    /// counted in `unmatched`.
    #[inline]
    fn route(&mut self, call: &Call<'_>, unmatched: &mut Unmatched) -> bool {
        let ids = call.ids();
        let all = (self.engines.iter_mut()).all(|e| e.get(ids.server, call.server()).is_some());
        if !all {
            *unmatched.0.at(ids.server) += 1;
        }
        all
    }

    /// The arguments of a routed call, built only when a policy that decides it may read them.
    #[inline]
    fn args<'b>(&mut self, call: &'b Call<'_>, slot: &'b mut Option<Args>) -> ArgsRef<'b> {
        let ids = call.ids();
        let needed = self.needs_args
            && (self.engines.iter_mut().enumerate()).any(|(k, e)| {
                let screened = call.screened(k).is_some();
                e.reads_args(ids.server, ids.tool, call.tool(), screened)
            });
        args_of(call, needed, slot)
    }
}

/// What a simulation keeps for one policy set.
struct SimulateLane {
    builder: SimulateBuilder,
    groups: Groups<Counts>,
    d: Decision,
    timeline: Option<TimelineBuilder>,
}

/// The timelines a replay keeps: none, or one per policy set, of which the first `counters`
/// also record counter use.
fn timelines(detail: TimelineDetail, sets: usize) -> Vec<Option<TimelineBuilder>> {
    let on = detail != TimelineDetail::Off;
    (0..sets)
        .map(|_| on.then(TimelineBuilder::default))
        .collect()
}

/// `view` without ids: explaining reads counters by name, so every call of a run whose
/// counters are explained is given by name.
pub(crate) fn by_name(view: CallView<'_>) -> CallView<'_> {
    CallView { ids: None, ..view }
}

/// Before `engines` decide a call (given [`by_name`]): the limits it meets, with the counters as they stand, into
/// `timeline`.
fn observe_limits(
    engines: &mut Engines,
    call: &Call<'_>,
    view: &CallView<'_>,
    timeline: &mut TimelineBuilder,
) {
    let ids = call.ids();
    let Some(engine) = engines.get(ids.server, call.server()) else {
        return;
    };
    let mut steps = engine.explain(view);
    engines.name_step_keys(ids.server, &mut steps);
    for step in steps {
        if let StepOutcome::Limit {
            spec,
            used,
            increment,
            fits,
            ..
        } = step.outcome
        {
            let n = NO_SYM;
            let (parts, session) = match spec.scope {
                Scope::Global => ([n, n], None),
                Scope::Server => ([ids.server, n], None),
                Scope::Grant => ([ids.server, ids.grant], None),
                Scope::Session => ([ids.server, ids.grant], call.session().map(Box::from)),
            };
            let demand = used + increment.unwrap_or(0.0);
            let over = fits == Some(false);
            timeline.observe(
                view.ts,
                (step.rule, spec.scope, parts, session),
                spec.max,
                demand,
                over,
            );
        }
    }
}

/// A timeline with its counter keys named as reports name them.
fn finish_timeline(timeline: Option<TimelineBuilder>, names: &Names) -> Option<Timeline> {
    let part = |id: u32| match id {
        NO_SYM => "",
        id => names.get(id),
    };
    timeline.map(|t| {
        t.finish(|(_, scope, [s, g], x)| match scope {
            Scope::Global => "global".to_owned(),
            Scope::Server => format!("server:{}", part(*s)),
            Scope::Grant => format!("grant:{}/{}", part(*s), part(*g)),
            Scope::Session => {
                let x = x.as_deref().unwrap_or("");
                format!("session:{}/{}/{x}", part(*s), part(*g))
            }
        })
    })
}

/// Replay a trace through one policy set.
///
/// With a `sink`, every evaluated call is also written as a per-call row to `out`, as it is
/// decided.
pub fn simulate(
    trace: &mut Trace,
    policies: &PolicySet,
    eval: EvalOptions,
    opts: ReportOptions,
    sink: Option<(&mut dyn RowSink, &mut dyn Write)>,
    progress: &mut dyn Progress,
) -> Result<SimulateReport, ReplayError> {
    let mut reports = simulate_sets(trace, &[policies], eval, opts, sink, progress)?;
    Ok(reports.pop().expect("one report per policy set"))
}

/// Replay a trace once through several policy sets side by side (`sweep`: one set per
/// value), each with counters of its own: report `k` is what [`simulate`] gives for
/// `sets[k]`. The sets must bind the same servers.
pub fn simulate_each(
    trace: &mut Trace,
    sets: &[&PolicySet],
    eval: EvalOptions,
    opts: ReportOptions,
    progress: &mut dyn Progress,
) -> Result<Vec<SimulateReport>, ReplayError> {
    simulate_sets(trace, sets, eval, opts, None, progress)
}

/// [`simulate_each`], with per-call rows of the first set written to a `sink`.
fn simulate_sets(
    trace: &mut Trace,
    sets: &[&PolicySet],
    eval: EvalOptions,
    opts: ReportOptions,
    mut sink: Option<(&mut dyn RowSink, &mut dyn Write)>,
    progress: &mut dyn Progress,
) -> Result<Vec<SimulateReport>, ReplayError> {
    skip_sessions_unless_read(trace, sets, sink.is_some());
    // A timeline of counters explains each call by name, reading its arguments.
    if opts.timeline != TimelineDetail::Counters {
        prescreen::prescreen(trace, sets);
    }
    let show_args = opts.show_args;
    let mut lanes = Lanes::new(sets, eval);
    // With several policies, same-named tools and rules of different servers stay apart.
    let by_server = sets.first().is_some_and(|set| set.len() > 1);
    let counters = opts.timeline == TimelineDetail::Counters;
    let part = opts.part;
    let summary = summary_options(opts, sink.is_some());
    let mut sims: Vec<SimulateLane> = (timelines(summary.timeline, sets.len()).into_iter())
        .map(|timeline| SimulateLane {
            builder: SimulateBuilder::new(summary.clone()),
            groups: Groups::new(),
            d: Decision::allow(),
            timeline,
        })
        .collect();
    let mut unmatched = Unmatched(ById::new());
    let files = trace.files().to_vec();
    let mut row_buf: Option<CallRow> = None;
    let (mut id, mut shown) = (None, None);
    while let Some(call) = trace.next_call()? {
        if call.index % TICK == 0 {
            progress.tick(call.index);
        }
        if !lanes.route(&call, &mut unmatched) {
            continue;
        }
        let ids = call.ids();
        let mut slot = None;
        let args = lanes.args(&call, &mut slot);
        let view = view_of(&call, args);
        let server = by_server.then(|| call.server());
        for (k, (engines, sim)) in lanes.engines.iter_mut().zip(&mut sims).enumerate() {
            let named;
            let view = match (counters, k, sim.timeline.as_mut()) {
                (true, 0, Some(timeline)) => {
                    named = by_name(view);
                    observe_limits(engines, &call, &named, timeline);
                    &named
                }
                _ => &view,
            };
            let Some(engine) = engines.get(ids.server, call.server()) else {
                continue;
            };
            let d = &mut sim.d;
            // A timeline of counters reads them by name: that lane screens as it goes.
            let screened = match view.ids {
                Some(_) => call.screened(k),
                None => None,
            };
            engine.evaluate_screened_into(view, screened, d);
            engines.name_key(ids.server, d);
            sim.groups.count(ids, |t| t.add(d));
            if let Some(timeline) = sim.timeline.as_mut() {
                timeline.count(view.ts, d);
            }
            (sim.builder).push_untallied(
                call.index,
                d,
                server,
                call.recorded(),
                || call.record(),
                &files,
            );
        }
        if let (Some((sink, out)), Some(sim)) = (sink.as_mut(), sims.first()) {
            let fields = call.fields(&mut id, &mut shown, show_args);
            // One row, described again for each call: its strings are reused.
            let row = match &mut row_buf {
                Some(r) => {
                    r.call.fill(call.index, &fields, &files, show_args);
                    r.outcome.fill(&sim.d, &fields);
                    r
                }
                None => row_buf.insert(CallRow {
                    call: CallInfo::new(call.index, &fields, &files, show_args),
                    outcome: Outcome::new(&sim.d, &fields),
                }),
            };
            sink.simulate_row(row, *out)?;
        }
    }
    progress.tick(trace.stats().calls);
    let names = trace.names();
    let mut reports = Vec::with_capacity(sets.len());
    for ((set, engines), sim) in sets.iter().zip(&lanes.engines).zip(sims) {
        let bindings = check_coverage(
            &[(set, engines)],
            &sim.groups,
            &unmatched,
            names,
            trace.stats(),
            part,
        )?;
        let warnings = unused_tool_warnings(&bindings);
        let mut builder = sim.builder;
        let named = sim.groups.named(names, by_server);
        let tally = |c: &Counts| c.tally();
        let tools: Vec<_> = (named.tools.iter())
            .map(|(server, tool, c)| (*server, *tool, tally(c)))
            .collect();
        let servers: Vec<_> = (named.servers.iter())
            .map(|(server, c)| (*server, tally(c)))
            .collect();
        let grants: Vec<_> = (named.grants.iter())
            .map(|(grant, c)| (*grant, tally(c)))
            .collect();
        // Every call evaluated is counted under exactly one tool.
        let mut totals = Tally::default();
        for (_, _, t) in &tools {
            totals.merge(t);
        }
        builder.add_totals(&totals);
        builder.add_group_tallies(
            tools.iter().map(|(server, tool, t)| (*server, *tool, t)),
            servers.iter().map(|(server, t)| (*server, t)),
            grants.iter().map(|(grant, t)| (*grant, t)),
        );
        let no_policy = Unmatched(unmatched.0.clone()).into_no_policy(names);
        let input = input_summary(&files, trace.stats(), no_policy);
        let mut report = builder.finish(set.refs(), warnings, input);
        report.timeline = finish_timeline(sim.timeline, names);
        if part {
            report.part = Some(PartInfo {
                settings: PartSettings::default(),
                bindings,
            });
        }
        reports.push(report);
    }
    Ok(reports)
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
    skip_sessions_unless_read(trace, &[base, candidate], sink.is_some());
    // A timeline of counters explains each call by name, reading its arguments.
    if opts.timeline != TimelineDetail::Counters {
        prescreen::prescreen(trace, &[base, candidate]);
    }
    let show_args = opts.show_args;
    let opts_gated = opts.fail_on.is_some() && !opts.part;
    let mut lanes = Lanes::new(&[base, candidate], eval);
    let by_server = base.len() > 1 || candidate.len() > 1;
    let detail = opts.timeline;
    let part = opts.part;
    let mut builder = DiffBuilder::new(summary_options(opts, sink.is_some()));
    let mut groups = Groups::<DiffGroup>::new();
    let mut unmatched = Unmatched(ById::new());
    let (mut bd, mut cd) = (Decision::allow(), Decision::allow());
    let mut timelines = timelines(detail, 2);
    let counters = detail == TimelineDetail::Counters;
    let files = trace.files().to_vec();
    let mut row_buf: Option<DiffRow> = None;
    let (mut id, mut shown) = (None, None);
    while let Some(call) = trace.next_call()? {
        if call.index % TICK == 0 {
            progress.tick(call.index);
        }
        // A call is compared only when both sides have a policy for its server.
        if !lanes.route(&call, &mut unmatched) {
            continue;
        }
        let ids = call.ids();
        let mut slot = None;
        let args = lanes.args(&call, &mut slot);
        let [b, c] = &mut lanes.engines[..] else {
            unreachable!("two policy sets")
        };
        let view = view_of(&call, args);
        // The candidate's counters are read by name when they are shown.
        let candidate_view = if counters { by_name(view) } else { view };
        if let (true, Some(timeline)) = (counters, timelines[1].as_mut()) {
            observe_limits(c, &call, &candidate_view, timeline);
        }
        let (Some(be), Some(ce)) = (
            b.get(ids.server, call.server()),
            c.get(ids.server, call.server()),
        ) else {
            continue;
        };
        be.evaluate_screened_into(&view, call.screened(0), &mut bd);
        ce.evaluate_screened_into(&candidate_view, call.screened(1), &mut cd);
        for (timeline, d) in timelines.iter_mut().zip([&bd, &cd]) {
            if let Some(timeline) = timeline {
                timeline.count(view.ts, d);
            }
        }
        let cause = (bd.kind != cd.kind).then(|| {
            // Arguments left out because steps 1–5 were worked out ahead are read now.
            let mut slot = None;
            let view = CallView {
                args: call.args_ref(&mut slot),
                ..view
            };
            if be.static_outcome(&view) == ce.static_outcome(&view) {
                Cause::KnockOn
            } else {
                Cause::Direct
            }
        });
        b.name_key(ids.server, &mut bd);
        c.name_key(ids.server, &mut cd);
        groups.count(ids, |g| g.count(&bd, &cd, cause));
        builder.push_ungrouped(call.index, &bd, &cd, cause, || call.record(), &files);
        if let Some((sink, out)) = sink.as_mut() {
            let fields = call.fields(&mut id, &mut shown, show_args);
            // One row, described again for each call: its strings are reused.
            let row = match &mut row_buf {
                Some(r) => {
                    r.call.fill(call.index, &fields, &files, show_args);
                    r.base.fill(&bd, &fields);
                    r.candidate.fill(&cd, &fields);
                    r.cause = cause;
                    r
                }
                None => row_buf.insert(DiffRow {
                    call: CallInfo::new(call.index, &fields, &files, show_args),
                    base: Outcome::new(&bd, &fields),
                    candidate: Outcome::new(&cd, &fields),
                    cause,
                }),
            };
            sink.diff_row(row, *out)?;
        }
    }
    progress.tick(trace.stats().calls);
    let names = trace.names();
    let [b, c] = &lanes.engines[..] else {
        unreachable!("two policy sets")
    };
    let bindings = check_coverage(
        &[(base, b), (candidate, c)],
        &groups,
        &unmatched,
        names,
        trace.stats(),
        part,
    )?;
    // Calls of a server with a policy on one side only were compared with nothing.
    let mut one_sided = Vec::new();
    for (id, &n) in unmatched.0.0.iter().enumerate() {
        let server = names.get(id as u32);
        let (b, c) = (base.policy_for(server), candidate.policy_for(server));
        if n > 0 && b.is_some() != c.is_some() {
            let side = if b.is_some() { "base" } else { "candidate" };
            one_sided.push(format!(
                "{n} call{} of server `{server}` ha{} a policy in the {side} only and {} not compared",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "ve" },
                if n == 1 { "was" } else { "were" },
            ));
        }
    }
    if !one_sided.is_empty() && opts_gated {
        return Err(ReplayError::OneSided(one_sided.join("; ")));
    }
    let mut warnings = unused_tool_warnings(&bindings);
    warnings.extend(one_sided.into_iter().map(|w| {
        format!("{w}: bind a policy for that server on both sides to compare them (one that allows every tool stands for none)")
    }));
    let named = groups.named(names, by_server);
    builder.add_groups(
        named
            .tools
            .iter()
            .map(|(server, tool, g)| (*server, *tool, g)),
        named.servers.iter().map(|(server, g)| (*server, g)),
        named.grants.iter().map(|(grant, g)| (*grant, g)),
    );
    let input = input_summary(&files, trace.stats(), unmatched.into_no_policy(names));
    let mut report = builder.finish(base.refs(), candidate.refs(), warnings, input);
    let mut finished = timelines.into_iter().map(|t| finish_timeline(t, names));
    if let (Some(Some(b)), Some(Some(c))) = (finished.next(), finished.next()) {
        report.timelines = Some([b, c]);
    }
    Ok(report)
}
