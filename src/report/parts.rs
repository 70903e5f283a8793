//! Summaries of the parts of one trace, and how they combine into the summary of the whole
//! (`simulate --part-summary`, `mcpsim merge`).
//!
//! A trace split so that no counter instance spans two parts (see `mcpsim partition-key`)
//! replays part by part to the decisions of one run. Every quantity of a [`SimulateReport`]
//! then combines exactly: counts add up; group and rule tallies add up by name and are sorted
//! as one run sorts them; listed calls are merged in time order (timestamp, then `index`, the
//! position in the whole trace, which the caller who split the trace gives them); the gate is
//! decided again on the combined totals, and the warnings again on the tools every part used.
//! What describes the inputs read (files, out-of-order calls, skipped records) adds up as
//! documented in `docs/scale-out.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::*;
use crate::engine::DecisionKind;

/// What a part's summary carries beyond the report, for `mcpsim merge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// What every part of one run must share; `merge` refuses parts that differ.
    pub settings: PartSettings,
    /// Per policy binding, what the warnings are decided on.
    pub bindings: Vec<BindingUse>,
}

/// The settings of a part's run that decide its decisions and its summary's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartSettings {
    /// Per policy (in `policies` order), its dialect and a digest of the file's bytes.
    pub policies: Vec<String>,
    /// The evaluation switches.
    pub eval: String,
    /// `--max-calls`.
    pub max_calls: usize,
    /// `--show-args`.
    pub show_args: bool,
}

/// The tools of one policy binding and the tools the part's calls of it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingUse {
    /// How warnings name the binding: `SERVER=FILE` or `FILE`.
    pub binding: String,
    /// The tools the policy configures, sorted.
    pub tools: Vec<String>,
    /// The tools calls decided by it used, sorted.
    pub seen: Vec<String>,
}

/// The warnings of a run: per binding, the tools its policy names that no call used (a
/// typo, or a test that exercised too little), with the nearest tool seen.
pub fn unused_tool_warnings(bindings: &[BindingUse]) -> Vec<String> {
    let mut warnings = Vec::new();
    for b in bindings {
        let seen: Vec<&str> = b.seen.iter().map(String::as_str).collect();
        let unused: Vec<String> = (b.tools.iter())
            .filter(|t| *t != "*" && seen.binary_search(&t.as_str()).is_err())
            .map(|t| match nearest_tool(t, &seen) {
                Some(near) => format!("`{t}` (nearest tool seen: `{near}`)"),
                None => format!("`{t}`"),
            })
            .collect();
        if !unused.is_empty() {
            warnings.push(format!(
                "policy {} names {} that no call used: {}",
                b.binding,
                if unused.len() == 1 {
                    "a tool".to_owned()
                } else {
                    format!("{} tools", unused.len())
                },
                unused.join(", ")
            ));
        }
    }
    warnings
}

/// The tool seen whose name is a plausible typo of `name`: a few edits apart at most.
fn nearest_tool<'a>(name: &str, seen: &[&'a str]) -> Option<&'a str> {
    seen.iter()
        .map(|s| (strsim::levenshtein(name, s), *s))
        .filter(|&(d, s)| d > 0 && d <= 1 + name.len().min(s.len()) / 8)
        .min()
        .map(|(_, s)| s)
}

/// Why part summaries cannot be combined.
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    /// Nothing to combine.
    #[error("no summary given")]
    Empty,
    /// A summary was not written as a part.
    #[error("{file}: not a part summary (write parts with `mcpsim simulate --part-summary FILE`)")]
    NotAPart {
        /// The summary.
        file: String,
    },
    /// Two parts were replayed with other policies or options.
    #[error("{file}: replayed with other {what} than {first}; parts of one run must share them")]
    Differ {
        /// The summary that differs.
        file: String,
        /// The first summary.
        first: String,
        /// What differs.
        what: &'static str,
    },
    /// A listed call's timestamp is not RFC 3339.
    #[error("{file}: listed call #{index}: timestamp `{ts}` is not RFC 3339")]
    Timestamp {
        /// The summary.
        file: String,
        /// The call's index.
        index: u64,
        /// The timestamp.
        ts: String,
    },
}

