//! Accumulators that turn a stream of decided calls into a report, in bounded memory
//! (per tool, per grant and per rule maps, plus the first N listed calls).

use std::collections::BTreeMap;

// Tallies are looked up several times per call with short, non-adversarial keys.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::engine::{Decision, DecisionKind};
use crate::trace::{CallRecord, RecordedDecision};

use super::model::*;

/// What a report lists and gates on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Which calls to list.
    pub calls_shown: CallsShown,
    /// How many calls to list under [`CallsShown::Changed`].
    pub max_calls: usize,
    /// Include argument values in listed calls.
    pub show_args: bool,
    /// The gate: decisions that count as failures and how many are tolerated.
    pub fail_on: Option<(Vec<DecisionKind>, u64)>,
    /// What the replay records over time.
    pub timeline: TimelineDetail,
    /// The run replays one part of a trace (`--part-summary`): the summary lists its calls
    /// even beside per-call rows and says what `mcpsim merge` needs; bindings that match no
    /// call and a part without calls are left to `merge` to judge.
    pub part: bool,
}

/// What a replay records over time ([`super::Timeline`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimelineDetail {
    /// Nothing.
    #[default]
    Off,
    /// Decisions per minute and the first throttle.
    Decisions,
    /// Also the use of every counter against its limit (one explanation per call).
    Counters,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            calls_shown: CallsShown::Changed,
            max_calls: 20,
            show_args: false,
            fail_on: None,
            timeline: TimelineDetail::Off,
            part: false,
        }
    }
}

impl ReportOptions {
    fn wants_call(&self, listed: usize) -> bool {
        match self.calls_shown {
            CallsShown::None => false,
            CallsShown::Changed => listed < self.max_calls,
            CallsShown::All => true,
        }
    }
}

fn gate(
    fail_on: &Option<(Vec<DecisionKind>, u64)>,
    count: impl Fn(DecisionKind) -> u64,
) -> Option<Gate> {
    fail_on.as_ref().map(|(kinds, max)| {
        let failures = kinds.iter().map(|&k| count(k)).sum();
        Gate {
            fail_on: kinds.clone(),
            max: *max,
            failures,
            failed: failures > *max,
        }
    })
}

/// Calls of one tool: by the tool's name, and its server's when several policies are bound.
type ToolKey = (Option<Arc<str>>, Arc<str>);

fn sorted_groups(map: HashMap<Arc<str>, Tally>) -> Vec<GroupTally> {
    sorted_tool_groups(map.into_iter().map(|(name, t)| ((None, name), t)))
}

fn sorted_tool_groups(groups: impl IntoIterator<Item = (ToolKey, Tally)>) -> Vec<GroupTally> {
    let mut v: Vec<GroupTally> = groups
        .into_iter()
        .map(|((server, name), tally)| GroupTally {
            name: name.to_string(),
            server: server.map(|s| s.to_string()),
            tally,
        })
        .collect();
    v.sort_by(|a, b| (&a.server, &a.name).cmp(&(&b.server, &b.name)));
    v
}

/// Counts calls whose server has no policy, for [`InputSummary::no_policy`].
#[derive(Debug, Default)]
pub struct NoPolicy(HashMap<Arc<str>, u64>);

impl NoPolicy {
    /// Count `n` calls of one server.
    pub fn add_calls(&mut self, server: &Arc<str>, n: u64) {
        *self.0.entry(server.clone()).or_default() += n;
    }

