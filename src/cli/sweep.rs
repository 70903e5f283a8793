//! `mcpsim sweep`: one limit at many values, over one read of the trace.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::common::{EvalArgs, InputArgs, Reads, Spinner, SummaryOutputArgs, load_policies};
use crate::engine::Policy;
use crate::policy::{self, Dialect, LimitChange, LoadOptions};
use crate::replay::{self, PolicySet};
use crate::report::{
    self, CallsShown, ReportOptions, SweepFormat, SweepParameter, SweepReport, SweepTarget,
    SweepValue, TimelineDetail,
};

/// Arguments of `mcpsim sweep`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  mcpsim sweep --policy fixtures/policies/candidate.json fixtures/traces/fleet.jsonl \\
      --limit /tools/firewall_policy_list/limits/firewall_reads --max 1..10 --target 5%
  mcpsim sweep --policy p.json trace.jsonl --limit /all_tools/limits/all_calls --window 30s..10m:30s
  mcpsim sweep --policy github.yaml trace.jsonl --limit 'create_issue/issues per hour' --max 1..20")]
pub struct SweepArgs {
    /// Policy for every server (`FILE`), or for one server (`SERVER=FILE`); `:intercept` or
    /// `:policylayer` after FILE sets its dialect; repeatable.
    #[arg(
        long,
        short = 'p',
        required = true,
        value_name = "[SERVER=]FILE[:DIALECT]"
    )]
    pub policy: Vec<String>,
    /// Trace inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Evaluation switches.
    #[command(flatten)]
    pub eval: EvalArgs,
    /// The limit to vary, as reports name it: `/tools/<tool>/limits/<counter>`,
    /// `/all_tools/limits/<counter>`, or an Intercept rule `<tool>/<rule name>`.
    #[arg(long, value_name = "RULE_ID")]
    pub limit: String,
    /// Values of the limit's max: `A..B` (every whole step of 1) or `A..B:STEP`.
    #[arg(
        long,
        value_name = "A..B[:STEP]",
        required_unless_present = "window",
        conflicts_with = "window"
    )]
    pub max: Option<String>,
    /// Values of the limit's window: `A..B[:STEP]` of durations (`30s`, `10m`, `1h`, `1d`);
    /// the step is A when omitted. Intercept windows are a minute, an hour or a day: those
    /// within the range.
    #[arg(long, value_name = "A..B[:STEP]")]
    pub window: Option<String>,
    /// Recommend the strictest value that throttles at most this share of calls (`1%`).
    #[arg(long, value_parser = parse_percent, value_name = "PERCENT")]
    pub target: Option<f64>,
    /// Report shape and destination.
    #[command(flatten)]
    pub output: SummaryOutputArgs<SweepFormat>,
}

/// The most values one sweep runs: each is a replay's worth of counters.
pub const MAX_VALUES: usize = 1000;

