//! Pairing requests with their replies to fill `upstream` and `latency_ms`.
//!
//! Recordings with replies (MCP JSON-RPC, Claude Desktop logs, agent transcripts) pair every
//! `tools/call` request with its reply strictly by key — what the format names a request by,
//! such as (server, session, id) — however many lines apart they are and whatever their
//! timestamps say. The [`Pairer`] is fed every line's messages in file order; it keeps the keys
//! (and times) of the requests still waiting and, for each call with an id, its place, its
//! latency and how it ended ([`Answers`], about six bytes a call), and it tells how many calls
//! are settled: replied to, their id used again, or the file ended.
//!
//! A recording is read once where replies come soon: each call waits until it and every call
//! before it are settled, then goes out with its reply ([`PairedSource`] line by line, and
//! `jsonl_batch::RpcSource` chunk by chunk for JSON-RPC). When too many wait (a request never
//! answered, or a recording concatenated session by session), what waits is dropped, the rest
//! of the file is read for the pairing only, and a second read hands out the calls from the
//! first one dropped. So memory stays bounded, and the calls and counts are the same either
//! way.
//!
//! A JSON-RPC reply may leave out the server or the session its request names (the spec's
//! reply envelope has no `server`): its key is then loose ([`PairKey`]), and when no request
//! waits under the whole of it, it pairs with the earliest one waiting under the parts it
//! names.
//!
//! A request whose key is used again before a reply came, or that has no reply by the end of
//! the file, is a request without a reply; a reply whose key no request waits for is a reply
//! without a request. Both are counted in [`Replies`] with the first few named by line. A
//! request the client cancelled (`notifications/cancelled`) still waits, for a server may
//! answer it all the same; if none does, it is counted as cancelled too.

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use rustc_hash::FxHashMap as HashMap;
use serde_json::{Map, Value};

use super::source::{Ctx, LineError, Lines, Source};
use super::{CallRecord, Nanos, Origin, ReadStats, Skipped, TraceError, Upstream};

/// How many requests without a reply and replies without a request are named, each.
const EXAMPLES_PER_KIND: usize = 5;

/// What a format names a request by, for its reply to find it.
pub(crate) trait PairKey: Eq + Hash + Clone {
    /// The parts a reply's key leaves out, as bits ([`NO_SERVER`], [`NO_SESSION`]); 0 for a reply
    /// that names all its key has.
    fn left_out(&self) -> u8;
    /// This (request's) key with the `parts` left out, as a reply that leaves them out has it.
    fn leave_out(&self, parts: u8) -> Self;
}

/// A reply's key names no server ([`PairKey::left_out`]).
pub(crate) const NO_SERVER: u8 = 1;
/// A reply's key names no session ([`PairKey::left_out`]).
pub(crate) const NO_SESSION: u8 = 2;

/// Keys that always name all they have (a tool-use id, a Claude Desktop connection's id).
macro_rules! whole_keys {
    ($($t:ty),*) => {$(
        impl PairKey for $t {
            fn left_out(&self) -> u8 {
                0
            }
            fn leave_out(&self, _parts: u8) -> Self {
                self.clone()
            }
        }
    )*};
}
whole_keys!(String, (super::Sym, u32, String));

/// What one line of a recording with replies says.
pub(crate) enum Message<K> {
    /// A `tools/call` request; `key` is `None` when it has no id (a reply cannot name it).
    Call {
        key: Option<K>,
        rec: Box<CallRecord>,
    },
    /// Another request with an id: its reply is not a call's.
    Request(K),
    /// The client cancels the request with this key (`notifications/cancelled`).
    Cancel(K),
    /// The request with this key was never sent (the agent did not run the call: a permission
    /// rule, the user refused): it is settled without a reply, and its call has no outcome.
    Unsent(K),
    /// A reply, when it came and how the call ended.
    Reply {
        key: K,
        ts: Nanos,
        outcome: Upstream,
    },
    /// Anything else; the parser has counted it.
    Other,
}

/// A format's line parser. It may be run over the file twice, from the start each time, so
/// any state it keeps (connection numbers, …) evolves the same way in both reads.
///
/// A format with one message per line implements [`Exchange::message`]; one whose lines may
/// carry several (an agent transcript line with parallel tool calls, or with several results)
/// implements [`Exchange::messages`] instead.
pub(crate) trait Exchange: Send {
    type Key: PairKey + Send;
    /// What `text` (the line numbered `origin.line`) says. Under `index` the call's arguments
    /// are not needed.
    fn message(
        &mut self,
        _text: &str,
        _origin: Origin,
        _index: bool,
        _cx: &mut Ctx<'_>,
    ) -> Result<Message<Self::Key>, LineError> {
        Ok(Message::Other)
    }

    /// Every message of the line, in line order, appended to `out`. A bad line adds nothing.
    fn messages(
        &mut self,
        text: &str,
        origin: Origin,
        index: bool,
        cx: &mut Ctx<'_>,
        out: &mut Vec<Message<Self::Key>>,
    ) -> Result<(), LineError> {
        out.push(self.message(text, origin, index, cx)?);
        Ok(())
    }
}

/// How the replies of a recording paired with its requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replies {
    /// `tools/call` requests paired with their reply.
    pub paired: u64,
    /// `tools/call` requests with an id that no reply answered.
    pub requests_without_reply: u64,
    /// Of the requests without a reply, those the client had cancelled.
    pub cancelled: u64,
    /// Replies that answer no request read before them.
    pub replies_without_request: u64,
    /// The first few of each, by file and line.
    pub examples: Vec<Skipped>,
}

impl Replies {
    pub(crate) fn absorb(&mut self, other: Replies) {
        self.paired += other.paired;
        self.requests_without_reply += other.requests_without_reply;
        self.cancelled += other.cancelled;
        self.replies_without_request += other.replies_without_request;
        self.examples.extend(other.examples);
    }

    /// The warnings every report shows for unpaired messages; empty when all paired.
    pub fn warning_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.requests_without_reply == 0 && self.replies_without_request == 0 {
            return lines;
        }
        lines.push(format!(
            "{} without a reply{}, {} without a request ({} paired); their calls have no upstream outcome",
            plural(self.requests_without_reply, "request", "requests"),
            cancelled_note(self.cancelled),
            plural(self.replies_without_request, "reply", "replies"),
            self.paired
        ));
        for s in &self.examples {
            lines.push(format!("  {}:{}: {}", s.file, s.line, s.reason));
        }
        lines
    }
}

