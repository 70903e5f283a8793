//! `mcpsim suggest`: a least-privilege `policy.json` (PolicyLayer dialect, policy.md §1) from
//! observed traffic.
//!
//! Only the tools seen are allowed (`default: deny`). Each gets a per-minute limit, a
//! per-hour limit where the busiest hour would bind tighter than sixty busy minutes, and, when
//! the traffic spans several UTC days, a per-day limit where the busiest day would bind tighter
//! than twenty-four busy hours; every call also passes an `all_tools` per-minute limit. Maxima
//! are `ceil(peak × headroom)`, with peaks counted per counter key of the chosen scope in the
//! same fixed UTC windows the gateway uses, so replaying the counted traffic through the
//! suggestion refuses none of it (headroom ≥ 1).
//!
//! Calls the trace records as refused by the gateway (deny, throttle) are left out unless
//! asked for: they were not served, and the retries of a throttled client would raise the
//! limits meant to stop them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::traffic::WindowPeaks;
use crate::engine::Scope;
use crate::trace::{Call, Nanos, RecordedDecision, Sym};

/// One UTC day.
const DAY_NS: Nanos = 86_400 * 1_000_000_000;

/// The parts of a call that form a counter key in one scope (server, grant, session); parts the
/// scope does not use are `None`, and so is an absent grant or session — as in the engine, all
/// calls without a grant share one grant-scoped counter per server.
type ScopeKey = (Option<Sym>, Option<Sym>, Option<Sym>);

/// Accumulates per-key window peaks for [`suggest`].
#[derive(Debug)]
pub struct SuggestBuilder {
    scope: Scope,
    server: Option<String>,
    per_tool: HashMap<(Sym, ScopeKey), WindowPeaks>,
    all: HashMap<ScopeKey, WindowPeaks>,
    calls: u64,
    include_refused: bool,
    refused: u64,
    /// The first and last UTC day (days since the epoch) of the calls counted.
    days: Option<(Nanos, Nanos)>,
}

impl SuggestBuilder {
    /// Count calls for counters of `scope`; with `server`, only that server's calls; with
    /// `include_refused`, also the calls recorded as refused by the gateway.
    pub fn new(scope: Scope, server: Option<String>, include_refused: bool) -> SuggestBuilder {
        SuggestBuilder {
            scope,
            server,
            per_tool: HashMap::new(),
            all: HashMap::new(),
            calls: 0,
            include_refused,
            refused: 0,
            days: None,
        }
    }

    /// Count one call; calls must come in time order. Returns whether it is of the server asked
    /// for (false for another server's); a call recorded as refused is then counted only with
    /// `include_refused`, else in [`SuggestBuilder::refused`].
    pub fn push(&mut self, call: &Call<'_>) -> bool {
        let server = call.server();
        if self.server.as_deref().is_some_and(|s| s != &**server) {
            return false;
        }
        let refused = matches!(
            call.recorded(),
            Some(RecordedDecision::Deny | RecordedDecision::Throttle)
        );
        if refused {
            self.refused += 1;
            if !self.include_refused {
                return true;
            }
        }
        let key: ScopeKey = match self.scope {
            Scope::Global => (None, None, None),
            Scope::Server => (Some(server.clone()), None, None),
            Scope::Grant => (Some(server.clone()), call.grant().cloned(), None),
            Scope::Session => (
                Some(server.clone()),
                call.grant().cloned(),
                call.session().map(Sym::from),
            ),
        };
        self.calls += 1;
        let ts = call.ts();
        let day = ts.div_euclid(DAY_NS);
        self.days = Some(
            self.days
                .map_or((day, day), |(a, b)| (a.min(day), b.max(day))),
        );
        self.per_tool
            .entry((call.tool().clone(), key.clone()))
            .or_default()
            .add(ts);
        self.all.entry(key).or_default().add(ts);
        true
    }

    /// Calls counted.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Calls recorded as refused by the gateway: left out, or counted with `include_refused`.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether calls recorded as refused are counted.
    pub fn include_refused(&self) -> bool {
        self.include_refused
    }

    /// Whether the calls counted fall on more than one UTC day.
    pub fn spans_days(&self) -> bool {
        self.days.is_some_and(|(first, last)| last > first)
    }
}

