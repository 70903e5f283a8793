//! `mcpsim explain`: one call, its decision, and every rule and counter on the way to it.
//!
//! The model is built from the engine's [`ExplainStep`]s taken just before the call was decided,
//! so counters show exactly the state the call met.

use serde::Serialize;
use serde_json::Value;

use super::document::{Block, Document, num, outcome_detail, table};
use super::model::{CallInfo, Outcome, PolicyRef, counter_key, format_ts};
use crate::engine::predicate::ArgPath;
use crate::engine::{Decision, DecisionKind, ExplainStep, StepOutcome};
use crate::trace::{Args, CallRecord};

/// The result of `mcpsim explain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainReport {
    /// The policy that applies to the call's server; `None` when there is none (the call is
    /// then not evaluated).
    pub policy: Option<PolicyRef>,
    /// The call.
    pub call: CallInfo,
    /// Its decision; `None` when no policy applies.
    pub decision: Option<Outcome>,
    /// Every rule the evaluation visited, in evaluation order.
    pub steps: Vec<StepInfo>,
}

/// Which part of the evaluation order a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The tool is hidden.
    Hidden,
    /// The tool is not listed and the default is deny.
    DefaultDeny,
    /// The tool is not listed and the default is allow.
    Unlisted,
    /// A `require` predicate.
    Require,
    /// A `deny_if` predicate.
    DenyIf,
    /// An `approve_if` predicate.
    ApproveIf,
    /// `require_approval: true`.
    RequireApproval,
    /// A condition of an Intercept `evaluate` rule (conditions are ANDed).
    Condition,
    /// An Intercept rule with `action: deny`.
    DenyRule,
    /// A windowed limit.
    Limit,
}

impl StepKind {
    fn label(self) -> &'static str {
        match self {
            StepKind::Hidden => "hidden",
            StepKind::DefaultDeny => "default deny",
            StepKind::Unlisted => "not listed",
            StepKind::Require => "require",
            StepKind::DenyIf => "deny_if",
            StepKind::ApproveIf => "approve_if",
            StepKind::RequireApproval => "require_approval",
            StepKind::Condition => "condition",
            StepKind::DenyRule => "deny rule",
            StepKind::Limit => "limit",
        }
    }
}

/// What a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// The tool is hidden or unlisted under `default: deny`.
    Denied,
    /// Unlisted under `default: allow`, or `require_approval`: the step applies.
    Applies,
    /// The predicate held.
    Held,
    /// The predicate did not hold.
    DidNotHold,
    /// The predicate did not hold because the call left its argument out.
    ArgumentAbsent,
    /// The trace lacks what the step needs (an argument value, an `increment_from` value).
    Unknown,
    /// The limit has room for this call.
    Pass,
    /// The limit would be exceeded.
    Exceed,
}

impl StepResult {
    fn label(self) -> &'static str {
        match self {
            StepResult::Denied => "denied",
            StepResult::Applies => "applies",
            StepResult::Held => "held",
            StepResult::DidNotHold => "did not hold",
            StepResult::ArgumentAbsent => "did not hold (argument absent)",
            StepResult::Unknown => "unknown",
            StepResult::Pass => "pass",
            StepResult::Exceed => "exceed",
        }
    }
}

/// A limit's counter as the call met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitState {
    /// Counter name.
    pub counter: String,
    /// `grant`, `session`, `server` or `global`.
    pub scope: String,
    /// Counter key: `scope:value` parts, e.g. `grant:fortios/audit-bot`.
    pub key: String,
    /// `second`, `minute`, `hour`, `day`, or `<N>s`.
    pub window: String,
    /// `fixed` or `sliding`.
    pub algorithm: String,
    /// Start of the window the call falls in, RFC 3339 UTC (sliding: `ts - window`, exclusive).
    pub window_start: String,
    /// What earlier admitted calls consumed in the window.
    pub used: f64,
    /// What this call adds; `None` when its `increment_from` value is missing or unrecorded.
    pub increment: Option<f64>,
    /// The limit's maximum.
    pub max: f64,
}

/// One rule on the way to the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepInfo {
    /// The step of the evaluation order.
    pub step: StepKind,
    /// Rule id (empty for an unlisted tool under `default: allow`).
    pub rule: String,
    /// What it found.
    pub result: StepResult,
    /// Set on the step that produced the final decision.
    pub decides: Option<DecisionKind>,
    /// For predicates, with `--show-args`: the argument value the predicate read (`null` when
    /// absent). Omitted without `--show-args` or when the trace did not record values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argument: Option<Value>,
    /// For limits: the counter as the call met it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitState>,
}

impl ExplainReport {
    /// Describe a call that no policy covers.
    pub fn no_policy(call: CallInfo) -> ExplainReport {
        ExplainReport {
            policy: None,
            call,
            decision: None,
            steps: Vec::new(),
        }
    }

