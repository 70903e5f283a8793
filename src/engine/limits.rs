//! Steps 6 and 7: check every limit that applies to a call, then charge its reservations.

use serde_json::Value;

use super::counters::{CounterState, Counters, charge_fixed};
use super::decision::Throttle;
use super::policy::{Algorithm, Limit, PolicyLayer};
use super::quick::Step;
use super::window::SlidingLog;
use crate::call::{ArgLookup, ArgsRef, CallView};

/// Why the limits step stopped a call.
pub(super) enum Stop {
    Throttle(usize, Throttle),
    Deny(usize, bool),
    /// The first limit whose increment is an unrecorded argument; `true` when every other
    /// limit fits (their reservations are left for [`commit`]), `false` when one refuses the
    /// call, which is then refused whatever that increment was.
    Unknown(usize, bool),
}

/// How much a call adds to a limit's counter.
pub(super) enum Increment {
    Amount(f64),
    Missing,
    NotNumber,
    Unknown,
}

pub(super) fn increment(limit: &Limit, args: ArgsRef<'_>) -> Increment {
    let Some(path) = &limit.increment_from else {
        return Increment::Amount(1.0);
    };
    let value = match path.find(args) {
        ArgLookup::Value(value) => value,
        ArgLookup::TopKey(false) => None,
        ArgLookup::TopKey(true) | ArgLookup::Unrecorded => return Increment::Unknown,
    };
    match value.as_deref() {
        None | Some(Value::Null) => Increment::Missing,
        Some(v) => v.as_f64().map_or(Increment::NotNumber, Increment::Amount),
    }
}

/// Step 6: check every applicable limit; on success the reservations are left in
/// `counters.scratch` for [`commit`]. The first limit that stops the call decides, unless a
/// limit before it has an increment the trace did not record: then the call is unknown. Such a
/// limit is neither checked nor charged; the others are (see [`Stop::Unknown`]).
pub(super) fn check_limits(
    counters: &mut Counters,
    policy: &PolicyLayer,
    steps: &[Step],
    call: &CallView<'_>,
) -> Result<(), Stop> {
    counters.scratch.clear();
    counters.call_ids = [None; 3];
    counters.call_scopes = [None; 4];
    let mut unknown = None;
    // Once an increment is unknown, any later refusal is one whose kind and limit are unknown.
    let refuse = |unknown: Option<usize>, stop: Stop| match unknown {
        Some(first) => Err(Stop::Unknown(first, false)),
        None => Err(stop),
    };
    for st in steps {
        let i = st.limit;
        let inc = if st.counts_one {
            1.0
        } else {
            match increment(&policy.limits[i], call.args) {
                Increment::Amount(x) => x,
                Increment::Missing => return refuse(unknown, Stop::Deny(i, true)),
                Increment::NotNumber => return refuse(unknown, Stop::Deny(i, false)),
                Increment::Unknown => {
                    unknown.get_or_insert(i);
                    continue;
                }
            }
        };
        let index = counters.state_index(st.counter, st.scope, call);
        let state = counters
            .states
            .get_mut(index as usize)
            .and_then(Option::as_mut);
        let len = st.len;
        let (used, window_start, retry_after) = match (st.algorithm, state) {
            (Algorithm::Fixed, state) => {
                let used = match state {
                    Some(CounterState::Fixed { start: s, used }) => Some((*s, *used)),
                    _ => None,
                };
                let (start, end) = counters.fixed_window(st.counter, call.ts, len);
                let used = match used {
                    Some((s, used)) if s == start => used,
                    _ => 0.0,
                };
                (used, start, end)
            }
            (Algorithm::Sliding, Some(CounterState::Sliding(log))) => {
                log.expire(call.ts, len);
                let used = log.used();
                let retry = log.retry_after(call.ts, len, inc, st.max);
                (used, call.ts.saturating_sub(len), retry)
            }
            (Algorithm::Sliding, _) => (
                0.0,
                call.ts.saturating_sub(len),
                call.ts.saturating_add(len),
            ),
        };
        // Passing is `used + increment <= max`; anything else (NaN included) throttles.
        let fits = used + inc <= st.max;
        if !fits {
            return refuse(
                unknown,
                Stop::Throttle(
                    i,
                    Throttle {
                        counter: policy.counters[st.counter].name.clone(),
                        scope: st.scope,
                        window_start,
                        used,
                        max: st.max,
                        increment: inc,
                        retry_after,
                    },
                ),
            );
        }
        counters
            .scratch
            .push((index, st.algorithm, window_start, inc));
    }
    match unknown {
        Some(first) => Err(Stop::Unknown(first, true)),
        None => Ok(()),
    }
}

/// Step 7: add the reservations [`check_limits`] left in the scratch list.
pub(super) fn commit(counters: &mut Counters, call: &CallView<'_>) {
    let Counters {
        states, scratch, ..
    } = counters;
    for &(index, algorithm, window_start, inc) in scratch.iter() {
        // `check_limits` made the slot; a missing one cannot happen, and skipping is harmless.
        let Some(slot) = states.get_mut(index as usize) else {
            continue;
        };
        match algorithm {
            // The window `check_limits` computed for this call.
            Algorithm::Fixed => charge_fixed(slot, window_start, inc),
            Algorithm::Sliding => {
                let state = slot.get_or_insert_with(|| CounterState::Sliding(Box::default()));
                match state {
                    CounterState::Sliding(log) => log.push(call.ts, inc),
                    other => {
                        let mut log = Box::<SlidingLog>::default();
                        log.push(call.ts, inc);
                        *other = CounterState::Sliding(log);
                    }
                }
            }
        }
    }
    scratch.clear();
}