/// ` (N cancelled by the client)`, said after the count of requests without a reply when
/// `cancelled` of them were.
pub(crate) fn cancelled_note(cancelled: u64) -> String {
    if cancelled == 0 {
        return String::new();
    }
    format!(" ({cancelled} cancelled by the client)")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Where a call stands in its file: its line, and its place among the calls of that line.
pub(crate) type Slot = (u64, u32);

/// How many entries a block of a [`Blocks`] holds.
const BLOCK: usize = 1 << 16;

/// A queue of values in blocks of [`BLOCK`]: it grows without copying what it holds or
/// reserving more than a block past its end, and frees each block once read past it.
struct Blocks<T> {
    blocks: VecDeque<Vec<T>>,
    /// The index of the first value of the first block.
    first: usize,
    /// How many values of the first block were read.
    read: usize,
}

impl<T: Copy> Blocks<T> {
    fn new() -> Blocks<T> {
        Blocks {
            blocks: VecDeque::new(),
            first: 0,
            read: 0,
        }
    }

    fn push(&mut self, v: T) {
        match self.blocks.back_mut() {
            Some(b) if b.len() < BLOCK => b.push(v),
            _ => {
                let mut b = Vec::with_capacity(BLOCK);
                b.push(v);
                self.blocks.push_back(b);
            }
        }
    }

    /// The value at index `i` (counted from the first ever pushed), while not yet read past.
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let i = i.checked_sub(self.first)?;
        self.blocks.get_mut(i / BLOCK)?.get_mut(i % BLOCK)
    }

    /// The next value not read yet.
    fn next(&mut self) -> Option<T> {
        let front = self.blocks.front()?;
        let v = *front.get(self.read)?;
        self.read += 1;
        if self.read == BLOCK {
            self.blocks.pop_front();
            self.first += BLOCK;
            self.read = 0;
        }
        Some(v)
    }
}

/// Every call with an id, in request order, with its reply once found: what the first read
/// of a recording with replies leaves for the second. About six bytes a call: its slot as the
/// distance from the previous one (a varint, one byte for a call alone on a line a few lines
/// on), and its latency (the reply's time less the request's, never below 0) in nanoseconds,
/// the low 32 bits in four bytes and the next six in a fifth beside the outcome's two bits (none
/// yet, or how the call ended). A latency of [`LONG_LATENCY`] or more (over four and a half
/// minutes) is kept whole in a map beside.
pub(crate) struct Answers {
    slots: Blocks<u8>,
    /// The slot of the last call pushed.
    last: Slot,
    /// The slot of the last call read.
    read: Slot,
    low: Blocks<u32>,
    /// The outcome ([`Answers::code`], 0 for no reply) in bits 0–1, latency bits 32–37 in 2–7.
    high: Blocks<u8>,
    /// Latencies of [`LONG_LATENCY`] or more, by call number.
    long: HashMap<usize, u64>,
    len: usize,
    /// While reading: the next call's number, and a call read ahead of the slot asked for.
    next: usize,
    peeked: Option<(Slot, Option<(u64, Upstream)>)>,
}

/// The least latency, in nanoseconds, kept in [`Answers::long`]: 2^38 − 1 (about 275 s).
const LONG_LATENCY: u64 = (1 << 38) - 1;

impl Answers {
    pub(crate) fn new() -> Answers {
        Answers {
            slots: Blocks::new(),
            last: (0, 0),
            read: (0, 0),
            low: Blocks::new(),
            high: Blocks::new(),
            long: HashMap::default(),
            len: 0,
            next: 0,
            peeked: None,
        }
    }

    fn code(outcome: Upstream) -> u8 {
        match outcome {
            Upstream::Ok => 1,
            Upstream::ToolError => 2,
            Upstream::Error => 3,
        }
    }

    /// A call asked at `slot` (after every slot pushed before); returns its number.
    fn push(&mut self, slot: Slot) -> usize {
        // The line's distance, doubled, plus one when the call is not its line's first; then
        // the place in the line when it is not.
        let step = slot.0 - self.last.0;
        self.put_varint(step << 1 | u64::from(slot.1 != 0));
        if slot.1 != 0 {
            self.put_varint(slot.1.into());
        }
        self.last = slot;
        self.low.push(0);
        self.high.push(0);
        self.len += 1;
        self.len - 1
    }

    /// The reply of the call pushed as number `i`: its latency in nanoseconds, and how the
    /// call ended.
    fn answer(&mut self, i: usize, latency: u64, outcome: Upstream) {
        let latency = if latency >= LONG_LATENCY {
            self.long.insert(i, latency);
            LONG_LATENCY
        } else {
            latency
        };
        if let Some(low) = self.low.get_mut(i) {
            *low = latency as u32;
        }
        if let Some(high) = self.high.get_mut(i) {
            *high = ((latency >> 32) as u8) << 2 | Answers::code(outcome);
        }
    }

    /// `v` in seven-bit groups, low first, the high bit set on all but the last.
    fn put_varint(&mut self, mut v: u64) {
        loop {
            let more = v >= 0x80;
            self.slots
                .push((v as u8 & 0x7f) | if more { 0x80 } else { 0 });
            v >>= 7;
            if !more {
                break;
            }
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = self.slots.next()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
        }
    }

    /// The next call in request order: its slot, and its reply (latency, outcome) if it had
    /// one.
    fn next_call(&mut self) -> Option<(Slot, Option<(u64, Upstream)>)> {
        if self.next == self.len {
            return None;
        }
        let head = self.varint()?;
        let line = self.read.0 + (head >> 1);
        let place = if head & 1 == 1 {
            self.varint()? as u32
        } else {
            0
        };
        self.read = (line, place);
        let (low, high) = (self.low.next()?, self.high.next()?);
        let mut latency = u64::from(high >> 2) << 32 | u64::from(low);
        if latency == LONG_LATENCY {
            latency = self.long.remove(&self.next).unwrap_or(latency);
        }
        self.next += 1;
        let outcome = match high & 3 {
            0 => None,
            1 => Some(Upstream::Ok),
            2 => Some(Upstream::ToolError),
            _ => Some(Upstream::Error),
        };
        Some((self.read, outcome.map(|o| (latency, o))))
    }

    /// The reply of the call at `slot` (its latency in nanoseconds, and how the call ended):
    /// calls are asked for in slot order, and the calls before `slot` that were not asked for
    /// are passed over.
    pub(crate) fn take(&mut self, slot: Slot) -> Option<(u64, Upstream)> {
        self.take_settled(slot, self.len)
    }

    /// [`Answers::take`] reading no further than the first `settled` calls: those after may
    /// still get their reply.
    fn take_settled(&mut self, slot: Slot, settled: usize) -> Option<(u64, Upstream)> {
        loop {
            let (at, reply) = match self.peeked.take() {
                Some(p) => p,
                None if self.next < settled => self.next_call()?,
                None => return None,
            };
            match at.cmp(&slot) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return reply,
                std::cmp::Ordering::Greater => {
                    self.peeked = Some((at, reply));
                    return None;
                }
            }
        }
    }
}