    /// Describe an evaluated call from the steps taken before it was decided and its decision.
    pub fn new(
        call_info: CallInfo,
        call: &CallRecord,
        policy: PolicyRef,
        steps: &[ExplainStep],
        decision: &Decision,
        show_args: bool,
    ) -> ExplainReport {
        let mut decided = false;
        let steps = steps
            .iter()
            .map(|s| {
                let mut info = step_info(s, call, show_args);
                // The first step whose rule decided the call carries the decision; a throttle is
                // decided by a limit, not by a condition of the same (Intercept) rule.
                let kind_fits =
                    decision.kind != DecisionKind::Throttle || info.step == StepKind::Limit;
                if !decided && kind_fits && !decision.rule.is_empty() && *s.rule == *decision.rule {
                    info.decides = Some(decision.kind);
                    decided = true;
                }
                info
            })
            .collect();
        ExplainReport {
            policy: Some(policy),
            call: call_info,
            decision: Some(Outcome::new(decision, &call.fields())),
            steps,
        }
    }
}

fn step_info(s: &ExplainStep, call: &CallRecord, show_args: bool) -> StepInfo {
    let info = |step, result| StepInfo {
        step,
        rule: s.rule.to_string(),
        result,
        decides: None,
        argument: None,
        limit: None,
    };
    match &s.outcome {
        StepOutcome::Hidden => info(StepKind::Hidden, StepResult::Denied),
        StepOutcome::DefaultDeny => info(StepKind::DefaultDeny, StepResult::Denied),
        StepOutcome::Unlisted => info(StepKind::Unlisted, StepResult::Applies),
        StepOutcome::RequireApproval => info(StepKind::RequireApproval, StepResult::Applies),
        StepOutcome::Predicate { list, holds } => {
            let kind = match *list {
                "require" => StepKind::Require,
                "deny_if" => StepKind::DenyIf,
                "approve_if" => StepKind::ApproveIf,
                "deny" => StepKind::DenyRule,
                _ => StepKind::Condition,
            };
            let result = match holds {
                Some(true) => StepResult::Held,
                Some(false) if predicate_absent(&s.rule, &call.tool, list, &call.args) => {
                    StepResult::ArgumentAbsent
                }
                Some(false) => StepResult::DidNotHold,
                None => StepResult::Unknown,
            };
            let mut i = info(kind, result);
            if show_args {
                i.argument = predicate_argument(&s.rule, &call.tool, list, &call.args);
            }
            i
        }
        StepOutcome::Limit {
            spec,
            window_start,
            used,
            increment,
            fits,
        } => {
            let result = match fits {
                Some(true) => StepResult::Pass,
                Some(false) => StepResult::Exceed,
                None => StepResult::Unknown,
            };
            let mut i = info(StepKind::Limit, result);
            i.limit = Some(LimitState {
                counter: spec.counter.to_string(),
                scope: spec.scope.as_str().to_owned(),
                key: counter_key(spec.scope, &call.fields()),
                window: window_name(spec.window_secs),
                algorithm: spec.algorithm.as_str().to_owned(),
                window_start: format_ts(*window_start),
                used: *used,
                increment: *increment,
                max: spec.max,
            });
            i
        }
    }
}

/// Whether the call left out the argument a predicate reads (see [`predicate_argument`]).
fn predicate_absent(rule: &str, tool: &str, list: &str, args: &Args) -> bool {
    let Some(rest) = rule.strip_prefix(&format!("/tools/{tool}/{list}/")) else {
        return false;
    };
    match rest
        .rsplit_once('-')
        .and_then(|(path, _)| ArgPath::parse(path))
    {
        Some(path) => crate::engine::predicate::is_absent(&path, args.into()),
        None => false,
    }
}

/// The argument a predicate reads, found from its rule id (`/tools/<tool>/<list>/<path>-<op>`,
/// policy.md §1): operator names hold no `-`, so the path is everything before the last one.
/// `None` when values were not recorded or the id is not of that shape (another dialect).
fn predicate_argument(rule: &str, tool: &str, list: &str, args: &Args) -> Option<Value> {
    let values = args.values()?;
    let rest = rule.strip_prefix(&format!("/tools/{tool}/{list}/"))?;
    let (path, _op) = rest.rsplit_once('-')?;
    let path = ArgPath::parse(path)?;
    Some(path.lookup(values).cloned().unwrap_or(Value::Null))
}

/// A window length as policies write it.
pub fn window_name(secs: u64) -> String {
    match secs {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86400 => "day".to_owned(),
        n => format!("{n}s"),
    }
}

fn limit_detail(l: &LimitState) -> String {
    let window = if l.algorithm == "sliding" {
        format!("sliding {} after {}", l.window, l.window_start)
    } else {
        format!("{} from {}", l.window, l.window_start)
    };
    let check = match l.increment {
        Some(inc) => {
            let cmp = if l.used + inc <= l.max { "<=" } else { ">" };
            format!(
                "used {} + {} {cmp} max {}",
                num(l.used),
                num(inc),
                num(l.max)
            )
        }
        None => format!(
            "used {} of max {}, increment not known",
            num(l.used),
            num(l.max)
        ),
    };
    format!("{} [{window}]: {check}", l.key)
}