/// A suggested policy, serialised as `policy.json` (fields in the order a person writes them,
/// tools sorted by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedPolicy {
    /// Always `"1"`.
    pub version: &'static str,
    /// Always `"deny"`: tools not seen are not allowed.
    pub default: &'static str,
    /// The limit every call also passes.
    pub all_tools: SuggestedRules,
    /// Every tool seen, by name.
    pub tools: BTreeMap<String, SuggestedRules>,
}

/// The rules of one tool (or of `all_tools`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedRules {
    /// Its limits; omitted when empty (`{}` allows the tool without checks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<SuggestedLimit>,
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedLimit {
    /// Counter name: `<tool>_per_minute`, `<tool>_per_hour`, `<tool>_per_day`,
    /// `all_tools_per_minute`.
    pub counter: String,
    /// `minute`, `hour` or `day`.
    pub window: &'static str,
    /// `ceil(peak × headroom)`.
    pub max: u64,
    /// The scope asked for.
    pub scope: &'static str,
}

/// `ceil(peak × headroom)`, forgiving the rounding error of the product (30 × 1.1 is 33, not
/// 34). Never below the peak, so the observed traffic always fits.
pub fn scaled_max(peak: u64, headroom: f64) -> u64 {
    let x = peak as f64 * headroom;
    let r = x.round();
    let m = if (x - r).abs() <= 1e-9 * x.abs().max(1.0) {
        r
    } else {
        x.ceil()
    };
    (m as u64).max(peak)
}

/// The policy for the traffic counted by `b`. `headroom` must be at least 1.
pub fn suggest(b: &SuggestBuilder, headroom: f64) -> SuggestedPolicy {
    let scope = b.scope.as_str();
    // Per tool, the peak over every counter key: one key's busiest window sets the budget.
    let mut peaks: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for ((tool, _), p) in &b.per_tool {
        let e = peaks.entry(&**tool).or_default();
        for (w, peak) in e.iter_mut().enumerate() {
            *peak = (*peak).max(p.peak(w).0);
        }
    }
    let mut counters = BTreeSet::new();
    let mut tools = BTreeMap::new();
    for (tool, [minute, hour, day]) in peaks {
        let limit = |window: &'static str, max| SuggestedLimit {
            counter: format!("{tool}_per_{window}"),
            window,
            max,
            scope,
        };
        let minute_max = scaled_max(minute, headroom);
        let mut limits = vec![limit("minute", minute_max)];
        // A longer window's limit is written only where it binds tighter than the shorter
        // ones already do over its length.
        let mut hour_cap = minute_max.saturating_mul(60);
        let hour_max = scaled_max(hour, headroom);
        if hour_max < hour_cap {
            limits.push(limit("hour", hour_max));
            hour_cap = hour_max;
        }
        // Within one day the busiest day is all of the traffic: no day limit from it.
        let day_max = scaled_max(day, headroom);
        if b.spans_days() && day_max < hour_cap.saturating_mul(24) {
            limits.push(limit("day", day_max));
        }
        counters.extend(limits.iter().map(|l| l.counter.clone()));
        tools.insert(tool.to_owned(), SuggestedRules { limits });
    }
    let all_minute = b.all.values().map(|p| p.peak(0).0).max().unwrap_or(0);
    // A tool named `all_tools` would own `all_tools_per_minute`; a counter name may not be used
    // both under a tool and under `all_tools`.
    let mut all_name = "all_tools_per_minute".to_owned();
    let mut n = 2;
    while counters.contains(&all_name) {
        all_name = format!("all_tools_per_minute_{n}");
        n += 1;
    }
    let all_tools = SuggestedRules {
        limits: if tools.is_empty() {
            Vec::new()
        } else {
            vec![SuggestedLimit {
                counter: all_name,
                window: "minute",
                max: scaled_max(all_minute, headroom),
                scope,
            }]
        },
    };
    SuggestedPolicy {
        version: "1",
        default: "deny",
        all_tools,
        tools,
    }
}

#[cfg(test)]
mod tests {
    use super::scaled_max;

    #[test]
    fn scaled_max_rounds_up_but_forgives_float_error() {
        assert_eq!(scaled_max(30, 1.1), 33);
        assert_eq!(scaled_max(36, 1.5), 54);
        assert_eq!(scaled_max(1, 1.5), 2);
        assert_eq!(scaled_max(7, 1.0), 7);
        assert_eq!(scaled_max(3, 1.01), 4);
        assert_eq!(scaled_max(0, 2.0), 0);
    }
}