/// The notification by which the client cancels a request of its own.
pub(crate) const CANCELLED: &str = "notifications/cancelled";

/// The id of the request a `notifications/cancelled` message names (`params.requestId`), when
/// it names one as a string or a number; a cancel that names none is only counted.
pub(crate) fn cancelled(msg: &Map<String, Value>) -> Option<&Value> {
    match msg.get("params")?.get("requestId")? {
        id @ (Value::String(_) | Value::Number(_)) => Some(id),
        _ => None,
    }
}

/// What the first read needs of a message: [`Message`] without the call's record.
pub(crate) enum Pair<K> {
    /// A `tools/call` request, with its key when it has an id, and its time.
    Call(Option<K>, Nanos),
    /// Another request with an id.
    Request(K),
    /// The client cancels a request.
    Cancel(K),
    /// A request was never sent.
    Unsent(K),
    /// A reply.
    Reply {
        key: K,
        ts: Nanos,
        outcome: Upstream,
    },
    /// Anything else.
    Other,
}

impl<K> Pair<K> {
    /// The key the message names, if any.
    pub(crate) fn key_mut(&mut self) -> Option<&mut K> {
        match self {
            Pair::Call(key, _) => key.as_mut(),
            Pair::Request(key) | Pair::Cancel(key) | Pair::Unsent(key) => Some(key),
            Pair::Reply { key, .. } => Some(key),
            Pair::Other => None,
        }
    }
}

impl<K> From<Message<K>> for Pair<K> {
    fn from(m: Message<K>) -> Pair<K> {
        match m {
            Message::Call { key, rec } => Pair::Call(key, rec.ts),
            Message::Request(key) => Pair::Request(key),
            Message::Cancel(key) => Pair::Cancel(key),
            Message::Unsent(key) => Pair::Unsent(key),
            Message::Reply { key, ts, outcome } => Pair::Reply { key, ts, outcome },
            Message::Other => Pair::Other,
        }
    }
}

/// A request waiting for its reply in the first read: a call by its number in
/// [`Pairer::asked`], its line and its time.
enum Waiting {
    Call(usize, u64, Nanos),
    /// A request that is not a call, and its line.
    Other(u64),
}

impl Waiting {
    fn line(&self) -> u64 {
        match *self {
            Waiting::Call(_, line, _) | Waiting::Other(line) => line,
        }
    }
}

/// A reply that came before any request under its key: its line, time and outcome.
struct Early {
    line: u64,
    ts: Nanos,
    outcome: Upstream,
}

/// How many replies may wait for a request written after them; past that they are all counted
/// as replies without a request (a file of replies alone stays bounded in memory).
const EARLY_REPLIES: usize = 1 << 16;

/// The keys of waiting requests by line, under their key with some parts left out.
type Index<K> = HashMap<K, BTreeMap<u64, K>>;

/// The pairing, fed the messages of a file line by line in file order.
pub(crate) struct Pairer<K> {
    name: String,
    waiting: HashMap<K, Waiting>,
    /// From call number `open_from` on, whether each call still waits for its reply: a reply,
    /// its id used again or the end of the file settles it.
    open: VecDeque<bool>,
    open_from: usize,
    /// Every call with an id, in request order: replies are filled in where they belong, so
    /// the answers come out in request order without a sort (replies arrive in their own
    /// order, and sorting a million of them took a tenth of a second between the two reads).
    asked: Answers,
    counts: Replies,
    unanswered: Vec<Skipped>,
    other_replies: u64,
    /// Calls the client cancelled that still wait, by number, and the line of the cancel.
    cancelled: HashMap<usize, u64>,
    /// Replies written before their request (a recorder writing from two threads, a file
    /// sorted under clock skew), by key: the next call under that key asked at or before the
    /// reply's time takes it. Replies that name their whole key only; at most [`EARLY_REPLIES`].
    early: HashMap<K, Early>,
    /// Lines of replies that answered no request, the first few kept (for the examples).
    orphans: Vec<u64>,
    /// The keys of the requests waiting, by their key with some parts left out, then by line:
    /// one index for each set of parts a loose reply has left out, made when the first such
    /// reply finds no request under its whole key, kept from then on. (The formats with loose
    /// keys have one message a line, so a line names one request.)
    by_rest: Vec<(u8, Index<K>)>,
}

impl<K: PairKey> Pairer<K> {
    /// Pairing for the file shown as `name`.
    pub(crate) fn new(name: &str) -> Pairer<K> {
        Pairer {
            name: name.to_string(),
            waiting: HashMap::default(),
            open: VecDeque::new(),
            open_from: 0,
            asked: Answers::new(),
            counts: Replies::default(),
            unanswered: Vec::new(),
            other_replies: 0,
            cancelled: HashMap::default(),
            early: HashMap::default(),
            orphans: Vec::new(),
            by_rest: Vec::new(),
        }
    }

    /// The reply at `line` answers no request.
    fn orphan(&mut self, line: u64) {
        self.counts.replies_without_request += 1;
        self.orphans.push(line);
        if self.orphans.len() > 4 * EXAMPLES_PER_KIND {
            self.orphans.sort_unstable();
            self.orphans.truncate(EXAMPLES_PER_KIND);
        }
    }

    /// Call number `i`, waiting from `old`, will have no reply: its id was used again at `line`.
    fn reused(&mut self, i: usize, old: u64, line: u64) {
        self.settle(i);
        self.counts.requests_without_reply += 1;
        let cancel = self.cancelled.remove(&i).map_or_else(String::new, |at| {
            self.counts.cancelled += 1;
            format!(" (cancelled by the client at line {at})")
        });
        let e = self.example(
            old,
            format!("request without a reply{cancel}: its id was used again at line {line}"),
        );
        self.unanswered.push(e);
        self.unanswered.sort_by_key(|s| s.line);
        self.unanswered.truncate(EXAMPLES_PER_KIND);
    }

    /// The request a loose reply `key` answers: the earliest of those waiting under the parts
    /// it names.
    fn loose_match(&mut self, key: &K) -> Option<Waiting> {
        let parts = key.left_out();
        let at = match self.by_rest.iter().position(|(p, _)| *p == parts) {
            Some(at) => at,
            None => {
                let mut index: Index<K> = HashMap::default();
                for (k, w) in &self.waiting {
                    (index.entry(k.leave_out(parts)).or_default()).insert(w.line(), k.clone());
                }
                self.by_rest.push((parts, index));
                self.by_rest.len() - 1
            }
        };
        let (_, k) = self.by_rest[at]
            .1
            .get(&key.leave_out(parts))?
            .first_key_value()?;
        let k = k.clone();
        let w = self.waiting.remove(&k)?;
        self.note_answered(&k, w.line());
        Some(w)
    }

