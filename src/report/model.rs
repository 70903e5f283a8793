//! The report model: built once from the replay, rendered in every format.
//!
//! Field names here are the stable JSON schema (`--format json`), documented in `docs/reports.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::{Decision, DecisionKind};
use crate::trace::{CallFields, Nanos, RecordedDecision};

/// Which calls a summary report lists one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CallsShown {
    /// No per-call list.
    None,
    /// The first `--max-calls` calls of interest: not allowed (`simulate`) or changed (`diff`).
    Changed,
    /// Every call of interest, without the `--max-calls` cap.
    All,
}

/// Counts of decisions for a group of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Calls evaluated.
    pub calls: u64,
    /// Calls allowed.
    pub allow: u64,
    /// Calls denied.
    pub deny: u64,
    /// Calls throttled.
    pub throttle: u64,
    /// Calls held for approval.
    pub approval: u64,
    /// Calls that could not be decided from what the trace recorded.
    pub unknown: u64,
    /// Calls that needed approval and were continued under `--assume-approved`.
    pub approval_required: u64,
}

impl Tally {
    /// Count one decision.
    pub fn add(&mut self, d: &Decision) {
        self.calls += 1;
        *self.slot(d.kind) += 1;
        if d.approval_required {
            self.approval_required += 1;
        }
    }

    /// Add another tally's counts.
    pub fn merge(&mut self, other: &Tally) {
        self.calls += other.calls;
        self.allow += other.allow;
        self.deny += other.deny;
        self.throttle += other.throttle;
        self.approval += other.approval;
        self.unknown += other.unknown;
        self.approval_required += other.approval_required;
    }

    /// The count for one decision kind.
    pub fn get(&self, kind: DecisionKind) -> u64 {
        match kind {
            DecisionKind::Allow => self.allow,
            DecisionKind::Deny => self.deny,
            DecisionKind::Throttle => self.throttle,
            DecisionKind::Approval => self.approval,
            DecisionKind::Unknown => self.unknown,
        }
    }

    fn slot(&mut self, kind: DecisionKind) -> &mut u64 {
        match kind {
            DecisionKind::Allow => &mut self.allow,
            DecisionKind::Deny => &mut self.deny,
            DecisionKind::Throttle => &mut self.throttle,
            DecisionKind::Approval => &mut self.approval,
            DecisionKind::Unknown => &mut self.unknown,
        }
    }
}

/// A tally for one tool, grant, or server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTally {
    /// The tool, grant or server name (`(none)` for calls without a grant).
    pub name: String,
    /// The tool's server, when several policies are bound (a tool of one server is then
    /// not added up with a same-named tool of another).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Its counts.
    #[serde(flatten)]
    pub tally: Tally,
}

/// How often a rule decided a call other than a plain allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    /// Rule id.
    pub rule: String,
    /// The server whose policy holds the rule, when several policies are bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The decision it produced.
    pub decision: DecisionKind,
    /// How many calls.
    pub calls: u64,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInput {
    /// As given on the command line (or `-`).
    pub name: String,
    /// Detected or forced format.
    pub format: String,
    /// Calls read from it.
    pub calls: u64,
}

/// One skipped record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRecord {
    /// File name.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Why it was skipped.
    pub reason: String,
}

/// A name and a count (sorted lists in reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// What was counted.
    pub name: String,
    /// How many.
    pub count: u64,
}

/// What was read, and what was not evaluated and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSummary {
    /// Input files in command-line order.
    pub files: Vec<FileInput>,
    /// Calls read (every `tools/call`, evaluated or not).
    pub calls_read: u64,
    /// Calls evaluated by a policy.
    pub calls_evaluated: u64,
    /// Calls whose server has no policy (`--policy SERVER=FILE` given for other servers only).
    pub no_policy: Vec<Count>,
    /// Calls of other servers than `--server` names, left out.
    pub left_out: u64,
    /// Calls that arrived earlier than a call before them in the same file (they were sorted).
    pub out_of_order: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// Skipped records by reason.
    pub skipped_by_reason: Vec<Count>,
    /// The first skipped records, with file and line.
    pub skipped_examples: Vec<SkippedRecord>,
    /// Messages that are not calls (other JSON-RPC methods, replies, log lines), by kind.
    pub ignored: Vec<Count>,
    /// How replies paired with `tools/call` requests; only for recordings with replies
    /// (MCP JSON-RPC, Claude Desktop logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<ReplyPairing>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How the replies of recordings paired with their `tools/call` requests, by
