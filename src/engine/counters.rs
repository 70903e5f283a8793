//! The counter state of one PolicyLayer engine: scope instances, fixed windows, sliding logs.

// The counter maps are probed several times per call with small keys; Fx hashing is several
// times cheaper than SipHash there, and keys come from the trace, not from an attacker.
use rustc_hash::FxHashMap as HashMap;

use super::decision::Scope;
use super::policy::{Algorithm, Counter};
use super::window::{self, SlidingLog};
use crate::call::{CallIds, CallView, Nanos};

/// One scope instance: the server/grant/session ids a scope uses (`UNUSED` for parts it does
/// not). Ids start at 1 and absent parts are `ABSENT`, so instances of different scopes never
/// share a key.
type ScopeKey = (u32, u32, u32);

/// Interned id of an absent grant or session.
const ABSENT: u32 = u32::MAX;
/// Id of a key part the scope does not use.
const UNUSED: u32 = 0;

#[derive(Debug, Clone)]
pub(super) enum CounterState {
    Fixed { start: Nanos, used: f64 },
    // Boxed: most counters are fixed, and a small state keeps more of them in cache.
    Sliding(Box<SlidingLog>),
}

/// Counter state of one engine.
#[derive(Debug, Clone, Default)]
pub(super) struct Counters {
    pub(super) names: HashMap<Box<str>, u32>,
    /// Dense id of each scope instance. A call hashes the key of each scope it meets once,
    /// however many limits share that scope; limits then find their state by index.
    pub(super) scopes: HashMap<ScopeKey, u32>,
    /// Counter slots of the policy (at least 1).
    pub(super) stride: usize,
    /// Per counter slot, the fixed window `[start, end)` last computed for it: calls come in
    /// time order, so most calls fall in the window of the call before and skip a division.
    pub(super) windows: Vec<(Nanos, Nanos)>,
    /// State of each counter instance (`None` until a call first charges it): `stride` slots
    /// per scope instance, instance after instance.
    pub(super) states: Vec<Option<CounterState>>,
    /// Reservations of the call being evaluated: state index, the counter's algorithm, the
    /// fixed window the call falls in and the increment (reused, so the hot path does not
    /// allocate).
    pub(super) scratch: Vec<(u32, Algorithm, Nanos, f64)>,
    /// Interned server, grant and session of the call being evaluated, filled on first use:
    /// a call passes several limits of the same scope.
    pub(super) call_ids: [Option<u32>; 3],
    /// By caller grant id: the server of the grant's last call and that pair's grant-scope
    /// instance (see [`Counters::grant_instance`]).
    pub(super) by_grant: Vec<(u32, u32)>,
    /// Scope instance of the call being evaluated, per [`Scope`] (in declaration order).
    pub(super) call_scopes: [Option<u32>; 4],
    /// The last string interned for each key part and its id: consecutive calls often come
    /// from the same server and grant, and a comparison is cheaper than a map lookup.
    pub(super) last: [(String, u32); 3],
}

impl Counters {
    /// Empty counters for a policy with `slots` counter slots.
    pub(super) fn new(slots: usize) -> Counters {
        Counters {
            stride: slots.max(1),
            windows: vec![(1, 0); slots],
            ..Counters::default()
        }
    }

    /// The fixed window of length `len` holding `ts` for counter `slot` (see `windows`).
    #[inline]
    pub(super) fn fixed_window(&mut self, slot: usize, ts: Nanos, len: Nanos) -> (Nanos, Nanos) {
        if let Some(&(start, end)) = self.windows.get(slot) {
            if start <= ts && ts < end {
                return (start, end);
            }
        }
        let start = window::fixed_window_start(ts, len);
        let end = window::fixed_window_end(start, len);
        if let Some(w) = self.windows.get_mut(slot) {
            *w = (start, end);
        }
        (start, end)
    }

    /// What `counter` (slot `slot`) has used in the window holding `call.ts`, and that window's
    /// start, without changing any state.
    pub(super) fn peek(&self, slot: usize, c: &Counter, call: &CallView<'_>) -> (f64, Nanos) {
        let len = window::window_nanos(c.window_secs);
        let start = match c.algorithm {
            Algorithm::Fixed => window::fixed_window_start(call.ts, len),
            Algorithm::Sliding => call.ts.saturating_sub(len),
        };
        let id = |s: &str| self.names.get(s).copied();
        let opt = |s: Option<&str>| s.map_or(Some(ABSENT), id);
        let key = match c.scope {
            Scope::Global => Some((UNUSED, UNUSED, UNUSED)),
            Scope::Server => id(call.server).map(|s| (s, UNUSED, UNUSED)),
            Scope::Grant => id(call.server)
                .zip(opt(call.grant))
                .map(|(s, g)| (s, g, UNUSED)),
            Scope::Session => id(call.server)
                .zip(opt(call.grant))
                .zip(opt(call.session))
                .map(|((s, g), x)| (s, g, x)),
        };
        let state = key
            .and_then(|k| self.scopes.get(&k))
            .and_then(|&inst| self.states.get(inst as usize * self.stride + slot))
            .and_then(Option::as_ref);
        let used = match state {
            Some(CounterState::Fixed { start: s, used }) if *s == start => *used,
            Some(CounterState::Sliding(log)) => log.used_at(call.ts, len),
            _ => 0.0,
        };
        (used, start)
    }

