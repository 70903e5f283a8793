//! The short path: how the calls of a tool that come with ids can be decided is worked out
//! once per tool, and the usual limits (fixed windows, one per call) are checked by a short loop.

use super::counters::{Counters, charge_fixed, has_room, places};
use super::decision::Scope;
use super::policy::{Algorithm, Entry, PolicyLayer};
use super::screen::applicable;
use super::window;
use crate::call::{CallIds, CallView, Nanos};

/// One limit a call passes through, with what checking it needs from its counter copied in,
/// so the hot path reads one array instead of following limit → counter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    /// Index into [`PolicyLayer::limits`].
    pub(super) limit: usize,
    /// Counter slot.
    pub(super) counter: usize,
    /// The counter's place in the block of its scope's instance.
    pub(super) place: usize,
    pub(super) scope: Scope,
    pub(super) algorithm: Algorithm,
    /// Window length in nanoseconds.
    pub(super) len: Nanos,
    pub(super) max: f64,
    /// Each call counts 1 (no `increment_from`).
    pub(super) counts_one: bool,
}

/// The limits a call passes through, in evaluation order: per configured tool (its own, then
/// `all_tools`), and for calls of tools not listed (`all_tools` only).
#[derive(Debug, Default)]
pub(super) struct Plans {
    /// Every configured tool's steps one after another, then those of tools not listed.
    steps: Vec<Step>,
    /// Where each configured tool's steps lie in `steps` (start, count), by tool index; the
    /// last entry is that of tools not listed.
    ranges: Vec<(u32, u32)>,
}

/// Where a tool's steps lie in [`Plans::steps`]: start and count.
pub(super) type StepRange = (u32, u32);

impl Plans {
    pub(super) fn new(policy: &PolicyLayer) -> Plans {
        let mut plans = Plans::default();
        let places = places(&policy.counters);
        let tools = policy.tools.iter().map(Some).chain([None]);
        for tool in tools {
            let start = plans.steps.len() as u32;
            plans.steps.extend(applicable(policy, tool).map(|i| {
                let limit = &policy.limits[i];
                let c = &policy.counters[limit.counter];
                Step {
                    limit: i,
                    counter: limit.counter,
                    place: places[limit.counter],
                    scope: c.scope,
                    algorithm: c.algorithm,
                    len: window::window_nanos(c.window_secs),
                    max: c.max,
                    counts_one: limit.increment_from.is_none(),
                }
            }));
            plans.ranges.push((start, plans.steps.len() as u32 - start));
        }
        plans
    }

    /// Where the steps of configured tool `tool` lie (`None`, or an index past the tools: a
    /// tool not listed).
    pub(super) fn range(&self, tool: Option<usize>) -> StepRange {
        let unlisted = self.ranges.last().copied().unwrap_or((0, 0));
        match tool {
            Some(t) if t + 1 < self.ranges.len() => self.ranges[t],
            _ => unlisted,
        }
    }

    #[inline]
    pub(super) fn at(&self, (start, count): StepRange) -> &[Step] {
        let start = start as usize;
        self.steps.get(start..start + count as usize).unwrap_or(&[])
    }

    pub(super) fn for_tool(&self, tool: Option<usize>) -> &[Step] {
        self.at(self.range(tool))
    }
}

/// Most limits a call may pass through and still take [`Quick::Limits`].
const QUICK_STEPS: usize = 4;

/// How the calls of one tool are decided when they come with ids: what steps 1–5 give does not
/// depend on the arguments for most tools, so it is worked out once per tool, and the usual
/// limits (fixed windows, one per call) are checked by a short loop. Anything else takes the
/// general steps; so does a call that a limit would stop, so that the throttle is described by
/// the one piece of code that describes throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quick {
    /// The general steps decide.
    General,
    /// Steps 1–5 deny whatever the arguments: the tool is hidden.
    Hidden,
    /// Steps 1–5 deny whatever the arguments: the tool is not listed under `default: deny`.
    DefaultDeny,
    /// Steps 1–5 pass whatever the arguments, and every applicable limit is a fixed window
    /// charged 1 per call (at most [`QUICK_STEPS`] of them): these, in [`Plans::steps`].
    Limits(StepRange),
    /// [`Quick::Limits`], every limit kept per grant (the default scope): a call with a
    /// grant finds all its counters in one scope instance.
    GrantLimits(StepRange),
}

