//! `--format html`: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the report's charts above the same text the other human formats show.

use std::io::{self, Write};

use chrono::DateTime;

use super::document::{Block, Document};
use super::model::{DiffReport, SimulateReport};
use super::svg::{self, DECISION_COLOURS, LIMIT, LINE, Marker, Series, escape};
use super::sweep::{SweepParameter, SweepReport, sweep_value};
use super::timeline::{MINUTE, Timeline};
use crate::call::Nanos;
use crate::engine::DecisionKind;

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:24px auto;max-width:1000px;padding:0 16px}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.charts svg{display:block;margin:12px 0;border:1px solid #ddd}\
.title{font-size:14px;font-weight:600;fill:#222}.tick{font-size:11px;fill:#555}p{margin:4px 0}";

/// Write a page: the document's title, the charts, then the document.
pub fn write(doc: &Document, charts: &[String], out: &mut dyn Write) -> io::Result<()> {
    let title = escape(&doc.title);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<section class=\"charts\">\n"
    )?;
    for chart in charts {
        writeln!(out, "{chart}")?;
    }
    writeln!(out, "</section>")?;
    for block in &doc.blocks {
        match block {
            Block::Heading(h) => writeln!(out, "<h2>{}</h2>", escape(h))?,
            Block::Line(l) => writeln!(out, "<p>{}</p>", escape(l))?,
            Block::Table { header, rows } => {
                write!(out, "<table>\n<tr>")?;
                for h in header {
                    write!(out, "<th>{}</th>", escape(h))?;
                }
                writeln!(out, "</tr>")?;
                for row in rows {
                    write!(out, "<tr>")?;
                    for cell in row {
                        write!(out, "<td>{}</td>", escape(cell))?;
                    }
                    writeln!(out, "</tr>")?;
                }
                writeln!(out, "</table>")?;
            }
        }
    }
    writeln!(out, "</body>\n</html>")
}

/// The charts of a simulate report: decisions over time, throttles per grant, and the
/// busiest counters against their limits.
pub fn simulate_charts(r: &SimulateReport) -> Vec<String> {
    let mut charts = Vec::new();
    let Some(t) = &r.timeline else {
        return charts;
    };
    charts.extend(decisions_over_time(&[("", t)]));
    let grants = r.per_grant.iter().map(|g| (&g.name, g.tally.throttle));
    charts.push(per_grant(
        "Throttled calls per grant",
        grants,
        "No call was throttled.",
    ));
    charts.extend(counter_use(t));
    charts
}

/// The charts of a diff report: decisions over time under each policy, calls newly refused
/// per grant, and the candidate's busiest counters.
pub fn diff_charts(r: &DiffReport) -> Vec<String> {
    let mut charts = Vec::new();
    let Some([base, candidate]) = &r.timelines else {
        return charts;
    };
    charts.extend(decisions_over_time(&[
        (" under the base policy", base),
        (" under the candidate policy", candidate),
    ]));
    let grants = r.per_grant.iter().map(|g| (&g.name, g.newly_refused));
    charts.push(per_grant(
        "Calls newly refused per grant",
        grants,
        "No call is newly refused.",
    ));
    charts.extend(counter_use(candidate));
    charts
}

/// The chart of a sweep: throttled calls by value, with the target, the policy's own value
/// and the recommendation.
pub fn sweep_charts(r: &SweepReport) -> Vec<String> {
    let points = |f: &dyn Fn(&super::sweep::SweepValue) -> u64| {
        (r.values.iter())
            .map(|v| (v.value, f(v) as f64))
            .collect::<Vec<_>>()
    };
    let series = [
        Series {
            name: "throttled calls",
            colour: DECISION_COLOURS[DecisionKind::Throttle as usize],
            values: points(&|v| v.throttled),
        },
        Series {
            name: "grants affected",
            colour: LINE,
            values: points(&|v| v.grants_affected),
        },
    ];
    let mut horizontal = Vec::new();
    let mut vertical = Vec::new();
    if let Some(t) = &r.target {
        horizontal.push(Marker {
            label: format!("target {:.1}%", t.share * 100.0),
            at: t.share * r.input.calls_evaluated as f64,
            colour: LIMIT,
        });
        if let Some(v) = t.recommended {
            vertical.push(Marker {
                label: format!("recommended {}", sweep_value(r.parameter, v)),
                at: v,
                colour: DECISION_COLOURS[DecisionKind::Allow as usize],
            });
        }
    }
    let (lo, hi) = (r.values.first(), r.values.last());
    if lo
        .zip(hi)
        .is_some_and(|(lo, hi)| (lo.value..=hi.value).contains(&r.current))
    {
        vertical.push(Marker {
            label: format!("policy {}", sweep_value(r.parameter, r.current)),
            at: r.current,
            colour: "#555555",
        });
    }
    let what = match r.parameter {
        SweepParameter::Max => "max",
        SweepParameter::Window => "window",
    };
    let parameter = r.parameter;
    vec![svg::lines(
        &format!("Throttled calls by {what} of {}", r.rule),
        &series,
        &horizontal,
        &vertical,
        &|x| sweep_value(parameter, x),
    )]
}

/// Bars of the grants with calls counted, most first.
fn per_grant<'a>(
    title: &str,
    grants: impl Iterator<Item = (&'a String, u64)>,
    none: &str,
) -> String {
    const SHOWN: usize = 12;
    let mut rows: Vec<(String, f64)> = (grants.filter(|(_, n)| *n > 0))
        .map(|(name, n)| (name.clone(), n as f64))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if rows.is_empty() {
        return format!("<p>{}</p>", escape(none));
    }
    let more = rows.len().saturating_sub(SHOWN);
    let title = match more {
        0 => title.to_owned(),
        n => format!("{title} (the {SHOWN} most; {n} more in the table below)"),
    };
    let colour = DECISION_COLOURS[DecisionKind::Throttle as usize];
    svg::bars(&title, &rows[..rows.len().min(SHOWN)], colour)
}

/// How long the buckets of a span are: a minute, an hour or a day, whichever keeps the bars
/// at 180 or fewer.
fn bucket(first: Nanos, last: Nanos) -> (Nanos, &'static str) {
    let span = last - first;
    [
        (MINUTE, "minute"),
        (60 * MINUTE, "hour"),
        (1_440 * MINUTE, "day"),
    ]
    .into_iter()
    .find(|(len, _)| span / len < 180)
    .unwrap_or((1_440 * MINUTE, "day"))
}

fn time_label(ts: Nanos, len: Nanos) -> String {
    let t = DateTime::from_timestamp_nanos(ts);
    let format = if len >= 1_440 * MINUTE {
        "%Y-%m-%d"
    } else {
        "%m-%d %H:%M"
    };
    t.format(format).to_string()
}

/// The buckets of the minutes of `timelines`: their length, its name, the first bucket's
/// start and the slots' labels.
struct Buckets {
    len: Nanos,
    unit: &'static str,
    start: Nanos,
    slots: Vec<String>,
}

impl Buckets {
    fn of(timelines: &[&Timeline]) -> Option<Buckets> {
        let minutes = || timelines.iter().flat_map(|t| t.minutes.iter().map(|m| m.0));
        let (first, last) = (minutes().min()?, minutes().max()?);
        let (len, unit) = bucket(first, last);
        let start = first.div_euclid(len) * len;
        let n = ((last - start) / len + 1) as usize;
        let slots = (0..n)
            .map(|i| time_label(start + len * i as Nanos, len))
            .collect();
        Some(Buckets {
            len,
            unit,
            start,
            slots,
        })
    }

    fn index(&self, minute: Nanos) -> Option<usize> {
        let i = (minute - self.start).checked_div(self.len)?;
        usize::try_from(i).ok().filter(|&i| i < self.slots.len())
    }
}

/// One stacked bar chart per timeline, on the same buckets.
fn decisions_over_time(timelines: &[(&str, &Timeline)]) -> Vec<String> {
    let all: Vec<&Timeline> = timelines.iter().map(|(_, t)| *t).collect();
    let Some(b) = Buckets::of(&all) else {
        return Vec::new();
    };
    (timelines.iter())
        .map(|(what, t)| {
            let mut counts = vec![[0.0; 5]; b.slots.len()];
            for (minute, c) in &t.minutes {
                if let Some(i) = b.index(*minute) {
                    for (k, v) in c.iter().enumerate() {
                        counts[i][k] += *v as f64;
                    }
                }
            }
            let series: Vec<Series<'_, Vec<f64>>> = (DecisionKind::ALL.iter())
                .map(|&k| Series {
                    name: k.as_str(),
                    colour: DECISION_COLOURS[k as usize],
                    values: counts.iter().map(|c| c[k as usize]).collect(),
                })
                .collect();
            let title = format!("Decisions per {} (UTC){what}", b.unit);
            svg::stacked_bars(&title, &b.slots, &series, &[])
        })
        .collect()
}

/// One chart per busy counter: the most its window held in each bucket, against its max.
fn counter_use(t: &Timeline) -> Vec<String> {
    let Some(b) = Buckets::of(&[t]) else {
        return Vec::new();
    };
    (t.counters.iter())
        .map(|c| {
            let mut peaks = vec![0.0; b.slots.len()];
            for &(minute, v) in &c.peaks {
                if let Some(i) = b.index(minute) {
                    peaks[i] = f64::max(peaks[i], v);
                }
            }
            let title = format!("{} at {} ({} throttled)", c.rule, c.key, c.throttled);
            let series = [Series {
                name: "most in a window, with the call",
                colour: LINE,
                values: peaks,
            }];
            let max = [Marker {
                label: format!("max {}", super::document::num(c.max)),
                at: c.max,
                colour: LIMIT,
            }];
            svg::stacked_bars(&title, &b.slots, &series, &max)
        })
        .collect()
}