    /// A request waits under `key` from `line` on (in place of the one at `before`).
    fn note_waiting(&mut self, key: &K, line: u64, before: Option<u64>) {
        for (parts, index) in &mut self.by_rest {
            let lines = index.entry(key.leave_out(*parts)).or_default();
            if let Some(before) = before {
                lines.remove(&before);
            }
            lines.insert(line, key.clone());
        }
    }

    /// The request under `key`, waiting from `line` on, has its reply.
    fn note_answered(&mut self, key: &K, line: u64) {
        for (parts, index) in &mut self.by_rest {
            let rest = key.leave_out(*parts);
            if let Some(lines) = index.get_mut(&rest) {
                lines.remove(&line);
                if lines.is_empty() {
                    index.remove(&rest);
                }
            }
        }
    }

    fn example(&self, line: u64, reason: String) -> Skipped {
        Skipped {
            file: self.name.clone(),
            line,
            reason,
        }
    }

    /// Call number `i` has its reply, or will never have one.
    fn settle(&mut self, i: usize) {
        if let Some(open) = i
            .checked_sub(self.open_from)
            .and_then(|i| self.open.get_mut(i))
        {
            *open = false;
        }
        while self.open.front() == Some(&false) {
            self.open.pop_front();
            self.open_from += 1;
        }
    }

    /// How many calls with an id the lines so far asked.
    pub(crate) fn calls(&self) -> usize {
        self.asked.len
    }

    /// Every key the pairing still holds: of the requests waiting, of the replies that came
    /// before their request, and of the indexes of loose keys.
    fn keys(&self, mut f: impl FnMut(&K)) {
        self.waiting.keys().for_each(&mut f);
        self.early.keys().for_each(&mut f);
        for (_, index) in &self.by_rest {
            for (rest, lines) in index {
                f(rest);
                lines.values().for_each(&mut f);
            }
        }
    }

    /// How many calls with an id, counted in request order, are settled: each one before
    /// this number has its reply or will never have one.
    pub(crate) fn settled(&self) -> usize {
        self.open_from
    }

    /// [`Answers::take`] while lines are still fed: only settled calls are read.
    pub(crate) fn take(&mut self, slot: Slot) -> Option<(u64, Upstream)> {
        self.asked.take_settled(slot, self.open_from)
    }

    /// The messages of line `line`, in line order.
    pub(crate) fn line(&mut self, line: u64, msgs: impl IntoIterator<Item = Pair<K>>) {
        let mut calls = 0;
        for msg in msgs {
            let (key, now) = match msg {
                Pair::Call(Some(key), ts) => {
                    calls += 1;
                    let i = self.asked.push((line, calls - 1));
                    self.open.push_back(true);
                    (key, Waiting::Call(i, line, ts))
                }
                Pair::Call(None, _) => {
                    calls += 1;
                    continue;
                }
                Pair::Request(key) => (key, Waiting::Other(line)),
                Pair::Cancel(key) => {
                    // A call cancelled twice keeps the first cancel's line.
                    if let Some(&Waiting::Call(i, ..)) = self.waiting.get(&key) {
                        self.cancelled.entry(i).or_insert(line);
                    }
                    continue;
                }
                Pair::Unsent(key) => {
                    // Settled without a reply, and not counted as waiting for one.
                    if let Some(w) = self.waiting.remove(&key) {
                        if !self.by_rest.is_empty() {
                            self.note_answered(&key, w.line());
                        }
                        if let Waiting::Call(i, ..) = w {
                            self.cancelled.remove(&i);
                            self.settle(i);
                        }
                    }
                    continue;
                }
                Pair::Reply { key, ts, outcome } => {
                    let found = match self.waiting.remove(&key) {
                        Some(w) => {
                            if !self.by_rest.is_empty() {
                                self.note_answered(&key, w.line());
                            }
                            Some(w)
                        }
                        None if key.left_out() != 0 => self.loose_match(&key),
                        None => None,
                    };
                    match found {
                        Some(Waiting::Call(i, _, asked)) => {
                            self.counts.paired += 1;
                            if !self.cancelled.is_empty() {
                                self.cancelled.remove(&i);
                            }
                            // Clocks of client and server may disagree: a reply never comes
                            // before its request.
                            let latency = ts.saturating_sub(asked).max(0) as u64;
                            self.asked.answer(i, latency, outcome);
                            self.settle(i);
                        }
                        Some(Waiting::Other(_)) => self.other_replies += 1,
                        // Its request may come later in the file.
                        None if key.left_out() == 0 => {
                            if self.early.len() >= EARLY_REPLIES {
                                let lines: Vec<u64> =
                                    self.early.drain().map(|(_, e)| e.line).collect();
                                lines.into_iter().for_each(|l| self.orphan(l));
                            }
                            let early = Early { line, ts, outcome };
                            if let Some(before) = self.early.insert(key, early) {
                                self.orphan(before.line);
                            }
                        }
                        None => self.orphan(line),
                    }
                    continue;
                }
                Pair::Other => continue,
            };
            // A call whose reply came first (at or after the call's time) is answered now.
            if let Waiting::Call(i, _, asked) = now {
                let early =
                    !self.early.is_empty() && self.early.get(&key).is_some_and(|e| e.ts >= asked);
                if early {
                    let e = self.early.remove(&key).expect("looked up");
                    if let Some(w) = self.waiting.remove(&key) {
                        self.note_answered(&key, w.line());
                        if let Waiting::Call(j, old, _) = w {
                            self.reused(j, old, line);
                        }
                    }
                    self.counts.paired += 1;
                    self.asked.answer(i, (e.ts - asked) as u64, e.outcome);
                    self.settle(i);
                    continue;
                }
            }
            if !self.by_rest.is_empty() {
                let before = self.waiting.get(&key).map(Waiting::line);
                self.note_waiting(&key, line, before);
            }
            if let Some(Waiting::Call(i, old, _)) = self.waiting.insert(key, now) {
                self.reused(i, old, line);
            }
        }
    }