    /// Total calls counted.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Sorted by server name.
    pub fn into_counts(self) -> Vec<Count> {
        let mut v: Vec<Count> = self
            .0
            .into_iter()
            .map(|(name, count)| Count {
                name: name.to_string(),
                count,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// Builds a [`SimulateReport`] from decided calls in time order.
#[derive(Debug)]
pub struct SimulateBuilder {
    opts: ReportOptions,
    totals: Tally,
    per_server: HashMap<Arc<str>, Tally>,
    per_tool: HashMap<ToolKey, Tally>,
    per_grant: HashMap<Arc<str>, Tally>,
    per_rule: HashMap<RuleKey, u64>,
    /// Calls of the latest rule and kind not yet added to `per_rule`: refusals come in runs
    /// (a throttled burst), and a run costs one map update instead of one a call.
    rule_run: Option<(RuleKey, u64)>,
    not_allowed: u64,
    calls: Vec<CallRow>,
    fidelity: Fidelity,
    disagreements: BTreeMap<String, u64>,
    saw_recorded: bool,
}

pub(super) const NONE_GRANT: &str = "(none)";

/// A rule's calls of one decision: (server when several policies are bound, rule, decision).
type RuleKey = (Option<Arc<str>>, Arc<str>, DecisionKind);

impl SimulateBuilder {
    /// A new, empty builder.
    pub fn new(opts: ReportOptions) -> SimulateBuilder {
        SimulateBuilder {
            opts,
            totals: Tally::default(),
            per_server: HashMap::default(),
            per_tool: HashMap::default(),
            per_grant: HashMap::default(),
            per_rule: HashMap::default(),
            rule_run: None,
            not_allowed: 0,
            calls: Vec::new(),
            fidelity: Fidelity::default(),
            disagreements: BTreeMap::new(),
            saw_recorded: false,
        }
    }

    /// Add per-tool, per-server and per-grant tallies kept by the caller (a tool's server is
    /// `Some` when tools are kept apart by server; a grant `None` is calls without a grant):
    /// the caller counts calls by its own keys and uses [`SimulateBuilder::push_untallied`].
    pub fn add_group_tallies<'a>(
        &mut self,
        per_tool: impl IntoIterator<Item = (Option<&'a Arc<str>>, &'a Arc<str>, &'a Tally)>,
        per_server: impl IntoIterator<Item = (&'a Arc<str>, &'a Tally)>,
        per_grant: impl IntoIterator<Item = (Option<&'a Arc<str>>, &'a Tally)>,
    ) {
        for (server, tool, t) in per_tool {
            self.per_tool
                .entry((server.cloned(), tool.clone()))
                .or_default()
                .merge(t);
        }
        for (server, t) in per_server {
            tally_for(&mut self.per_server, server).merge(t);
        }
        for (grant, t) in per_grant {
            match grant {
                Some(g) => tally_for(&mut self.per_grant, g).merge(t),
                None => tally_for(&mut self.per_grant, NONE_GRANT).merge(t),
            }
        }
    }

    /// Add decision counts to the totals: with [`SimulateBuilder::push_untallied`], for a
    /// replay that counts decisions itself.
    pub fn add_totals(&mut self, totals: &Tally) {
        self.totals.merge(totals);
    }

    /// Count one evaluated call in the rules, listed calls and fidelity (the caller counts
    /// the tallies: see [`SimulateBuilder::add_totals`]). `server` keys the rule when several
    /// policies are bound. An allowed call with no recorded decision changes none of them.
    pub fn push_untallied(
        &mut self,
        index: u64,
        d: &Decision,
        server: Option<&Arc<str>>,
        recorded: Option<RecordedDecision>,
        record: impl FnOnce() -> CallRecord,
        files: &[String],
    ) {
        // An allowed call with a rule was let through by a rule of its own (an Intercept call
        // forwarded unevaluated): counted under that rule, not listed.
        let by_rule = d.kind == DecisionKind::Allow && !d.rule.is_empty() && !d.approval_required;
        if d.kind == DecisionKind::Allow && recorded.is_none() && !by_rule {
            return;
        }
        if by_rule {
            *self
                .per_rule
                .entry((server.cloned(), d.rule.clone(), d.kind))
                .or_default() += 1;
        }
        // Built at most once, and only when listed.
        let call = std::cell::LazyCell::new(record);
        if d.kind != DecisionKind::Allow {
            let same_server = |s: &Option<Arc<str>>| match (s, server) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            };
            match &mut self.rule_run {
                Some(((s, rule, kind), n))
                    if *kind == d.kind && Arc::ptr_eq(rule, &d.rule) && same_server(s) =>
                {
                    *n += 1
                }
                run => {
                    let key = (server.cloned(), d.rule.clone(), d.kind);
                    if let Some((key, n)) = run.replace((key, 1)) {
                        *self.per_rule.entry(key).or_default() += n;
                    }
                }
            }
            if self.opts.wants_call(self.calls.len()) {
                self.calls
                    .push(row(index, &call, d, files, self.opts.show_args));
            }
            self.not_allowed += 1;
        }
        if let Some(rec) = recorded {
            self.saw_recorded = true;
            if d.kind == DecisionKind::Unknown {
                self.fidelity.undecidable += 1;
            } else {
                self.fidelity.compared += 1;
                if agrees(rec, d.kind) {
                    self.fidelity.agreed += 1;
                } else {
                    *self
                        .disagreements
                        .entry(format!("{} → {}", rec.as_str(), d.kind))
                        .or_default() += 1;
                    if self.fidelity.examples.len() < self.opts.max_calls {
                        self.fidelity.examples.push(row(
                            index,
                            &call,
                            d,
                            files,
                            self.opts.show_args,
                        ));
                    }
                }
            }
        }
    }

    /// The report, given what was read.
    pub fn finish(
        mut self,
        policies: Vec<PolicyRef>,
        warnings: Vec<String>,
        input: InputSummary,
    ) -> SimulateReport {
        if let Some((key, n)) = self.rule_run.take() {
            *self.per_rule.entry(key).or_default() += n;
        }
        let mut per_rule: Vec<RuleCount> = self
            .per_rule
            .into_iter()
            .map(|((server, rule, decision), calls)| RuleCount {
                rule: rule.to_string(),
                server: server.map(|s| s.to_string()),
                decision,
                calls,
            })
            .collect();
        super::parts::sort_rules(&mut per_rule);
        let totals = self.totals;
        let gate = gate(&self.opts.fail_on, |k| totals.get(k));
        let fidelity = self.saw_recorded.then(|| {
            let mut f = self.fidelity;
            f.disagreements = counts_by_frequency(&self.disagreements);
            f
        });
        SimulateReport {
            policies,
            warnings,
            input,
            totals,
            per_server: sorted_groups(self.per_server),
            per_tool: sorted_tool_groups(self.per_tool),
            per_grant: sorted_groups(self.per_grant),
            per_rule,
            fidelity,
            calls_shown: self.opts.calls_shown,
            not_allowed: self.not_allowed,
            calls: self.calls,
            gate,
            timeline: None,
            part: None,
        }
    }
}

fn tally_for<'a>(map: &'a mut HashMap<Arc<str>, Tally>, key: &str) -> &'a mut Tally {
    // Look up by &str first so the common case allocates nothing.
    if !map.contains_key(key) {
        map.insert(Arc::from(key), Tally::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// One call and its decision, as listed in reports.
pub fn row(
    index: u64,
    call: &CallRecord,
    d: &Decision,
    files: &[String],
    show_args: bool,
) -> CallRow {
    CallRow {
        call: CallInfo::new(index, &call.fields(), files, show_args),
        outcome: Outcome::new(d, &call.fields()),
    }
}

/// Builds a [`DiffReport`] from calls decided under two policies, in time order.
#[derive(Debug)]
pub struct DiffBuilder {
    opts: ReportOptions,
    base: Tally,
    candidate: Tally,
    transitions: BTreeMap<(DecisionKind, DecisionKind), u64>,
    changed: u64,
    direct: u64,
    knock_on: u64,
    new_failures: BTreeMap<DecisionKind, u64>,
    per_server: HashMap<Arc<str>, DiffGroup>,
    per_tool: HashMap<ToolKey, DiffGroup>,
    per_grant: HashMap<Arc<str>, DiffGroup>,
    calls: Vec<DiffRow>,
}

impl DiffBuilder {
    /// A new, empty builder.
    pub fn new(opts: ReportOptions) -> DiffBuilder {
        DiffBuilder {
            opts,
            base: Tally::default(),
            candidate: Tally::default(),
            transitions: BTreeMap::new(),
            changed: 0,
            direct: 0,
            knock_on: 0,
            new_failures: BTreeMap::new(),
            per_server: HashMap::default(),
            per_tool: HashMap::default(),
            per_grant: HashMap::default(),
            calls: Vec::new(),
        }
    }

    /// Add per-tool, per-server and per-grant groups kept by the caller (as
    /// [`SimulateBuilder::add_group_tallies`]), for callers that use
    /// [`DiffBuilder::push_ungrouped`] per call.
    pub fn add_groups<'a>(
        &mut self,
        per_tool: impl IntoIterator<Item = (Option<&'a Arc<str>>, &'a Arc<str>, &'a DiffGroup)>,
        per_server: impl IntoIterator<Item = (&'a Arc<str>, &'a DiffGroup)>,
        per_grant: impl IntoIterator<Item = (Option<&'a Arc<str>>, &'a DiffGroup)>,
    ) {
        for (server, tool, g) in per_tool {
            self.per_tool
                .entry((server.cloned(), tool.clone()))
                .or_insert_with(|| DiffGroup {
                    name: tool.to_string(),
                    server: server.map(|s| s.to_string()),
                    ..DiffGroup::default()
                })
                .merge(g);
        }
        for (server, g) in per_server {
            group_for(&mut self.per_server, server).merge(g);
        }
        for (grant, g) in per_grant {
            group_for(&mut self.per_grant, grant.map_or(NONE_GRANT, |g| &**g)).merge(g);
        }
    }

    /// Count one call in everything but the per-tool and per-grant groups; `record` builds
    /// the call's record, asked only for calls the report lists.
    pub fn push_ungrouped(
        &mut self,
        index: u64,
        base: &Decision,
        candidate: &Decision,
        cause: Option<Cause>,
        record: impl FnOnce() -> CallRecord,
        files: &[String],
    ) {
        self.base.add(base);
        self.candidate.add(candidate);
        *self
            .transitions
            .entry((base.kind, candidate.kind))
            .or_default() += 1;
        if let Some(cause) = cause {
            self.changed += 1;
            match cause {
                Cause::Direct => self.direct += 1,
                Cause::KnockOn => self.knock_on += 1,
            }
            if base.kind != candidate.kind {
                *self.new_failures.entry(candidate.kind).or_default() += 1;
            }
            if self.opts.wants_call(self.calls.len()) {
                let record = record();
                let call = record.fields();
                self.calls.push(DiffRow {
                    call: CallInfo::new(index, &call, files, self.opts.show_args),
                    base: Outcome::new(base, &call),
                    candidate: Outcome::new(candidate, &call),
                    cause: Some(cause),
                });
            }
        }
    }

    /// The report, given what was read.
    pub fn finish(
        self,
        base: Vec<PolicyRef>,
        candidate: Vec<PolicyRef>,
        warnings: Vec<String>,
        input: InputSummary,
    ) -> DiffReport {
        let new_failures = self.new_failures;
        let gate = gate(&self.opts.fail_on, |k| {
            new_failures.get(&k).copied().unwrap_or(0)
        });
        DiffReport {
            base,
            candidate,
            warnings,
            policy_changes: Vec::new(),
            input,
            base_totals: self.base,
            candidate_totals: self.candidate,
            transitions: self
                .transitions
                .into_iter()
                .map(|((base, candidate), calls)| Transition {
                    base,
                    candidate,
                    calls,
                })
                .collect(),
            changed: self.changed,
            direct: self.direct,
            knock_on: self.knock_on,
            per_server: changed_groups(self.per_server.into_values()),
            per_tool: changed_groups(self.per_tool.into_values()),
            per_grant: changed_groups(self.per_grant.into_values()),
            calls_shown: self.opts.calls_shown,
            calls: self.calls,
            gate,
            timelines: None,
        }
    }
}

fn group_for<'a>(map: &'a mut HashMap<Arc<str>, DiffGroup>, key: &str) -> &'a mut DiffGroup {
    if !map.contains_key(key) {
        map.insert(
            Arc::from(key),
            DiffGroup {
                name: key.to_owned(),
                ..DiffGroup::default()
            },
        );
    }
    map.get_mut(key).expect("inserted above")
}

fn changed_groups(groups: impl Iterator<Item = DiffGroup>) -> Vec<DiffGroup> {
    let mut v: Vec<DiffGroup> = groups.filter(|g| g.changed > 0).collect();
    v.sort_by(|a, b| (&a.server, &a.name).cmp(&(&b.server, &b.name)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: DecisionKind, rule: &Arc<str>) -> Decision {
        Decision {
            kind,
            rule: Arc::clone(rule),
            ..Decision::allow()
        }
    }

    #[test]
    fn rules_count_across_interleaved_runs_and_equal_texts() {
        let opts = ReportOptions {
            calls_shown: CallsShown::None,
            ..ReportOptions::default()
        };
        let mut b = SimulateBuilder::new(opts);
        let a: Arc<str> = Arc::from("/tools/a/limits/x");
        let b_rule: Arc<str> = Arc::from("/tools/b/deny_if/args.y-eq");
        // The same text as `a` in another allocation (as from another server's policy).
        let a_again: Arc<str> = Arc::from("/tools/a/limits/x");
        let seq = [
            decision(DecisionKind::Throttle, &a),
            decision(DecisionKind::Throttle, &a),
            Decision::allow(),
            decision(DecisionKind::Deny, &b_rule),
            decision(DecisionKind::Throttle, &a),
            decision(DecisionKind::Deny, &a),
            decision(DecisionKind::Throttle, &a_again),
            decision(DecisionKind::Deny, &b_rule),
        ];
        for (i, d) in seq.iter().enumerate() {
            // Nothing is listed, so no record is ever built.
            let record = || -> CallRecord { panic!("a record was built for call {i}") };
            b.push_untallied(i as u64 + 1, d, None, None, record, &[]);
        }
        let report = b.finish(Vec::new(), Vec::new(), InputSummary::default());
        let counts: Vec<(String, DecisionKind, u64)> = report
            .per_rule
            .iter()
            .map(|r| (r.rule.clone(), r.decision, r.calls))
            .collect();
        let want = |rule: &str, kind, n| (rule.to_string(), kind, n);
        assert_eq!(counts.len(), 3, "{counts:?}");
        for w in [
            want("/tools/a/limits/x", DecisionKind::Throttle, 4),
            want("/tools/b/deny_if/args.y-eq", DecisionKind::Deny, 2),
            want("/tools/a/limits/x", DecisionKind::Deny, 1),
        ] {
            assert!(counts.contains(&w), "{w:?} in {counts:?}");
        }
    }
}