/// (server, session, id) or what the format names a request by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyPairing {
    /// Calls paired with their reply (they have an upstream outcome and a latency).
    pub paired: u64,
    /// Requests that no reply answered (their calls have no upstream outcome).
    pub requests_without_reply: u64,
    /// Of the requests without a reply, those the client had cancelled
    /// (`notifications/cancelled`); left out when none were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cancelled: u64,
    /// Replies that answer no request read before them.
    pub replies_without_request: u64,
    /// The first few of each, with file and line.
    pub examples: Vec<SkippedRecord>,
}

/// A call as reports show it: identity, origin and what was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// 1-based position in time order (use `#N` to refer to it).
    pub index: u64,
    /// RFC 3339 UTC timestamp.
    pub ts: String,
    /// Server.
    pub server: String,
    /// Grant (caller identity), if recorded.
    pub grant: Option<String>,
    /// Session, if recorded.
    pub session: Option<String>,
    /// Tool name.
    pub tool: String,
    /// Request id, if recorded.
    pub id: Option<String>,
    /// `file:line` of the record.
    pub origin: String,
    /// The decision the gateway recorded, if any.
    pub recorded: Option<String>,
    /// Upstream outcome (`ok`, `error`, `tool_error`), if recorded.
    pub upstream: Option<String>,
    /// Argument values, only with `--show-args`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<ArgsJson>,
}

/// A call's arguments as reports show them: the JSON serde_json writes for the value they
/// parse into (compact, keys sorted). Rows take the text as it is; a document serializes the
/// value, so that a pretty printer lays it out.
#[derive(Debug, Clone)]
pub struct ArgsJson {
    text: String,
    /// The value, when it was built to write the text (else the text is parsed again when a
    /// document needs the value: text written without serde_json holds no fractions).
    value: Option<serde_json::Value>,
}

impl ArgsJson {
    /// The arguments shown for `args`; `None` for what has no JSON value (nothing recorded, or
    /// text that does not parse).
    fn of(args: &crate::trace::Args, mut text: String) -> Option<ArgsJson> {
        use crate::trace::{Args, ArgsView};
        text.clear();
        if let Args::Raw(raw) = args
            && crate::call::write_sorted(raw.text(), &mut text)
        {
            return Some(ArgsJson { text, value: None });
        }
        let value = match args.view() {
            ArgsView::Values(m) if !m.values().any(holds_fraction) => {
                let text = serde_json::to_string(m).unwrap_or_default();
                return Some(ArgsJson { text, value: None });
            }
            ArgsView::Values(m) => serde_json::Value::Object(m.clone()),
            ArgsView::Keys(k) => serde_json::Value::from(k.to_vec()),
            ArgsView::NotObject(t) => serde_json::from_str(t).ok()?,
            ArgsView::Unrecorded => return None,
        };
        Some(ArgsJson::from(value))
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Whether `v` holds a number that is not an integer (its text, parsed again, might not give
/// the same value).
fn holds_fraction(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(holds_fraction),
        Value::Object(m) => m.values().any(holds_fraction),
        _ => false,
    }
}

impl From<serde_json::Value> for ArgsJson {
    fn from(value: serde_json::Value) -> ArgsJson {
        ArgsJson {
            text: value.to_string(),
            value: Some(value),
        }
    }
}

/// The compact JSON text.
impl std::fmt::Display for ArgsJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for ArgsJson {
    fn eq(&self, other: &ArgsJson) -> bool {
        self.text == other.text
    }
}

impl Serialize for ArgsJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.value {
            Some(v) => v.serialize(s),
            None => serde_json::from_str::<serde_json::Value>(&self.text)
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ArgsJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ArgsJson, D::Error> {
        serde_json::Value::deserialize(d).map(ArgsJson::from)
    }
}

impl CallInfo {
    /// Describe a call for a report.
    pub fn new(index: u64, call: &CallFields<'_>, files: &[String], show_args: bool) -> CallInfo {
        let mut info = CallInfo::default();
        info.fill(index, call, files, show_args);
        info
    }

    /// Describe another call in this one's place, reusing its strings (per-call reports
    /// describe millions of calls, one at a time).
    pub fn fill(&mut self, index: u64, call: &CallFields<'_>, files: &[String], show_args: bool) {
        let file = files
            .get(call.origin.file as usize)
            .map(String::as_str)
            .unwrap_or("?");
        self.index = index;
        self.ts.clear();
        crate::trace::format_ts_into(&mut self.ts, call.ts);
        set(&mut self.server, call.server);
        set_opt(&mut self.grant, call.grant);
        set_opt(&mut self.session, call.session);
        set(&mut self.tool, call.tool);
        set_opt(&mut self.id, call.id);
        self.origin.clear();
        let _ = write!(self.origin, "{file}:{}", call.origin.line);
        set_opt(&mut self.recorded, call.recorded.map(|d| d.as_str()));
        set_opt(&mut self.upstream, call.upstream.map(|u| u.as_str()));
        let text = self.args.take().map(|a| a.text).unwrap_or_default();
        self.args = call
            .args
            .filter(|_| show_args)
            .and_then(|args| ArgsJson::of(args, text));
    }
}

/// `slot` holds `value`, in the string it had.
fn set(slot: &mut String, value: &str) {
    slot.clear();
    slot.push_str(value);
}

/// `slot` holds `value`, in the string it had when it had one.
fn set_opt(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(s), Some(v)) => set(s, v),
        (_, v) => *slot = v.map(str::to_owned),
    }
}