    /// The calls' replies in request order, the counts, and how many replies answered
    /// requests that are not calls.
    pub(crate) fn finish(mut self) -> (Answers, Replies, u64) {
        let early: Vec<u64> = self.early.drain().map(|(_, e)| e.line).collect();
        early.into_iter().for_each(|l| self.orphan(l));
        self.orphans.sort_unstable();
        self.orphans.truncate(EXAMPLES_PER_KIND);
        let Pairer {
            name,
            waiting,
            asked,
            mut counts,
            mut unanswered,
            other_replies,
            cancelled,
            orphans,
            ..
        } = self;
        counts
            .examples
            .extend(orphans.into_iter().map(|line| Skipped {
                file: name.clone(),
                line,
                reason: "reply without a request: no request waits for its id".into(),
            }));
        let mut left: Vec<(u64, Option<u64>)> = waiting
            .into_values()
            .filter_map(|w| match w {
                Waiting::Call(i, line, _) => Some((line, cancelled.get(&i).copied())),
                Waiting::Other(_) => None,
            })
            .collect();
        counts.requests_without_reply += left.len() as u64;
        counts.cancelled += left.iter().filter(|(_, c)| c.is_some()).count() as u64;
        left.sort_unstable();
        unanswered.extend(
            left.into_iter()
                .take(EXAMPLES_PER_KIND)
                .map(|(line, cancel)| Skipped {
                    file: name.clone(),
                    line,
                    reason: match cancel {
                        Some(at) => format!(
                            "request without a reply in the file (cancelled by the client at line {at})"
                        ),
                        None => "request without a reply in the file".into(),
                    },
                }),
        );
        unanswered.sort_by_key(|s| s.line);
        unanswered.truncate(EXAMPLES_PER_KIND);
        counts.examples.extend(unanswered);
        counts.examples.sort_by_key(|s| s.line);
        (asked, counts, other_replies)
    }
}

/// The pairing of a recording's calls with their replies: under way while the recording is
/// read, then done.
pub(crate) enum Pairing<K> {
    Open(Box<Pairer<K>>),
    Done(Box<Answers>),
}

impl<K: PairKey> Pairing<K> {
    /// Pairing for the file shown as `name`.
    pub(crate) fn new(name: &str) -> Pairing<K> {
        Pairing::Open(Box::new(Pairer::new(name)))
    }

    /// Feed the messages of line `line` (while open).
    pub(crate) fn line(&mut self, line: u64, msgs: impl IntoIterator<Item = Pair<K>>) {
        if let Pairing::Open(p) = self {
            p.line(line, msgs);
        }
    }

    /// How many calls with an id the lines so far asked (while open).
    pub(crate) fn calls(&self) -> usize {
        match self {
            Pairing::Open(p) => p.calls(),
            Pairing::Done(_) => 0,
        }
    }

    /// Every key the pairing still holds (none once done): what a reader that numbers the
    /// parts of keys itself must not forget.
    pub(crate) fn keys(&self, f: impl FnMut(&K)) {
        if let Pairing::Open(p) = self {
            p.keys(f);
        }
    }

    /// How many calls with an id, in request order, are settled (see [`Pairer::settled`]).
    pub(crate) fn settled(&self) -> usize {
        match self {
            Pairing::Open(p) => p.settled(),
            Pairing::Done(_) => usize::MAX,
        }
    }

    /// The reply of the settled call at `slot` (see [`Answers::take`]).
    pub(crate) fn take(&mut self, slot: Slot) -> Option<(u64, Upstream)> {
        match self {
            Pairing::Open(p) => p.take(slot),
            Pairing::Done(a) => a.take(slot),
        }
    }

    /// The end of the file: every call is settled. The counts, and how many replies answered
    /// requests that are not calls (the first time only).
    pub(crate) fn finish(&mut self) -> Option<(Replies, u64)> {
        let Pairing::Open(_) = self else { return None };
        let Pairing::Open(pairer) =
            std::mem::replace(self, Pairing::Done(Box::new(Answers::new())))
        else {
            return None;
        };
        let (answers, counts, other) = pairer.finish();
        *self = Pairing::Done(Box::new(answers));
        Some((counts, other))
    }
}

/// Calls a [`PairedSource`] holds back, waiting for replies, before it reads the file twice.
const HOLD_CALLS: usize = 1 << 16;

/// A recording with replies: its calls in file order, each with its reply.
///
/// The file is read once where replies come soon: each line's messages feed the pairing in
/// file order, and its calls (and the line, if bad) wait until every call up to them is
/// settled — replied to, its id used again, or the file ended. When more than [`HOLD_CALLS`]
/// calls and bad lines wait, they are dropped and the rest of the file is read for the
/// pairing only; a second read then runs from the start (the format's state evolving as in
/// the first) and hands out the calls from the first line dropped.
pub(crate) struct PairedSource<E: Exchange> {
    lines: Lines,
    /// The second read's lines and parser, for when too many calls wait.
    again: (Lines, E),
    file: u32,
    exchange: E,
    hold: usize,
    pairing: Pairing<E::Key>,
    held: VecDeque<Held>,
    stage: Stage,
    /// The pairing's counts, handed to the stats at the end.
    counts: Option<(Replies, u64)>,
    scratch: Vec<Message<E::Key>>,
    pairs: Vec<Pair<E::Key>>,
}

/// Where a [`PairedSource`] stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Calls and replies read at once.
    One,
    /// The second read: lines before the first are passed over, and lines before the second
    /// were counted (ignored kinds) by the first read.
    Second(u64, u64),
    /// Everything is read.
    Done,
}

/// What waits in a [`PairedSource`]: a call at its slot, or a bad line; each with the calls
/// with an id asked up to its line.
enum Held {
    Call(Box<CallRecord>, Slot, usize),
    Bad(u64, LineError, usize),
}

impl Held {
    fn asked(&self) -> usize {
        match self {
            Held::Call(_, _, n) | Held::Bad(_, _, n) => *n,
        }
    }
}

impl<E: Exchange> PairedSource<E> {
    /// Read `lines` (the file numbered `file`, shown as `name`); `again` reads the same file
    /// from its start, if too many calls wait for replies.
    pub(crate) fn new(
        fresh: impl Fn() -> E,
        lines: Lines,
        again: Lines,
        file: u32,
        name: &str,
    ) -> PairedSource<E> {
        PairedSource::holding(fresh, lines, again, file, name, HOLD_CALLS)
    }

    /// [`PairedSource::new`] holding at most `hold` calls and bad lines.
    pub(crate) fn holding(
        fresh: impl Fn() -> E,
        lines: Lines,
        again: Lines,
        file: u32,
        name: &str,
        hold: usize,
    ) -> PairedSource<E> {
        PairedSource {
            lines,
            again: (again, fresh()),
            file,
            exchange: fresh(),
            hold,
            pairing: Pairing::new(name),
            held: VecDeque::new(),
            stage: Stage::One,
            counts: None,
            scratch: Vec::new(),
            pairs: Vec::new(),
        }
    }

    /// The first held call or bad line, once every call up to it is settled.
    fn ready(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        while self
            .held
            .front()
            .is_some_and(|h| h.asked() <= self.pairing.settled())
        {
            match self.held.pop_front() {
                Some(Held::Call(rec, slot, _)) => {
                    return Ok(Some(answered(&mut self.pairing, rec, slot)));
                }
                Some(Held::Bad(line, e, _)) => cx.skip(line, e)?,
                None => {}
            }
        }
        Ok(None)
    }

