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
///
/// Each scope instance (a grant, a session, …) holds one block of states, one per counter of
/// its scope. Calls come in time order, so once every window of a block has lapsed the block is
/// as good as none: when `states` outgrows [`Counters::sweep_at`] such blocks are dropped, and
/// memory follows the instances live in a window, not every instance the trace ever named (a
/// trace with a new session per call keeps a few windows' worth).
#[derive(Debug, Clone, Default)]
pub(super) struct Counters {
    pub(super) names: HashMap<Box<str>, u32>,
    /// The id the next name interned gets (ids are never reused while a key holds them).
    next_name: u32,
    /// Where each scope instance's block starts in `states`. A call hashes the key of each scope
    /// it meets once, however many limits share that scope; limits then find their state by
    /// index.
    pub(super) scopes: HashMap<ScopeKey, u32>,
    /// Per scope (by `Scope as usize`), the window length and algorithm of each counter of
    /// that scope, in the order of their states in a block.
    blocks: [Vec<(Nanos, Algorithm)>; 4],
    /// Per counter slot, its place in its scope's block.
    pub(super) place: Vec<usize>,
    /// Per counter slot, the fixed window `[start, end)` last computed for it: calls come in
    /// time order, so most calls fall in the window of the call before and skip a division.
    pub(super) windows: Vec<(Nanos, Nanos)>,
    /// The blocks of every scope instance (`None` until a call first charges a counter).
    pub(super) states: Vec<Option<CounterState>>,
    /// When `states` is longer, blocks whose windows have all lapsed are dropped.
    sweep_at: usize,
    /// The lowest `sweep_at` ([`SWEEP_FLOOR`]; tests sweep more often).
    floor: usize,
    /// Reservations of the call being evaluated: state index, the counter's algorithm, the
    /// fixed window the call falls in and the increment (reused, so the hot path does not
    /// allocate).
    pub(super) scratch: Vec<(u32, Algorithm, Nanos, f64)>,
    /// Interned server, grant and session of the call being evaluated, filled on first use:
    /// a call passes several limits of the same scope.
    pub(super) call_ids: [Option<u32>; 3],
    /// By caller grant id: the server of the grant's last call and that pair's grant-scope
    /// block (see [`Counters::grant_instance`]).
    pub(super) by_grant: Vec<(u32, u32)>,
    /// Scope instance of the call being evaluated, per [`Scope`] (in declaration order).
    pub(super) call_scopes: [Option<u32>; 4],
    /// The last string interned for each key part and its id: consecutive calls often come
    /// from the same server and grant, and a comparison is cheaper than a map lookup.
    pub(super) last: [(String, u32); 3],
}

/// The fewest states [`Counters::states`] holds before blocks are swept.
const SWEEP_FLOOR: usize = 1 << 16;

/// Each counter's place in the block of its scope: counters of one scope, in slot order.
pub(super) fn places(counters: &[Counter]) -> Vec<usize> {
    let mut next = [0usize; 4];
    counters
        .iter()
        .map(|c| {
            let n = &mut next[c.scope as usize];
            *n += 1;
            *n - 1
        })
        .collect()
}

/// The scope a key is of (see [`Counters::key`]: parts a scope does not use are `UNUSED`).
fn scope_of(key: &ScopeKey) -> Scope {
    match key {
        (_, _, x) if *x != UNUSED => Scope::Session,
        (_, g, _) if *g != UNUSED => Scope::Grant,
        (s, _, _) if *s != UNUSED => Scope::Server,
        _ => Scope::Global,
    }
}

impl Counters {
    /// Empty counters for a policy's counters.
    pub(super) fn new(counters: &[Counter]) -> Counters {
        let mut blocks: [Vec<(Nanos, Algorithm)>; 4] = Default::default();
        for c in counters {
            blocks[c.scope as usize].push((window::window_nanos(c.window_secs), c.algorithm));
        }
        Counters {
            next_name: 1,
            blocks,
            place: places(counters),
            windows: vec![(1, 0); counters.len()],
            sweep_at: SWEEP_FLOOR,
            floor: SWEEP_FLOOR,
            ..Counters::default()
        }
    }

