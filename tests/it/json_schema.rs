//! `--format json` is a stable interface: these mirror structs, with `deny_unknown_fields`,
//! are the documented schema (docs/reports.md). Adding, renaming or removing a field breaks them.

#![allow(dead_code)]

use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    pub calls: u64,
    pub allow: u64,
    pub deny: u64,
    pub throttle: u64,
    pub approval: u64,
    pub unknown: u64,
    pub approval_required: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct GroupTally {
    pub name: String,
    #[serde(default)]
    pub server: Option<String>,
    pub calls: u64,
    pub allow: u64,
    pub deny: u64,
    pub throttle: u64,
    pub approval: u64,
    pub unknown: u64,
    pub approval_required: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    pub name: String,
    pub format: String,
    pub calls: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SkippedRecord {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InputSummary {
    pub files: Vec<FileInput>,
    pub calls_read: u64,
    pub calls_evaluated: u64,
    pub no_policy: Vec<Count>,
    pub left_out: u64,
    pub out_of_order: u64,
    pub skipped: u64,
    pub skipped_by_reason: Vec<Count>,
    pub skipped_examples: Vec<SkippedRecord>,
    pub ignored: Vec<Count>,
    #[serde(default)]
    pub replies: Option<ReplyPairing>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReplyPairing {
    pub paired: u64,
    pub requests_without_reply: u64,
    #[serde(default)]
    pub cancelled: u64,
    pub replies_without_request: u64,
    pub examples: Vec<SkippedRecord>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ThrottleInfo {
    pub counter: String,
    pub key: String,
    pub window_start: String,
    pub used: f64,
    pub max: f64,
    pub increment: f64,
    pub retry_after: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub decision: String,
    pub rule: String,
    pub message: String,
    pub approval_required: bool,
    pub throttle: Option<ThrottleInfo>,
}

/// A listed call: the call's fields and its outcome, flattened into one object.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CallRow {
    pub index: u64,
    pub ts: String,
    pub server: String,
    pub grant: Option<String>,
    pub session: Option<String>,
    pub tool: String,
    pub id: Option<String>,
    pub origin: String,
    pub recorded: Option<String>,
    pub upstream: Option<String>,
    pub args: Option<serde_json::Value>,
    pub decision: String,
    pub rule: String,
    pub message: String,
    pub approval_required: bool,
    pub throttle: Option<ThrottleInfo>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RuleCount {
    pub rule: String,
    #[serde(default)]
    pub server: Option<String>,
    pub decision: String,
    pub calls: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Fidelity {
    pub compared: u64,
    pub agreed: u64,
    pub undecidable: u64,
    pub disagreements: Vec<Count>,
    pub examples: Vec<CallRow>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub fail_on: Vec<String>,
    pub max: u64,
    pub failures: u64,
    pub failed: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub server: Option<String>,
    pub file: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SimulateReport {
    pub policies: Vec<PolicyRef>,
    pub warnings: Vec<String>,
    pub input: InputSummary,
    pub totals: Tally,
    pub per_server: Vec<GroupTally>,
    pub per_tool: Vec<GroupTally>,
    pub per_grant: Vec<GroupTally>,
    pub per_rule: Vec<RuleCount>,
    pub fidelity: Option<Fidelity>,
    pub calls_shown: String,
    pub not_allowed: u64,
    pub calls: Vec<CallRow>,
    pub gate: Option<Gate>,
}

/// A changed call in a diff: the call's fields flattened, both outcomes nested.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DiffRow {
    pub index: u64,
    pub ts: String,
    pub server: String,
    pub grant: Option<String>,
    pub session: Option<String>,
    pub tool: String,
    pub id: Option<String>,
    pub origin: String,
    pub recorded: Option<String>,
    pub upstream: Option<String>,
    pub args: Option<serde_json::Value>,
    pub base: Outcome,
    pub candidate: Outcome,
    pub cause: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub base: String,
    pub candidate: String,
    pub calls: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DiffGroup {
    pub name: String,
    #[serde(default)]
    pub server: Option<String>,
    pub calls: u64,
    pub changed: u64,
    pub newly_allowed: u64,
    pub newly_refused: u64,
    pub direct: u64,
    pub knock_on: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DiffReport {
    pub base: Vec<PolicyRef>,
    pub candidate: Vec<PolicyRef>,
    pub warnings: Vec<String>,
    pub policy_changes: Vec<PolicyChangeRow>,
    pub input: InputSummary,
    pub base_totals: Tally,
    pub candidate_totals: Tally,
    pub transitions: Vec<Transition>,
    pub changed: u64,
    pub direct: u64,
    pub knock_on: u64,
    pub per_server: Vec<DiffGroup>,
    pub per_tool: Vec<DiffGroup>,
    pub per_grant: Vec<DiffGroup>,
    pub calls_shown: String,
    pub calls: Vec<DiffRow>,
    pub gate: Option<Gate>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PolicyChangeRow {
    pub server: Option<String>,
    pub path: String,
    pub change: String,
    pub base: Option<String>,
    pub candidate: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SweepValue {
    pub value: f64,
    pub throttled: u64,
    pub share: f64,
    pub by_rule: u64,
    pub grants_affected: u64,
    pub first_throttle: Option<String>,
    pub totals: Tally,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SweepTarget {
    pub share: f64,
    pub recommended: Option<f64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SweepReport {
    pub policies: Vec<PolicyRef>,
    pub rule: String,
    pub parameter: String,
    pub current: f64,
    pub warnings: Vec<String>,
    pub input: InputSummary,
    pub values: Vec<SweepValue>,
    pub target: Option<SweepTarget>,
}