    /// Read the next line of the one read into the pairing and what waits; `false` at the end
    /// of the file.
    fn read_one(&mut self, cx: &mut Ctx<'_>) -> Result<bool, TraceError> {
        let Some((line, text)) = self.lines.next_line()? else {
            return Ok(false);
        };
        let origin = Origin {
            file: self.file,
            line,
        };
        self.scratch.clear();
        let parsed = text.and_then(|t| {
            self.exchange
                .messages(t, origin, false, cx, &mut self.scratch)
        });
        if let Err(e) = parsed {
            self.held
                .push_back(Held::Bad(line, e, self.pairing.calls()));
            return Ok(true);
        }
        let mut calls = Vec::new();
        for msg in self.scratch.drain(..) {
            match msg {
                Message::Call { key, rec } => {
                    self.pairs.push(Pair::Call(key, rec.ts));
                    calls.push(rec);
                }
                other => self.pairs.push(Pair::from(other)),
            }
        }
        self.pairing.line(line, self.pairs.drain(..));
        let asked = self.pairing.calls();
        for (place, rec) in (0..).zip(calls) {
            self.held.push_back(Held::Call(rec, (line, place), asked));
        }
        Ok(true)
    }

    /// Too much waits: drop it, read the rest of the file for the pairing only, and start the
    /// second read.
    fn give_up(&mut self) -> Result<(), TraceError> {
        let from = match self.held.front() {
            Some(Held::Call(_, (line, _), _) | Held::Bad(line, _, _)) => *line,
            None => return Ok(()),
        };
        self.held.clear();
        let read_to = self.lines.line() + 1;
        let mut scratch = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut scratch,
            strict: false,
            file: "",
        };
        while let Some((line, text)) = self.lines.next_line()? {
            let Ok(text) = text else { continue };
            let origin = Origin {
                file: self.file,
                line,
            };
            self.scratch.clear();
            // Bad lines are the second read's to report.
            if (self.exchange)
                .messages(text, origin, true, &mut cx, &mut self.scratch)
                .is_ok()
            {
                self.pairing
                    .line(line, self.scratch.drain(..).map(Pair::from));
            }
        }
        self.counts = self.pairing.finish();
        self.stage = Stage::Second(from, read_to);
        Ok(())
    }

    /// The next call of the second read.
    fn read_again(
        &mut self,
        (from, counted): (u64, u64),
        cx: &mut Ctx<'_>,
    ) -> Result<Option<CallRecord>, TraceError> {
        let mut scratch = ReadStats::default();
        loop {
            if let Some(Held::Call(rec, slot, _)) = self.held.pop_front() {
                return Ok(Some(answered(&mut self.pairing, rec, slot)));
            }
            let (lines, exchange) = &mut self.again;
            let Some((line, text)) = lines.next_line()? else {
                return Ok(None);
            };
            let origin = Origin {
                file: self.file,
                line,
            };
            // Lines the first read passed counted what they ignore; before `from`, they
            // only carry the parser's state.
            let out = &mut self.scratch;
            out.clear();
            let parsed = text.and_then(|t| {
                if line < counted {
                    let mut quiet = Ctx {
                        stats: &mut scratch,
                        strict: false,
                        file: "",
                    };
                    exchange.messages(t, origin, line < from, &mut quiet, out)
                } else {
                    exchange.messages(t, origin, false, cx, out)
                }
            });
            if line < from {
                continue;
            }
            match parsed {
                Ok(()) => {
                    let calls = self.scratch.drain(..).filter_map(|m| match m {
                        Message::Call { rec, .. } => Some(rec),
                        _ => None,
                    });
                    for (place, rec) in (0..).zip(calls) {
                        self.held.push_back(Held::Call(rec, (line, place), 0));
                    }
                }
                Err(e) => cx.skip(line, e)?,
            }
        }
    }
}

/// The call `rec` at `slot`, with its reply if it had one.
fn answered<K: PairKey>(
    pairing: &mut Pairing<K>,
    mut rec: Box<CallRecord>,
    slot: Slot,
) -> CallRecord {
    if let Some((latency, outcome)) = pairing.take(slot) {
        rec.upstream = Some(outcome);
        rec.latency_ms = Some(latency as f64 / 1e6);
    }
    *rec
}

impl<E: Exchange> Source for PairedSource<E> {
    fn next(&mut self, cx: &mut Ctx<'_>) -> Result<Option<CallRecord>, TraceError> {
        loop {
            match self.stage {
                Stage::One => {
                    if let Some(rec) = self.ready(cx)? {
                        return Ok(Some(rec));
                    }
                    if self.held.len() > self.hold {
                        self.give_up()?;
                    } else if !self.read_one(cx)? {
                        self.counts = self.pairing.finish();
                        self.stage = Stage::Done;
                    }
                }
                Stage::Second(from, counted) => match self.read_again((from, counted), cx)? {
                    Some(rec) => return Ok(Some(rec)),
                    None => self.stage = Stage::Done,
                },
                Stage::Done => {
                    if let Some(rec) = self.ready(cx)? {
                        return Ok(Some(rec));
                    }
                    break;
                }
            }
        }
        if let Some((counts, other)) = self.counts.take() {
            if other > 0 {
                *cx.stats
                    .ignored
                    .entry("reply to another request".into())
                    .or_insert(0) += other;
            }
            match &mut cx.stats.replies {
                Some(r) => r.absorb(counts),
                None => cx.stats.replies = Some(counts),
            }
        }
        Ok(None)
    }
}