    pub(super) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.names.get(s) {
            return id;
        }
        // Ids start at 1 so that UNUSED never collides.
        let id = self.names.len() as u32 + 1;
        self.names.insert(Box::from(s), id);
        id
    }

    /// Id of part `i` (0 server, 1 grant, 2 session) of the current call, interned once per call.
    pub(super) fn call_id(&mut self, i: usize, s: Option<&str>) -> u32 {
        if let Some(id) = self.call_ids[i] {
            return id;
        }
        let id = match s {
            None => ABSENT,
            Some(s) if self.last[i].1 != UNUSED && self.last[i].0 == s => self.last[i].1,
            Some(s) => {
                let id = self.intern(s);
                let last = &mut self.last[i];
                last.0.clear();
                last.0.push_str(s);
                last.1 = id;
                id
            }
        };
        self.call_ids[i] = Some(id);
        id
    }

    /// Index in `states` of counter `slot` in `scope` for the current call, made on first
    /// sight.
    pub(super) fn state_index(&mut self, slot: usize, scope: Scope, call: &CallView<'_>) -> u32 {
        let which = scope as usize;
        let inst = match self.call_scopes[which] {
            Some(inst) => inst,
            None => {
                let inst = match (scope, call.ids) {
                    (Scope::Grant, Some(ids)) if ids.grant != CallIds::ABSENT => {
                        self.grant_instance(ids, call)
                    }
                    _ => self.instance(scope, call),
                };
                self.call_scopes[which] = Some(inst);
                inst
            }
        };
        (inst as usize * self.stride + slot) as u32
    }

    /// The instance of `scope` for `call`, made on first sight.
    pub(super) fn instance(&mut self, scope: Scope, call: &CallView<'_>) -> u32 {
        let key = self.key(scope, call);
        let next = (self.states.len() / self.stride) as u32;
        let inst = *self.scopes.entry(key).or_insert(next);
        if inst == next {
            self.states.resize(self.states.len() + self.stride, None);
        }
        inst
    }

    /// The grant-scope instance of a call with ids: a grant's calls mostly go to one server,
    /// so the instance of the last (server, grant) pair is kept by grant id and found without
    /// hashing.
    pub(super) fn grant_instance(&mut self, ids: CallIds, call: &CallView<'_>) -> u32 {
        let g = ids.grant as usize;
        if let Some(&(server, inst)) = self.by_grant.get(g) {
            if server == ids.server {
                return inst;
            }
        }
        let inst = self.instance(Scope::Grant, call);
        if self.by_grant.len() <= g {
            self.by_grant.resize(g + 1, (CallIds::ABSENT, 0));
        }
        self.by_grant[g] = (ids.server, inst);
        inst
    }

    pub(super) fn key(&mut self, scope: Scope, call: &CallView<'_>) -> ScopeKey {
        if let Some(ids) = call.ids {
            // Shifted by one so that id 0 never reads as UNUSED; an absent part stays ABSENT.
            let part = |id: u32| {
                if id == CallIds::ABSENT {
                    ABSENT
                } else {
                    id + 1
                }
            };
            return match scope {
                Scope::Global => (UNUSED, UNUSED, UNUSED),
                Scope::Server => (part(ids.server), UNUSED, UNUSED),
                Scope::Grant => (part(ids.server), part(ids.grant), UNUSED),
                Scope::Session => (part(ids.server), part(ids.grant), part(ids.session)),
            };
        }
        match scope {
            Scope::Global => (UNUSED, UNUSED, UNUSED),
            Scope::Server => (self.call_id(0, Some(call.server)), UNUSED, UNUSED),
            Scope::Grant => {
                let server = self.call_id(0, Some(call.server));
                (server, self.call_id(1, call.grant), UNUSED)
            }
            Scope::Session => {
                let server = self.call_id(0, Some(call.server));
                let grant = self.call_id(1, call.grant);
                (server, grant, self.call_id(2, call.session))
            }
        }
    }
}

/// Whether the fixed-window counter state at `index` has room for one more call in the window
/// starting at `start`: the test of [`check_limits`] (`used + 1 <= max`, NaN failing it), a
/// state of an older window counting as empty.
#[inline]
pub(super) fn has_room(
    states: &[Option<CounterState>],
    index: usize,
    start: Nanos,
    max: f64,
) -> bool {
    let used = match states.get(index) {
        Some(Some(CounterState::Fixed { start: s, used })) if *s == start => *used,
        _ => 0.0,
    };
    used + 1.0 <= max
}

/// Add `inc` to a fixed-window counter state for the window starting at `start`; a state of
/// another window (or none) starts over at `inc`.
#[inline]
pub(super) fn charge_fixed(slot: &mut Option<CounterState>, start: Nanos, inc: f64) {
    match slot {
        Some(CounterState::Fixed { start: s, used }) if *s == start => *used += inc,
        other => *other = Some(CounterState::Fixed { start, used: inc }),
    }
}
