//! What the HTML report draws beyond the summary: decisions over time and how close the
//! busiest counters came to their limits. Built only when asked for (`--format html`, and the
//! first throttle of each `sweep` value), never serialised.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::model::format_ts;
use crate::call::Nanos;
use crate::engine::{Decision, DecisionKind, Scope};

/// Nanoseconds in a minute, the finest bucket.
pub const MINUTE: Nanos = 60_000_000_000;

/// Decisions per minute and the busiest counters' use, from one replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// When the first call was throttled, RFC 3339 UTC.
    pub first_throttle: Option<String>,
    /// Minutes with calls, in order: the minute's start and its decisions, by
    /// `DecisionKind as usize`.
    pub minutes: Vec<(Nanos, [u64; 5])>,
    /// The counters that came closest to their limits (most throttles first): at most
    /// [`BUSIEST`], those whose window held a quarter of their max or more, and at least one.
    pub counters: Vec<CounterUse>,
}

/// How many counters a timeline keeps.
pub const BUSIEST: usize = 4;

/// One counter key's use against its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterUse {
    /// The limit's rule id.
    pub rule: String,
    /// The counter key (`grant:server/grant`, `global`, …).
    pub key: String,
    /// The limit.
    pub max: f64,
    /// Calls it throttled.
    pub throttled: u64,
    /// Per minute with calls: the most the window held with a call added (a value above
    /// `max` is a throttled call).
    pub peaks: Vec<(Nanos, f64)>,
}

/// A counter key: the rule, its scope, the server and grant ids the scope uses (`u32::MAX`
/// for parts it does not) and the session, when the scope uses one.
pub type UseKey = (Arc<str>, Scope, [u32; 2], Option<Box<str>>);

#[derive(Debug, Default)]
struct UseSeries {
    max: f64,
    throttled: u64,
    peak: f64,
    peaks: Vec<(Nanos, f64)>,
}

/// Accumulates a [`Timeline`] from decided calls in time order.
#[derive(Debug, Default)]
pub struct TimelineBuilder {
    first_throttle: Option<Nanos>,
    minutes: Vec<(Nanos, [u64; 5])>,
    usage: HashMap<UseKey, UseSeries>,
}

impl TimelineBuilder {
    /// Count one decision at `ts`.
    #[inline]
    pub fn count(&mut self, ts: Nanos, d: &Decision) {
        if d.kind == DecisionKind::Throttle && self.first_throttle.is_none() {
            self.first_throttle = Some(ts);
        }
        let minute = ts.div_euclid(MINUTE) * MINUTE;
        match self.minutes.last_mut() {
            Some((m, counts)) if *m == minute => counts[d.kind as usize] += 1,
            _ => {
                let mut counts = [0; 5];
                counts[d.kind as usize] += 1;
                self.minutes.push((minute, counts));
            }
        }
    }

    /// A limit a call at `ts` met: what its window would hold with the call (`demand`), the
    /// limit, and whether the call was throttled by it.
    pub fn observe(&mut self, ts: Nanos, key: UseKey, max: f64, demand: f64, throttled: bool) {
        let minute = ts.div_euclid(MINUTE) * MINUTE;
        let s = self.usage.entry(key).or_default();
        s.max = max;
        s.throttled += u64::from(throttled);
        s.peak = s.peak.max(demand / max.max(f64::MIN_POSITIVE));
        match s.peaks.last_mut() {
            Some((m, peak)) if *m == minute => *peak = peak.max(demand),
            _ => s.peaks.push((minute, demand)),
        }
    }

    /// The timeline; `name` spells a counter key.
    pub fn finish(self, name: impl Fn(&UseKey) -> String) -> Timeline {
        let mut usage: Vec<(UseKey, UseSeries)> = self.usage.into_iter().collect();
        // Most throttles, then closest to the limit, then by name: deterministic.
        let mut named: Vec<(String, UseKey, UseSeries)> =
            usage.drain(..).map(|(k, s)| (name(&k), k, s)).collect();
        named.sort_by(|a, b| {
            (b.2.throttled.cmp(&a.2.throttled))
                .then(b.2.peak.total_cmp(&a.2.peak))
                .then_with(|| (&a.1.0, &a.0).cmp(&(&b.1.0, &b.0)))
        });
        // Counters that came within a quarter of their limit; at least the busiest one.
        let near = named.iter().filter(|n| n.2.peak >= 0.25).count().max(1);
        Timeline {
            first_throttle: self.first_throttle.map(format_ts),
            minutes: self.minutes,
            counters: (named.into_iter().take(BUSIEST.min(near)))
                .map(|(key, (rule, _, _, _), s)| CounterUse {
                    rule: rule.to_string(),
                    key,
                    max: s.max,
                    throttled: s.throttled,
                    peaks: s.peaks,
                })
                .collect(),
        }
    }
}