fn argument_cell(a: Option<&Value>) -> String {
    match a {
        Some(Value::Null) => "(absent)".to_owned(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// Lay out an explain report.
pub fn document(r: &ExplainReport) -> Document {
    let c = &r.call;
    let mut b = Vec::new();
    if let Some(p) = &r.policy {
        b.push(Block::Line(match &p.server {
            Some(s) => format!("Policy: {} (for server {s})", p.file),
            None => format!("Policy: {}", p.file),
        }));
    }
    b.push(Block::Line(format!(
        "Call #{}: {} at {}, server {}, grant {}, session {}",
        c.index,
        c.tool,
        c.ts,
        c.server,
        c.grant.as_deref().unwrap_or("(none)"),
        c.session.as_deref().unwrap_or("(none)")
    )));
    let mut origin = format!("From {}", c.origin);
    if let Some(id) = &c.id {
        origin.push_str(&format!(", id {id}"));
    }
    if let Some(rec) = &c.recorded {
        origin.push_str(&format!(", recorded {rec}"));
    }
    if let Some(up) = &c.upstream {
        origin.push_str(&format!(", upstream {up}"));
    }
    b.push(Block::Line(origin));
    if let Some(args) = &c.args {
        b.push(Block::Line(format!("Arguments: {args}")));
    }
    let Some(d) = &r.decision else {
        b.push(Block::Line(format!(
            "No policy applies to server {}: its calls are not evaluated.",
            c.server
        )));
        return Document {
            title: format!("mcpsim explain: call #{} — no policy", c.index),
            blocks: b,
        };
    };
    b.push(Block::Heading("Decision".to_owned()));
    b.push(Block::Line(if d.rule.is_empty() {
        format!("{}: every check passed", d.decision)
    } else {
        format!("{} by {}: {}", d.decision, d.rule, d.message)
    }));
    if d.throttle.is_some() {
        b.push(Block::Line(format!("Counter: {}", outcome_detail(d))));
    }
    if d.approval_required {
        b.push(Block::Line(
            "The call needed approval and was continued as approved (--assume-approved)."
                .to_owned(),
        ));
    }
    b.push(Block::Heading("Steps".to_owned()));
    let with_args = r.steps.iter().any(|s| s.argument.is_some());
    let mut header = vec!["#", "step", "rule", "result", "decides", "detail"];
    if with_args {
        header.push("argument");
    }
    let rows = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = vec![
                (i + 1).to_string(),
                s.step.label().to_owned(),
                if s.rule.is_empty() {
                    "(default allow)".to_owned()
                } else {
                    s.rule.clone()
                },
                s.result.label().to_owned(),
                s.decides.map(|k| k.to_string()).unwrap_or_default(),
                s.limit.as_ref().map(limit_detail).unwrap_or_default(),
            ];
            if with_args {
                row.push(argument_cell(s.argument.as_ref()));
            }
            row
        })
        .collect();
    b.push(table(&header, rows));
    if d.decision == DecisionKind::Approval {
        b.push(Block::Line(
            "Held calls are not charged: the limits above are shown as they stand, not applied."
                .to_owned(),
        ));
    }
    Document {
        title: format!("mcpsim explain: call #{} — {}", c.index, d.decision),
        blocks: b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::predicate_argument;
    use crate::trace::Args;

    fn values(v: Value) -> Args {
        match v {
            Value::Object(m) => Args::Values(m),
            _ => Args::Unrecorded,
        }
    }

    #[test]
    fn argument_is_found_from_the_rule_id() {
        let args = values(json!({"net": {"dst-subnet": "0.0.0.0/0"}, "a": 1}));
        let rule = "/tools/vpn/deny_if/args.net.dst-subnet-eq";
        assert_eq!(
            predicate_argument(rule, "vpn", "deny_if", &args),
            Some(json!("0.0.0.0/0"))
        );
        // Absent: read as null, which is what every operator but `exists` sees.
        let rule = "/tools/vpn/require/args.pfs-eq";
        assert_eq!(
            predicate_argument(rule, "vpn", "require", &args),
            Some(Value::Null)
        );
    }

    #[test]
    fn no_argument_without_values_or_for_other_rule_shapes() {
        let keys = Args::Keys(vec!["pfs".to_owned()]);
        assert_eq!(
            predicate_argument("/tools/vpn/require/args.pfs-eq", "vpn", "require", &keys),
            None
        );
        let args = values(json!({"pfs": "enable"}));
        assert_eq!(
            predicate_argument("vpn/max single charge", "vpn", "require", &args),
            None
        );
    }
}