impl Quick {
    /// How calls of a tool that resolves to `entry` can be decided.
    pub(super) fn plan(policy: &PolicyLayer, entry: Option<Entry>, plans: &Plans) -> Quick {
        if policy.hide_all || entry.is_some_and(|e| e.hidden) {
            return Quick::Hidden;
        }
        // No rule of steps 3–5 that reads the arguments or holds the call.
        let passes = match entry.and_then(|e| e.tool) {
            None if policy.default_deny => return Quick::DefaultDeny,
            None => true,
            Some(ti) => policy.tools.get(ti).is_some_and(|t| {
                t.require.is_empty()
                    && t.deny_if.is_empty()
                    && t.approve_if.is_empty()
                    && !t.require_approval
            }),
        };
        let range = plans.range(entry.and_then(|e| e.tool));
        let steps = plans.at(range);
        let simple = steps.len() <= QUICK_STEPS
            && steps
                .iter()
                .all(|st| st.counts_one && st.algorithm == Algorithm::Fixed);
        if passes && simple {
            if steps.iter().all(|st| st.scope == Scope::Grant) {
                Quick::GrantLimits(range)
            } else {
                Quick::Limits(range)
            }
        } else {
            Quick::General
        }
    }
}

/// Steps 6 and 7 for a call of a [`Quick::Limits`] tool: when every limit in `steps` has room
/// for one more call, charge them (if `commit`: the upstream did not fail) and return `true`;
/// otherwise change nothing and return `false`, and the general steps decide the call. Counts
/// exactly as [`super::limits::check_limits`] and [`super::limits::commit`] do: every limit is checked against the counts
/// before this call, then all are charged.
#[inline]
pub(super) fn quick_limits(
    counters: &mut Counters,
    steps: &[Step],
    ids: CallIds,
    call: &CallView<'_>,
    commit: bool,
) -> bool {
    let mut at = [(0usize, 0 as Nanos); QUICK_STEPS];
    // Scope instances met so far in this call, by `Scope as usize`.
    let mut instances = [u32::MAX; 4];
    for (k, st) in steps.iter().enumerate().take(QUICK_STEPS) {
        let which = st.scope as usize;
        let inst = match instances[which] {
            u32::MAX => {
                let inst = match st.scope {
                    Scope::Grant if ids.grant != CallIds::ABSENT => {
                        counters.grant_instance(ids, call)
                    }
                    scope => counters.instance(scope, call),
                };
                instances[which] = inst;
                inst
            }
            inst => inst,
        };
        let index = inst as usize + st.place;
        let (start, _) = counters.fixed_window(st.counter, call.ts, st.len);
        if !has_room(&counters.states, index, start, st.max) {
            return false;
        }
        at[k] = (index, start);
    }
    if commit {
        for &(index, start) in &at[..steps.len().min(QUICK_STEPS)] {
            if let Some(slot) = counters.states.get_mut(index) {
                charge_fixed(slot, start, 1.0);
            }
        }
    }
    true
}

/// [`quick_limits`] for limits all kept per grant, for a call with a grant: every counter is
/// found in the call's one grant instance.
#[inline]
pub(super) fn quick_grant_limits(
    counters: &mut Counters,
    steps: &[Step],
    ids: CallIds,
    call: &CallView<'_>,
    commit: bool,
) -> bool {
    let base = counters.grant_instance(ids, call) as usize;
    let mut starts = [0 as Nanos; QUICK_STEPS];
    for (st, start) in steps.iter().zip(starts.iter_mut()) {
        let (window, _) = counters.fixed_window(st.counter, call.ts, st.len);
        if !has_room(&counters.states, base + st.place, window, st.max) {
            return false;
        }
        *start = window;
    }
    if commit {
        for (st, &start) in steps.iter().zip(&starts) {
            if let Some(slot) = counters.states.get_mut(base + st.place) {
                charge_fixed(slot, start, 1.0);
            }
        }
    }
    true
}
