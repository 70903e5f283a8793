//! `mcpsim suggest`: a least-privilege `policy.json` (PolicyLayer dialect, policy.md §1) from
//! observed traffic.
//!
//! Only the tools seen are allowed (`default: deny`). Each gets a per-minute limit, and a
//! per-hour limit where the busiest hour would bind tighter than sixty busy minutes; every call
//! also passes an `all_tools` per-minute limit. Maxima are `ceil(peak × headroom)`, with peaks
//! counted per counter key of the chosen scope in the same fixed UTC windows the gateway uses,
//! so replaying the same traffic through the suggestion refuses none of it (headroom ≥ 1).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::traffic::WindowPeaks;
use crate::engine::Scope;
use crate::trace::{CallRecord, Sym};

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
}

impl SuggestBuilder {
    /// Count calls for counters of `scope`; with `server`, only that server's calls.
    pub fn new(scope: Scope, server: Option<String>) -> SuggestBuilder {
        SuggestBuilder {
            scope,
            server,
            per_tool: HashMap::new(),
            all: HashMap::new(),
            calls: 0,
        }
    }

    /// Count one call; calls must come in time order. Returns whether it was counted (false when
    /// it belongs to another server than the one asked for).
    pub fn push(&mut self, call: &CallRecord) -> bool {
        if self.server.as_deref().is_some_and(|s| s != &*call.server) {
            return false;
        }
        let key: ScopeKey = match self.scope {
            Scope::Global => (None, None, None),
            Scope::Server => (Some(call.server.clone()), None, None),
            Scope::Grant => (Some(call.server.clone()), call.grant.clone(), None),
            Scope::Session => (
                Some(call.server.clone()),
                call.grant.clone(),
                call.session.clone(),
            ),
        };
        self.calls += 1;
        self.per_tool
            .entry((call.tool.clone(), key.clone()))
            .or_default()
            .add(call.ts);
        self.all.entry(key).or_default().add(call.ts);
        true
    }

    /// Calls counted.
    pub fn calls(&self) -> u64 {
        self.calls
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
    /// Counter name: `<tool>_per_minute`, `<tool>_per_hour`, `all_tools_per_minute`.
    pub counter: String,
    /// `minute` or `hour`.
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
    let mut peaks: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
    for ((tool, _), p) in &b.per_tool {
        let e = peaks.entry(&**tool).or_default();
        e[0] = e[0].max(p.peak(0).0);
        e[1] = e[1].max(p.peak(1).0);
    }
    let mut counters = BTreeSet::new();
    let mut tools = BTreeMap::new();
    for (tool, [minute, hour]) in peaks {
        let minute_max = scaled_max(minute, headroom);
        let hour_max = scaled_max(hour, headroom);
        let mut limits = vec![SuggestedLimit {
            counter: format!("{tool}_per_minute"),
            window: "minute",
            max: minute_max,
            scope,
        }];
        if hour_max < minute_max.saturating_mul(60) {
            limits.push(SuggestedLimit {
                counter: format!("{tool}_per_hour"),
                window: "hour",
                max: hour_max,
                scope,
            });
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
