//! Pairing requests with their replies to fill `upstream` and `latency_ms`.
//!
//! Calls leave in request order. A call waits in the queue until its reply arrives, its
//! connection closes, or the trace has moved on by [`PAIRING_HORIZON`] without a reply; the
//! calls behind it wait with it. So memory holds the requests still waiting for a reply plus the
//! calls queued behind the oldest of them, never the whole file.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use super::{CallRecord, Nanos, Upstream};

/// How long (in trace time) a request waits for its reply before it leaves without one.
pub(crate) const PAIRING_HORIZON: Nanos = 3600 * 1_000_000_000;

struct Slot<K> {
    rec: CallRecord,
    key: Option<K>,
    done: bool,
}

pub(crate) struct Pairing<K> {
    queue: VecDeque<Slot<K>>,
    /// Sequence number of `queue[0]`.
    first: u64,
    waiting: HashMap<K, u64>,
}

impl<K: Eq + Hash + Clone> Pairing<K> {
    pub(crate) fn new() -> Pairing<K> {
        Pairing {
            queue: VecDeque::new(),
            first: 0,
            waiting: HashMap::new(),
        }
    }

    /// Queue a call; with a key it waits for [`Pairing::reply`]. A key reused while the
    /// earlier request still waits means that reply will never be told apart: the earlier
    /// request leaves without one.
    pub(crate) fn push(&mut self, key: Option<K>, rec: CallRecord) {
        let seq = self.first + self.queue.len() as u64;
        let done = key.is_none();
        if let Some(k) = &key {
            if let Some(old) = self.waiting.insert(k.clone(), seq) {
                self.finish(old);
            }
        }
        self.queue.push_back(Slot { rec, key, done });
    }

    /// Fill the waiting call with this key; false when no call waits for it.
    pub(crate) fn reply(&mut self, key: &K, ts: Nanos, outcome: Upstream) -> bool {
        let Some(seq) = self.waiting.remove(key) else {
            return false;
        };
        if let Some(slot) = self.slot_mut(seq) {
            slot.rec.upstream = Some(outcome);
            slot.rec.latency_ms = Some((ts - slot.rec.ts) as f64 / 1e6);
            slot.done = true;
        }
        true
    }

    /// Replies for these keys will not come (the connection closed): release their calls.
    pub(crate) fn close_where(&mut self, mut closed: impl FnMut(&K) -> bool) {
        let mut gone = Vec::new();
        self.waiting.retain(|k, seq| {
            if closed(k) {
                gone.push(*seq);
                false
            } else {
                true
            }
        });
        for seq in gone {
            self.finish(seq);
        }
    }

    /// The oldest call, if it is complete or has waited past the horizon at trace time `now`.
    pub(crate) fn pop_ready(&mut self, now: Nanos) -> Option<CallRecord> {
        let front = self.queue.front()?;
        if front.done || now.saturating_sub(front.rec.ts) > PAIRING_HORIZON {
            self.pop_front()
        } else {
            None
        }
    }

    /// The oldest call regardless of its reply (end of input).
    pub(crate) fn pop_front(&mut self) -> Option<CallRecord> {
        let slot = self.queue.pop_front()?;
        let seq = self.first;
        self.first += 1;
        if let Some(k) = slot.key {
            if self.waiting.get(&k) == Some(&seq) {
                self.waiting.remove(&k);
            }
        }
        Some(slot.rec)
    }

    fn finish(&mut self, seq: u64) {
        if let Some(slot) = self.slot_mut(seq) {
            slot.done = true;
        }
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot<K>> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.queue.get_mut(i)
    }
}

/// How a JSON-RPC reply ended: `error` → error, `result.isError: true` → tool error, else ok.
pub(crate) fn outcome_of(msg: &serde_json::Map<String, serde_json::Value>) -> Upstream {
    if msg.get("error").is_some_and(|e| !e.is_null()) {
        return Upstream::Error;
    }
    let is_error = msg
        .get("result")
        .and_then(|r| r.get("isError"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if is_error {
        Upstream::ToolError
    } else {
        Upstream::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Args, Origin};

    fn call(ts: Nanos, line: u64) -> CallRecord {
        CallRecord {
            ts,
            server: "s".into(),
            grant: None,
            session: None,
            tool: "t".into(),
            args: Args::Unrecorded,
            id: None,
            recorded: None,
            upstream: None,
            latency_ms: None,
            origin: Origin { file: 0, line },
        }
    }

    const S: Nanos = 1_000_000_000;

    #[test]
    fn calls_leave_in_request_order_once_answered() {
        let mut p = Pairing::new();
        p.push(Some(1), call(0, 1));
        p.push(Some(2), call(S, 2));
        assert!(p.reply(&2, 2 * S, Upstream::Ok));
        // Call 2 is answered but waits behind call 1.
        assert_eq!(p.pop_ready(2 * S), None);
        assert!(p.reply(&1, 3 * S, Upstream::ToolError));
        let first = p.pop_ready(3 * S).unwrap();
        assert_eq!(
            (first.origin.line, first.upstream, first.latency_ms),
            (1, Some(Upstream::ToolError), Some(3000.0))
        );
        let second = p.pop_ready(3 * S).unwrap();
        assert_eq!((second.origin.line, second.latency_ms), (2, Some(1000.0)));
        assert!(!p.reply(&1, 4 * S, Upstream::Ok), "already answered");
    }

    #[test]
    fn unanswered_calls_leave_after_the_horizon_and_late_replies_do_not_pair() {
        let mut p = Pairing::new();
        p.push(Some(1), call(0, 1));
        assert_eq!(p.pop_ready(PAIRING_HORIZON), None);
        let gone = p.pop_ready(PAIRING_HORIZON + 1).unwrap();
        assert_eq!(gone.upstream, None);
        assert!(!p.reply(&1, PAIRING_HORIZON + 2, Upstream::Ok));
    }

    #[test]
    fn closing_and_reusing_keys_release_calls_without_a_reply() {
        let mut p = Pairing::new();
        p.push(Some(("a", 1)), call(0, 1));
        p.push(Some(("b", 1)), call(0, 2));
        p.close_where(|(conn, _)| *conn == "a");
        assert_eq!(p.pop_ready(0).map(|r| r.origin.line), Some(1));
        assert_eq!(p.pop_ready(0), None);
        // Same key again while the first still waits: the first leaves unanswered.
        p.push(Some(("b", 1)), call(S, 3));
        assert!(p.reply(&("b", 1), 2 * S, Upstream::Ok));
        let a = p.pop_ready(2 * S).unwrap();
        let b = p.pop_ready(2 * S).unwrap();
        assert_eq!((a.origin.line, a.upstream), (2, None));
        assert_eq!((b.origin.line, b.upstream), (3, Some(Upstream::Ok)));
        assert_eq!(p.pop_front(), None);
    }
}