/// Combine the summaries of the parts of one trace (`(name, summary)`, the name for errors)
/// into the summary one run over the whole trace gives. With `keep_part`, the result is
/// itself a part summary, to combine further.
pub fn combine(
    parts: Vec<(String, SimulateReport)>,
    keep_part: bool,
) -> Result<SimulateReport, CombineError> {
    let Some((first_name, first)) = parts.first() else {
        return Err(CombineError::Empty);
    };
    let Some(info) = first.part.clone() else {
        return Err(CombineError::NotAPart {
            file: first_name.clone(),
        });
    };
    let gate_of = |r: &SimulateReport| r.gate.as_ref().map(|g| (g.fail_on.clone(), g.max));
    for (name, r) in &parts {
        let differ = |what| CombineError::Differ {
            file: name.clone(),
            first: first_name.clone(),
            what,
        };
        let Some(p) = &r.part else {
            return Err(CombineError::NotAPart { file: name.clone() });
        };
        if r.policies != first.policies || p.settings.policies != info.settings.policies {
            return Err(differ("policies"));
        }
        if p.settings.eval != info.settings.eval {
            return Err(differ("evaluation switches"));
        }
        if r.calls_shown != first.calls_shown
            || p.settings.max_calls != info.settings.max_calls
            || p.settings.show_args != info.settings.show_args
        {
            return Err(differ("--calls, --max-calls or --show-args"));
        }
        if gate_of(r) != gate_of(first) {
            return Err(differ("--fail-on or --max-failures"));
        }
        if p.bindings.len() != info.bindings.len()
            || (p.bindings.iter().zip(&info.bindings))
                .any(|(a, b)| a.binding != b.binding || a.tools != b.tools)
        {
            return Err(differ("policy bindings"));
        }
    }
    let max_calls = info.settings.max_calls;
    let calls_shown = first.calls_shown;
    let policies = first.policies.clone();
    let gate_setting = gate_of(first);

    let mut totals = Tally::default();
    let mut per_server = BTreeMap::new();
    let mut per_tool = BTreeMap::new();
    let mut per_grant = BTreeMap::new();
    let mut per_rule: BTreeMap<(Option<String>, String, DecisionKind), u64> = BTreeMap::new();
    let mut not_allowed = 0;
    let mut calls = Vec::new();
    let mut fidelity: Option<(Fidelity, BTreeMap<String, u64>)> = None;
    let mut examples = Vec::new();
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); info.bindings.len()];
    let mut inputs = Vec::new();
    for (name, r) in parts {
        totals.merge(&r.totals);
        add_groups(&mut per_server, r.per_server);
        add_groups(&mut per_tool, r.per_tool);
        add_groups(&mut per_grant, r.per_grant);
        for rc in r.per_rule {
            *per_rule
                .entry((rc.server, rc.rule, rc.decision))
                .or_default() += rc.calls;
        }
        not_allowed += r.not_allowed;
        calls.extend(keyed_rows(&name, r.calls)?);
        if let Some(f) = r.fidelity {
            let (all, disagreements) = fidelity.get_or_insert_with(Default::default);
            all.compared += f.compared;
            all.agreed += f.agreed;
            all.undecidable += f.undecidable;
            for c in f.disagreements {
                *disagreements.entry(c.name).or_default() += c.count;
            }
            examples.extend(keyed_rows(&name, f.examples)?);
        }
        for (all, b) in seen
            .iter_mut()
            .zip(r.part.into_iter().flat_map(|p| p.bindings))
        {
            all.extend(b.seen);
        }
        inputs.push(r.input);
    }
    let calls = first_in_time_order(calls, calls_shown, max_calls);
    let fidelity = match fidelity {
        Some((mut f, disagreements)) => {
            f.disagreements = counts_by_frequency(&disagreements);
            // Examples are capped at --max-calls whatever --calls says, as in one run.
            f.examples = first_in_time_order(examples, CallsShown::Changed, max_calls);
            Some(f)
        }
        None => None,
    };
    let bindings: Vec<BindingUse> = (info.bindings.iter().zip(seen))
        .map(|(b, mut seen)| {
            seen.sort_unstable();
            seen.dedup();
            BindingUse {
                binding: b.binding.clone(),
                tools: b.tools.clone(),
                seen,
            }
        })
        .collect();
    let mut per_rule: Vec<RuleCount> = (per_rule.into_iter())
        .map(|((server, rule, decision), calls)| RuleCount {
            rule,
            server,
            decision,
            calls,
        })
        .collect();
    sort_rules(&mut per_rule);
    let gate = gate_setting.map(|(fail_on, max)| gate(fail_on, max, &totals));
    Ok(SimulateReport {
        policies,
        warnings: unused_tool_warnings(&bindings),
        input: combine_inputs(inputs),
        totals,
        per_server: groups(per_server),
        per_tool: groups(per_tool),
        per_grant: groups(per_grant),
        per_rule,
        fidelity,
        calls_shown,
        not_allowed,
        calls,
        gate,
        // Parts carry no timeline (it is not serialised): a merged report has no charts.
        timeline: None,
        part: keep_part.then_some(PartInfo {
            settings: info.settings,
            bindings,
        }),
    })
}