/// Run `sweep`; returns the exit code.
pub fn run(args: &SweepArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let load = args.eval.load_options();
    let Some(base) = load_policies(&args.policy, &load, err)? else {
        return Ok(2);
    };
    let parameter = match args.max {
        Some(_) => SweepParameter::Max,
        None => SweepParameter::Window,
    };
    let current = current_value(&base, &args.limit, parameter)?;
    let intercept = bindings(&base).any(|(_, p)| {
        matches!(&**p, Policy::Intercept(_))
            && p.rule_limits().iter().any(|r| *r.rule == args.limit)
    });
    let values = match (&args.max, &args.window) {
        (Some(range), _) => max_values(range)?,
        (None, Some(range)) => window_values(range, intercept)?,
        (None, None) => bail!("give --max A..B[:STEP] or --window A..B[:STEP]"),
    };
    let change = |v: f64| match parameter {
        SweepParameter::Max => LimitChange::Max(v),
        SweepParameter::Window => LimitChange::Window(v as u64),
    };
    let sets = (values.iter())
        .map(|&v| variant(&base, &args.limit, change(v), &load))
        .collect::<anyhow::Result<Vec<PolicySet>>>()?;
    let opts = ReportOptions {
        calls_shown: CallsShown::None,
        timeline: TimelineDetail::Decisions,
        ..ReportOptions::default()
    };
    let mut trace = args.input.open()?;
    let refs: Vec<&PolicySet> = sets.iter().collect();
    let mut spinner = Spinner::new();
    let reports =
        replay::simulate_each(&mut trace, &refs, args.eval.options(), opts, &mut spinner)?;
    drop(spinner);
    let first = reports.first().context("no value to sweep")?;
    let swept: Vec<SweepValue> = (values.iter().zip(&reports))
        .map(|(&v, r)| SweepValue::new(v, &args.limit, r))
        .collect();
    let report = SweepReport {
        policies: base.refs(),
        rule: args.limit.clone(),
        parameter,
        current,
        warnings: first.warnings.clone(),
        input: first.input.clone(),
        target: args.target.map(|t| SweepTarget::pick(t, parameter, &swept)),
        values: swept,
    };
    let reads = Reads::default()
        .traces(&args.input.traces)
        .policies(&args.policy);
    let mut dest = args.output.open(&reads, out)?;
    report::write_sweep(&report, args.output.format, &mut dest)?;
    dest.flush()?;
    Ok(0)
}

/// `1%`, `0.5%` or `1` (a percentage either way), as a share from 0 to 1.
fn parse_percent(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches('%').trim();
    match n.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(format!("`{s}` is not a percentage from 0% to 100%")),
    }
}

/// `A..B[:STEP]` of `--max` or `--window`.
struct Range<'a> {
    flag: &'static str,
    text: &'a str,
    from: f64,
    to: f64,
    step: Option<f64>,
}

impl Range<'_> {
    /// Read `A..B[:STEP]`, each part by `parse` (a `what`).
    fn parse<'a>(
        flag: &'static str,
        text: &'a str,
        what: &str,
        parse: impl Fn(&str) -> Option<f64>,
    ) -> anyhow::Result<Range<'a>> {
        let usage = || format!("--{flag} {text}: expected A..B or A..B:STEP, e.g. `10..100:10`");
        let (bounds, step) = match text.split_once(':') {
            Some((bounds, step)) => (bounds, Some(step)),
            None => (text, None),
        };
        let (a, b) = bounds.split_once("..").with_context(usage)?;
        let num = |part: &str| {
            parse(part.trim()).with_context(|| format!("--{flag} {text}: `{part}` is not a {what}"))
        };
        let (from, to) = (num(a)?, num(b)?);
        let step = step.map(num).transpose()?;
        if from > to {
            bail!(
                "--{flag} {text}: the range is empty ({} is above {})",
                report::num(from),
                report::num(to)
            );
        }
        if step.is_some_and(|s| s <= 0.0) {
            bail!("--{flag} {text}: the step must be above 0");
        }
        Ok(Range {
            flag,
            text,
            from,
            to,
            step,
        })
    }

    /// The values from A by whole steps (`default_step` when none was given) up to B.
    fn values(&self, default_step: f64) -> anyhow::Result<Vec<f64>> {
        let (flag, text) = (self.flag, self.text);
        let step = self.step.unwrap_or(default_step);
        let count = ((self.to - self.from) / step + 1e-9).floor() + 1.0;
        if count > MAX_VALUES as f64 {
            bail!(
                "--{flag} {text}: {count} values, at most {MAX_VALUES}: give a larger step (`A..B:STEP`)"
            );
        }
        // Rounded so that steps of 0.1 print as written.
        Ok((0..count as usize)
            .map(|i| ((self.from + i as f64 * step) * 1e9).round() / 1e9)
            .collect())
    }
}

fn max_values(s: &str) -> anyhow::Result<Vec<f64>> {
    let range = Range::parse("max", s, "number", |p| {
        p.parse::<f64>().ok().filter(|v| v.is_finite())
    })?;
    if range.from < 0.0 {
        bail!("--max {s}: a max cannot be below 0");
    }
    range.values(1.0)
}