/// Throttle details as reports show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleInfo {
    /// Counter name.
    pub counter: String,
    /// Counter key: `scope:value` parts, e.g. `grant:files/agent-7`.
    pub key: String,
    /// Window start, RFC 3339 UTC.
    pub window_start: String,
    /// Consumed by earlier admitted calls in the window.
    pub used: f64,
    /// The limit.
    pub max: f64,
    /// What this call would have added.
    pub increment: f64,
    /// When the call would fit again, RFC 3339 UTC.
    pub retry_after: String,
}

/// A decision as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `allow`, `deny`, `throttle`, `approval` or `unknown`.
    pub decision: DecisionKind,
    /// Rule id; empty for a plain allow.
    pub rule: String,
    /// Message; empty for a plain allow.
    pub message: String,
    /// Set when the call needed approval and `--assume-approved` continued it.
    pub approval_required: bool,
    /// For throttles.
    pub throttle: Option<ThrottleInfo>,
}

impl Outcome {
    /// Describe a decision on a call.
    pub fn new(d: &Decision, call: &CallFields<'_>) -> Outcome {
        let mut o = Outcome {
            decision: d.kind,
            rule: String::new(),
            message: String::new(),
            approval_required: false,
            throttle: None,
        };
        o.fill(d, call);
        o
    }

    /// Describe another decision in this one's place, reusing its strings.
    pub fn fill(&mut self, d: &Decision, call: &CallFields<'_>) {
        self.decision = d.kind;
        set(&mut self.rule, &d.rule);
        set(&mut self.message, &d.message);
        self.approval_required = d.approval_required;
        self.throttle = d.throttle.as_ref().map(|t| ThrottleInfo {
            counter: t.counter.to_string(),
            key: counter_key(t.scope, call),
            window_start: format_ts(t.window_start),
            used: t.used,
            max: t.max,
            increment: t.increment,
            retry_after: format_ts(t.retry_after),
        });
    }
}

/// The counter key of a scope for a call, as shown in reports.
pub fn counter_key(scope: crate::engine::Scope, call: &CallFields<'_>) -> String {
    use crate::engine::Scope;
    let grant = call.grant.unwrap_or("");
    let session = call.session.unwrap_or("");
    match scope {
        Scope::Global => "global".to_owned(),
        Scope::Server => format!("server:{}", call.server),
        Scope::Grant => format!("grant:{}/{}", call.server, grant),
        Scope::Session => format!("session:{}/{}/{}", call.server, grant, session),
    }
}