/// The outcome of a gate over `totals`.
pub(crate) fn gate(fail_on: Vec<DecisionKind>, max: u64, totals: &Tally) -> Gate {
    let failures = fail_on.iter().map(|&k| totals.get(k)).sum();
    Gate {
        fail_on,
        max,
        failures,
        failed: failures > max,
    }
}

/// Rule counts in report order: most calls first, then server, rule and decision.
pub(crate) fn sort_rules(rules: &mut [RuleCount]) {
    rules.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| a.server.cmp(&b.server))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.decision.cmp(&b.decision))
    });
}

type GroupKey = (Option<String>, String);

fn add_groups(all: &mut BTreeMap<GroupKey, Tally>, groups: Vec<GroupTally>) {
    for g in groups {
        all.entry((g.server, g.name)).or_default().merge(&g.tally);
    }
}

/// Groups sorted as one run sorts them: by server (none first), then name.
fn groups(all: BTreeMap<GroupKey, Tally>) -> Vec<GroupTally> {
    (all.into_iter())
        .map(|((server, name), tally)| GroupTally {
            name,
            server,
            tally,
        })
        .collect()
}

/// A listed call with its place in time order: (timestamp in nanoseconds, index).
type Keyed = ((i64, u64), CallRow);

/// Rows with their place in time order.
fn keyed_rows(file: &str, rows: Vec<CallRow>) -> Result<Vec<Keyed>, CombineError> {
    rows.into_iter()
        .map(|row| {
            let ts = chrono::DateTime::parse_from_rfc3339(&row.call.ts)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .ok_or_else(|| CombineError::Timestamp {
                    file: file.to_owned(),
                    index: row.call.index,
                    ts: row.call.ts.clone(),
                })?;
            Ok(((ts, row.call.index), row))
        })
        .collect()
}

/// The first rows in time order, as many as one run lists.
fn first_in_time_order(mut rows: Vec<Keyed>, shown: CallsShown, max_calls: usize) -> Vec<CallRow> {
    rows.sort_by_key(|(key, _)| *key);
    let keep = match shown {
        CallsShown::None => 0,
        CallsShown::Changed => max_calls,
        CallsShown::All => rows.len(),
    };
    rows.into_iter().take(keep).map(|(_, row)| row).collect()
}

/// How many examples of skipped records and unpaired replies a summary keeps.
const MAX_EXAMPLES: usize = crate::trace::MAX_EXAMPLES;

/// What the parts read: counts add up; files are listed once per name and format (their
/// calls added up) in the order parts first name them; examples are the first of the parts'
/// in the order the parts are given.
fn combine_inputs(inputs: Vec<InputSummary>) -> InputSummary {
    let mut all = InputSummary::default();
    let mut no_policy = BTreeMap::new();
    let mut skipped_by_reason = BTreeMap::new();
    let mut ignored = BTreeMap::new();
    for input in inputs {
        for f in input.files {
            match (all.files.iter_mut()).find(|a| a.name == f.name && a.format == f.format) {
                Some(a) => a.calls += f.calls,
                None => all.files.push(f),
            }
        }
        all.calls_read += input.calls_read;
        all.calls_evaluated += input.calls_evaluated;
        all.left_out += input.left_out;
        all.out_of_order += input.out_of_order;
        all.skipped += input.skipped;
        add_counts(&mut no_policy, input.no_policy);
        add_counts(&mut skipped_by_reason, input.skipped_by_reason);
        add_counts(&mut ignored, input.ignored);
        let room = MAX_EXAMPLES.saturating_sub(all.skipped_examples.len());
        (all.skipped_examples).extend(input.skipped_examples.into_iter().take(room));
        if let Some(r) = input.replies {
            let a = all.replies.get_or_insert_with(ReplyPairing::default);
            a.paired += r.paired;
            a.requests_without_reply += r.requests_without_reply;
            a.cancelled += r.cancelled;
            a.replies_without_request += r.replies_without_request;
            a.examples.extend(r.examples);
        }
    }
    all.no_policy = by_name(no_policy);
    all.skipped_by_reason = counts_by_frequency(&skipped_by_reason);
    all.ignored = by_name(ignored);
    all
}

fn add_counts(all: &mut BTreeMap<String, u64>, counts: Vec<Count>) {
    for c in counts {
        *all.entry(c.name).or_default() += c.count;
    }
}

fn by_name(all: BTreeMap<String, u64>) -> Vec<Count> {
    (all.into_iter())
        .map(|(name, count)| Count { name, count })
        .collect()
}
