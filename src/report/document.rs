//! A report laid out once as headings, lines and tables, then written as a terminal table or
//! Markdown. Both human formats say the same things in the same order.

use super::model::*;
use crate::engine::DecisionKind;
use crate::trace::cancelled_note;

/// A piece of a human-readable report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section title.
    Heading(String),
    /// A line of text.
    Line(String),
    /// A table with a header row.
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Cells, row by row.
        rows: Vec<Vec<String>>,
    },
}

/// A human-readable report: a title and blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The first line.
    pub title: String,
    /// Everything after it.
    pub blocks: Vec<Block>,
}

pub(super) fn table(header: &[&str], rows: Vec<Vec<String>>) -> Block {
    Block::Table {
        header: header.iter().map(|s| (*s).to_owned()).collect(),
        rows,
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Warnings right under the policies, where they cannot be missed.
fn warning_lines(warnings: &[String], blocks: &mut Vec<Block>) {
    for w in warnings {
        blocks.push(Block::Line(format!("warning: {w}")));
    }
}

pub(super) fn policies_line(label: &str, policies: &[PolicyRef]) -> String {
    let parts: Vec<String> = policies
        .iter()
        .map(|p| match &p.server {
            Some(s) => format!("{s}={}", p.file),
            None => p.file.clone(),
        })
        .collect();
    format!("{label}: {}", parts.join(", "))
}

pub(super) fn input_blocks(input: &InputSummary, blocks: &mut Vec<Block>) {
    input_lines(input, true, blocks);
}

/// The input lines; `evaluated` says whether calls went through a policy (not so for `stats`).
pub(super) fn input_lines(input: &InputSummary, evaluated: bool, blocks: &mut Vec<Block>) {
    let files: Vec<String> = input
        .files
        .iter()
        .map(|f| {
            format!(
                "{} ({}, {})",
                f.name,
                f.format,
                plural(f.calls, "call", "calls")
            )
        })
        .collect();
    blocks.push(Block::Line(format!("Input: {}", files.join(", "))));
    let mut parts = vec![format!(
        "{} read",
        plural(input.calls_read, "call", "calls")
    )];
    if evaluated {
        parts.push(format!("{} evaluated", input.calls_evaluated));
    }
    let no_policy: u64 = input.no_policy.iter().map(|c| c.count).sum();
    if no_policy > 0 {
        let servers: Vec<String> = input
            .no_policy
            .iter()
            .map(|c| format!("{} {}", c.name, c.count))
            .collect();
        parts.push(format!(
            "{no_policy} without a policy ({})",
            servers.join(", ")
        ));
    }
    if input.left_out > 0 {
        parts.push(format!("{} of other servers left out", input.left_out));
    }
    parts.push(format!("{} skipped", input.skipped));
    parts.push(format!("{} out of order", input.out_of_order));
    blocks.push(Block::Line(format!("Calls: {}", parts.join(", "))));
    if let Some(r) = &input.replies {
        blocks.push(Block::Line(format!(
            "Replies: {} paired, {} without a reply{}, {} without a request",
            r.paired,
            plural(r.requests_without_reply, "request", "requests"),
            cancelled_note(r.cancelled),
            plural(r.replies_without_request, "reply", "replies"),
        )));
    }
    if !input.ignored.is_empty() {
        let ignored: Vec<String> = input
            .ignored
            .iter()
            .map(|c| format!("{} {}", c.name, c.count))
            .collect();
        blocks.push(Block::Line(format!(
            "Not calls (ignored): {}",
            ignored.join(", ")
        )));
    }
}

pub(super) fn skipped_blocks(input: &InputSummary, blocks: &mut Vec<Block>) {
    reply_blocks(input, blocks);
    if input.skipped == 0 {
        return;
    }
    blocks.push(Block::Heading(format!(
        "Skipped records ({}; first {} shown)",
        input.skipped,
        input.skipped_examples.len()
    )));
    let by_reason: Vec<String> = input
        .skipped_by_reason
        .iter()
        .map(|c| format!("{} {}", c.name, c.count))
        .collect();
    blocks.push(Block::Line(format!("By reason: {}", by_reason.join(", "))));
    blocks.push(table(
        &["where", "reason"],
        input
            .skipped_examples
            .iter()
            .map(|s| vec![format!("{}:{}", s.file, s.line), s.reason.clone()])
            .collect(),
    ));
}

/// Requests without a reply and replies without a request, when a recording had any.
fn reply_blocks(input: &InputSummary, blocks: &mut Vec<Block>) {
    let Some(r) = &input.replies else { return };
    if r.requests_without_reply == 0 && r.replies_without_request == 0 {
        return;
    }
    blocks.push(Block::Heading(format!(
        "Unpaired messages ({} without a reply{}, {} without a request; first {} shown)",
        plural(r.requests_without_reply, "request", "requests"),
        cancelled_note(r.cancelled),
        plural(r.replies_without_request, "reply", "replies"),
        r.examples.len()
    )));
    blocks.push(table(
        &["where", "what"],
        r.examples
            .iter()
            .map(|s| vec![format!("{}:{}", s.file, s.line), s.reason.clone()])
            .collect(),
    ));
}

/// A table whose rows may belong to a server: a `server` column comes first when any does.
fn server_table(header: &[&str], rows: Vec<(Option<&str>, Vec<String>)>) -> Block {
    if rows.iter().all(|(server, _)| server.is_none()) {
        return table(header, rows.into_iter().map(|(_, row)| row).collect());
    }
    let mut with_server = vec!["server"];
    with_server.extend_from_slice(header);
    table(
        &with_server,
        rows.into_iter()
            .map(|(server, mut row)| {
                row.insert(0, server.unwrap_or("").to_owned());
                row
            })
            .collect(),
    )
}

/// Tallies per `what` (tool, grant, server); `header` names the columns after the first.
fn tally_table(what: &str, header: &[&str], groups: &[GroupTally]) -> Block {
    let mut header = header.to_vec();
    header[0] = what;
    server_table(
        &header,
        groups
            .iter()
            .map(|g| {
                let t = &g.tally;
                let row = vec![
                    g.name.clone(),
                    t.calls.to_string(),
                    t.allow.to_string(),
                    t.deny.to_string(),
                    t.throttle.to_string(),
                    t.approval.to_string(),
                    t.unknown.to_string(),
                ];
                (g.server.as_deref(), row)
            })
            .collect(),
    )
}

pub(super) fn outcome_detail(o: &Outcome) -> String {
    // The rule column names the counter; the full message stays in the machine formats.
    match &o.throttle {
        Some(t) if t.increment == 1.0 => format!(
            "{}/{} used by {}; retry after {}",
            num(t.used),
            num(t.max),
            t.key,
            t.retry_after
        ),
        Some(t) => format!(
            "{}/{} used by {}, this call +{}; retry after {}",
            num(t.used),
            num(t.max),
            t.key,
            num(t.increment),
            t.retry_after
        ),
        None => o.message.clone(),
    }
}

/// A number without a needless `.0`.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn gate_line(gate: &Gate, what: &str) -> String {
    let kinds: Vec<&str> = gate.fail_on.iter().map(|k| k.as_str()).collect();
    format!(
        "Gate: {} — {} {what} {} (at most {} allowed)",
        if gate.failed { "FAILED" } else { "passed" },
        gate.failures,
        kinds.join("/"),
        gate.max
    )
}

fn decision_kind_label(kinds: &[DecisionKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// Lay out a simulate report.
pub fn simulate(r: &SimulateReport) -> Document {
    let mut b = Vec::new();
    b.push(Block::Line(policies_line("Policy", &r.policies)));
    warning_lines(&r.warnings, &mut b);
    input_blocks(&r.input, &mut b);

    b.push(Block::Heading("Decisions".to_owned()));
    let t = &r.totals;
    b.push(table(
        &["decision", "calls", "share"],
        DecisionKind::ALL
            .iter()
            .map(|&k| vec![k.to_string(), t.get(k).to_string(), pct(t.get(k), t.calls)])
            .collect(),
    ));
    if t.approval_required > 0 {
        b.push(Block::Line(format!(
            "{} needed approval and were continued as approved (--assume-approved)",
            plural(t.approval_required, "call", "calls")
        )));
    }

    let header = [
        "tool", "calls", "allow", "deny", "throttle", "approval", "unknown",
    ];
    if r.per_server.len() > 1 {
        b.push(Block::Heading("Per server".to_owned()));
        b.push(tally_table("server", &header, &r.per_server));
    }
    b.push(Block::Heading("Per tool".to_owned()));
    b.push(tally_table("tool", &header, &r.per_tool));
    b.push(Block::Heading("Per grant".to_owned()));
    b.push(tally_table("grant", &header, &r.per_grant));

    if !r.per_rule.is_empty() {
        b.push(Block::Heading(
            "Rules that refused or held calls".to_owned(),
        ));
        b.push(server_table(
            &["rule", "decision", "calls"],
            r.per_rule
                .iter()
                .map(|c| {
                    let row = vec![c.rule.clone(), c.decision.to_string(), c.calls.to_string()];
                    (c.server.as_deref(), row)
                })
                .collect(),
        ));
    }

    if let Some(f) = &r.fidelity {
        b.push(Block::Heading("Fidelity to recorded decisions".to_owned()));
        b.push(Block::Line(format!(
            "{} compared, {} agree ({}), {} disagree, {} undecidable",
            f.compared,
            f.agreed,
            pct(f.agreed, f.compared),
            f.compared - f.agreed,
            f.undecidable
        )));
        if !f.disagreements.is_empty() {
            b.push(table(
                &["recorded → simulated", "calls"],
                f.disagreements
                    .iter()
                    .map(|c| vec![c.name.clone(), c.count.to_string()])
                    .collect(),
            ));
            b.push(Block::Heading(format!(
                "Recorded decisions not reproduced (first {})",
                f.examples.len()
            )));
            b.push(call_table(&f.examples));
        }
    }

    if r.calls_shown != CallsShown::None {
        let shown = r.calls.len() as u64;
        b.push(Block::Heading(if shown < r.not_allowed {
            format!("Calls not allowed (first {shown} of {})", r.not_allowed)
        } else {
            format!("Calls not allowed ({})", r.not_allowed)
        }));
        if !r.calls.is_empty() {
            b.push(call_table(&r.calls));
        }
    }

    skipped_blocks(&r.input, &mut b);
    if let Some(g) = &r.gate {
        b.push(Block::Line(gate_line(g, "calls")));
    }
    Document {
        title: format!(
            "mcpsim simulate: {} evaluated — {}",
            plural(t.calls, "call", "calls"),
            summary_counts(t)
        ),
        blocks: b,
    }
}

fn summary_counts(t: &Tally) -> String {
    DecisionKind::ALL
        .iter()
        .map(|&k| format!("{} {}", t.get(k), k))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether listed calls came from several servers: their tables then name the server.
fn several_servers<'a>(mut servers: impl Iterator<Item = &'a String>) -> bool {
    let first = servers.next();
    servers.any(|s| Some(s) != first)
}

/// A listed call's arguments (shown with `--show-args`) as compact JSON, empty when none.
fn args_cell(call: &CallInfo) -> String {
    call.args
        .as_ref()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default()
}

fn call_table(rows: &[CallRow]) -> Block {
    let with_args = rows.iter().any(|r| r.call.args.is_some());
    let with_recorded = rows.iter().any(|r| r.call.recorded.is_some());
    let with_server = several_servers(rows.iter().map(|r| &r.call.server));
    let mut header = vec!["#", "time", "grant", "tool", "decision", "rule", "message"];
    if with_recorded {
        header.insert(4, "recorded");
    }
    if with_server {
        header.insert(3, "server");
    }
    if with_args {
        header.push("args");
    }
    table(
        &header,
        rows.iter()
            .map(|r| {
                let mut cells = vec![
                    format!("#{}", r.call.index),
                    r.call.ts.clone(),
                    r.call.grant.clone().unwrap_or_default(),
                    r.call.tool.clone(),
                    r.outcome.decision.to_string(),
                    r.outcome.rule.clone(),
                    outcome_detail(&r.outcome),
                ];
                if with_recorded {
                    cells.insert(4, r.call.recorded.clone().unwrap_or_default());
                }
                if with_server {
                    cells.insert(3, r.call.server.clone());
                }
                if with_args {
                    cells.push(args_cell(&r.call));
                }
                cells
            })
            .collect(),
    )
}

/// Lay out a diff report.
pub fn diff(r: &DiffReport) -> Document {
    let mut b = Vec::new();
    b.push(Block::Line(policies_line("Base", &r.base)));
    b.push(Block::Line(policies_line("Candidate", &r.candidate)));
    warning_lines(&r.warnings, &mut b);
    policy_change_blocks(&r.policy_changes, &mut b);
    input_blocks(&r.input, &mut b);

    b.push(Block::Heading("Decisions".to_owned()));
    b.push(table(
        &["decision", "base", "candidate", "change"],
        DecisionKind::ALL
            .iter()
            .map(|&k| {
                let (x, y) = (r.base_totals.get(k), r.candidate_totals.get(k));
                vec![
                    k.to_string(),
                    x.to_string(),
                    y.to_string(),
                    format!("{:+}", y as i64 - x as i64),
                ]
            })
            .collect(),
    ));

    b.push(Block::Heading("Transitions (base → candidate)".to_owned()));
    let changed: Vec<&Transition> = r
        .transitions
        .iter()
        .filter(|t| t.base != t.candidate)
        .collect();
    if changed.is_empty() {
        b.push(Block::Line("No call changes decision.".to_owned()));
    } else {
        b.push(table(
            &["base → candidate", "calls"],
            changed
                .iter()
                .map(|t| vec![format!("{} → {}", t.base, t.candidate), t.calls.to_string()])
                .collect(),
        ));
    }
    b.push(Block::Line(format!(
        "{} changed: {} direct (the call's own rules differ), {} knock-on (same rules, counters moved by earlier calls)",
        plural(r.changed, "call", "calls"),
        r.direct,
        r.knock_on
    )));

    let header = [
        "tool",
        "calls",
        "changed",
        "newly allowed",
        "newly refused",
        "direct",
        "knock-on",
    ];
    if r.per_server.len() > 1 {
        b.push(Block::Heading("Per server".to_owned()));
        b.push(diff_table("server", &header, &r.per_server));
    }
    if !r.per_tool.is_empty() {
        b.push(Block::Heading("Per tool".to_owned()));
        b.push(diff_table("tool", &header, &r.per_tool));
        b.push(Block::Heading("Per grant".to_owned()));
        b.push(diff_table("grant", &header, &r.per_grant));
    }

    if r.calls_shown != CallsShown::None && r.changed > 0 {
        let shown = r.calls.len() as u64;
        b.push(Block::Heading(if shown < r.changed {
            format!("Changed calls (first {shown} of {})", r.changed)
        } else {
            format!("Changed calls ({})", r.changed)
        }));
        let with_server = several_servers(r.calls.iter().map(|c| &c.call.server));
        let with_args = r.calls.iter().any(|c| c.call.args.is_some());
        let mut header = vec![
            "#",
            "time",
            "grant",
            "tool",
            "base",
            "candidate",
            "cause",
            "candidate rule",
        ];
        if with_server {
            header.insert(3, "server");
        }
        if with_args {
            header.push("args");
        }
        b.push(table(
            &header,
            r.calls
                .iter()
                .map(|c| {
                    let server = with_server.then(|| c.call.server.clone());
                    let mut cells = vec![
                        format!("#{}", c.call.index),
                        c.call.ts.clone(),
                        c.call.grant.clone().unwrap_or_default(),
                    ];
                    cells.extend(server);
                    cells.extend([
                        c.call.tool.clone(),
                        c.base.decision.to_string(),
                        c.candidate.decision.to_string(),
                        match c.cause {
                            Some(Cause::Direct) => "direct".to_owned(),
                            Some(Cause::KnockOn) => "knock-on".to_owned(),
                            None => String::new(),
                        },
                        // A call the candidate lets through by no rule: the base's rule that
                        // refused it, said as such.
                        match (c.candidate.rule.is_empty(), c.base.rule.is_empty()) {
                            (true, false) => format!("(base) {}", c.base.rule),
                            _ => c.candidate.rule.clone(),
                        },
                    ]);
                    if with_args {
                        cells.push(args_cell(&c.call));
                    }
                    cells
                })
                .collect(),
        ));
    }
    skipped_blocks(&r.input, &mut b);
    if let Some(g) = &r.gate {
        b.push(Block::Line(gate_line(g, "calls newly")));
    }
    let newly_refused: u64 = r
        .transitions
        .iter()
        .filter(|t| t.base == DecisionKind::Allow && t.candidate != DecisionKind::Allow)
        .map(|t| t.calls)
        .sum();
    let newly_allowed: u64 = r
        .transitions
        .iter()
        .filter(|t| t.base != DecisionKind::Allow && t.candidate == DecisionKind::Allow)
        .map(|t| t.calls)
        .sum();
    Document {
        title: format!(
            "mcpsim diff: {} of {} change decision — {} newly refused, {} newly allowed",
            r.changed, r.base_totals.calls, newly_refused, newly_allowed
        ),
        blocks: b,
    }
}

/// The structural diff of the policies, before the traffic's.
fn policy_change_blocks(changes: &[PolicyChangeRow], b: &mut Vec<Block>) {
    if changes.is_empty() {
        b.push(Block::Line(
            "Policy changes: none (the policies read the same)".to_owned(),
        ));
        return;
    }
    b.push(Block::Heading(format!(
        "Policy changes ({})",
        changes.len()
    )));
    b.push(server_table(
        &["path", "change", "base", "candidate"],
        changes
            .iter()
            .map(|c| {
                let row = vec![
                    if c.path.is_empty() {
                        "(whole policy)".to_owned()
                    } else {
                        c.path.clone()
                    },
                    c.change.to_owned(),
                    c.base.clone().unwrap_or_default(),
                    c.candidate.clone().unwrap_or_default(),
                ];
                (c.server.as_deref(), row)
            })
            .collect(),
    ));
}

/// Changes per `what` (tool, grant, server); `header` names the columns after the first.
fn diff_table(what: &str, header: &[&str], groups: &[DiffGroup]) -> Block {
    let mut header = header.to_vec();
    header[0] = what;
    server_table(
        &header,
        groups
            .iter()
            .map(|g| {
                let row = vec![
                    g.name.clone(),
                    g.calls.to_string(),
                    g.changed.to_string(),
                    g.newly_allowed.to_string(),
                    g.newly_refused.to_string(),
                    g.direct.to_string(),
                    g.knock_on.to_string(),
                ];
                (g.server.as_deref(), row)
            })
            .collect(),
    )
}

/// The decision kinds named by a gate, for messages.
pub fn kinds_label(kinds: &[DecisionKind]) -> String {
    decision_kind_label(kinds)
}