/// How a JSON-RPC reply ended: `error` → error, `result.isError: true` → tool error, else ok.
pub(crate) fn outcome_of(msg: &Map<String, Value>) -> Upstream {
    if msg.get("error").is_some_and(|e| !e.is_null()) {
        return Upstream::Error;
    }
    let is_error = msg
        .get("result")
        .and_then(|r| r.get("isError"))
        .and_then(Value::as_bool)
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
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn outcome(n: u8) -> Upstream {
        [Upstream::Ok, Upstream::ToolError, Upstream::Error][n as usize % 3]
    }

    /// A call to push: the distance from the previous call's line, its place in its line, and
    /// its reply's latency and outcome (by number) if it has one.
    type Step = (u64, u32, Option<(u64, u8)>);

    /// Push the calls of `steps`, answer those with a reply, then ask for every slot pushed and
    /// every slot of `probes`, in order: each answer is the reply recorded for that slot.
    fn round_trip(steps: &[Step], probes: &[Slot]) {
        let mut a = Answers::new();
        let mut want = BTreeMap::new();
        let mut line = 0;
        let mut last = None;
        for &(step, place, reply) in steps {
            line += step;
            // Slots only grow: a step of 0 must come with a later place.
            let slot = match last {
                Some((l, p)) if l == line && place <= p => (line, p + 1),
                _ => (line, place),
            };
            last = Some(slot);
            let i = a.push(slot);
            want.insert(slot, reply.map(|(ts, o)| (ts, outcome(o))));
            if let Some((ts, o)) = reply {
                a.answer(i, ts, outcome(o));
            }
        }
        let mut probes: Vec<Slot> = (probes.iter().copied())
            .chain(want.keys().copied())
            .collect();
        probes.sort_unstable();
        probes.dedup();
        for slot in probes {
            let expect = want.get(&slot).copied().flatten();
            assert_eq!(a.take(slot), expect, "slot {slot:?}");
        }
    }

    proptest! {
        #[test]
        fn answers_come_back_by_slot(
            steps in prop::collection::vec(
                (prop_oneof![0..4u64, 0..1u64 << 40], prop_oneof![Just(0u32), 0..300u32],
                 prop::option::of((
                     prop_oneof![
                         0..1u64 << 32,
                         (1u64 << 32)..LONG_LATENCY,
                         (LONG_LATENCY - 2)..(LONG_LATENCY + 2),
                         any::<u64>(),
                     ],
                     0..3u8,
                 ))),
                0..200,
            ),
            probes in prop::collection::vec((0..1u64 << 41, 0..400u32), 0..50),
        ) {
            round_trip(&steps, &probes);
        }
    }

    /// A test key: (server, session, id); [`LOOSE`] is a part a reply leaves out (a request
    /// may have no session: [`LOOSE`] too, which a reply then pairs with by its whole key).
    type TestKey = (u8, u8, u8);
    const LOOSE: u8 = u8::MAX;

    impl PairKey for TestKey {
        fn left_out(&self) -> u8 {
            (if self.0 == LOOSE { NO_SERVER } else { 0 })
                | (if self.1 == LOOSE { NO_SESSION } else { 0 })
        }
        fn leave_out(&self, parts: u8) -> TestKey {
            let part = |bit: u8, v: u8| if parts & bit != 0 { LOOSE } else { v };
            (part(NO_SERVER, self.0), part(NO_SESSION, self.1), self.2)
        }
    }

    /// One line's message for the pairing tests: a call with an id (0) or without (1), another
    /// request (2), a reply (3), a cancel (4) or a request never sent (5), of one of a few keys (server `key / 9 % 3`,
    /// session `key / 3 % 3`, id `key % 3`; a part 2 is left out: a request's session only), at
    /// a time.
    fn pair_of((kind, key, ts, outcome_n): (u8, u8, i64, u8)) -> Pair<TestKey> {
        let part = |v: u8| if v == 2 { LOOSE } else { v };
        let (server, session, id) = (part(key / 9 % 3), part(key / 3 % 3), key % 3);
        let request = (server.min(1), session, id);
        match kind % 6 {
            0 => Pair::Call(Some(request), ts),
            1 => Pair::Call(None, ts),
            2 => Pair::Request(request),
            4 => Pair::Cancel(request),
            5 => Pair::Unsent(request),
            _ => Pair::Reply {
                key: (server, session, id),
                ts,
                outcome: outcome(outcome_n),
            },
        }
    }

    /// The pairing done the simplest way: per line fed, the answer of its call (each line has
    /// at most one), then the counts (paired, requests without a reply, replies without a
    /// request, cancelled requests without a reply) and the replies to other requests. A reply
    /// pairs with the request waiting under its whole key, or else, when it leaves parts out,
    /// with the earliest one waiting under the parts it names. A cancel marks the call waiting
    /// under its key; a request never sent takes what waits under its key out, uncounted.
    #[allow(clippy::type_complexity)]
    fn reference_pairing(
        msgs: &[(u8, u8, i64, u8)],
    ) -> (Vec<Option<(u64, Upstream)>>, (u64, u64, u64, u64), u64) {
        // (key, line, time, whether a call, whether cancelled), in the order they came.
        let mut waiting: Vec<(TestKey, u64, i64, bool, bool)> = Vec::new();
        // Replies that came before any request under their whole key: (key, time, outcome),
        // the latest of each key.
        let mut early: Vec<(TestKey, i64, Upstream)> = Vec::new();
        let mut answers = vec![None; msgs.len()];
        let (mut counts, mut other) = ((0, 0, 0, 0), 0);
        for (i, &m) in msgs.iter().enumerate() {
            let line = i as u64 + 1;
            let (key, call, ts) = match pair_of(m) {
                Pair::Call(Some(key), ts) => (key, true, ts),
                Pair::Request(key) => (key, false, 0),
                Pair::Reply { key, ts, outcome } => {
                    let names = |k: TestKey| {
                        (key.0 == LOOSE || k.0 == key.0)
                            && (key.1 == LOOSE || k.1 == key.1)
                            && k.2 == key.2
                    };
                    let found = waiting.iter().position(|w| w.0 == key).or_else(|| {
                        (0..waiting.len())
                            .filter(|&w| names(waiting[w].0))
                            .min_by_key(|&w| waiting[w].1)
                    });
                    match found.map(|w| waiting.remove(w)) {
                        Some((_, at, asked, true, _)) => {
                            counts.0 += 1;
                            answers[at as usize - 1] = Some(((ts - asked).max(0) as u64, outcome));
                        }
                        Some(_) => other += 1,
                        None if key.0 != LOOSE && key.1 != LOOSE => {
                            if let Some(e) = early.iter().position(|e| e.0 == key) {
                                early.remove(e);
                                counts.2 += 1;
                            }
                            early.push((key, ts, outcome));
                        }
                        None => counts.2 += 1,
                    }
                    continue;
                }
                Pair::Cancel(key) => {
                    if let Some(w) = waiting.iter_mut().find(|w| w.0 == key) {
                        w.4 = true;
                    }
                    continue;
                }
                Pair::Unsent(key) => {
                    if let Some(w) = waiting.iter().position(|w| w.0 == key) {
                        waiting.remove(w);
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(w) = waiting.iter().position(|w| w.0 == key) {
                let (.., call, cancelled) = waiting.remove(w);
                counts.1 += u64::from(call);
                counts.3 += u64::from(call && cancelled);
            }
            // A call whose reply came first, at or after the call's time, takes it.
            let first = early.iter().position(|e| e.0 == key && e.1 >= ts);
            if let (true, Some(e)) = (call, first) {
                let (_, at, outcome) = early.remove(e);
                counts.0 += 1;
                answers[i] = Some(((at - ts) as u64, outcome));
                continue;
            }
            waiting.push((key, line, ts, call, false));
        }
        counts.2 += early.len() as u64;
        counts.1 += waiting.iter().filter(|w| w.3).count() as u64;
        counts.3 += waiting.iter().filter(|w| w.3 && w.4).count() as u64;
        (answers, counts, other)
    }

    /// `msgs` paired as a whole file: per line, the answer of its call, then the counts and
    /// the replies to other requests.
    fn paired_whole(msgs: &[(u8, u8, i64, u8)]) -> (Vec<Option<(u64, Upstream)>>, Replies, u64) {
        let mut p = Pairer::new("t");
        for (line, &m) in msgs.iter().enumerate() {
            p.line(line as u64 + 1, [pair_of(m)]);
        }
        let (mut answers, counts, other) = p.finish();
        let got = (1..=msgs.len() as u64)
            .map(|l| answers.take((l, 0)))
            .collect();
        (got, counts, other)
    }

    proptest! {
        /// The pairing pairs as the simplest pairing does, loose replies included (their
        /// index made at the first one, then kept as requests come and go).
        #[test]
        fn pairs_as_the_simplest_pairing_does(
            msgs in prop::collection::vec((0..6u8, 0..27u8, 0..1_000i64, 0..3u8), 0..300),
        ) {
            let (got, counts, other) = paired_whole(&msgs);
            let counts = (
                counts.paired,
                counts.requests_without_reply,
                counts.replies_without_request,
                counts.cancelled,
            );
            let (want, want_counts, want_other) = reference_pairing(&msgs);
            // Latencies are kept to the nanosecond here: the times are small.
            prop_assert_eq!(got, want);
            prop_assert_eq!(counts, want_counts);
            prop_assert_eq!(other, want_other);
        }
    }

    proptest! {
        /// Answers taken line by line as the lines come, for each line once the calls up to
        /// it are settled (as a reader holding lines until then asks, a line without a call
        /// included), are those taken once the whole file is paired; `settled` only grows, up
        /// to the calls asked.
        #[test]
        fn settled_calls_have_their_final_answers(
            msgs in prop::collection::vec((0..6u8, 0..27u8, 0..1_000i64, 0..3u8), 0..300),
        ) {
            let (want, ..) = paired_whole(&msgs);

            let mut streamed = Pairer::new("t");
            // Per line fed: the calls with an id asked up to it.
            let mut asked = Vec::new();
            let (mut got, mut settled) = (Vec::new(), 0);
            for (line, &m) in msgs.iter().enumerate() {
                streamed.line(line as u64 + 1, [pair_of(m)]);
                asked.push(streamed.calls());
                prop_assert!(streamed.settled() >= settled);
                prop_assert!(streamed.settled() <= streamed.calls());
                settled = streamed.settled();
                while got.len() < asked.len() && asked[got.len()] <= settled {
                    got.push(streamed.take((got.len() as u64 + 1, 0)));
                }
            }
            let (mut rest, ..) = streamed.finish();
            while got.len() < msgs.len() {
                got.push(rest.take((got.len() as u64 + 1, 0)));
            }
            prop_assert_eq!(got, want);
        }
    }

    /// The records and statistics of `text` read by a [`PairedSource`] holding at most
    /// `hold` calls, or the error that ends the read under `strict`.
    fn read_holding<E: Exchange>(
        fresh: impl Fn() -> E,
        text: &[u8],
        hold: usize,
        strict: bool,
    ) -> String {
        let lines = || Lines::new(Box::new(std::io::Cursor::new(text.to_vec())), "t");
        let mut src = PairedSource::holding(fresh, lines(), lines(), 1, "t", hold);
        let mut stats = ReadStats::default();
        let mut cx = Ctx {
            stats: &mut stats,
            strict,
            file: "t",
        };
        let mut out = String::new();
        loop {
            match src.next(&mut cx) {
                Ok(Some(rec)) => out.push_str(&format!("{rec:?}\n")),
                Ok(None) => break,
                Err(e) => {
                    out.push_str(&format!("error: {e}\n"));
                    break;
                }
            }
        }
        out + &format!("{stats:?}")
    }

    /// However few calls it may hold (so reading twice from wherever too many wait), a
    /// recording reads as it does when read once, strict or not.
    fn check_holding<E: Exchange>(fresh: impl Fn() -> E, text: &[u8], what: &str) {
        for strict in [false, true] {
            let once = read_holding(&fresh, text, HOLD_CALLS, strict);
            assert!(strict || once.contains("CallRecord"), "{what}: no calls");
            for hold in [0, 1, 2, 3, 5, 8] {
                let got = read_holding(&fresh, text, hold, strict);
                assert_eq!(got, once, "{what}: holding {hold}, strict {strict}");
            }
        }
    }

    #[test]
    fn paired_formats_read_the_same_however_few_calls_they_hold() {
        use crate::trace::agent::AgentOptions;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/traces/");
        let read = |f: &str| std::fs::read(format!("{dir}{f}")).expect("fixture");
        // Each fixture as it is, then with a bad line after every fourth: a line a JSON reader
        // rejects, and that Claude Desktop's log reader passes over.
        let with_bad = |text: Vec<u8>| -> Vec<u8> {
            let mut out = Vec::new();
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                out.extend_from_slice(line);
                out.push(b'\n');
                if i % 4 == 2 {
                    out.extend_from_slice(b"{not json\n");
                }
            }
            out
        };
        let agent = AgentOptions::default();
        for f in ["jsonrpc.jsonl", "jsonrpc-concatenated.jsonl"] {
            check_holding(super::super::jsonrpc::JsonRpc::default, &read(f), f);
            check_holding(
                super::super::jsonrpc::JsonRpc::default,
                &with_bad(read(f)),
                f,
            );
        }
        let f = "mcp-server-fortios.log";
        check_holding(super::super::claude_desktop::Claude::default, &read(f), f);
        check_holding(
            super::super::claude_desktop::Claude::default,
            &with_bad(read(f)),
            f,
        );
        let f = "claude-code-session.jsonl";
        let fresh = || super::super::claude_code::ClaudeCode::new(&agent);
        check_holding(fresh, &read(f), f);
        check_holding(fresh, &with_bad(read(f)), f);
        let f = "codex-rollout.jsonl";
        let fresh = || super::super::codex::Codex::new(&agent);
        check_holding(fresh, &read(f), f);
        check_holding(fresh, &with_bad(read(f)), f);
    }

    #[test]
    fn answers_span_blocks() {
        let steps: Vec<_> = (0..3 * BLOCK as u64 + 7)
            .map(|i| {
                // Latencies of every size, some kept whole beside the blocks.
                let latency = if i % 1000 == 7 {
                    u64::MAX - i
                } else {
                    (i * 31) << (i % 40)
                };
                (
                    1 + i % 3,
                    (i % 5 == 0) as u32,
                    (i % 4 != 0).then_some((latency, i as u8)),
                )
            })
            .collect();
        round_trip(&steps, &[(1, 0), (5, 3)]);
    }
}
