//! `sweep`: one limit's max or window at several values, one simulation each, side by side.

use std::io::{self, Write};

use serde::Serialize;

use super::document::{self, Block, Document, num, plural, table};
use super::model::*;
use crate::engine::DecisionKind;

/// Which setting of the limit a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepParameter {
    /// What a window admits.
    Max,
    /// The window's length, in seconds.
    Window,
}

impl SweepParameter {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepParameter::Max => "max",
            SweepParameter::Window => "window",
        }
    }
}

/// The simulation at one value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepValue {
    /// The max, or the window in seconds.
    #[serde(serialize_with = "whole_if_whole")]
    pub value: f64,
    /// Calls throttled (by any limit): what `simulate` counts with this value.
    pub throttled: u64,
    /// `throttled` over the calls evaluated (0 to 1).
    pub share: f64,
    /// Calls the swept rule itself refused (throttled, or denied by an Intercept condition).
    pub by_rule: u64,
    /// Grants with at least one throttled call.
    pub grants_affected: u64,
    /// When the first call was throttled, RFC 3339 UTC.
    pub first_throttle: Option<String>,
    /// Every decision count, as `simulate` reports them.
    pub totals: Tally,
}

/// What `--target` asked for and the value it recommends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepTarget {
    /// The largest acceptable share of throttled calls (0 to 1).
    pub share: f64,
    /// The strictest value whose share is at or under the target (the smallest max, the
    /// longest window); `None` when no value meets it.
    #[serde(serialize_with = "whole_if_whole_opt")]
    pub recommended: Option<f64>,
}

/// The result of `mcpsim sweep`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// Policies applied.
    pub policies: Vec<PolicyRef>,
    /// The limit swept, as reports name it.
    pub rule: String,
    /// What was varied.
    pub parameter: SweepParameter,
    /// The policy's own value of the parameter.
    #[serde(serialize_with = "whole_if_whole")]
    pub current: f64,
    /// What may make the report mislead.
    pub warnings: Vec<String>,
    /// Inputs and what was not evaluated.
    pub input: InputSummary,
    /// One simulation per value, in increasing order of value.
    pub values: Vec<SweepValue>,
    /// Present with `--target`.
    pub target: Option<SweepTarget>,
}

fn whole_if_whole<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn whole_if_whole_opt<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => whole_if_whole(v, s),
        None => s.serialize_none(),
    }
}

impl SweepValue {
    /// Summarise the simulation at `value` of the sweep of `rule`; `first_throttle` comes from
    /// the replay.
    pub fn new(value: f64, rule: &str, r: &SimulateReport) -> SweepValue {
        let t = &r.totals;
        SweepValue {
            value,
            throttled: t.throttle,
            share: if t.calls == 0 {
                0.0
            } else {
                t.throttle as f64 / t.calls as f64
            },
            by_rule: (r.per_rule.iter())
                .filter(|c| c.rule == rule && c.decision != DecisionKind::Allow)
                .map(|c| c.calls)
                .sum(),
            grants_affected: r.per_grant.iter().filter(|g| g.tally.throttle > 0).count() as u64,
            first_throttle: r.timeline.as_ref().and_then(|t| t.first_throttle.clone()),
            totals: t.clone(),
        }
    }
}

impl SweepTarget {
    /// The strictest value of `values` that keeps the share at or under `share`.
    pub fn pick(share: f64, parameter: SweepParameter, values: &[SweepValue]) -> SweepTarget {
        let ok = values.iter().filter(|v| v.share <= share).map(|v| v.value);
        let recommended = match parameter {
            SweepParameter::Max => ok.reduce(f64::min),
            SweepParameter::Window => ok.reduce(f64::max),
        };
        SweepTarget { share, recommended }
    }
}

/// A value as the reports print it: a max as written, a window as a duration.
pub fn sweep_value(parameter: SweepParameter, v: f64) -> String {
    match parameter {
        SweepParameter::Max => num(v),
        SweepParameter::Window => duration(v as u64),
    }
}

/// `90s`, `10m`, `2h`, `1d`: the largest unit that divides the seconds.
pub fn duration(secs: u64) -> String {
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The table of values, shared by the human formats and CSV.
fn value_rows(r: &SweepReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        r.parameter.as_str(),
        "throttled",
        "share",
        "by this rule",
        "grants affected",
        "first throttle",
    ];
    let rows = (r.values.iter())
        .map(|v| {
            let mut value = sweep_value(r.parameter, v.value);
            if v.value == r.current {
                value.push_str(" (current)");
            }
            if r.target.as_ref().and_then(|t| t.recommended) == Some(v.value) {
                value.push_str(" (recommended)");
            }
            vec![
                value,
                v.throttled.to_string(),
                pct(v.share),
                v.by_rule.to_string(),
                v.grants_affected.to_string(),
                v.first_throttle.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    (header, rows)
}

/// Lay out a sweep report.
pub fn document(r: &SweepReport) -> Document {
    let mut b = vec![Block::Line(document::policies_line("Policy", &r.policies))];
    for w in &r.warnings {
        b.push(Block::Line(format!("warning: {w}")));
    }
    document::input_blocks(&r.input, &mut b);
    b.push(Block::Line(format!(
        "Limit: {} ({} {} in the policy; {} tried)",
        r.rule,
        r.parameter.as_str(),
        sweep_value(r.parameter, r.current),
        plural(r.values.len() as u64, "value", "values")
    )));
    b.push(Block::Heading(format!(
        "Throttles by {}",
        r.parameter.as_str()
    )));
    let (header, rows) = value_rows(r);
    b.push(table(&header, rows));
    if let Some(t) = &r.target {
        b.push(Block::Line(match t.recommended {
            Some(v) => format!(
                "Recommended {}: {} (the strictest value tried with at most {} of calls throttled)",
                r.parameter.as_str(),
                sweep_value(r.parameter, v),
                pct(t.share)
            ),
            None => format!(
                "No value tried keeps throttles at or under {}",
                pct(t.share)
            ),
        }));
    }
    Document {
        title: format!("mcpsim sweep — {} of {}", r.parameter.as_str(), r.rule),
        blocks: b,
    }
}

/// The table of values as CSV: one row per value, a header first.
pub fn write_csv(r: &SweepReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{},throttled,share,by_rule,grants_affected,first_throttle,calls,allow,deny,throttle,approval,unknown",
        r.parameter.as_str()
    )?;
    for v in &r.values {
        let t = &v.totals;
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            num(v.value),
            v.throttled,
            v.share,
            v.by_rule,
            v.grants_affected,
            v.first_throttle.as_deref().unwrap_or(""),
            t.calls,
            t.allow,
            t.deny,
            t.throttle,
            t.approval,
            t.unknown
        )?;
    }
    Ok(())
}