/// One call with its simulated decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRow {
    /// The call.
    #[serde(flatten)]
    pub call: CallInfo,
    /// The decision.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// How well the replay reproduces the decisions recorded in the trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// Calls with a recorded decision that the simulation decided (not `unknown`).
    pub compared: u64,
    /// Of those, calls where recorded and simulated agree.
    pub agreed: u64,
    /// Calls with a recorded decision that the simulation could not decide.
    pub undecidable: u64,
    /// `recorded → simulated` counts for the calls that disagree.
    pub disagreements: Vec<Count>,
    /// The first calls that disagree.
    pub examples: Vec<CallRow>,
}

/// Whether recorded and simulated decisions agree. Gateways that log only allow/deny record a
/// rate-limit refusal as `deny`, so a recorded `deny` agrees with a simulated `throttle`.
pub fn agrees(recorded: RecordedDecision, simulated: DecisionKind) -> bool {
    matches!(
        (recorded, simulated),
        (RecordedDecision::Allow, DecisionKind::Allow)
            | (RecordedDecision::Deny, DecisionKind::Deny)
            | (RecordedDecision::Deny, DecisionKind::Throttle)
            | (RecordedDecision::Throttle, DecisionKind::Throttle)
            | (RecordedDecision::Approval, DecisionKind::Approval)
    )
}

/// The outcome of a CI gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// The decisions that count as failures.
    pub fail_on: Vec<DecisionKind>,
    /// How many failures are tolerated.
    pub max: u64,
    /// How many there were.
    pub failures: u64,
    /// `failures > max`.
    pub failed: bool,
}

/// Which policy file applies to which calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The server it applies to; `None` for every server.
    pub server: Option<String>,
    /// The file.
    pub file: String,
}

/// The result of `mcpsim simulate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulateReport {
    /// Policies applied.
    pub policies: Vec<PolicyRef>,
    /// What may make the report mislead: a policy's tools that no call used, ….
    pub warnings: Vec<String>,
    /// Inputs and what was not evaluated.
    pub input: InputSummary,
    /// Decisions over every evaluated call.
    pub totals: Tally,
    /// Per server, by name.
    pub per_server: Vec<GroupTally>,
    /// Per tool, by name (and server, when several policies are bound).
    pub per_tool: Vec<GroupTally>,
    /// Per grant, by name.
    pub per_grant: Vec<GroupTally>,
    /// Rules that refused or held calls (or forwarded them unevaluated), most frequent first.
    pub per_rule: Vec<RuleCount>,
    /// Present when the trace recorded decisions.
    pub fidelity: Option<Fidelity>,
    /// Which calls are listed.
    pub calls_shown: CallsShown,
    /// How many calls were not allowed (the list below is the first of these).
    pub not_allowed: u64,
    /// The listed calls.
    pub calls: Vec<CallRow>,
    /// Present with `--fail-on`.
    pub gate: Option<Gate>,
    /// Decisions over time, for the HTML report and `sweep`; not serialised.
    #[serde(skip)]
    pub timeline: Option<super::timeline::Timeline>,
    /// Present in the summary of one part of a trace (`--part-summary`): what `mcpsim merge`
    /// needs to combine it with the other parts'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<super::parts::PartInfo>,
}

/// Why a call's decision changed between two policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The rules that apply to the call itself differ.
    Direct,
    /// Same rules; earlier decisions moved a shared counter.
    KnockOn,
}

/// One call under both policies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffRow {
    /// The call.
    #[serde(flatten)]
    pub call: CallInfo,
    /// Decision under the base policy.
    pub base: Outcome,
    /// Decision under the candidate policy.
    pub candidate: Outcome,
    /// Set when the decision changed.
    pub cause: Option<Cause>,
}

/// A count of calls moving from one decision to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// Decision under the base policy.
    pub base: DecisionKind,
    /// Decision under the candidate policy.
    pub candidate: DecisionKind,
    /// How many calls.
    pub calls: u64,
}