/// Window values; an Intercept limit's are the calendar windows within the range.
fn window_values(s: &str, intercept: bool) -> anyhow::Result<Vec<f64>> {
    let range = Range::parse("window", s, "duration (30s, 10m, 1h, 1d)", |p| {
        parse_duration(p).map(|d| d as f64)
    })?;
    if range.from < 1.0 {
        bail!("--window {s}: a window is at least 1s");
    }
    if !intercept {
        return range.values(range.from);
    }
    let windows: Vec<f64> = (crate::engine::intercept::InterceptWindow::ALL.iter())
        .map(|w| w.seconds() as f64)
        .filter(|s| (range.from..=range.to).contains(s))
        .collect();
    if windows.is_empty() {
        bail!("--window {s}: Intercept windows are 1m, 1h or 1d, and none is within the range");
    }
    Ok(windows)
}

/// `30s`, `10m`, `1h`, `1d` or bare seconds.
fn parse_duration(s: &str) -> Option<u64> {
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    n.parse::<u64>().ok()?.checked_mul(unit)
}

/// Every binding's policy, with how reports name its binding.
fn bindings(set: &PolicySet) -> impl Iterator<Item = (&String, &Arc<Policy>)> {
    (set.default.iter().map(|(file, p)| (file, p)))
        .chain(set.per_server.values().map(|(file, p)| (file, p)))
}

/// The policy's own max or window of `rule`; an error naming the nearest rule ids when no
/// bound policy has it, or when it is no limit.
fn current_value(set: &PolicySet, rule: &str, parameter: SweepParameter) -> anyhow::Result<f64> {
    let mut limits = Vec::new();
    for (file, p) in bindings(set) {
        for r in p.rule_limits() {
            if &*r.rule == rule {
                let Some((max, window)) = r.limit else {
                    bail!("--limit {rule}: this rule of {file} has no max (it is not a limit)");
                };
                return Ok(match parameter {
                    SweepParameter::Max => max,
                    SweepParameter::Window => window as f64,
                });
            }
            if r.limit.is_some() {
                limits.push(r.rule.to_string());
            }
        }
    }
    limits.sort();
    limits.dedup();
    let near = policy::nearest_name(rule, limits.iter().map(String::as_str))
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    if limits.is_empty() {
        bail!("--limit {rule}: no such rule, and the policy has no limits");
    }
    bail!(
        "--limit {rule}: no such rule{near} (limits: {})",
        limits.join(", ")
    )
}

/// The policy set with `rule` changed in every binding that has it.
fn variant(
    base: &PolicySet,
    rule: &str,
    change: LimitChange,
    load: &LoadOptions,
) -> anyhow::Result<PolicySet> {
    let vary = |(file, p): &(String, Arc<Policy>)| -> anyhow::Result<(String, Arc<Policy>)> {
        if !p.rule_limits().iter().any(|r| &*r.rule == rule) {
            return Ok((file.clone(), p.clone()));
        }
        let src = policy::read_policy_file(Path::new(file))
            .map_err(|d| anyhow::anyhow!("{file}: {}", d.message))?;
        let dialect = match &**p {
            Policy::Intercept(_) => Dialect::Intercept,
            Policy::PolicyLayer(_) => Dialect::PolicyLayer,
        };
        let opts = LoadOptions {
            dialect: Some(dialect),
            ..*load
        };
        let varied = policy::vary_limit(&src, &opts, rule, change)
            .with_context(|| format!("cannot sweep {file}"))?;
        Ok((file.clone(), Arc::new(varied)))
    };
    Ok(PolicySet {
        default: base.default.as_ref().map(vary).transpose()?,
        per_server: (base.per_server.iter())
            .map(|(server, b)| Ok((server.clone(), vary(b)?)))
            .collect::<anyhow::Result<_>>()?,
    })
}