    /// Before a call at `now` is decided: drop the blocks no later call can find a count in,
    /// once `states` has grown past the last sweep's mark (twice what that sweep kept).
    #[inline]
    pub(super) fn settle(&mut self, now: Nanos) {
        if self.states.len() > self.sweep_at {
            self.sweep(now);
        }
    }

    /// Sweep whenever `states` is longer than `floor` (and twice what the last sweep kept).
    #[cfg(test)]
    pub(super) fn sweep_from(&mut self, floor: usize) {
        self.floor = floor;
        self.sweep_at = floor;
    }

    /// Drop every block whose states have all lapsed at `now` (a fixed window before the one
    /// holding `now`, a sliding log with no entry inside the window ending at `now`), and the
    /// names only they used. Calls come in time order, so what is dropped would count as
    /// nothing for every later call.
    pub(super) fn sweep(&mut self, now: Nanos) {
        let Counters {
            scopes,
            states,
            blocks,
            ..
        } = self;
        let mut kept = Vec::with_capacity(states.len() / 2);
        scopes.retain(|key, base| {
            let block = &blocks[scope_of(key) as usize];
            let start = *base as usize;
            let Some(old) = states.get_mut(start..start + block.len()) else {
                return false;
            };
            let lapsed = old.iter().zip(block).all(|(state, &(len, _))| match state {
                None => true,
                Some(CounterState::Fixed { start, .. }) => {
                    window::fixed_window_start(now, len) > *start
                }
                Some(CounterState::Sliding(log)) => log.lapsed(now, len),
            });
            if lapsed {
                return false;
            }
            *base = kept.len() as u32;
            kept.extend(old.iter_mut().map(Option::take));
            true
        });
        *states = kept;
        self.by_grant.clear();
        if !self.names.is_empty() {
            let used: rustc_hash::FxHashSet<u32> = self
                .scopes
                .keys()
                .flat_map(|&(a, b, c)| [a, b, c])
                .collect();
            self.names.retain(|_, id| used.contains(id));
            self.last = Default::default();
        }
        self.sweep_at = self.floor.max(2 * self.states.len());
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
            .and_then(|&base| self.states.get(base as usize + self.place[slot]))
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
        let id = self.next_name;
        self.next_name += 1;
        self.names.insert(Box::from(s), id);
        id
    }

    /// Id of part `i` (0 server, 1 grant, 2 session) of the current call, interned once per call.
    pub(super) fn call_id(&mut self, i: usize, s: Option<&str>) -> u32 {
        if let Some(id) = self.call_ids[i] {
            return id;
        }
        let id = self.part_id(i, s);
        self.call_ids[i] = Some(id);
        id
    }

    /// Id of `s` as part `i` of a key (0 server, 1 grant, 2 session): the last one's again
    /// without hashing.
    fn part_id(&mut self, i: usize, s: Option<&str>) -> u32 {
        match s {
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
        }
    }

    /// Index in `states` of counter `slot` (of `scope`) for the current call, its block made on
    /// first sight.
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
        (inst as usize + self.place[slot]) as u32
    }

    /// Where the block of the instance of `scope` for `call` starts in `states`, made on first
    /// sight.
    pub(super) fn instance(&mut self, scope: Scope, call: &CallView<'_>) -> u32 {
        let key = self.key(scope, call);
        let next = self.states.len() as u32;
        let base = *self.scopes.entry(key).or_insert(next);
        if base == next {
            let len = self.states.len() + self.blocks[scope as usize].len();
            self.states.resize(len, None);
        }
        base
    }

    /// The grant-scope block of a call with ids: a grant's calls mostly go to one server, so
    /// the block of the last (server, grant) pair is kept by grant id and found without
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
                // Sessions by name: see `CallIds`.
                Scope::Session => {
                    let session = self.part_id(2, call.session);
                    (part(ids.server), part(ids.grant), session)
                }
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