/// Changes for one tool or grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffGroup {
    /// Tool, grant or server name.
    pub name: String,
    /// The tool's server, when several policies are bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Calls evaluated.
    pub calls: u64,
    /// Calls whose decision changed.
    pub changed: u64,
    /// Changed calls that the candidate allows and the base did not.
    pub newly_allowed: u64,
    /// Changed calls that the base allowed and the candidate does not.
    pub newly_refused: u64,
    /// Changed calls whose own rules differ.
    pub direct: u64,
    /// Changed calls moved only by counter state.
    pub knock_on: u64,
}

impl DiffGroup {
    /// Count one call decided `base` and `candidate`; `cause` is set iff the decision changed.
    pub fn count(&mut self, base: &Decision, candidate: &Decision, cause: Option<Cause>) {
        self.calls += 1;
        if let Some(cause) = cause {
            self.changed += 1;
            if candidate.kind == DecisionKind::Allow {
                self.newly_allowed += 1;
            }
            if base.kind == DecisionKind::Allow {
                self.newly_refused += 1;
            }
            match cause {
                Cause::Direct => self.direct += 1,
                Cause::KnockOn => self.knock_on += 1,
            }
        }
    }

    /// Add another group's counts (the name stays).
    pub fn merge(&mut self, other: &DiffGroup) {
        self.calls += other.calls;
        self.changed += other.changed;
        self.newly_allowed += other.newly_allowed;
        self.newly_refused += other.newly_refused;
        self.direct += other.direct;
        self.knock_on += other.knock_on;
    }
}

/// One change between the base and the candidate policy of a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyChangeRow {
    /// The binding's server; `None` for the policy of every server.
    pub server: Option<String>,
    /// Where: `/tools/x/limits/y/max`; empty for a whole policy added or removed.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The base's value, as written (for a whole policy: its file).
    pub base: Option<String>,
    /// The candidate's value, as written (for a whole policy: its file).
    pub candidate: Option<String>,
}

/// The result of `mcpsim diff`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// Base policies.
    pub base: Vec<PolicyRef>,
    /// Candidate policies.
    pub candidate: Vec<PolicyRef>,
    /// What may make the report mislead: a policy's tools that no call used, ….
    pub warnings: Vec<String>,
    /// What changed in the policies themselves, binding by binding, before any traffic.
    pub policy_changes: Vec<PolicyChangeRow>,
    /// Inputs and what was not evaluated.
    pub input: InputSummary,
    /// Decisions under the base policy.
    pub base_totals: Tally,
    /// Decisions under the candidate policy.
    pub candidate_totals: Tally,
    /// Every (base, candidate) pair that occurred, unchanged pairs included, in decision order.
    pub transitions: Vec<Transition>,
    /// Calls whose decision changed.
    pub changed: u64,
    /// Of those, changed by their own rules.
    pub direct: u64,
    /// Of those, changed only through counters moved by earlier calls.
    pub knock_on: u64,
    /// Per server, by name (servers with changes only).
    pub per_server: Vec<DiffGroup>,
    /// Per tool, by name and server when several policies are bound (tools with changes only).
    pub per_tool: Vec<DiffGroup>,
    /// Per grant, by name (grants with changes only).
    pub per_grant: Vec<DiffGroup>,
    /// Which calls are listed.
    pub calls_shown: CallsShown,
    /// The listed changed calls.
    pub calls: Vec<DiffRow>,
    /// Present with `--fail-on-new`.
    pub gate: Option<Gate>,
    /// Decisions over time under the base and the candidate, for the HTML report; not
    /// serialised.
    #[serde(skip)]
    pub timelines: Option<[super::timeline::Timeline; 2]>,
}

/// Format a timestamp as RFC 3339 UTC with as many fraction digits as needed (0, 3, 6 or 9).
pub fn format_ts(ts: Nanos) -> String {
    chrono::DateTime::from_timestamp_nanos(ts).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Turn a name → count map into a list sorted by count (descending), then name.
pub fn counts_by_frequency(map: &BTreeMap<String, u64>) -> Vec<Count> {
    let mut v: Vec<Count> = map
        .iter()
        .map(|(name, &count)| Count {
            name: name.clone(),
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v
}
